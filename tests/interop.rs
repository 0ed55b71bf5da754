//! Layouts written by an independent tool (skopeo) restore correctly.

mod common;

use std::path::Path;

use common::*;
use tempfile::TempDir;

/// `skopeo copy --all docker://SRC/repo:tag oci:LAYOUT:tag`
fn skopeo_copy_to_layout(src: &Registry, repo: &str, tag: &str, layout: &Path) {
    std::fs::create_dir_all(layout).unwrap();
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}", src.reference(repo, tag)),
        &format!("oci:{}:{tag}", layout.display()),
    ]);
}

#[test]
fn restore_of_a_single_skopeo_layout_pushes_to_the_target_repository() {
    let src = Registry::start();
    let _fx = seed_fixtures(&src);
    let dir = TempDir::new().unwrap();
    let layout = dir.path().join("skopeo-layout");
    skopeo_copy_to_layout(&src, "library/app", "1.0", &layout);
    skopeo_copy_to_layout(&src, "multi", "latest", &layout);
    assert_eq!(layout_entries(&layout).len(), 2);

    let dst = Registry::start();
    let target = format!("{}/imported/app", dst.addr());
    run_ok(
        "oci-restore",
        &["--plain-http", "--input", path_str(&layout), &target],
        &[],
    );
    assert_eq!(catalog(&dst), vec!["imported/app"]);
    assert_layout_restored(&layout, &dst, "imported/app");
    // skopeo keeps an OCI image manifest byte-exact: the source digest is restored.
    assert_eq!(
        get_manifest(&dst, "imported/app", "1.0").unwrap().0,
        get_manifest(&src, "library/app", "1.0").unwrap().0
    );
}

#[test]
fn restore_of_a_tree_of_skopeo_layouts_maps_relative_paths_to_repositories() {
    let src = Registry::start();
    let _fx = seed_fixtures(&src);
    let dir = TempDir::new().unwrap();
    skopeo_copy_to_layout(&src, "library/app", "1.0", &dir.path().join("one"));
    skopeo_copy_to_layout(&src, "team/app/api", "1.0.0", &dir.path().join("a/b/two"));
    skopeo_copy_to_layout(&src, "team/app/api", "latest", &dir.path().join("a/b/two"));
    skopeo_copy_to_layout(&src, "artifacts/sbom", "v1", &dir.path().join("a/sbom"));

    let dst = Registry::start();
    let target = format!("{}/ns", dst.addr());
    run_ok(
        "oci-restore",
        &["--plain-http", "--input", path_str(dir.path()), &target],
        &[],
    );
    assert_eq!(catalog(&dst), vec!["ns/a/b/two", "ns/a/sbom", "ns/one"]);
    assert_layout_restored(&dir.path().join("one"), &dst, "ns/one");
    assert_layout_restored(&dir.path().join("a/b/two"), &dst, "ns/a/b/two");
    assert_layout_restored(&dir.path().join("a/sbom"), &dst, "ns/a/sbom");
}
