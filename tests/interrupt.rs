//! Runs that are stopped part-way: SIGINT, SIGTERM and SIGHUP remove the temp files and
//! staging directories of the run (and the target directories it created), leave the
//! good data that was there, and end the process by that signal; what a killed run
//! (SIGKILL) left is removed by the next run.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tempfile::TempDir;

/// Starts `name args` with a pipe on stdin, writes `head` into it and keeps it open, so the
/// tool is mid-way through its input.
fn start_fed(name: &str, args: &[&str], head: &[u8]) -> Child {
    let empty_config = TempDir::new().expect("test setup: temp dir");
    let mut child = Command::new(bin(name))
        .args(args)
        .env("DOCKER_CONFIG", empty_config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let stdin = child.stdin.as_mut().expect("stdin");
    stdin.write_all(head).expect("test setup: feed stdin");
    stdin.flush().expect("test setup: flush stdin");
    child
}

/// Waits (10 s at most) until an entry of `dir` whose name starts with `prefix` exists.
fn wait_for_entry(dir: &Path, prefix: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) {
                    return e.path();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix}* appeared in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (a `kill` name: INT, TERM, HUP) and waits (10 s at most) for the end.
fn stop(mut child: Child, signal: &str) -> std::process::ExitStatus {
    // Let the tool reach its blocking read of the rest of the input.
    std::thread::sleep(Duration::from_millis(200));
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{signal} failed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the tool did not stop on SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "TERM" => 15,
        other => panic!("unknown signal {other}"),
    }
}

/// Every path under `dir` (relative), for before/after comparisons.
fn tree(dir: &Path) -> BTreeMap<PathBuf, u64> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let len = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p.strip_prefix(dir).unwrap_or(&p).to_path_buf(), len)
        })
        .collect()
}

fn simple_image_stream(tool: &str, extra: &[&str]) -> Vec<u8> {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1"], "interrupt");
    let r = src.reference("library/app", "1");
    let mut args = vec!["--plain-http"];
    args.extend_from_slice(extra);
    args.push(&r);
    run_ok(tool, &args, &[]).stdout
}

#[test]
fn interrupted_pack_leaves_no_temp_file_and_keeps_the_previous_archive() {
    let stream = simple_image_stream("oci-fetch", &["-o", "-"]);
    for signal in ["INT", "TERM", "HUP"] {
        let dir = TempDir::new().expect("test setup: temp dir");
        let out = dir.path().join("mirror.tgz");
        fs::write(&out, b"the previous, good archive").expect("test setup: old archive");
        let child = start_fed(
            "oci-pack",
            &["-q", "-o", path_str(&out), "-"],
            &stream[..stream.len() / 2],
        );
        wait_for_entry(dir.path(), ".mirror.tgz.tmp-");
        let status = stop(child, signal);
        assert_eq!(
            status.signal(),
            Some(signal_number(signal)),
            "SIG{signal}: {status:?}"
        );
        assert_eq!(
            fs::read(&out).expect("read mirror.tgz"),
            b"the previous, good archive",
            "SIG{signal}: the previous archive changed"
        );
        assert_eq!(
            tree(dir.path()).keys().cloned().collect::<Vec<_>>(),
            vec![PathBuf::from("mirror.tgz")],
            "SIG{signal}: something was left beside the archive"
        );
    }
}

#[test]
fn interrupted_unpack_removes_its_staging_and_the_target_directories_it_created() {
    let archive = simple_image_stream("oci-backup", &["-o", "-"]);
    for signal in ["INT", "TERM"] {
        let dir = TempDir::new().expect("test setup: temp dir");
        let target = dir.path().join("new/target");
        let child = start_fed(
            "oci-unpack",
            &["-C", path_str(&target), "-"],
            &archive[..archive.len() / 2],
        );
        wait_for_entry(&target, ".oci-unpack-");
        let status = stop(child, signal);
        assert_eq!(status.signal(), Some(signal_number(signal)), "{status:?}");
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("read temp dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            left.is_empty(),
            "SIG{signal}: the interrupted unpack left {left:?}"
        );
    }
}

#[test]
fn interrupted_unpack_into_an_existing_backup_leaves_it_as_it_was() {
    let archive = simple_image_stream("oci-backup", &["-o", "-"]);
    let dir = TempDir::new().expect("test setup: temp dir");
    run_ok_with_stdin_file_bytes("oci-unpack", &["-C", path_str(dir.path()), "-"], &archive);
    let before = tree(dir.path());
    let child = start_fed(
        "oci-unpack",
        &["-C", path_str(dir.path()), "-"],
        &archive[..archive.len() / 2],
    );
    wait_for_entry(dir.path(), ".oci-unpack-");
    stop(child, "TERM");
    assert_eq!(tree(dir.path()), before, "the backup changed");
}

fn run_ok_with_stdin_file_bytes(name: &str, args: &[&str], bytes: &[u8]) {
    let out = run_with_stdin_bytes(name, args, &[], bytes);
    assert!(out.status.success(), "{}", describe(name, args, &out));
}

/// The pid of a process that has ended.
fn gone_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait true");
    pid
}

#[test]
fn leftovers_of_killed_runs_are_removed_by_the_next_run_and_those_of_running_ones_kept() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1"], "stale");
    let r = src.reference("library/app", "1");
    let dir = TempDir::new().expect("test setup: temp dir");
    let out = dir.path().join("mirror");
    fs::create_dir(&out).expect("test setup: mirror dir");
    run_ok(
        "oci-backup",
        &["--plain-http", "-o", path_str(&out), &r],
        &[],
    );

    // What SIGKILLed runs would have left, and what a running one (this test) is writing.
    let gone = gone_pid();
    let live = std::process::id();
    let layout = out.join("library/app");
    let ingest = layout.join("ingest");
    fs::create_dir_all(&ingest).expect("test setup: ingest");
    let stale_blob = ingest.join(format!("blob-{gone}-Ab12Cd"));
    let stale_link = ingest.join(format!("link-{gone}-0123abcd"));
    let stale_index = layout.join(format!(".tmp-{gone}-Xy9876"));
    let live_blob = ingest.join(format!("blob-{live}-Ef34Gh"));
    for p in [&stale_blob, &stale_link, &stale_index, &live_blob] {
        fs::write(p, b"partial").expect("test setup: leftover");
    }
    let tgz = dir.path().join("mirror.tgz");
    let stale_tgz = dir.path().join(format!(".mirror.tgz.tmp-{gone}-Qw5678"));
    fs::write(&stale_tgz, b"partial").expect("test setup: leftover");
    let staging = out.join(format!(".oci-unpack-{gone}-Zx4321"));
    fs::create_dir_all(staging.join("library/app/blobs")).expect("test setup: staging");

    run_ok(
        "oci-backup",
        &["--plain-http", "-o", path_str(&out), &r],
        &[],
    );
    run_ok(
        "oci-backup",
        &["--plain-http", "-o", path_str(&tgz), &r],
        &[],
    );
    run_ok_with_stdin_file_bytes(
        "oci-unpack",
        &["-C", path_str(&out), "-"],
        &fs::read(&tgz).expect("read mirror.tgz"),
    );
    for p in [&stale_blob, &stale_link, &stale_index, &stale_tgz, &staging] {
        assert!(!p.exists(), "{} was left", p.display());
    }
    assert!(
        live_blob.exists(),
        "the temp file of a running process was removed"
    );
}
