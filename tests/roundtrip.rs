//! Backup -> OCI layouts -> restore, against real registries seeded by the harness.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use tempfile::TempDir;

/// `oci-backup --plain-http --output DIR <refs>`; asserts success.
fn backup(dir: &Path, refs: &[String]) {
    let mut args = vec!["--plain-http", "--output", path_str(dir)];
    args.extend(refs.iter().map(String::as_str));
    run_ok("oci-backup", &args, &[]);
}

/// `oci-restore --plain-http --input DIR TARGET`; asserts success.
fn restore(dir: &Path, target: &str) {
    run_ok(
        "oci-restore",
        &["--plain-http", "--input", path_str(dir), target],
        &[],
    );
}

fn seeded_backup() -> (Registry, Fixtures, TempDir) {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    backup(out.path(), &fx.refs(&src));
    (src, fx, out)
}

#[test]
fn backup_writes_one_byte_exact_oci_layout_per_repository() {
    let (src, fx, out) = seeded_backup();

    for e in &fx.entries {
        assert_layout_matches(&out.path().join(&e.repo), &src, e);
    }
    // One index.json entry per tag (three tags on one digest are three entries), one
    // untagged entry for the digest-only ref, nothing else.
    for repo in fx.repos() {
        let layout = out.path().join(&repo);
        let mut have: Vec<(Option<String>, String)> = layout_entries(&layout)
            .into_iter()
            .map(|e| (e.tag, e.digest))
            .collect();
        have.sort();
        let mut want: Vec<(Option<String>, String)> = fx
            .entries
            .iter()
            .filter(|e| e.repo == repo)
            .map(|e| (e.tag.clone(), e.digest.clone()))
            .collect();
        want.sort();
        assert_eq!(have, want, "index.json entries of {repo}");
        assert!(
            files_under(&layout.join("ingest")).is_empty(),
            "{repo}: leftover files in ingest/: {:?}",
            files_under(&layout.join("ingest"))
        );
    }
    // The repository path is used without the registry host; intermediate directories of a
    // nested repository are not layouts.
    assert!(!out.path().join(src.addr()).exists());
    assert!(!out.path().join("127.0.0.1").exists());
    assert!(!out.path().join("team/index.json").exists());
    assert!(!out.path().join("team/app/index.json").exists());
}

#[test]
fn backup_leaves_no_files_in_ingest() {
    let (_src, fx, out) = seeded_backup();
    for repo in fx.repos() {
        let ingest = out.path().join(&repo).join("ingest");
        let left = files_under(&ingest);
        assert!(left.is_empty(), "{repo}: leftover ingest files {left:?}");
    }
}

#[test]
fn backup_stores_the_shared_base_layer_in_both_repository_layouts() {
    let (src, fx, out) = seeded_backup();
    let base = get_blob(&src, "library/app", &fx.shared_base_layer).unwrap();
    for repo in ["library/app", "shared/other"] {
        let layout = out.path().join(repo);
        assert_eq!(
            layout_blob(&layout, &fx.shared_base_layer).as_deref(),
            Some(&base[..]),
            "{repo}: shared base layer missing or different"
        );
    }
}

#[test]
fn round_trip_under_a_namespace_preserves_every_tag_digest_and_byte() {
    let (src, fx, out) = seeded_backup();
    let dst = Registry::start();
    restore(out.path(), &format!("{}/backup/ns", dst.addr()));
    assert_restored(&src, &fx, &dst, "backup/ns/");
    let expected: Vec<String> = fx
        .repos()
        .iter()
        .map(|r| format!("backup/ns/{r}"))
        .collect();
    assert_eq!(catalog(&dst), expected);
}

#[test]
fn round_trip_at_the_registry_root_preserves_every_tag_digest_and_byte() {
    let (src, fx, out) = seeded_backup();
    let dst = Registry::start();
    restore(out.path(), &dst.addr());
    assert_restored(&src, &fx, &dst, "");
    assert_eq!(catalog(&dst), fx.repos());
}

/// skopeo (1.9.3 here) opens the layouts and prints exactly the bytes the source serves.
/// It only looks at index.json entries typed as OCI manifests or indexes, so the Docker
/// schema-2 image and manifest list (whose entries carry their real Docker media types) are
/// checked byte-exact by `backup_writes_one_byte_exact_oci_layout_per_repository` instead.
#[test]
fn skopeo_reads_backed_up_oci_image_index_and_artifact_byte_exact() {
    let (src, _fx, out) = seeded_backup();
    for (repo, tag) in [
        ("library/app", "1.0"),
        ("multi", "latest"),
        ("team/app/api", "1.0.0"),
        ("team/app/api", "latest"),
        ("artifacts/sbom", "v1"),
        ("charts/demo", "0.1.0"),
    ] {
        let (_, served, _) = get_manifest(&src, repo, tag).unwrap();
        let image = format!("oci:{}:{tag}", out.path().join(repo).display());
        let raw = skopeo(&["inspect", "--raw", &image]);
        assert!(
            raw == served,
            "skopeo inspect --raw {image} differs from what the registry serves:\n{}",
            String::from_utf8_lossy(&raw)
        );
    }
    // skopeo can copy one platform out of the backed-up index: the child manifest and its
    // blobs are there and verify.
    for arch in ["amd64", "arm64"] {
        let copy = TempDir::new().unwrap();
        let dest = copy.path().join("img");
        skopeo(&[
            "--override-arch",
            arch,
            "copy",
            &format!("oci:{}:latest", out.path().join("multi").display()),
            &format!("dir:{}", dest.display()),
        ]);
        let child = fs::read(dest.join("manifest.json")).unwrap();
        let child_digest = sha256_digest(&child);
        let (_, served, _) = get_manifest(&src, "multi", &child_digest)
            .unwrap_or_else(|| panic!("skopeo copied a manifest the source does not have"));
        assert_eq!(child, served);
        let v: serde_json::Value = serde_json::from_slice(&child).unwrap();
        let config = get_blob(&src, "multi", v["config"]["digest"].as_str().unwrap()).unwrap();
        let cfg: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(cfg["architecture"], arch);
    }
}

#[test]
fn digest_only_backup_has_untagged_entry_and_restores_by_digest_without_a_tag() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let untagged = fx.untagged().clone();
    // A tagged image referenced by digest must not gain its tag either.
    let app = fx.get("library/app", "1.0").clone();
    let out = TempDir::new().unwrap();
    let refs = vec![
        src.reference(&untagged.repo, &untagged.digest),
        src.reference(&app.repo, &app.digest),
    ];
    backup(out.path(), &refs);
    // Backing up the same digest again does not duplicate its entry.
    backup(out.path(), &refs[..1]);

    for s in [&untagged, &app] {
        let layout = out.path().join(&s.repo);
        let entries = layout_entries(&layout);
        assert_eq!(entries.len(), 1, "{}: {entries:?}", s.repo);
        assert_eq!(
            entries[0].tag, None,
            "{}: digest-only entry got a tag",
            s.repo
        );
        let as_untagged = Seeded {
            tag: None,
            ..s.clone()
        };
        assert_layout_matches(&layout, &src, &as_untagged);
    }

    let dst = Registry::start();
    restore(out.path(), &dst.addr());
    for s in [&untagged, &app] {
        let (digest, body, _) = get_manifest(&dst, &s.repo, &s.digest)
            .unwrap_or_else(|| panic!("{}@{} not restored", s.repo, s.digest));
        assert_eq!(digest, s.digest);
        assert_eq!(body, get_manifest(&src, &s.repo, &s.digest).unwrap().1);
        assert_same_graph(
            &registry_graph(&src, &s.repo, &s.digest),
            &registry_graph(&dst, &s.repo, &s.digest),
            &s.repo,
        );
        assert!(
            tags(&dst, &s.repo).is_empty(),
            "{}: restore invented tags {:?}",
            s.repo,
            tags(&dst, &s.repo)
        );
    }
}

#[test]
fn restore_ignores_directories_without_index_json_and_plain_files() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    let picked = [
        fx.get("library/app", "1.0").clone(),
        fx.get("team/app/api", "latest").clone(),
    ];
    let refs: Vec<String> = picked
        .iter()
        .map(|s| src.reference(&s.repo, s.reference()))
        .collect();
    backup(out.path(), &refs);

    let d = out.path();
    fs::write(d.join("NOTES.txt"), "not a layout\n").unwrap();
    fs::create_dir_all(d.join("stray/deeper/still")).unwrap();
    fs::write(d.join("stray/deeper/readme.md"), "# nothing\n").unwrap();
    fs::create_dir_all(d.join("empty-dir")).unwrap();
    fs::write(d.join("library/README"), "plain file beside a layout\n").unwrap();
    // A marker without index.json is not a layout either.
    fs::create_dir_all(d.join("half/blobs/sha256")).unwrap();
    fs::write(
        d.join("half/oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let dst = Registry::start();
    restore(d, &dst.addr());
    assert_eq!(catalog(&dst), vec!["library/app", "team/app/api"]);
    for s in &picked {
        let (digest, _, _) = get_manifest(&dst, &s.repo, s.reference()).unwrap();
        assert_eq!(digest, s.digest);
    }
}

#[test]
fn restore_of_layouts_with_empty_or_null_manifests_pushes_nothing_and_succeeds() {
    let src = Registry::start();
    let (digest, _) = push_simple_image(&src, "real/app", &["1"], "real");
    let out = TempDir::new().unwrap();
    backup(out.path(), &[src.reference("real/app", "1")]);
    write_bare_layout(
        &out.path().join("empty/list"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    );
    write_bare_layout(
        &out.path().join("empty/null"),
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#,
    );

    let dst = Registry::start();
    restore(out.path(), &dst.addr());
    assert_eq!(catalog(&dst), vec!["real/app"]);
    assert_eq!(get_manifest(&dst, "real/app", "1").unwrap().0, digest);
}

#[test]
fn restore_of_a_directory_that_is_itself_a_layout_pushes_to_the_target_repository() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    backup(
        out.path(),
        &[
            src.reference("team/app/api", "1.0.0"),
            src.reference("team/app/api", "latest"),
        ],
    );
    let dst = Registry::start();
    restore(
        &out.path().join("team/app/api"),
        &format!("{}/renamed/api", dst.addr()),
    );
    assert_eq!(catalog(&dst), vec!["renamed/api"]);
    assert_eq!(tags(&dst, "renamed/api"), vec!["1.0.0", "latest"]);
    let want = fx.get("team/app/api", "latest");
    assert_same_graph(
        &registry_graph(&src, "team/app/api", "latest"),
        &registry_graph(&dst, "renamed/api", "1.0.0"),
        "renamed/api",
    );
    assert_eq!(
        get_manifest(&dst, "renamed/api", "latest").unwrap().0,
        want.digest
    );
}

#[test]
fn second_backup_of_a_repository_merges_entries_and_reuses_blobs() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    let layout = out.path().join("team/app/api");

    backup(out.path(), &[src.reference("team/app/api", "1.0.0")]);
    let first = layout_entries(&layout);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].tag.as_deref(), Some("1.0.0"));
    let blobs_before = inodes_under(&layout.join("blobs"));
    assert!(!blobs_before.is_empty());

    backup(
        out.path(),
        &[
            src.reference("team/app/api", "1.0"),
            src.reference("team/app/api", "latest"),
            src.reference("team/app/api", "1.0.0"),
        ],
    );
    let mut tags_now: Vec<String> = layout_entries(&layout)
        .into_iter()
        .map(|e| e.tag.expect("tagged entry"))
        .collect();
    tags_now.sort();
    assert_eq!(
        tags_now,
        vec!["1.0", "1.0.0", "latest"],
        "one entry per tag"
    );
    for tag in ["1.0", "1.0.0", "latest"] {
        assert_layout_matches(&layout, &src, fx.get("team/app/api", tag));
    }
    // Blobs already present were kept (not downloaded and replaced again).
    let blobs_after = inodes_under(&layout.join("blobs"));
    for (path, ino) in &blobs_before {
        assert_eq!(
            blobs_after.get(path),
            Some(ino),
            "{} was rewritten by the second backup",
            path.display()
        );
    }
    assert!(files_under(&layout.join("ingest")).is_empty());
}

#[test]
fn second_backup_replaces_a_moved_tag_with_the_latest_digest() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    let layout = out.path().join("team/app/api");
    let all_three: Vec<String> = ["1.0.0", "1.0", "latest"]
        .iter()
        .map(|t| src.reference("team/app/api", t))
        .collect();
    backup(out.path(), &all_three);
    let old = fx.get("team/app/api", "latest").digest.clone();

    // Move `latest` to a new image in the source and back it up again.
    let (new_digest, _) = push_simple_image(&src, "team/app/api", &["latest"], "moved");
    assert_ne!(new_digest, old);
    backup(out.path(), &[src.reference("team/app/api", "latest")]);

    let entries = layout_entries(&layout);
    assert_eq!(entries.len(), 3, "{entries:?}");
    let latest: Vec<_> = entries
        .iter()
        .filter(|e| e.tag.as_deref() == Some("latest"))
        .collect();
    assert_eq!(latest.len(), 1, "{entries:?}");
    assert_eq!(latest[0].digest, new_digest);
    for tag in ["1.0", "1.0.0"] {
        assert_layout_matches(&layout, &src, fx.get("team/app/api", tag));
    }
    assert_layout_matches(
        &layout,
        &src,
        &Seeded {
            repo: "team/app/api".into(),
            tag: Some("latest".into()),
            digest: new_digest,
            media_type: OCI_MANIFEST.into(),
        },
    );
}

#[test]
fn fetch_and_push_tools_round_trip_like_backup_and_restore() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    let refs = fx.refs(&src);
    let mut args = vec!["--plain-http", "-o", path_str(out.path())];
    args.extend(refs.iter().map(String::as_str));
    run_ok("oci-fetch", &args, &[]);
    for e in &fx.entries {
        assert_layout_matches(&out.path().join(&e.repo), &src, e);
    }

    let dst = Registry::start();
    let target = format!("{}/mirror", dst.addr());
    run_ok(
        "oci-push",
        &["--plain-http", "-i", path_str(out.path()), &target],
        &[],
    );
    assert_restored(&src, &fx, &dst, "mirror/");
}

#[test]
fn backup_and_restore_fall_back_to_plain_http_on_loopback_without_the_flag() {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    let out = TempDir::new().unwrap();
    let refs = [
        src.reference("library/app", "1.0"),
        src.reference("multi", "latest"),
    ];
    run_ok(
        "oci-backup",
        &["--output", path_str(out.path()), &refs[0], &refs[1]],
        &[],
    );
    assert_layout_matches(
        &out.path().join("library/app"),
        &src,
        fx.get("library/app", "1.0"),
    );
    assert_layout_matches(&out.path().join("multi"), &src, fx.get("multi", "latest"));

    let dst = Registry::start();
    run_ok(
        "oci-restore",
        &["--input", path_str(out.path()), &dst.addr()],
        &[],
    );
    for (repo, tag) in [("library/app", "1.0"), ("multi", "latest")] {
        assert_same_graph(
            &registry_graph(&src, repo, tag),
            &registry_graph(&dst, repo, tag),
            repo,
        );
    }
}

/// Backups run at the same time into one directory (parallel make jobs, CI matrix jobs on
/// a shared mirror) each add their tags: index.json is changed under a lock, and one run
/// tidying `ingest/` does not fail another's blob write.
#[test]
fn concurrent_backups_into_one_layout_keep_every_tag() {
    let src = Registry::start();
    let tags_wanted: Vec<String> = (1..=4).map(|i| format!("v{i}")).collect();
    for t in &tags_wanted {
        push_simple_image(&src, "library/app", &[t.as_str()], t);
    }
    for round in 0..12 {
        let out = TempDir::new().unwrap();
        let children: Vec<_> = tags_wanted
            .iter()
            .map(|t| {
                std::process::Command::new(bin("oci-backup"))
                    .args([
                        "-q",
                        "--plain-http",
                        "--output",
                        path_str(out.path()),
                        &src.reference("library/app", t),
                    ])
                    .env("DOCKER_CONFIG", out.path())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let mut got: Vec<String> = layout_entries(&out.path().join("library/app"))
            .into_iter()
            .filter_map(|e| e.tag)
            .collect();
        got.sort();
        assert_eq!(got, tags_wanted, "round {round}: tags lost");
    }
}
