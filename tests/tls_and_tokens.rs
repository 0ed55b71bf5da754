//! Bearer-token registries (a real `auth.token` registry with a token server) and HTTPS
//! registries (certificate checks, no silent fallback to plain HTTP on a bad certificate).

mod common;

use common::*;
use tempfile::TempDir;

#[test]
fn bearer_token_registries_back_up_and_restore_with_docker_config_credentials() {
    let tokens = TokenServer::start("alice", "tok-pw");
    let src = Registry::start_with_token_auth(&tokens);
    let fx = seed_fixtures(&src);
    let dst = Registry::start_with_token_auth(&tokens);
    let cfg = docker_config_for(&[(&src, "alice", "tok-pw"), (&dst, "alice", "tok-pw")]);
    let env = [("DOCKER_CONFIG", path_str(cfg.path()))];
    let before = tokens.requests().len();

    let out = TempDir::new().unwrap();
    let mut args = vec!["--plain-http", "--output", path_str(out.path())];
    let refs = fx.refs(&src);
    args.extend(refs.iter().map(String::as_str));
    run_ok("oci-backup", &args, &env);
    let target = format!("{}/mirror", dst.addr());
    run_ok(
        "oci-restore",
        &["--plain-http", "--input", path_str(out.path()), &target],
        &env,
    );
    // Only the tools' own token requests: the harness asks for tokens too when it checks.
    let ours: Vec<String> = tokens.requests()[before..].to_vec();
    assert_restored(&src, &fx, &dst, "mirror/");

    assert!(!ours.is_empty(), "the tools never asked the token server");
    assert!(
        ours.iter().all(|l| l.ends_with("auth=yes")),
        "every token request must carry the configured credentials: {ours:?}"
    );
    assert!(
        ours.iter().any(|l| l.contains("push")),
        "restore must ask for push scope: {ours:?}"
    );
    // Tokens are cached per scope, not fetched per request: a handful per repository.
    let repos = fx.repos().len();
    assert!(
        ours.len() <= 3 * repos,
        "{} token requests for {repos} repositories: {ours:?}",
        ours.len()
    );
}

#[test]
fn bearer_token_registry_without_credentials_fails_with_one_line() {
    let tokens = TokenServer::start("alice", "tok-pw");
    let src = Registry::start_with_token_auth(&tokens);
    push_simple_image(&src, "private/app", &["1"], "t");
    let out = TempDir::new().unwrap();
    let reference = src.reference("private/app", "1");
    let args = ["--plain-http", "--output", path_str(out.path()), &reference];
    let res = run("oci-backup", &args, &[]);
    assert_single_error_line(
        "oci-backup",
        &args,
        &res,
        &[&reference],
        &["authentication", "credentials", "denied", "unauthorized"],
    );
    assert!(!out.path().join("private/app/index.json").exists());
}

#[test]
fn bearer_token_registry_with_a_wrong_password_fails_with_one_line() {
    let tokens = TokenServer::start("alice", "tok-pw");
    let src = Registry::start_with_token_auth(&tokens);
    push_simple_image(&src, "private/app", &["1"], "t");
    let cfg = docker_config_for(&[(&src, "alice", "nope")]);
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
        &[&reference],
        &["refused", "authentication", "credentials", "unauthorized"],
    );
}

#[test]
fn https_registries_with_a_trusted_ca_back_up_and_restore() {
    let certs = TestCerts::new();
    let src = Registry::start_with_tls(&certs.server_tls());
    let fx = seed_fixtures(&src);
    let dst = Registry::start_with_tls(&certs.server_tls());
    let ca = certs.ca();
    let env = [("SSL_CERT_FILE", path_str(&ca))];

    let out = TempDir::new().unwrap();
    let mut args = vec!["--output", path_str(out.path())];
    let refs = fx.refs(&src);
    args.extend(refs.iter().map(String::as_str));
    run_ok("oci-backup", &args, &env);
    run_ok(
        "oci-restore",
        &["--input", path_str(out.path()), &dst.addr()],
        &env,
    );
    assert_restored(&src, &fx, &dst, "");
}

#[test]
fn https_registry_with_an_untrusted_certificate_is_refused_not_downgraded() {
    let certs = TestCerts::new();
    let src = Registry::start_with_tls(&certs.server_tls());
    push_simple_image(&src, "library/app", &["1"], "tls");
    // A CA that did not sign the server's certificate.
    let other = TestCerts::new();
    let other_ca = other.ca();
    let out = TempDir::new().unwrap();
    let reference = src.reference("library/app", "1");
    let args = ["--output", path_str(out.path()), &reference];
    let res = run(
        "oci-backup",
        &args,
        &[("SSL_CERT_FILE", path_str(&other_ca))],
    );
    assert_single_error_line(
        "oci-backup",
        &args,
        &res,
        &[&reference],
        &["certificate", "tls", "TLS"],
    );
    assert!(!out.path().join("library/app/index.json").exists());
}
