//! Archives and streams against the real registry: backups to a compressed tar (file or
//! stdout) and restores from one (file or stdin), GNU tar interop, reproducible bytes,
//! oci-pack/oci-unpack, the layout stream pipelines, reference lists, and blobs shared
//! between repositories (hard links on disk and in the tar, mounts on restore).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use tempfile::TempDir;

fn backup_to(output: &Path, refs: &[String]) -> std::process::Output {
    let mut args = vec!["--plain-http", "--output", path_str(output)];
    args.extend(refs.iter().map(String::as_str));
    run_ok("oci-backup", &args, &[])
}

fn restore_from(input: &Path, target: &str) {
    run_ok(
        "oci-restore",
        &["--plain-http", "--input", path_str(input), target],
        &[],
    );
}

fn restore_from_stdin(archive: &Path, target: &str) {
    run_ok_with_stdin_file(
        "oci-restore",
        &["--plain-http", "--input", "-", target],
        &[],
        archive,
    );
}

/// Runs an external tool; panics with its stderr unless it succeeds. Returns stdout.
fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `bash -o pipefail -c SCRIPT`, with `$FETCH`, `$PACK`, ... naming the crate's binaries.
fn pipeline(script: &str) {
    let out = Command::new("/bin/bash")
        .args(["-o", "pipefail", "-c", script])
        .env("FETCH", bin("oci-fetch"))
        .env("PUSH", bin("oci-push"))
        .env("PACK", bin("oci-pack"))
        .env("UNPACK", bin("oci-unpack"))
        .env("BACKUP", bin("oci-backup"))
        .env("RESTORE", bin("oci-restore"))
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "pipeline failed: {script}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// File names `tar tzf` lists, directories left out, `./` prefixes removed.
fn gnu_tar_files(archive: &Path) -> Vec<String> {
    let listing = tool("/usr/bin/tar", &["tzf", path_str(archive)]);
    String::from_utf8_lossy(&listing)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|l| !l.is_empty() && !l.ends_with('/'))
        .collect()
}

/// Regular files under `dir`, relative, as strings.
fn relative_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(dir)
        .iter()
        .map(|p| {
            p.strip_prefix(dir)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

fn seeded() -> (Registry, Fixtures) {
    let src = Registry::start();
    let fx = seed_fixtures(&src);
    (src, fx)
}

/// (method, uri, status) of the blob uploads and mounts `reg` answered for `digest`.
fn uploads_and_mounts(reg: &Registry, digest: &str) -> (Vec<String>, Vec<String>) {
    // Query values may be percent-encoded (`sha256%3A...`).
    let requests: Vec<(String, String, u16)> = reg
        .requests()
        .into_iter()
        .map(|(m, uri, s)| (m, uri.replace("%3A", ":").replace("%3a", ":"), s))
        .collect();
    let uploads = requests
        .iter()
        .filter(|(m, uri, _)| {
            (m == "PUT" || m == "POST") && uri.contains(&format!("digest={digest}"))
        })
        .map(|(m, uri, s)| format!("{m} {uri} {s}"))
        .collect();
    let mounts = requests
        .iter()
        .filter(|(m, uri, s)| m == "POST" && uri.contains(&format!("mount={digest}")) && *s == 201)
        .map(|(m, uri, s)| format!("{m} {uri} {s}"))
        .collect();
    (uploads, mounts)
}

fn registry_with_access_log() -> Registry {
    Registry::start_with_config(RegistryConfig {
        access_log: true,
        ..Default::default()
    })
}

#[test]
fn backup_to_a_file_writes_a_gzip_tar_of_the_directory_tree_that_restores_byte_exact() {
    let (src, fx) = seeded();
    let work = TempDir::new().unwrap();
    // No check on the name: anything that is not a directory is an archive.
    let archive = work.path().join("mirror.backup");
    backup_to(&archive, &fx.refs(&src));
    let dir = work.path().join("dir");
    fs::create_dir(&dir).unwrap();
    backup_to(&dir, &fx.refs(&src));

    let bytes = fs::read(&archive).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "not gzip");
    let mut listed = gnu_tar_files(&archive);
    listed.sort();
    assert_eq!(
        listed,
        relative_files(&dir),
        "the tar must hold the same tree as the directory backup"
    );

    let dst = Registry::start();
    restore_from(&archive, &format!("{}/from-file", dst.addr()));
    assert_restored(&src, &fx, &dst, "from-file/");
}

#[test]
fn backup_to_stdout_restores_from_stdin_byte_exact() {
    let (src, fx) = seeded();
    let mut args = vec!["--plain-http", "--output", "-"];
    let refs = fx.refs(&src);
    args.extend(refs.iter().map(String::as_str));
    let out = run_ok("oci-backup", &args, &[]);
    assert_eq!(&out.stdout[..2], &[0x1f, 0x8b], "stdout is not gzip");

    let work = TempDir::new().unwrap();
    let archive = work.path().join("stdout.tgz");
    fs::write(&archive, &out.stdout).unwrap();
    let dst = Registry::start();
    restore_from_stdin(&archive, &dst.addr());
    assert_restored(&src, &fx, &dst, "");
}

#[test]
fn backup_overwrites_an_existing_file_with_the_archive() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1"], "over");
    let work = TempDir::new().unwrap();
    let archive = work.path().join("old-notes.txt");
    fs::write(&archive, "an old file that the user asked to overwrite\n").unwrap();
    backup_to(&archive, &[src.reference("library/app", "1")]);
    assert_eq!(&fs::read(&archive).unwrap()[..2], &[0x1f, 0x8b]);
    assert!(gnu_tar_files(&archive).contains(&"library/app/index.json".to_string()));
    // Nothing else next to it: the temp file was renamed into place.
    assert_eq!(relative_files(work.path()), vec!["old-notes.txt"]);
}

/// `-o` naming a symbolic link replaces the file it points at and keeps the link; naming a
/// FIFO (or a device) writes into it, as `>` would, instead of replacing it with a file.
#[test]
fn an_output_that_is_a_symlink_or_a_fifo_is_written_through_not_replaced() {
    use std::os::unix::fs::{symlink, FileTypeExt};
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1"], "through");
    let reference = src.reference("library/app", "1");
    let work = TempDir::new().unwrap();

    let real = work.path().join("real.tgz");
    fs::write(&real, "old").unwrap();
    let link = work.path().join("link.tgz");
    symlink("real.tgz", &link).unwrap();
    let dangling = work.path().join("dangling.tgz");
    symlink("new.tgz", &dangling).unwrap();
    for (out, written) in [(&link, &real), (&dangling, &work.path().join("new.tgz"))] {
        backup_to(out, std::slice::from_ref(&reference));
        assert!(fs::symlink_metadata(out).unwrap().file_type().is_symlink());
        assert!(gnu_tar_files(written).contains(&"library/app/index.json".to_string()));
    }

    let fifo = work.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let dst = Registry::start();
    let reader = Command::new(bin("oci-restore"))
        .args(["--plain-http", "-q", "-i", path_str(&fifo), &dst.addr()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        let reference = reference.clone();
        move || backup_to(&fifo, &[reference])
    });
    let restored = reader.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(tags(&dst, "library/app"), vec!["1"]);
}

#[test]
fn failed_backup_keeps_the_previous_archive_and_leaves_no_temp_file() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1"], "keep");
    let work = TempDir::new().unwrap();
    let archive = work.path().join("mirror.tgz");
    backup_to(&archive, &[src.reference("library/app", "1")]);
    let good = fs::read(&archive).unwrap();

    // One good ref and one missing: the archive would be incomplete, so it is not written.
    let missing = src.reference("library/app", "no-such-tag");
    let args = [
        "--plain-http",
        "--output",
        path_str(&archive),
        &src.reference("library/app", "1"),
        &missing,
    ];
    let res = run("oci-backup", &args, &[]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}",
        describe("oci-backup", &args, &res)
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains(&missing), "{stderr}");
    assert_eq!(
        fs::read(&archive).unwrap(),
        good,
        "the good archive was replaced"
    );
    assert_eq!(relative_files(work.path()), vec!["mirror.tgz"]);

    // The same with an unreachable registry and no previous file: no file at all.
    let fresh = work.path().join("new.tgz");
    let unreachable = format!("{}/x/y:1", closed_addr());
    let args = ["--plain-http", "--output", path_str(&fresh), &unreachable];
    let res = run("oci-backup", &args, &[]);
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}",
        describe("oci-backup", &args, &res)
    );
    assert!(!fresh.exists());
    assert_eq!(relative_files(work.path()), vec!["mirror.tgz"]);
}

#[test]
fn backups_of_the_same_content_are_byte_identical_reproducible_archives() {
    let (src, fx) = seeded();
    let work = TempDir::new().unwrap();
    let a = work.path().join("a.tgz");
    let b = work.path().join("b.tgz");
    backup_to(&a, &fx.refs(&src));
    backup_to(&b, &fx.refs(&src));
    let bytes = fs::read(&a).unwrap();
    assert!(bytes == fs::read(&b).unwrap(), "two backups differ");
    // The same references in another order (the shared layer's link then points the other
    // way unless layouts are written in a fixed order).
    let reversed: Vec<String> = fx.refs(&src).into_iter().rev().collect();
    let c = work.path().join("c.tgz");
    backup_to(&c, &reversed);
    assert!(
        bytes == fs::read(&c).unwrap(),
        "the archive depends on the order of the references"
    );

    // gzip header: no file name, no time.
    assert_eq!(bytes[3] & 0x08, 0, "gzip header carries a file name");
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip header carries a time");

    // tar headers: fixed time, root ids, no user names; per repository, oci-layout and
    // index.json come before any blob so that a stream can be planned early.
    let gz = flate2::read::MultiGzDecoder::new(&bytes[..]);
    let mut tar = tar::Archive::new(gz);
    let mut first_blob: BTreeMap<String, usize> = BTreeMap::new();
    let mut index_at: BTreeMap<String, usize> = BTreeMap::new();
    for (i, entry) in tar.entries().unwrap().enumerate() {
        let entry = entry.unwrap();
        let h = entry.header();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(h.mtime().unwrap(), 0, "{name}: mtime");
        assert_eq!(h.uid().unwrap(), 0, "{name}: uid");
        assert_eq!(h.gid().unwrap(), 0, "{name}: gid");
        assert!(
            h.username().ok().flatten().unwrap_or("").is_empty(),
            "{name}: user name"
        );
        if let Some((repo, _)) = name.split_once("/blobs/") {
            first_blob.entry(repo.to_string()).or_insert(i);
        } else if let Some(repo) = name.strip_suffix("/index.json") {
            index_at.insert(repo.to_string(), i);
        }
    }
    assert_eq!(index_at.len(), fx.repos().len());
    for (repo, i) in &index_at {
        assert!(i < &first_blob[repo], "{repo}: index.json after a blob");
    }
}

/// The same repository path on two registries (or one registry spelt two ways) is one
/// layout in an archive, as in a directory: one index.json holding every tag.
#[test]
fn one_repository_path_from_two_registries_is_one_layout_with_every_tag() {
    let one = Registry::start();
    let two = Registry::start();
    let (d1, _) = push_simple_image(&one, "library/app", &["1"], "from-one");
    let (d2, _) = push_simple_image(&two, "library/app", &["2"], "from-two");
    let refs = [
        one.reference("library/app", "1"),
        two.reference("library/app", "2"),
    ];
    let work = TempDir::new().unwrap();
    let archive = work.path().join("m.tgz");
    backup_to(&archive, &refs);
    let listing =
        String::from_utf8_lossy(&tool("/usr/bin/tar", &["tzf", path_str(&archive)])).into_owned();
    let indexes = listing
        .lines()
        .filter(|l| *l == "library/app/index.json")
        .count();
    assert_eq!(indexes, 1, "index.json entries:\n{listing}");
    let dst = Registry::start();
    for (via_stdin, ns) in [(false, "file"), (true, "stdin")] {
        let target = format!("{}/{ns}", dst.addr());
        if via_stdin {
            restore_from_stdin(&archive, &target);
        } else {
            restore_from(&archive, &target);
        }
        let repo = format!("{ns}/library/app");
        let mut t = tags(&dst, &repo);
        t.sort();
        assert_eq!(t, vec!["1", "2"], "{ns}");
        assert_eq!(get_manifest(&dst, &repo, "1").unwrap().0, d1);
        assert_eq!(get_manifest(&dst, &repo, "2").unwrap().0, d2);
    }
}

#[test]
fn gnu_tar_archive_of_a_backup_directory_restores() {
    let (src, fx) = seeded();
    let work = TempDir::new().unwrap();
    let dir = work.path().join("dir");
    fs::create_dir(&dir).unwrap();
    backup_to(&dir, &fx.refs(&src));
    // GNU tar: `./` prefixes, directory entries, its own order, hard links as it finds them.
    let archive = work.path().join("gnu.tgz");
    tool(
        "/usr/bin/tar",
        &["czf", path_str(&archive), "-C", path_str(&dir), "."],
    );
    let dst = Registry::start();
    restore_from(&archive, &format!("{}/gnu", dst.addr()));
    assert_restored(&src, &fx, &dst, "gnu/");
}

#[test]
fn oci_pack_and_oci_unpack_round_trip_a_backup_directory_with_its_hard_links() {
    let (src, fx) = seeded();
    let work = TempDir::new().unwrap();
    let dir = work.path().join("dir");
    fs::create_dir(&dir).unwrap();
    backup_to(&dir, &fx.refs(&src));

    // To a file and back.
    let archive = work.path().join("packed.tgz");
    run_ok("oci-pack", &[path_str(&dir), "-o", path_str(&archive)], &[]);
    let back = work.path().join("back");
    run_ok(
        "oci-unpack",
        &["-C", path_str(&back), path_str(&archive)],
        &[],
    );
    assert_same_tree(&dir, &back);

    // To stdout and back from stdin.
    let out = run_ok("oci-pack", &[path_str(&dir)], &[]);
    assert!(
        out.stdout == fs::read(&archive).unwrap(),
        "stdout differs from -o"
    );
    let back2 = work.path().join("back2");
    run_ok_with_stdin_file("oci-unpack", &["-C", path_str(&back2)], &[], &archive);
    assert_same_tree(&dir, &back2);
}

/// Same files with the same bytes, and the same files hard-linked together.
fn assert_same_tree(a: &Path, b: &Path) {
    assert_eq!(relative_files(a), relative_files(b));
    for f in relative_files(a) {
        assert!(
            fs::read(a.join(&f)).unwrap() == fs::read(b.join(&f)).unwrap(),
            "{f} differs"
        );
    }
    assert_eq!(link_groups(a), link_groups(b), "hard links differ");
}

/// Groups of relative paths that share an inode (groups of two or more).
fn link_groups(dir: &Path) -> Vec<Vec<PathBuf>> {
    let mut by_inode: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for (path, inode) in inodes_under(dir) {
        let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        by_inode.entry(inode).or_default().push(rel);
    }
    let mut groups: Vec<Vec<PathBuf>> = by_inode
        .into_values()
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort();
            g
        })
        .collect();
    groups.sort();
    groups
}

#[test]
fn layout_stream_pipelines_do_what_backup_and_restore_do() {
    let (src, fx) = seeded();
    let work = TempDir::new().unwrap();
    let archive = work.path().join("piped.tgz");
    let refs = fx.refs(&src).join(" ");
    pipeline(&format!(
        "\"$FETCH\" --plain-http -o - {refs} | \"$PACK\" -o '{}' -",
        archive.display()
    ));
    let direct = work.path().join("direct.tgz");
    backup_to(&direct, &fx.refs(&src));
    assert!(
        fs::read(&archive).unwrap() == fs::read(&direct).unwrap(),
        "oci-fetch | oci-pack differs from oci-backup -o FILE"
    );

    let dst = Registry::start();
    pipeline(&format!(
        "\"$UNPACK\" -C - '{}' | \"$PUSH\" --plain-http -i - {}/piped",
        archive.display(),
        dst.addr()
    ));
    assert_restored(&src, &fx, &dst, "piped/");

    // And the ssh shape: backup to stdout straight into restore from stdin.
    let dst2 = Registry::start();
    pipeline(&format!(
        "\"$BACKUP\" --plain-http -o - {refs} | \"$RESTORE\" --plain-http -i - {}/mirror",
        dst2.addr()
    ));
    assert_restored(&src, &fx, &dst2, "mirror/");
}

#[test]
fn ref_list_skips_blanks_comments_and_a_bom_trims_spaces_and_crlf_and_fetches_duplicates_once() {
    let src = registry_with_access_log();
    let (app, _) = push_simple_image(&src, "library/app", &["1"], "list-a");
    let (tool_digest, _) = push_simple_image(&src, "team/tool", &["2.0"], "list-b");
    let app_ref = src.reference("library/app", "1");
    let tool_ref = src.reference("team/tool", "2.0");
    let work = TempDir::new().unwrap();
    let list = work.path().join("refs.txt");
    fs::write(
        &list,
        format!(
            "\u{feff}# images for the mirror\r\n\r\n   {app_ref}   \r\n\t{tool_ref} # the tool\r\n   # indented comment\r\n{app_ref}\t# again\r\n\r\n"
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let before = src.requests().len();
    run_ok(
        "oci-backup",
        &[
            "--plain-http",
            "--input",
            path_str(&list),
            "--output",
            path_str(&out),
        ],
        &[],
    );
    let app_entries = layout_entries(&out.join("library/app"));
    assert_eq!(app_entries.len(), 1);
    assert_eq!(app_entries[0].digest, app);
    assert_eq!(
        layout_entries(&out.join("team/tool"))[0].digest,
        tool_digest
    );
    let manifest_requests = src.requests()[before..]
        .iter()
        .filter(|(_, uri, _)| uri == "/v2/library/app/manifests/1")
        .count();
    assert_eq!(manifest_requests, 1, "the duplicate ref was fetched again");
}

#[test]
fn ref_list_is_read_from_stdin_with_input_dash() {
    let src = Registry::start();
    let (digest, _) = push_simple_image(&src, "library/app", &["1"], "stdin-list");
    let work = TempDir::new().unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let list = format!("{}\n", src.reference("library/app", "1"));
    let args = ["--plain-http", "--input", "-", "--output", path_str(&out)];
    let res = run_with_stdin_bytes("oci-backup", &args, &[], list.as_bytes());
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        describe("oci-backup", &args, &res)
    );
    assert_eq!(layout_entries(&out.join("library/app"))[0].digest, digest);
}

#[test]
fn bad_line_in_a_ref_list_is_reported_with_its_line_number() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1"], "bad-line");
    let work = TempDir::new().unwrap();
    let list = work.path().join("refs.txt");
    fs::write(
        &list,
        format!(
            "# ok\n{}\n\nNot A Valid//Ref::\n",
            src.reference("library/app", "1")
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let args = [
        "--plain-http",
        "--input",
        path_str(&list),
        "--output",
        path_str(&out),
    ];
    let res = run("oci-backup", &args, &[]);
    let ctx = describe("oci-backup", &args, &res);
    assert_eq!(res.status.code(), Some(2), "{ctx}");
    let first = stderr_lines(&res).into_iter().next().unwrap_or_default();
    assert!(first.contains(&format!("{}:4", list.display())), "{ctx}");
    assert!(first.contains("Not A Valid//Ref::"), "{ctx}");
    assert!(
        relative_files(&out).is_empty(),
        "a bad list must stop the run: {ctx}"
    );

    // A list with nothing in it is an error too, not a silent no-op.
    fs::write(&list, "# nothing\n\n").unwrap();
    let res = run("oci-backup", &args, &[]);
    assert_eq!(
        res.status.code(),
        Some(2),
        "{}",
        describe("oci-backup", &args, &res)
    );
}

#[test]
fn shared_layer_is_a_hard_link_in_the_directory_and_the_tar_and_restore_mounts_it() {
    let (src, fx) = seeded();
    let base = &fx.shared_base_layer;
    let work = TempDir::new().unwrap();
    let dir = work.path().join("dir");
    fs::create_dir(&dir).unwrap();
    backup_to(&dir, &fx.refs(&src));
    let inodes = inodes_under(&dir);
    let a = layout_blob_path(&dir.join("library/app"), base);
    let b = layout_blob_path(&dir.join("shared/other"), base);
    assert_eq!(inodes[&a], inodes[&b], "the shared layer is stored twice");

    let archive = work.path().join("m.tgz");
    backup_to(&archive, &fx.refs(&src));
    let listing = tool("/usr/bin/tar", &["tvzf", path_str(&archive)]);
    let hex = hex_of(base);
    let links: Vec<String> = String::from_utf8_lossy(&listing)
        .lines()
        .filter(|l| l.contains(hex) && l.contains(" link to "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        links.len(),
        1,
        "expected one hard-link entry for {base}:\n{links:?}"
    );
    let stored = String::from_utf8_lossy(&listing)
        .lines()
        .filter(|l| l.contains(hex) && !l.contains(" link to "))
        .count();
    assert_eq!(
        stored, 1,
        "the shared layer's bytes must be in the tar once"
    );

    // Restore from the directory, the file and stdin: one upload, then a mount.
    for (how, input) in [("dir", &dir), ("file", &archive), ("stdin", &archive)] {
        let dst = registry_with_access_log();
        let target = format!("{}/{how}", dst.addr());
        if how == "stdin" {
            restore_from_stdin(input, &target);
        } else {
            restore_from(input, &target);
        }
        assert_restored(&src, &fx, &dst, &format!("{how}/"));
        let (uploads, mounts) = uploads_and_mounts(&dst, base);
        assert_eq!(uploads.len(), 1, "{how}: uploads of {base}: {uploads:?}");
        assert_eq!(mounts.len(), 1, "{how}: mounts of {base}: {mounts:?}");
    }
}

/// A tiny xorshift generator: incompressible bytes without reading /dev/urandom for a GiB.
struct Noise(u64);

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
        Ok(buf.len())
    }
}

/// Writes `len` noise bytes to `path`; returns the sha256 digest.
fn write_noise(path: &Path, len: u64) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut file = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15).take(len);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = noise.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut file, &buf[..n]).unwrap();
    }
    std::io::Write::flush(&mut file).unwrap();
    format!("sha256:{:x}", hasher.finalize())
}

#[test]
fn restore_from_stdin_of_a_1_gib_blob_keeps_peak_rss_under_64_mib() {
    const GIB: u64 = 1 << 30;
    require_tool("/usr/bin/time", "time");
    let work = TempDir::new().unwrap();
    let layout = work.path().join("dir/big/blob");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let tmp = layout.join("layer.tmp");
    let layer = write_noise(&tmp, GIB);
    fs::rename(&tmp, blobs.join(hex_of(&layer))).unwrap();
    let config = b"{}".to_vec();
    let config_digest = sha256_digest(&config);
    fs::write(blobs.join(hex_of(&config_digest)), &config).unwrap();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST}\",\"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"{config_digest}\",\"size\":2}},\"layers\":[{{\"mediaType\":\"application/octet-stream\",\"digest\":\"{layer}\",\"size\":{GIB}}}]}}"
    );
    let manifest_digest = sha256_digest(manifest.as_bytes());
    fs::write(blobs.join(hex_of(&manifest_digest)), &manifest).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(
        layout.join("index.json"),
        format!(
            "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{manifest_digest}\",\"size\":{},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"1\"}}}}]}}",
            manifest.len()
        ),
    )
    .unwrap();
    let archive = work.path().join("big.tgz");
    run_ok(
        "oci-pack",
        &[path_str(&work.path().join("dir")), "-o", path_str(&archive)],
        &[],
    );
    fs::remove_dir_all(work.path().join("dir")).unwrap();

    let dst = Registry::start();
    let stdin = fs::File::open(&archive).unwrap();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kib=%M"])
        .arg(bin("oci-restore"))
        .args(["--plain-http", "--input", "-", &dst.addr()])
        .stdin(stdin)
        .env("DOCKER_CONFIG", work.path())
        .output()
        .expect("run /usr/bin/time oci-restore");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "restore failed:\n{stderr}");
    let rss_kib: u64 = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("maxrss_kib="))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in:\n{stderr}"));
    eprintln!(
        "peak RSS restoring a 1 GiB blob from stdin: {} KiB",
        rss_kib
    );
    assert!(
        rss_kib < 64 * 1024,
        "peak RSS {rss_kib} KiB is not under 64 MiB"
    );

    let (digest, _, _) = get_manifest(&dst, "big/blob", "1").expect("tag 1 restored");
    assert_eq!(digest, manifest_digest);
    let head = http(
        &dst,
        "HEAD",
        &dst.url(&format!("/v2/big/blob/blobs/{layer}")),
        &[],
        None,
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(GIB.to_string().as_str())
    );
}

#[test]
fn stream_restore_copies_a_linked_blob_within_the_registry_when_a_mount_is_refused() {
    let (src, fx) = seeded();
    let work = TempDir::new().unwrap();
    let archive = work.path().join("m.tgz");
    backup_to(&archive, &fx.refs(&src));
    let dst = Registry::start();
    let proxy = FaultProxy::start(
        &dst,
        serde_json::json!([{"method": "POST", "path": "[?&]mount=", "action": "refuse-mount", "times": 1000}]),
    );
    restore_from_stdin(&archive, &format!("{}/refused", proxy.addr()));
    assert!(
        !proxy.lines("fault").is_empty(),
        "the restore never asked for a mount"
    );
    assert_restored(&src, &fx, &dst, "refused/");
}

/// A stream backup in which a reference failed cannot be taken back from the pipe, so it
/// ends with a mark that makes every reader refuse it: `oci-backup -o - A BAD | oci-restore
/// -i -` fails as a whole (as a file would not be written), pushing no tag.
#[test]
fn a_stream_with_a_failed_reference_is_refused_by_every_reader() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1"], "partial");
    let good = src.reference("library/app", "1");
    let bad = src.reference("library/app", "no-such-tag");
    let work = TempDir::new().unwrap();
    for (writer, reader) in [("oci-backup", "oci-restore"), ("oci-fetch", "oci-push")] {
        let args = ["-q", "--plain-http", "-o", "-", good.as_str(), bad.as_str()];
        let out = run(writer, &args, &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            describe(writer, &args, &out)
        );
        let stream = work.path().join(format!("{writer}.out"));
        fs::write(&stream, &out.stdout).unwrap();

        let dst = Registry::start();
        let target = format!("{}/ns", dst.addr());
        let args = ["--plain-http", "-i", "-", target.as_str()];
        let res = run_with_stdin_file(reader, &args, &[], &stream);
        assert_single_error_line(reader, &args, &res, &["stdin"], &["incomplete archive"]);
        assert_eq!(
            tags(&dst, "ns/library/app"),
            Vec::<String>::new(),
            "{writer}: a tag was pushed"
        );

        let into = work.path().join(format!("{writer}-unpacked"));
        let args = ["-C", path_str(&into), "-"];
        let res = run_with_stdin_file("oci-unpack", &args, &[], &stream);
        assert_single_error_line(
            "oci-unpack",
            &args,
            &res,
            &["stdin"],
            &["incomplete archive"],
        );
        assert!(
            !into.exists(),
            "{writer}: oci-unpack left {}",
            into.display()
        );
    }
}

/// A registry with `demo/hello:1` and `demo/multi:1`, and their backup `m.tgz` in a
/// work directory.
fn backup_of_demo_hello_and_multi() -> (Registry, TempDir, PathBuf) {
    let src = Registry::start();
    push_simple_image(&src, "demo/hello", &["1"], "hello");
    push_simple_image(&src, "demo/multi", &["1"], "multi");
    let work = TempDir::new().unwrap();
    let archive = work.path().join("m.tgz");
    backup_to(
        &archive,
        &[
            src.reference("demo/hello", "1"),
            src.reference("demo/multi", "1"),
        ],
    );
    (src, work, archive)
}

/// What the target holds is checked for every layout before any is moved into place: a
/// file where a layout's directory must go fails the unpack, and no other layout of the
/// archive has been moved in.
#[test]
fn unpack_refused_by_the_target_moves_no_layout_into_place() {
    let (_src, work, archive) = backup_of_demo_hello_and_multi();
    let target = work.path().join("t");
    fs::create_dir_all(target.join("demo")).unwrap();
    fs::write(target.join("demo/multi"), "in the way\n").unwrap();
    let args = ["-C", path_str(&target), path_str(&archive)];
    let res = run("oci-unpack", &args, &[]);
    assert_single_error_line(
        "oci-unpack",
        &args,
        &res,
        &["demo/multi"],
        &["not a directory"],
    );
    assert_eq!(relative_files(&target), vec!["demo/multi"]);
}

/// The target's own content is not trusted: a damaged blob already there is replaced by
/// the archive's verified copy; an index.json that cannot be read, or a target that is a
/// layout itself, fails the unpack before anything is moved in.
#[test]
fn unpack_replaces_damaged_blobs_and_refuses_unreadable_or_layout_targets_untouched() {
    let (src, work, archive) = backup_of_demo_hello_and_multi();
    let layer = layer_digest(&src, "demo/hello", "1", 0);

    let damaged = work.path().join("damaged");
    let blob = layout_blob_path(&damaged.join("demo/hello"), &layer);
    fs::create_dir_all(blob.parent().unwrap()).unwrap();
    fs::write(&blob, "x\n").unwrap();
    run_ok(
        "oci-unpack",
        &["-C", path_str(&damaged), path_str(&archive)],
        &[],
    );
    assert_blob_files_verify(&damaged.join("demo/hello"));

    let unreadable = work.path().join("unreadable");
    fs::create_dir_all(unreadable.join("demo/multi")).unwrap();
    fs::write(unreadable.join("demo/multi/index.json"), "{}").unwrap();
    let layout_itself = work.path().join("layout");
    write_bare_layout(&layout_itself, r#"{"schemaVersion":2,"manifests":[]}"#);
    for (target, reason) in [
        (&unreadable, "index.json"),
        (&layout_itself, "is an OCI layout itself"),
    ] {
        let before = relative_files(target);
        let args = ["-C", path_str(target), path_str(&archive)];
        let res = run("oci-unpack", &args, &[]);
        assert_single_error_line("oci-unpack", &args, &res, &[], &[reason]);
        assert_eq!(relative_files(target), before, "{}", target.display());
    }
}
