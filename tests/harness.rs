//! Self-checks of the test harness against the real registry and an independent client
//! (skopeo). These do not use the crate's binaries.

mod common;

use common::*;

/// Every seeded reference is served byte-for-byte as pushed, as seen by skopeo, and the
/// whole graph (children, configs, layers) is present.
#[test]
fn harness_seeds_fixtures_readable_by_skopeo() {
    let reg = Registry::start();
    let fx = seed_fixtures(&reg);

    // The fixture set has what the issue asks for.
    let repos = fx.repos();
    for r in [
        "library/app",
        "multi",
        "dockerimg",
        "dockerlist",
        "team/app/api",
        "shared/other",
        "artifacts/sbom",
        "untagged/img",
    ] {
        assert!(repos.contains(&r.to_string()), "fixture repo {r} missing");
    }
    assert_eq!(fx.tags_of("team/app/api"), vec!["1.0", "1.0.0", "latest"]);
    assert_eq!(fx.children.len(), 4);

    for e in fx.entries.iter().chain(fx.children.iter()) {
        let (digest, body, ct) = get_manifest(&reg, &e.repo, e.reference())
            .unwrap_or_else(|| panic!("{}:{} not served", e.repo, e.reference()));
        assert_eq!(digest, e.digest);
        assert_eq!(sha256_digest(&body), e.digest);
        assert_eq!(ct, e.media_type);
        // Deliberately non-canonical JSON: 3-space indent and a trailing newline.
        assert!(body.ends_with(b"}\n"), "{}: no trailing newline", e.repo);
        assert!(
            String::from_utf8_lossy(&body).contains("\n   \"schemaVersion\" : 2"),
            "{}: not the odd formatting",
            e.repo
        );

        let image = format!("docker://{}", reg.reference(&e.repo, e.reference()));
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &image]);
        assert!(
            raw == body,
            "skopeo sees other bytes for {image}:\n{}",
            String::from_utf8_lossy(&raw)
        );

        let g = registry_graph(&reg, &e.repo, e.reference());
        assert!(!g.blobs.is_empty());
    }

    // Index children and list children by platform.
    let multi = registry_graph(&reg, "multi", "latest");
    assert_eq!(multi.manifests.len(), 3);
    let list = registry_graph(&reg, "dockerlist", "v1");
    assert_eq!(list.manifests.len(), 3);

    // Tags as seeded; the digest-only image has none.
    for repo in fx.repos() {
        assert_eq!(tags(&reg, &repo), fx.tags_of(&repo), "tags of {repo}");
    }
    assert!(tags(&reg, &fx.untagged().repo).is_empty());

    // The shared base layer is in both repositories.
    assert!(blob_exists(&reg, "library/app", &fx.shared_base_layer));
    assert!(blob_exists(&reg, "shared/other", &fx.shared_base_layer));

    // Artifact: artifactType and the empty config survive.
    let sbom = fx.get("artifacts/sbom", "v1");
    let (_, body, _) = get_manifest(&reg, "artifacts/sbom", "v1").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["artifactType"], SBOM_ARTIFACT_TYPE);
    assert_eq!(v["config"]["mediaType"], OCI_EMPTY);
    assert_eq!(
        get_blob(
            &reg,
            "artifacts/sbom",
            v["config"]["digest"].as_str().unwrap()
        )
        .unwrap(),
        b"{}"
    );
    assert_eq!(sbom.media_type, OCI_MANIFEST);

    // The gzip layers are real tarballs with files in them.
    let app = registry_graph(&reg, "library/app", "1.0");
    let layer = &app.blobs[&fx.shared_base_layer];
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["etc/os-release", "bin/busybox"]);
}

/// The basic-auth registry refuses anonymous requests and accepts the harness credentials.
#[test]
fn harness_basic_auth_registry_requires_credentials() {
    let reg = Registry::start_with_basic_auth("alice", "s3cret");
    let (digest, body) = push_simple_image(&reg, "private/app", &["1"], "private");
    let (d, b, _) = get_manifest(&reg, "private/app", "1").unwrap();
    assert_eq!((d, b), (digest, body.clone()));

    let anonymous = ureq::get(&reg.url("/v2/private/app/manifests/1"))
        .set("Accept", MANIFEST_ACCEPT)
        .call();
    match anonymous {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!(
            "anonymous request not refused: {:?}",
            other.map(|r| r.status())
        ),
    }

    let image = format!("docker://{}", reg.reference("private/app", "1"));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &image,
    ]);
    assert_eq!(raw, body);
}
