//! Error reporting and exit codes: one line per failed reference, exit 1, other references
//! still processed; usage errors exit 2.

mod common;

use std::fs;

use common::*;
use tempfile::TempDir;

/// `oci-backup --output DIR REF...` into a new directory, which must succeed.
fn backup_into_new_dir(refs: &[String]) -> TempDir {
    let out = TempDir::new().unwrap();
    let mut args = vec!["--plain-http", "--output", path_str(out.path())];
    args.extend(refs.iter().map(String::as_str));
    run_ok("oci-backup", &args, &[]);
    out
}

const NOT_FOUND: &[&str] = &["manifest unknown", "not found", "unknown", "not known"];
const UNREACHABLE: &[&str] = &["connect", "refused", "unreachable"];

#[test]
fn missing_tag_fails_with_one_line_naming_it_and_other_refs_are_still_backed_up() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    let good1 = src.reference("library/app", "1.0");
    let missing = src.reference("library/app", "no-such-tag");
    let good2 = src.reference("dockerimg", "v1");
    let args = [
        "--plain-http",
        "--output",
        path_str(out.path()),
        &good1,
        &missing,
        &good2,
    ];
    let res = run("oci-backup", &args, &[]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}",
        describe("oci-backup", &args, &res)
    );
    assert_error_line_for("oci-backup", &args, &res, &missing, NOT_FOUND);
    assert_layout_matches(
        &out.path().join("library/app"),
        &src,
        fx.get("library/app", "1.0"),
    );
    assert_layout_matches(
        &out.path().join("dockerimg"),
        &src,
        fx.get("dockerimg", "v1"),
    );
    let tags: Vec<_> = layout_entries(&out.path().join("library/app"))
        .into_iter()
        .map(|e| e.tag)
        .collect();
    assert_eq!(tags, vec![Some("1.0".to_string())]);
}

#[test]
fn missing_tag_alone_fails_with_exactly_one_stderr_line() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1.0"], "x");
    let out = TempDir::new().unwrap();
    let missing = src.reference("library/app", "2.0");
    let args = ["--plain-http", "--output", path_str(out.path()), &missing];
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line(
        "oci-backup",
        &args,
        &res,
        &[&missing],
        &["manifest unknown", "not found"],
    );
}

#[test]
fn unknown_repository_fails_with_exactly_one_stderr_line() {
    let src = Registry::start();
    let out = TempDir::new().unwrap();
    let unknown = src.reference("no/such/repo", "1");
    let args = ["--plain-http", "--output", path_str(out.path()), &unknown];
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line("oci-backup", &args, &res, &[&unknown], NOT_FOUND);
}

#[test]
fn unreachable_registry_fails_with_one_line_naming_the_ref() {
    let closed = closed_addr();
    let out = TempDir::new().unwrap();
    let reference = format!("{closed}/library/app:1.0");
    for plain in [true, false] {
        let mut args = vec!["--output", path_str(out.path()), &reference];
        if plain {
            args.insert(0, "--plain-http");
        }
        let res = run("oci-backup", &args, &[]);
        assert_single_error_line("oci-backup", &args, &res, &[&reference], UNREACHABLE);
    }
}

#[test]
fn unreachable_registry_does_not_stop_the_other_refs() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    let dead = format!("{}/library/app:1.0", closed_addr());
    let good = src.reference("multi", "latest");
    let args = [
        "--plain-http",
        "--output",
        path_str(out.path()),
        &dead,
        &good,
    ];
    let res = run("oci-backup", &args, &[]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}",
        describe("oci-backup", &args, &res)
    );
    assert_error_line_for("oci-backup", &args, &res, &dead, UNREACHABLE);
    assert_layout_matches(&out.path().join("multi"), &src, fx.get("multi", "latest"));
}

#[test]
fn restore_and_push_to_unreachable_registry_fail_with_one_line() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1.0"], "x");
    let out = backup_into_new_dir(&[src.reference("library/app", "1.0")]);
    let closed = closed_addr();
    for (name, flag) in [("oci-restore", "--input"), ("oci-push", "-i")] {
        let args = ["--plain-http", flag, path_str(out.path()), &closed];
        let res = run(name, &args, &[]);
        assert_single_error_line(name, &args, &res, &[&closed], UNREACHABLE);
    }
}

/// A directory with no layout in it is a wrong path, not an empty backup: restoring it
/// must not look like success to a script.
#[test]
fn restore_of_a_directory_without_any_layout_fails_with_one_line() {
    let dst = Registry::start();
    let dir = TempDir::new().unwrap();
    fs::create_dir_all(dir.path().join("sub/dir")).unwrap();
    fs::write(dir.path().join("sub/notes.txt"), b"not a layout\n").unwrap();
    let target = format!("{}/ns", dst.addr());
    for (name, flag) in [("oci-restore", "--input"), ("oci-push", "-i")] {
        let args = ["--plain-http", flag, path_str(dir.path()), &target];
        let res = run(name, &args, &[]);
        assert_single_error_line(
            name,
            &args,
            &res,
            &[path_str(dir.path())],
            &["no oci layouts"],
        );
    }
}

/// A blob damaged on disk fails its own check while it is uploaded: the error must say
/// that (digest mismatch), not blame the network or quote the upload session's URL.
#[test]
fn restore_of_a_corrupted_blob_names_the_mismatch_not_the_network() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1.0"], "x");
    let out = backup_into_new_dir(&[src.reference("library/app", "1.0")]);
    let layer = layer_digest(&src, "library/app", "1.0", 0);
    let path = layout_blob_path(&out.path().join("library/app"), &layer);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::remove_file(&path).unwrap();
    fs::write(&path, &bytes).unwrap();

    let dst = Registry::start();
    let args = ["--plain-http", "--input", path_str(out.path()), &dst.addr()];
    let res = run("oci-restore", &args, &[]);
    assert_single_error_line("oci-restore", &args, &res, &[&layer], &["digest mismatch"]);
    let line = stderr_lines(&res).join("\n");
    assert!(
        !line.contains("_state") && !line.to_lowercase().contains("network"),
        "the error blames the network or leaks the upload URL:\n{line}"
    );
    assert!(get_manifest(&dst, "library/app", "1.0").is_none());
}

/// Ref names written as whole references (`app:latest`, `other:latest`) can give one
/// tag to two manifests in one layout: that tag is refused for both, with one line, and
/// the layout's other tags are still restored, from a directory and from a stream.
#[test]
fn a_tag_given_to_two_manifests_in_one_layout_is_refused_and_the_others_restored() {
    let src = Registry::start();
    let (d1, _) = push_simple_image(&src, "library/app", &["1"], "one");
    let (d2, _) = push_simple_image(&src, "library/app", &["2"], "two");
    let out = backup_into_new_dir(&[
        src.reference("library/app", "1"),
        src.reference("library/app", "2"),
    ]);
    let layout = out.path().join("library/app");
    let mut index = layout_index(&layout);
    let entries = index["manifests"].as_array().unwrap().clone();
    let by_digest = |d: &str| entries.iter().find(|e| e["digest"] == d).unwrap().clone();
    let named = |d: &str, name: &str| {
        let mut e = by_digest(d);
        e["annotations"]["org.opencontainers.image.ref.name"] = name.into();
        e
    };
    index["manifests"] = serde_json::json!([
        named(&d1, "app:latest"),
        named(&d2, "other:latest"),
        named(&d1, "keep"),
    ]);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    // Packing keeps the layout as it is: the clash matters only when tags are pushed.
    let packed = TempDir::new().unwrap();
    let archive = packed.path().join("m.tgz");
    run_ok(
        "oci-pack",
        &["-q", path_str(out.path()), "-o", path_str(&archive)],
        &[],
    );
    let dst = Registry::start();
    for (ns, input, repo) in [
        ("dir", path_str(&layout), "dir"),
        ("stdin", "-", "stdin/library/app"),
    ] {
        let target = format!("{}/{ns}", dst.addr());
        let args = ["-q", "--plain-http", "--input", input, &target];
        let res = if input == "-" {
            run_with_stdin_file("oci-restore", &args, &[], &archive)
        } else {
            run("oci-restore", &args, &[])
        };
        assert_single_error_line(
            "oci-restore",
            &args,
            &res,
            &["\"latest\""],
            &["2 different manifests"],
        );
        assert_eq!(tags(&dst, repo), vec!["keep"], "{ns}");
        assert_eq!(get_manifest(&dst, repo, "keep").unwrap().0, d1);
    }
}

#[test]
fn restore_of_a_layout_with_a_missing_blob_fails_for_it_and_restores_the_others() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = backup_into_new_dir(&[
        src.reference("library/app", "1.0"),
        src.reference("dockerimg", "v1"),
    ]);
    // Remove the layer only library/app has (the first one is the shared base layer).
    let own_layer = layer_digest(&src, "library/app", "1.0", 1);
    assert_ne!(own_layer, fx.shared_base_layer);
    fs::remove_file(layout_blob_path(
        &out.path().join("library/app"),
        &own_layer,
    ))
    .unwrap();

    let dst = Registry::start();
    let args = ["--plain-http", "--input", path_str(out.path()), &dst.addr()];
    let res = run("oci-restore", &args, &[]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}",
        describe("oci-restore", &args, &res)
    );
    assert_error_line_for(
        "oci-restore",
        &args,
        &res,
        "library/app",
        &["missing", "not found", "no such", "blob"],
    );
    assert!(
        get_manifest(&dst, "library/app", "1.0").is_none(),
        "manifest pushed although a blob was missing"
    );
    assert_same_graph(
        &registry_graph(&src, "dockerimg", "v1"),
        &registry_graph(&dst, "dockerimg", "v1"),
        "dockerimg",
    );
}

#[test]
fn corrupted_blob_served_by_the_registry_fails_and_leaves_no_blob_file() {
    let src = Registry::start();
    let (digest, manifest) = push_simple_image(&src, "library/app", &["1.0"], "corrupt-me");
    let v: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = v["layers"][0]["digest"].as_str().unwrap().to_string();
    // Same length, different bytes: the registry serves it as if it were the layer.
    let data = src.blob_data_path(&layer);
    let mut bytes = fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    bytes[mid + 1] ^= 0xff;
    fs::write(&data, &bytes).unwrap();

    let out = TempDir::new().unwrap();
    let reference = src.reference("library/app", "1.0");
    let args = ["--plain-http", "--output", path_str(out.path()), &reference];
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line(
        "oci-backup",
        &args,
        &res,
        &[&reference],
        &["digest", "mismatch", "verif", "corrupt"],
    );
    let layout = out.path().join("library/app");
    assert!(
        !layout_blob_path(&layout, &layer).exists(),
        "a blob that failed verification was stored under blobs/"
    );
    assert!(files_under(&layout.join("ingest")).is_empty());
    if layout.join("index.json").exists() {
        assert!(
            layout_entries(&layout).iter().all(|e| e.digest != digest),
            "index.json names an image whose layer failed"
        );
        assert_blob_files_verify(&layout);
    }
}

#[test]
fn manifest_whose_body_does_not_match_its_digest_is_rejected() {
    let src = Registry::start();
    let (digest, manifest) = push_simple_image(&src, "library/app", &["1.0"], "AAAAAAAA");
    // Same length, still valid JSON, other bytes: the registry still answers with the old
    // Docker-Content-Digest.
    let text = String::from_utf8(manifest).unwrap();
    assert!(text.contains("AAAAAAAA"));
    let forged = text.replace("AAAAAAAA", "BBBBBBBB");
    let forged_digest = sha256_digest(forged.as_bytes());
    fs::write(src.blob_data_path(&digest), forged.as_bytes()).unwrap();

    let out = TempDir::new().unwrap();
    for reference in [
        src.reference("library/app", "1.0"),
        src.reference("library/app", &digest),
    ] {
        let args = ["--plain-http", "--output", path_str(out.path()), &reference];
        let res = run("oci-backup", &args, &[]);
        // The reason: a digest mismatch, in words or by naming the digest of the bytes.
        assert_single_error_line(
            "oci-backup",
            &args,
            &res,
            &[&reference],
            &["digest", "mismatch", "verif", "corrupt", &forged_digest],
        );
    }
    let layout = out.path().join("library/app");
    assert!(!layout_blob_path(&layout, &digest).exists());
    if layout.join("index.json").exists() {
        assert!(layout_entries(&layout).is_empty());
    }
}

/// Output paths that cannot be what the user meant fail at once, with one line naming
/// the path, and write nothing (not even a gzip header on stdout).
#[test]
fn impossible_output_and_input_paths_fail_with_one_line_and_write_nothing() {
    let dir = TempDir::new().unwrap();
    let r = format!("{}/library/app:1", closed_addr());
    let new_dir = format!("{}/new/", path_str(dir.path()));
    let file = dir.path().join("file.txt");
    fs::write(&file, b"keep me\n").unwrap();
    let missing = dir.path().join("missing");
    let new_dir_named = new_dir.trim_end_matches('/');
    // (tool, args, the path the line names, the reason)
    let cases: Vec<(&str, Vec<&str>, &str, &str)> = vec![
        (
            "oci-backup",
            vec!["-o", &new_dir, &r],
            new_dir_named,
            "no such directory",
        ),
        (
            "oci-fetch",
            vec!["-o", path_str(&file), &r],
            path_str(&file),
            "not a directory",
        ),
        (
            "oci-pack",
            vec![path_str(&missing)],
            path_str(&missing),
            "no such directory",
        ),
    ];
    for (name, args, path, reason) in cases {
        let res = run(name, &args, &[]);
        assert_single_error_line(name, &args, &res, &[path], &[reason]);
        assert!(res.stdout.is_empty(), "{name} wrote to stdout");
    }
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("file.txt")]);
    assert_eq!(fs::read(&file).unwrap(), b"keep me\n");
}

/// Binary archives are never written to, nor awaited from, a terminal: each tool says so
/// and exits 2 (run under `script`, util-linux's, which gives the tool a pty).
#[test]
fn archives_are_not_written_to_or_read_from_a_terminal() {
    let r = format!("{}/library/app:1", closed_addr());
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("oci-backup", vec!["-o", "-", &r]),
        ("oci-fetch", vec!["-o", "-", &r]),
        ("oci-restore", vec!["-i", "-", "127.0.0.1:1/ns"]),
        ("oci-push", vec!["-i", "-", "127.0.0.1:1/ns"]),
        ("oci-pack", vec!["-"]),
        ("oci-unpack", vec![]),
    ];
    for (name, args) in cases {
        let mut line = format!("'{}'", bin(name).display());
        for a in &args {
            line.push_str(&format!(" '{a}'"));
        }
        line.push_str("; echo \"exit $?\"");
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run script (util-linux)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("terminal") && text.contains("exit 2"),
            "{name} {args:?} on a terminal:\n{text}"
        );
    }
}

#[test]
fn bad_usage_exits_2_with_a_message_for_every_binary() {
    let dir = TempDir::new().unwrap();
    let d = path_str(dir.path());
    let single = TempDir::new().unwrap();
    fs::write(
        single.path().join("index.json"),
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let layout = path_str(single.path()).to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("oci-backup", vec![]),
        (
            "oci-backup",
            vec!["--no-such-flag", "--output", d, "127.0.0.1:1/a:1"],
        ),
        ("oci-backup", vec!["127.0.0.1:1/a:1"]),
        ("oci-backup", vec!["--output", d]),
        ("oci-restore", vec![]),
        (
            "oci-restore",
            vec!["--no-such-flag", "--input", d, "127.0.0.1:1"],
        ),
        ("oci-restore", vec!["--input", d]),
        ("oci-restore", vec!["127.0.0.1:1"]),
        ("oci-fetch", vec![]),
        (
            "oci-fetch",
            vec!["--no-such-flag", "-o", d, "127.0.0.1:1/a:1"],
        ),
        ("oci-fetch", vec!["-o", d]),
        ("oci-push", vec![]),
        ("oci-push", vec!["--no-such-flag", "-i", d, "127.0.0.1:1"]),
        ("oci-push", vec!["-i", d]),
        ("oci-pack", vec!["--no-such-flag"]),
        ("oci-pack", vec![d, d]),
        ("oci-unpack", vec!["--no-such-flag"]),
        ("oci-unpack", vec!["a.tgz", "b.tgz"]),
        (
            "oci-backup",
            vec!["--input", "-", "--output", d, "127.0.0.1:1/a:1"],
        ),
        // Malformed hosts are refused before anything is contacted.
        ("oci-backup", vec!["--output", d, "127.0.0.1:99999/a:1"]),
        ("oci-backup", vec!["--output", d, "127.0.0.1:/a:1"]),
        ("oci-backup", vec!["--output", d, "[::1/a:1"]),
        ("oci-fetch", vec!["-o", d, "127.0.0.1:5000"]),
        ("oci-restore", vec!["--input", d, "127.0.0.1:99999/ns"]),
        ("oci-push", vec!["-i", d, "[::1]5000"]),
        (
            "oci-backup",
            vec!["--output", d, "http://127.0.0.1:5000/a:1"],
        ),
        ("oci-backup", vec!["--output", d, ""]),
        ("oci-restore", vec!["--input", d, "127.0.0.1:5000/ns:v1"]),
        ("oci-backup", vec!["--output", "", "127.0.0.1:1/a:1"]),
        ("oci-pack", vec![d, "-o", ""]),
        ("oci-unpack", vec!["-C", "", "a.tgz"]),
        // A single layout needs a repository to go to.
        ("oci-restore", vec!["--input", &layout, "127.0.0.1:5000"]),
    ];
    for (name, args) in cases {
        let res = run(name, &args, &[]);
        let ctx = describe(name, &args, &res);
        assert_eq!(res.status.code(), Some(2), "expected usage error:\n{ctx}");
        assert!(!stderr_lines(&res).is_empty(), "no usage message:\n{ctx}");
        assert!(
            !String::from_utf8_lossy(&res.stderr).contains("panicked"),
            "{ctx}"
        );
    }
}

#[test]
fn help_and_version_exit_0_for_every_binary() {
    for name in BINARIES {
        let res = run(name, &["--help"], &[]);
        let ctx = describe(name, &["--help"], &res);
        assert_eq!(res.status.code(), Some(0), "{ctx}");
        let text = String::from_utf8_lossy(&res.stdout);
        assert!(text.contains(name), "--help does not name the tool:\n{ctx}");

        let res = run(name, &["--version"], &[]);
        let ctx = describe(name, &["--version"], &res);
        assert_eq!(res.status.code(), Some(0), "{ctx}");
        assert!(
            String::from_utf8_lossy(&res.stdout).contains(env!("CARGO_PKG_VERSION")),
            "--version does not print the version:\n{ctx}"
        );
    }
}

/// A layout whose only entry's manifest is missing fails with one line for it, and is
/// not also called empty.
#[test]
fn restore_of_a_layout_whose_manifest_is_missing_says_so_once_and_not_that_it_is_empty() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = backup_into_new_dir(&[src.reference("dockerimg", "v1")]);
    let layout = out.path().join("dockerimg");
    fs::remove_file(layout_blob_path(&layout, &fx.get("dockerimg", "v1").digest)).unwrap();
    let dst = Registry::start();
    let args = ["--plain-http", "--input", path_str(out.path()), &dst.addr()];
    let res = run("oci-restore", &args, &[]);
    assert_single_error_line(
        "oci-restore",
        &args,
        &res,
        &["dockerimg"],
        &["no such file", "missing", "not found"],
    );
    assert!(!String::from_utf8_lossy(&res.stderr).contains("empty layout"));
}

#[test]
fn backup_into_a_directory_that_is_itself_a_layout_is_refused_and_writes_nothing() {
    let src = Registry::start();
    push_simple_image(&src, "team/app", &["1"], "x");
    let out = TempDir::new().unwrap();
    write_bare_layout(out.path(), r#"{"schemaVersion":2,"manifests":[]}"#);
    let before = files_under(out.path());
    let reference = src.reference("team/app", "1");
    let args = ["--plain-http", "--output", path_str(out.path()), &reference];
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line(
        "oci-backup",
        &args,
        &res,
        &[path_str(out.path())],
        &["is an OCI layout itself"],
    );
    assert_eq!(files_under(out.path()), before);

    // Nor can a directory inside its blobs/ hold layouts.
    let store = out.path().join("blobs");
    fs::create_dir_all(&store).unwrap();
    let args = ["--plain-http", "--output", path_str(&store), &reference];
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line(
        "oci-backup",
        &args,
        &res,
        &[path_str(&store)],
        &["inside the blobs/"],
    );
    assert_eq!(files_under(out.path()), before);
}

/// Distribution accepts `a`, `a/blobs` and `a/ingest` side by side, but a layout's
/// `blobs/` and `ingest/` are its own: such repositories fail, one line each, instead of
/// being written where restore and pack would pass them over.
#[test]
fn repositories_that_would_nest_in_another_layouts_blobs_or_ingest_fail_and_the_rest_restore() {
    let src = Registry::start();
    for (i, repo) in ["nest/a", "nest/a/b", "nest/a/blobs", "nest/a/ingest/x"]
        .iter()
        .enumerate()
    {
        push_simple_image(&src, repo, &["t"], &format!("n{i}"));
    }
    let refs: Vec<String> = ["nest/a", "nest/a/b", "nest/a/blobs", "nest/a/ingest/x"]
        .iter()
        .map(|r| src.reference(r, "t"))
        .collect();
    let work = TempDir::new().unwrap();
    let archive = work.path().join("m.tgz");
    for out in [work.path().to_path_buf(), archive.clone()] {
        let mut args = vec!["--plain-http", "--output", path_str(&out)];
        args.extend(refs.iter().map(String::as_str));
        let res = run("oci-backup", &args, &[]);
        assert_eq!(
            res.status.code(),
            Some(1),
            "{}",
            describe("oci-backup", &args, &res)
        );
        for bad in &refs[2..] {
            assert_error_line_for("oci-backup", &args, &res, bad, &["inside the"]);
        }
    }
    assert!(
        !archive.exists(),
        "an archive with failed references was written"
    );
    assert!(!work.path().join("nest/a/blobs/index.json").exists());
    assert!(!work.path().join("nest/a/ingest/x").exists());
    let dst = Registry::start();
    let args = [
        "--plain-http",
        "--input",
        path_str(work.path()),
        &dst.addr(),
    ];
    run_ok("oci-restore", &args, &[]);
    assert_eq!(tags(&dst, "nest/a"), vec!["t"]);
    assert_eq!(tags(&dst, "nest/a/b"), vec!["t"]);

    // The other way round, across runs: `c/blobs` first, then `c` would mix into it.
    push_simple_image(&src, "c/blobs", &["t"], "c1");
    push_simple_image(&src, "c", &["t"], "c2");
    let out = TempDir::new().unwrap();
    let first = src.reference("c/blobs", "t");
    run_ok(
        "oci-backup",
        &["--plain-http", "-o", path_str(out.path()), &first],
        &[],
    );
    let second = src.reference("c", "t");
    let args = ["--plain-http", "-o", path_str(out.path()), &second];
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line("oci-backup", &args, &res, &[&second], &["holds a layout"]);
}

/// One layout per repository path: two registries giving one tag to different manifests
/// in one run cannot both be kept, so the first reference keeps it and the later one
/// fails, rather than silently overwriting it.
#[test]
fn a_tag_given_to_two_manifests_by_two_registries_in_one_run_fails_for_the_later_reference() {
    let one = Registry::start();
    let two = Registry::start();
    let (d1, _) = push_simple_image(&one, "demo/hello", &["1.0"], "one");
    push_simple_image(&two, "demo/hello", &["1.0"], "two");
    let (d3, _) = push_simple_image(&two, "demo/hello", &["2.0"], "three");
    let first = one.reference("demo/hello", "1.0");
    let later = two.reference("demo/hello", "1.0");
    let other = two.reference("demo/hello", "2.0");
    let work = TempDir::new().unwrap();
    let archive = work.path().join("m.tgz");
    for out in [work.path().to_path_buf(), archive.clone()] {
        let args = ["--plain-http", "-o", path_str(&out), &first, &later, &other];
        let res = run("oci-backup", &args, &[]);
        assert_eq!(
            res.status.code(),
            Some(1),
            "{}",
            describe("oci-backup", &args, &res)
        );
        assert_error_line_for("oci-backup", &args, &res, &later, &["given to"]);
    }
    let entries = layout_entries(&work.path().join("demo/hello"));
    let tagged: Vec<(Option<String>, String)> =
        entries.into_iter().map(|e| (e.tag, e.digest)).collect();
    assert_eq!(
        tagged,
        vec![(Some("1.0".into()), d1), (Some("2.0".into()), d3)]
    );
}

#[test]
fn pack_of_a_corrupted_blob_names_the_layout_and_the_blob_and_writes_no_archive() {
    let src = Registry::start();
    push_simple_image(&src, "team/app", &["1"], "corrupt");
    let out = backup_into_new_dir(&[src.reference("team/app", "1")]);
    let layout = out.path().join("team/app");
    let layer = layer_digest(&src, "team/app", "1", 0);
    let path = layout_blob_path(&layout, &layer);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let work = TempDir::new().unwrap();
    let archive = work.path().join("m.tgz");
    let args = [path_str(out.path()), "-o", path_str(&archive)];
    let res = run("oci-pack", &args, &[]);
    assert_single_error_line(
        "oci-pack",
        &args,
        &res,
        &[path_str(&layout), &layer],
        &["mismatch"],
    );
    assert!(!archive.exists());
}
