//! Transient faults between the tools and a registry, injected by `FaultProxy` in front of
//! a real registry (a real registry cannot be made to answer 429, drop a connection or
//! redirect on demand): rate limits and overloads are retried, a download cut in the middle
//! is resumed with a Range request, blob redirects to another host are followed without
//! sending it the registry's credentials, failed uploads are started again, and a fault
//! that does not go away fails its reference alone, after a bounded number of tries.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tempfile::TempDir;

/// An image with one layer of `size` incompressible bytes; returns it as seeded, and the
/// layer's digest.
fn push_big_image(reg: &Registry, repo: &str, tag: &str, size: usize) -> (Seeded, String) {
    let mut layer = Vec::with_capacity(size);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while layer.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        layer.extend_from_slice(&x.to_le_bytes());
    }
    layer.truncate(size);
    let config = image_config_json("linux", "amd64", &[sha256_digest(&layer)], repo);
    let (digest, _) = push_image(
        reg,
        repo,
        &[tag],
        OCI_MANIFEST,
        (OCI_CONFIG, &config),
        &[(OCI_LAYER_TAR, &layer)],
        None,
        &[],
    );
    let seeded = Seeded {
        repo: repo.to_string(),
        tag: Some(tag.to_string()),
        digest,
        media_type: OCI_MANIFEST.to_string(),
    };
    (seeded, sha256_digest(&layer))
}

fn simple(reg: &Registry, repo: &str, tag: &str) -> Seeded {
    let (digest, _) = push_simple_image(reg, repo, &[tag], repo);
    Seeded {
        repo: repo.to_string(),
        tag: Some(tag.to_string()),
        digest,
        media_type: OCI_MANIFEST.to_string(),
    }
}

fn backup(out: &Path, refs: &[String], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = vec!["--plain-http", "--output", path_str(out)];
    args.extend(refs.iter().map(String::as_str));
    run("oci-backup", &args, env)
}

fn assert_ok(name: &str, out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn backup_retries_rate_limits_unavailable_answers_and_cut_manifests_and_stores_every_byte() {
    let src = Registry::start();
    let seeded = simple(&src, "team/app", "1");
    let proxy = FaultProxy::start(
        &src,
        json!([
            {"method": "GET", "path": "/manifests/", "action": "status", "status": 429, "retry_after": 1, "times": 2},
            {"method": "GET", "path": "/manifests/", "action": "cut", "times": 1},
            {"method": "GET", "path": "/blobs/sha256:", "action": "status", "status": 503, "times": 2},
            {"method": "GET", "path": "/blobs/sha256:", "action": "status", "status": 502, "times": 1},
        ]),
    );
    let out = TempDir::new().unwrap();
    let started = Instant::now();
    let res = backup(out.path(), &[format!("{}/team/app:1", proxy.addr())], &[]);
    assert_ok("oci-backup", &res);
    assert_eq!(proxy.lines("fault").len(), 6, "{:?}", proxy.lines("fault"));
    // Retry-After: 1 was waited for, twice.
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_layout_matches(&out.path().join("team/app"), &src, &seeded);
}

#[test]
fn backup_resumes_a_blob_download_cut_in_the_middle_with_a_range_request() {
    let src = Registry::start();
    let (seeded, layer) = push_big_image(&src, "big", "1", 3 << 20);
    let proxy = FaultProxy::start(
        &src,
        json!([{"method": "GET", "path": format!("/blobs/{layer}"), "action": "cut", "times": 3}]),
    );
    let out = TempDir::new().unwrap();
    let res = backup(out.path(), &[format!("{}/big:1", proxy.addr())], &[]);
    assert_ok("oci-backup", &res);
    assert_eq!(proxy.lines("fault").len(), 3, "{:?}", proxy.lines("fault"));
    // Each cut delivered half of what was asked: the resumes start where they stopped.
    let size = 3u64 << 20;
    let expected: Vec<String> = [
        size / 2,
        size / 2 + size / 4,
        size / 2 + size / 4 + size / 8,
    ]
    .iter()
    .map(|from| format!("range bytes={from}- /v2/big/blobs/{layer}"))
    .collect();
    assert_eq!(proxy.lines("range"), expected);
    assert_layout_matches(&out.path().join("big"), &src, &seeded);
    assert_eq!(
        fs::read(layout_blob_path(&out.path().join("big"), &layer)).unwrap(),
        get_blob(&src, "big", &layer).unwrap()
    );
}

#[test]
fn backup_follows_blob_redirects_to_another_host_without_sending_it_the_credentials() {
    let src = Registry::start_with_basic_auth("mirror", "s3cret");
    let seeded = simple(&src, "team/app", "1");
    let proxy = FaultProxy::start(
        &src,
        json!([{"method": "GET", "path": "/blobs/sha256:", "action": "redirect", "times": 100}]),
    );
    // The credentials are for the proxy's address, the host the reference names.
    let config = TempDir::new().unwrap();
    let auth = base64_of("mirror:s3cret");
    fs::write(
        config.path().join("config.json"),
        json!({"auths": {proxy.addr(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let out = TempDir::new().unwrap();
    let res = backup(
        out.path(),
        &[format!("{}/team/app:1", proxy.addr())],
        &[("DOCKER_CONFIG", path_str(config.path()))],
    );
    assert_ok("oci-backup", &res);
    assert_eq!(proxy.lines("fault").len(), 2, "config and layer redirected");
    assert!(
        proxy.lines("refused-authorization").is_empty(),
        "credentials were sent to the redirect target: {:?}",
        proxy.lines("refused-authorization")
    );
    assert_layout_matches(&out.path().join("team/app"), &src, &seeded);
}

#[test]
fn restore_starts_failed_uploads_again_and_retries_manifest_puts() {
    let src = Registry::start();
    let (_, layer) = push_big_image(&src, "big", "1", 1 << 20);
    simple(&src, "team/app", "1");
    let backup_dir = TempDir::new().unwrap();
    let refs = [src.reference("big", "1"), src.reference("team/app", "1")];
    assert_ok("oci-backup", &backup(backup_dir.path(), &refs, &[]));

    let dst = Registry::start();
    let proxy = FaultProxy::start(
        &dst,
        json!([
            {"method": "POST", "path": "/blobs/uploads/", "action": "status", "status": 500, "times": 1},
            // The big layer's upload is cut off twice: its connection closes unanswered.
            {"method": "PUT", "path": format!("digest={}", layer.replace(':', "%3A")), "action": "reset", "times": 2},
            {"method": "PUT", "path": "/blobs/uploads/", "action": "status", "status": 503, "times": 1},
            {"method": "PUT", "path": "/manifests/", "action": "status", "status": 503, "times": 1},
            {"method": "PUT", "path": "/manifests/", "action": "reset", "times": 1},
        ]),
    );
    let args = [
        "--plain-http",
        "--input",
        path_str(backup_dir.path()),
        &proxy.addr(),
    ];
    let res = run("oci-restore", &args, &[]);
    assert_ok("oci-restore", &res);
    let faults = proxy.lines("fault");
    assert_eq!(faults.len(), 6, "{faults:?}");
    assert_layout_restored(&backup_dir.path().join("big"), &dst, "big");
    assert_layout_restored(&backup_dir.path().join("team/app"), &dst, "team/app");
}

#[test]
fn a_fault_that_persists_fails_its_reference_with_one_line_after_bounded_tries() {
    let src = Registry::start();
    let (_, layer) = push_big_image(&src, "big", "1", 64 << 10);
    let good = simple(&src, "team/app", "1");
    let proxy = FaultProxy::start(
        &src,
        json!([{"method": "GET", "path": format!("/blobs/{layer}"), "action": "status", "status": 503, "times": 1000}]),
    );
    let out = TempDir::new().unwrap();
    let bad_ref = format!("{}/big:1", proxy.addr());
    let args_refs = [bad_ref.clone(), format!("{}/team/app:1", proxy.addr())];
    let res = backup(out.path(), &args_refs, &[]);
    let args: Vec<&str> = args_refs.iter().map(String::as_str).collect();
    assert_error_line_for("oci-backup", &args, &res, &bad_ref, &["503", "unavailable"]);
    assert_eq!(res.status.code(), Some(1));
    // Four tries (the first and three retries), no more.
    assert_eq!(proxy.lines("fault").len(), 4, "{:?}", proxy.lines("fault"));
    assert!(layout_blob(&out.path().join("big"), &layer).is_none());
    assert!(files_under(&out.path().join("big/ingest")).is_empty());
    assert_layout_matches(&out.path().join("team/app"), &src, &good);

    // Into an archive, the whole file fails, and the line names the reference too.
    let archive = out.path().join("m.tgz");
    let res = backup(&archive, &args_refs, &[]);
    let args = [path_str(&archive), bad_ref.as_str()];
    assert_single_error_line("oci-backup", &args, &res, &args, &["503", "unavailable"]);
    assert!(
        !archive.exists(),
        "a failed backup wrote {}",
        archive.display()
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
