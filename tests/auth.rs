//! Password-protected registries (HTTP basic), credentials from the Docker config file.

mod common;

use std::fs;

use common::*;
use tempfile::TempDir;

const AUTH_FAILED: &[&str] = &[
    "unauthorized",
    "authentication",
    "401",
    "denied",
    "credentials",
    "login",
];

#[test]
fn basic_auth_credentials_from_docker_config_back_up_and_restore() {
    let src = Registry::start_with_basic_auth("alice", "s3cret-a");
    let fx = seed_fixtures(&src);
    let dst = Registry::start_with_basic_auth("bob", "s3cret-b");
    let cfg = docker_config_for(&[(&src, "alice", "s3cret-a"), (&dst, "bob", "s3cret-b")]);
    let env = [("DOCKER_CONFIG", path_str(cfg.path()))];

    let out = TempDir::new().unwrap();
    let refs = fx.refs(&src);
    let mut args = vec!["--plain-http", "--output", path_str(out.path())];
    args.extend(refs.iter().map(String::as_str));
    run_ok("oci-backup", &args, &env);
    for e in &fx.entries {
        assert_layout_matches(&out.path().join(&e.repo), &src, e);
    }

    let target = format!("{}/restored", dst.addr());
    run_ok(
        "oci-restore",
        &["--plain-http", "--input", path_str(out.path()), &target],
        &env,
    );
    assert_restored(&src, &fx, &dst, "restored/");
}

#[test]
fn home_docker_config_json_is_used_when_docker_config_is_unset() {
    let src = Registry::start_with_basic_auth("carol", "pw-c");
    let (digest, _) = push_simple_image(&src, "private/app", &["1"], "home");
    let cfg = docker_config_for(&[(&src, "carol", "pw-c")]);
    let home = TempDir::new().unwrap();
    std::fs::create_dir_all(home.path().join(".docker")).unwrap();
    std::fs::copy(
        cfg.path().join("config.json"),
        home.path().join(".docker/config.json"),
    )
    .unwrap();

    let out = TempDir::new().unwrap();
    let reference = src.reference("private/app", "1");
    let args = ["--plain-http", "--output", path_str(out.path()), &reference];
    let res = run_unsetting(
        "oci-backup",
        &args,
        &[("HOME", path_str(home.path()))],
        &["DOCKER_CONFIG"],
    );
    assert_eq!(
        res.status.code(),
        Some(0),
        "{}",
        describe("oci-backup", &args, &res)
    );
    let entries = layout_entries(&out.path().join("private/app"));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].digest, digest);
}

#[test]
fn backup_from_protected_registry_without_credentials_fails_with_one_line() {
    let src = Registry::start_with_basic_auth("alice", "s3cret");
    push_simple_image(&src, "private/app", &["1"], "p");
    let out = TempDir::new().unwrap();
    let reference = src.reference("private/app", "1");
    let args = ["--plain-http", "--output", path_str(out.path()), &reference];
    // `run` points DOCKER_CONFIG at an empty directory: no credentials at all.
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line("oci-backup", &args, &res, &[&reference], AUTH_FAILED);
}

/// Docker Desktop and `docker login` with a helper keep passwords in a credential helper,
/// not in config.json: the error says that the helper is named and not run.
#[test]
fn a_config_that_names_a_credential_helper_says_so_in_the_error() {
    let src = Registry::start_with_basic_auth("alice", "s3cret");
    push_simple_image(&src, "private/app", &["1"], "p");
    let cfg = TempDir::new().unwrap();
    fs::write(
        cfg.path().join("config.json"),
        br#"{"auths":{},"credsStore":"desktop"}"#,
    )
    .unwrap();
    let out = TempDir::new().unwrap();
    let reference = src.reference("private/app", "1");
    let args = ["--plain-http", "--output", path_str(out.path()), &reference];
    let res = run(
        "oci-backup",
        &args,
        &[("DOCKER_CONFIG", path_str(cfg.path()))],
    );
    assert_single_error_line(
        "oci-backup",
        &args,
        &res,
        &[&reference, "\"desktop\""],
        &["credential helper"],
    );
}

#[test]
fn backup_with_a_wrong_password_fails_with_one_line() {
    let src = Registry::start_with_basic_auth("alice", "s3cret");
    push_simple_image(&src, "private/app", &["1"], "p");
    let cfg = docker_config_for(&[(&src, "alice", "wrong")]);
    let out = TempDir::new().unwrap();
    let reference = src.reference("private/app", "1");
    let args = ["--plain-http", "--output", path_str(out.path()), &reference];
    let res = run(
        "oci-backup",
        &args,
        &[("DOCKER_CONFIG", path_str(cfg.path()))],
    );
    assert_single_error_line("oci-backup", &args, &res, &[&reference], AUTH_FAILED);
}

#[test]
fn restore_to_protected_registry_without_credentials_fails_with_one_line() {
    let src = Registry::start();
    push_simple_image(&src, "library/app", &["1.0"], "x");
    let out = TempDir::new().unwrap();
    run_ok(
        "oci-backup",
        &[
            "--plain-http",
            "--output",
            path_str(out.path()),
            &src.reference("library/app", "1.0"),
        ],
        &[],
    );
    let dst = Registry::start_with_basic_auth("bob", "pw");
    let args = ["--plain-http", "--input", path_str(out.path()), &dst.addr()];
    let res = run("oci-restore", &args, &[]);
    assert_single_error_line("oci-restore", &args, &res, &[&dst.addr()], AUTH_FAILED);
    assert!(catalog(&dst).is_empty());
}
