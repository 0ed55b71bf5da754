//! Hostile and damaged archives against `oci-unpack` and `oci-restore`.
//!
//! Proves the archive promise: restore and unpack accept only what an OCI layout tree holds
//! and refuse everything else (`..` components, absolute names, symbolic links, hard links
//! to anything but an earlier copy of the same blob, devices, FIFOs, malformed digests,
//! unexpected names, blobs whose content does not match their name) with exit status 1 and
//! ONE stderr line naming the input and the reason; a refused archive writes nothing outside
//! the target directory, leaves the target as it was, and pushes nothing (no repository at
//! all when the hostile entry comes first; no manifest or tag when it comes after valid
//! blobs). A truncated archive and input that is not an archive give one clear error line.
//! What is valid is still accepted: a plain (uncompressed) tar, `./` prefixes without
//! directory entries, PAX and GNU long-name headers, and multi-member gzip.
//!
//! Hostile archives are written with raw tar headers (name and link-name bytes set directly,
//! checksum recomputed), because the `tar` crate's own builder refuses such names.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

const REPO: &str = "library/app";

// ---------------------------------------------------------------------------------------------
// Raw tar writing
// ---------------------------------------------------------------------------------------------

/// One tar entry, written as given: no check of its name, link name or type.
#[derive(Clone)]
struct Entry {
    name: Vec<u8>,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Vec<u8>,
    device: Option<(u32, u32)>,
}

fn entry(name: &str, kind: tar::EntryType) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        kind,
        data: Vec::new(),
        link: Vec::new(),
        device: None,
    }
}

fn file(name: &str, data: &[u8]) -> Entry {
    Entry {
        data: data.to_vec(),
        ..entry(name, tar::EntryType::Regular)
    }
}

fn dir_entry(name: &str) -> Entry {
    entry(name, tar::EntryType::Directory)
}

fn symlink(name: &str, target: &str) -> Entry {
    Entry {
        link: target.as_bytes().to_vec(),
        ..entry(name, tar::EntryType::Symlink)
    }
}

fn hard_link(name: &str, target: &str) -> Entry {
    Entry {
        link: target.as_bytes().to_vec(),
        ..entry(name, tar::EntryType::Link)
    }
}

fn device(name: &str, kind: tar::EntryType, major: u32, minor: u32) -> Entry {
    Entry {
        device: Some((major, minor)),
        ..entry(name, kind)
    }
}

/// A PAX extended header (`x`, or `g` for global) carrying `records`.
fn pax(kind: tar::EntryType, records: &[(&str, &str)]) -> Entry {
    let mut data = Vec::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        // The length prefix counts itself.
        let mut len = body.len() + 1;
        while len != body.len() + len.to_string().len() {
            len = body.len() + len.to_string().len();
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    Entry {
        data,
        ..entry("PaxHeaders/entry", kind)
    }
}

/// A GNU long-name header (`L`) for the entry that follows.
fn gnu_long_name(name: &str) -> Entry {
    let mut data = name.as_bytes().to_vec();
    data.push(0);
    Entry {
        data,
        ..entry("././@LongLink", tar::EntryType::GNULongName)
    }
}

fn set_raw(field: &mut [u8], bytes: &[u8]) {
    assert!(
        bytes.len() <= field.len(),
        "test setup: {:?} does not fit a raw header field",
        String::from_utf8_lossy(bytes)
    );
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
}

/// A tar stream of `entries` exactly as given, with the end-of-archive marker.
fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(if e.kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        set_raw(&mut h.as_old_mut().name, &e.name);
        set_raw(&mut h.as_old_mut().linkname, &e.link);
        if let Some((major, minor)) = e.device {
            h.set_device_major(major).expect("test setup: device major");
            h.set_device_minor(minor).expect("test setup: device minor");
        }
        h.set_cksum();
        b.append(&h, &e.data[..]).expect("test setup: tar entry");
    }
    b.into_inner().expect("test setup: tar end")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("test setup: gzip");
    gz.finish().expect("test setup: gzip finish")
}

fn plain(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

// ---------------------------------------------------------------------------------------------
// A valid backup to start from
// ---------------------------------------------------------------------------------------------

/// A backup of `library/app:TAG` made by `oci-backup --output DIR`, and its layout as archive
/// entries in the order the writer uses (oci-layout, index.json, manifest, config, layer).
struct Backup {
    _tmp: TempDir,
    root: PathBuf,
    manifest: String,
    config: String,
    layer: String,
    entries: Vec<Entry>,
}

fn blob_name(prefix: &str, digest: &str) -> String {
    format!("{prefix}blobs/sha256/{}", hex_of(digest))
}

impl Backup {
    fn of(src: &Registry, tag: &str) -> Backup {
        let tmp = TempDir::new().expect("test setup: temp dir");
        let root = tmp.path().to_path_buf();
        let reference = src.reference(REPO, tag);
        run_ok(
            "oci-backup",
            &["--plain-http", "--output", path_str(&root), &reference],
            &[],
        );
        let layout = root.join(REPO);
        let entries = layout_entries(&layout);
        assert_eq!(
            entries.len(),
            1,
            "test setup: one entry in {}",
            layout.display()
        );
        let manifest = entries[0].digest.clone();
        let manifest_bytes = layout_blob(&layout, &manifest).expect("test setup: manifest blob");
        let m: serde_json::Value =
            serde_json::from_slice(&manifest_bytes).expect("test setup: manifest JSON");
        let config = m["config"]["digest"]
            .as_str()
            .expect("test setup: config digest")
            .to_string();
        let layer = m["layers"][0]["digest"]
            .as_str()
            .expect("test setup: layer digest")
            .to_string();
        let mut backup = Backup {
            _tmp: tmp,
            root,
            manifest,
            config,
            layer,
            entries: Vec::new(),
        };
        backup.entries = backup.layout_entries(&format!("{REPO}/"));
        backup
    }

    fn layout(&self) -> PathBuf {
        self.root.join(REPO)
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        let p = self.layout().join(rel);
        fs::read(&p).unwrap_or_else(|e| panic!("test setup: read {}: {e}", p.display()))
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        layout_blob(&self.layout(), digest).expect("test setup: blob in the backup")
    }

    /// The layout as archive entries named `<prefix>oci-layout`, ... in writer order.
    fn layout_entries(&self, prefix: &str) -> Vec<Entry> {
        let mut v = vec![
            file(&format!("{prefix}oci-layout"), &self.read("oci-layout")),
            file(&format!("{prefix}index.json"), &self.read("index.json")),
        ];
        for d in [&self.manifest, &self.config, &self.layer] {
            v.push(file(&blob_name(prefix, d), &self.blob(d)));
        }
        v
    }

    fn name(&self, digest: &str) -> String {
        blob_name(&format!("{REPO}/"), digest)
    }
}

/// Two backups of `library/app` from one source registry: tag 1 (label x), the base of the
/// hostile archives, and tag 2 (label y), the layout already in a target before an unpack.
struct Fixture {
    one: Backup,
    two: Backup,
}

fn fixture() -> Fixture {
    let src = Registry::start();
    push_simple_image(&src, REPO, &["1"], "x");
    push_simple_image(&src, REPO, &["2"], "y");
    Fixture {
        one: Backup::of(&src, "1"),
        two: Backup::of(&src, "2"),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// A target nested three levels inside a parent temp dir, so that whatever `..` or absolute
/// name an archive uses within reason lands inside the parent, where it can be seen.
struct Sandbox {
    _tmp: TempDir,
    parent: PathBuf,
    target: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = TempDir::new().expect("test setup: temp dir");
        let parent = tmp.path().to_path_buf();
        let target = parent.join("a/b/target");
        fs::create_dir_all(&target).expect("test setup: target dir");
        Sandbox {
            _tmp: tmp,
            parent,
            target,
        }
    }

    /// Where `name` (relative or absolute) would land if joined to the target.
    fn resolve(&self, name: &str) -> PathBuf {
        let mut out = PathBuf::new();
        for c in self.target.join(name).components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                c => out.push(c),
            }
        }
        out
    }
}

/// Everything under `dir`, not following symbolic links: relative path -> kind and content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("under root").to_path_buf();
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                let t = fs::read_link(&p).map(|t| t.display().to_string());
                out.insert(rel, format!("symlink -> {t:?}"));
            } else if ft.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &p, out);
            } else if ft.is_file() {
                let bytes = fs::read(&p).unwrap_or_default();
                out.insert(
                    rel,
                    format!("file {:x} ({} bytes)", Sha256::digest(&bytes), bytes.len()),
                );
            } else {
                out.insert(rel, format!("special {ft:?}"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("test setup: mkdir");
    for e in fs::read_dir(from).expect("test setup: read dir").flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().expect("test setup: file type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).expect("test setup: copy");
        }
    }
}

fn exists_at_all(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

/// A hostile archive (uncompressed), and the paths it names outside the target that must not
/// appear. Built per sandbox, since absolute names and link targets point into it.
struct Hostile {
    tar: Vec<u8>,
    escapes: Vec<PathBuf>,
}

fn hostile(tar: Vec<u8>) -> Hostile {
    Hostile {
        tar,
        escapes: Vec::new(),
    }
}

/// `oci-unpack -C TARGET ARCHIVE` (the archive from a file) into `sb`, and the checks that
/// nothing changed anywhere under the sandbox's parent.
fn unpack_and_expect_refusal(
    sb: &Sandbox,
    archive: &[u8],
    via_stdin: bool,
    escapes: &[PathBuf],
    reasons: &[&str],
) {
    let dir = TempDir::new().expect("test setup: temp dir");
    let path = dir.path().join("hostile.tgz");
    fs::write(&path, archive).expect("test setup: write archive");
    let before = snapshot(&sb.parent);
    let (args, out, input) = if via_stdin {
        let args = vec!["-C", path_str(&sb.target), "-"];
        let out = run_with_stdin_file("oci-unpack", &args, &[], &path);
        (args, out, "stdin")
    } else {
        let args = vec!["-C", path_str(&sb.target), path_str(&path)];
        let out = run("oci-unpack", &args, &[]);
        (args, out, path_str(&path))
    };
    assert_single_error_line("oci-unpack", &args, &out, &[input], reasons);
    let ctx = describe("oci-unpack", &args, &out);
    for e in escapes {
        assert!(
            !exists_at_all(e),
            "{} was created outside the target:\n{ctx}",
            e.display()
        );
    }
    assert_eq!(
        snapshot(&sb.parent),
        before,
        "the sandbox changed (target or outside it):\n{ctx}"
    );
}

/// `oci-restore --plain-http --input ARCHIVE|- ADDR/ns`; asserts one error line naming the
/// input and the reason, and returns the run's description.
fn restore_and_expect_refusal(
    dst: &Registry,
    archive: &[u8],
    via_stdin: bool,
    reasons: &[&str],
) -> String {
    let dir = TempDir::new().expect("test setup: temp dir");
    let path = dir.path().join("hostile.tgz");
    fs::write(&path, archive).expect("test setup: write archive");
    let target = format!("{}/ns", dst.addr());
    let (args, out, input) = if via_stdin {
        let args = vec!["--plain-http", "--input", "-", target.as_str()];
        let out = run_with_stdin_file("oci-restore", &args, &[], &path);
        (args, out, "stdin".to_string())
    } else {
        let args = vec!["--plain-http", "--input", path_str(&path), target.as_str()];
        let out = run("oci-restore", &args, &[]);
        let input = path_str(&path).to_string();
        (args, out, input)
    };
    assert_single_error_line("oci-restore", &args, &out, &[&input], reasons);
    describe("oci-restore", &args, &out)
}

/// The whole refusal check for one hostile archive (`encode` = `gzip` or `plain`):
/// unpack from a file into an empty target, unpack from stdin into a target that already
/// holds another layout, restore from a file and from stdin into the fresh registry `dst`.
/// Each must exit 1 with one line naming the input and giving one of `reasons`, change
/// nothing under the sandbox, and push nothing at all (the hostile entry comes before any
/// blob, so the registry must not even know the repository).
fn assert_refused(
    fx: &Fixture,
    dst: &Registry,
    encode: fn(&[u8]) -> Vec<u8>,
    reasons: &[&str],
    build: impl Fn(&Sandbox) -> Hostile,
) {
    let sb = Sandbox::new();
    let h = build(&sb);
    unpack_and_expect_refusal(&sb, &encode(&h.tar), false, &h.escapes, reasons);

    let sb = Sandbox::new();
    copy_tree(&fx.two.root, &sb.target);
    let h = build(&sb);
    unpack_and_expect_refusal(&sb, &encode(&h.tar), true, &h.escapes, reasons);

    let sb = Sandbox::new();
    let h = build(&sb);
    let archive = encode(&h.tar);
    for via_stdin in [false, true] {
        let ctx = restore_and_expect_refusal(dst, &archive, via_stdin, reasons);
        assert_eq!(
            catalog(dst),
            Vec::<String>::new(),
            "something was pushed:\n{ctx}"
        );
    }
    for e in &h.escapes {
        assert!(!exists_at_all(e), "restore created {}", e.display());
    }
}

/// `hostile` entries first, then the whole valid layout of backup one.
fn first_then_layout(fx: &Fixture, hostile: Vec<Entry>) -> Vec<u8> {
    let mut all = hostile;
    all.extend(fx.one.entries.iter().cloned());
    tar_of(&all)
}

// ---------------------------------------------------------------------------------------------
// One hostile archive per refusal, hostile entry first
// ---------------------------------------------------------------------------------------------

const DOTDOT: &[&str] = &["'..'"];

#[test]
fn dotdot_names_are_refused_and_nothing_is_written_outside_or_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    let names = [
        "../../escape-dotdot.txt",
        "library/app/../../../../escape-deep.txt",
        "library/app/blobs/../../../../../escape-blobs.txt",
    ];
    for name in names {
        assert_refused(&fx, &dst, gzip, DOTDOT, |sb| Hostile {
            tar: first_then_layout(&fx, vec![file(name, b"pwned\n")]),
            escapes: vec![sb.resolve(name)],
        });
    }
    // The same refusal when the archive is a plain tar (accepted as input on purpose).
    let name = names[0];
    assert_refused(&fx, &dst, plain, DOTDOT, |sb| Hostile {
        tar: first_then_layout(&fx, vec![file(name, b"pwned\n")]),
        escapes: vec![sb.resolve(name)],
    });
    // A directory entry escaping is refused too.
    assert_refused(&fx, &dst, gzip, DOTDOT, |sb| Hostile {
        tar: first_then_layout(&fx, vec![dir_entry("../../escape-dir/")]),
        escapes: vec![sb.resolve("../../escape-dir")],
    });
}

#[test]
fn dotdot_names_carried_by_pax_and_gnu_long_name_headers_are_refused() {
    let fx = fixture();
    let dst = Registry::start();
    let name = "../../escape-long.txt";
    // PAX `path` record overriding a harmless ustar name.
    assert_refused(&fx, &dst, gzip, DOTDOT, |sb| Hostile {
        tar: first_then_layout(
            &fx,
            vec![
                pax(tar::EntryType::XHeader, &[("path", name)]),
                file("library/app/oci-layout", b"pwned\n"),
            ],
        ),
        escapes: vec![sb.resolve(name)],
    });
    // GNU `././@LongLink` name overriding a harmless ustar name.
    assert_refused(&fx, &dst, gzip, DOTDOT, |sb| Hostile {
        tar: first_then_layout(
            &fx,
            vec![
                gnu_long_name(name),
                file("library/app/oci-layout", b"pwned\n"),
            ],
        ),
        escapes: vec![sb.resolve(name)],
    });
}

#[test]
fn absolute_names_are_refused_and_nothing_is_written_there_or_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    // An absolute name inside the sandbox's parent, so that obeying it would be seen.
    assert_refused(&fx, &dst, gzip, &["absolute"], |sb| {
        let abs = sb.parent.join("escape-abs.txt");
        Hostile {
            tar: first_then_layout(&fx, vec![file(path_str(&abs), b"pwned\n")]),
            escapes: vec![abs],
        }
    });
    // An absolute directory entry.
    assert_refused(&fx, &dst, gzip, &["absolute"], |sb| {
        let abs = sb.parent.join("escape-abs-dir");
        Hostile {
            tar: first_then_layout(&fx, vec![dir_entry(&format!("{}/", path_str(&abs)))]),
            escapes: vec![abs],
        }
    });
}

#[test]
fn symbolic_links_are_refused_and_nothing_is_written_through_them_or_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    // `library/app/blobs` pointing outside: obeyed, the blobs after it would land there.
    assert_refused(&fx, &dst, gzip, &["symbolic link"], |sb| {
        let outside = sb.parent.join("outside");
        Hostile {
            tar: first_then_layout(&fx, vec![symlink("library/app/blobs", path_str(&outside))]),
            escapes: vec![outside],
        }
    });
    assert_refused(&fx, &dst, gzip, &["symbolic link"], |sb| Hostile {
        tar: first_then_layout(
            &fx,
            vec![symlink("library/app/blobs", "../../../../outside-rel")],
        ),
        escapes: vec![
            sb.parent.join("outside-rel"),
            sb.parent.join("a/outside-rel"),
        ],
    });
    // A blob name that is a link to a system file.
    let name = fx.one.name(&fx.one.manifest);
    assert_refused(&fx, &dst, gzip, &["symbolic link"], |_| {
        hostile(first_then_layout(&fx, vec![symlink(&name, "/etc/passwd")]))
    });
}

#[test]
fn hard_links_other_than_to_an_earlier_copy_of_the_same_blob_are_refused() {
    let fx = fixture();
    let dst = Registry::start();
    let manifest = fx.one.name(&fx.one.manifest);
    let config = fx.one.name(&fx.one.config);
    let not_same_blob = &["hard link"];
    // To a non-blob of the archive (it comes later, as in the valid layout).
    assert_refused(&fx, &dst, gzip, not_same_blob, |_| {
        hostile(first_then_layout(
            &fx,
            vec![hard_link(&manifest, "library/app/index.json")],
        ))
    });
    // To a blob name of another repository that the archive never holds.
    let elsewhere = blob_name("other/", &fx.one.manifest);
    assert_refused(&fx, &dst, gzip, not_same_blob, |_| {
        hostile(first_then_layout(
            &fx,
            vec![hard_link(&manifest, &elsewhere)],
        ))
    });
    // To an earlier blob with another digest (the config under the manifest's name). The
    // config before it is small and held, never pushed, so nothing may reach the registry.
    assert_refused(&fx, &dst, gzip, not_same_blob, |_| {
        hostile(first_then_layout(
            &fx,
            vec![
                file(&config, &fx.one.blob(&fx.one.config)),
                hard_link(&manifest, &config),
            ],
        ))
    });
    // A link that is not itself a blob name.
    assert_refused(&fx, &dst, gzip, not_same_blob, |_| {
        hostile(first_then_layout(
            &fx,
            vec![
                file(&config, &fx.one.blob(&fx.one.config)),
                hard_link("library/app/index.json", &config),
            ],
        ))
    });
    // To a system file by absolute name.
    assert_refused(&fx, &dst, gzip, &["hard link", "absolute"], |_| {
        hostile(first_then_layout(
            &fx,
            vec![hard_link(&manifest, "/etc/passwd")],
        ))
    });
    // To a file outside the target by `..`: the file exists, so a link would work.
    assert_refused(&fx, &dst, gzip, &["hard link", "'..'"], |sb| {
        let victim = sb.parent.join("a/victim.txt");
        fs::write(&victim, b"victim\n").expect("test setup: victim file");
        hostile(first_then_layout(
            &fx,
            vec![hard_link(&manifest, "../../victim.txt")],
        ))
    });
}

#[test]
fn character_and_block_devices_are_refused_and_nothing_is_written_or_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    let name = fx.one.name(&fx.one.manifest);
    assert_refused(&fx, &dst, gzip, &["type char", "device"], |_| {
        hostile(first_then_layout(
            &fx,
            vec![device(&name, tar::EntryType::Char, 1, 3)],
        ))
    });
    assert_refused(&fx, &dst, gzip, &["type block", "device"], |_| {
        hostile(first_then_layout(
            &fx,
            vec![device("library/app/sda", tar::EntryType::Block, 8, 0)],
        ))
    });
}

#[test]
fn fifos_are_refused_and_nothing_is_written_or_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    let name = fx.one.name(&fx.one.config);
    assert_refused(&fx, &dst, gzip, &["type fifo", "fifo"], |_| {
        hostile(first_then_layout(
            &fx,
            vec![entry(&name, tar::EntryType::Fifo)],
        ))
    });
}

#[test]
fn malformed_digests_in_blob_names_are_refused_and_nothing_is_written_or_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    let hex = hex_of(&fx.one.config).to_string();
    let names = [
        "library/app/blobs/sha256/xyz".to_string(),
        format!("library/app/blobs/sha256/{}", hex.to_uppercase()),
        format!("library/app/blobs/sha256/{}", &hex[..63]),
        format!("library/app/blobs/md5/{}", &hex[..32]),
    ];
    for name in &names {
        assert_refused(
            &fx,
            &dst,
            gzip,
            &["not a blob name", "invalid digest"],
            |_| {
                hostile(first_then_layout(
                    &fx,
                    vec![file(name, &fx.one.blob(&fx.one.config))],
                ))
            },
        );
    }
}

#[test]
fn unexpected_file_names_are_refused_and_nothing_is_written_or_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    for name in [
        "library/app/evil.sh",
        "evil.sh",
        "library/app/blobs/evil.sh",
    ] {
        assert_refused(&fx, &dst, gzip, &["not a file of an oci layout"], |_| {
            hostile(first_then_layout(
                &fx,
                vec![file(name, b"#!/bin/sh\nrm -rf /\n")],
            ))
        });
    }
}

/// Two `index.json` (or `oci-layout`) entries for one layout: whichever a reader kept,
/// the other's tags would be lost without a word.
#[test]
fn a_second_index_json_for_one_layout_is_refused_and_nothing_is_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    let empty_index = br#"{"schemaVersion":2,"manifests":[]}"#;
    for (name, bytes) in [
        ("library/app/index.json", &empty_index[..]),
        (
            "library/app/oci-layout",
            &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
        ),
    ] {
        assert_refused(&fx, &dst, gzip, &["a second entry"], |_| {
            hostile(first_then_layout(&fx, vec![file(name, bytes)]))
        });
    }
}

#[test]
fn a_blob_whose_content_does_not_match_its_name_is_refused_and_nothing_is_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    let config = fx.one.name(&fx.one.config);
    let mut tampered = fx.one.blob(&fx.one.config);
    let last = tampered.len() - 1;
    tampered[last] ^= 0x20;
    // Same size, other bytes: a digest mismatch.
    assert_refused(&fx, &dst, gzip, &["digest mismatch"], |_| {
        hostile(first_then_layout(&fx, vec![file(&config, &tampered)]))
    });
    // Another size: a size mismatch (or a digest mismatch).
    assert_refused(
        &fx,
        &dst,
        gzip,
        &["size mismatch", "digest mismatch"],
        |_| {
            hostile(first_then_layout(
                &fx,
                vec![file(&config, &fx.one.blob(&fx.one.layer))],
            ))
        },
    );
}

/// The layer arrives after index.json and the manifest, so restore streams it to the
/// registry as it reads it: the mismatch must stop the upload and everything after it.
#[test]
fn a_tampered_layer_streamed_after_its_manifest_stops_the_restore_before_any_manifest_or_tag() {
    let fx = fixture();
    let dst = Registry::start();
    let layer_name = fx.one.name(&fx.one.layer);
    let mut tampered = fx.one.blob(&fx.one.layer);
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    let entries: Vec<Entry> = fx
        .one
        .entries
        .iter()
        .map(|e| {
            if e.name == layer_name.as_bytes() {
                file(&layer_name, &tampered)
            } else {
                e.clone()
            }
        })
        .collect();
    // Writer order puts the config before the layer; put the layer first among blobs so
    // that nothing precedes it on the wire.
    let mut ordered: Vec<Entry> = entries[..3].to_vec();
    ordered.push(entries[4].clone());
    ordered.push(entries[3].clone());
    let archive = gzip(&tar_of(&ordered));
    let reasons = &["digest mismatch"];

    let sb = Sandbox::new();
    unpack_and_expect_refusal(&sb, &archive, false, &[], reasons);
    let sb = Sandbox::new();
    copy_tree(&fx.two.root, &sb.target);
    unpack_and_expect_refusal(&sb, &archive, true, &[], reasons);

    for via_stdin in [false, true] {
        let ctx = restore_and_expect_refusal(&dst, &archive, via_stdin, reasons);
        let repo = format!("ns/{REPO}");
        assert_eq!(
            tags(&dst, &repo),
            Vec::<String>::new(),
            "a tag was pushed:\n{ctx}"
        );
        assert!(
            get_manifest(&dst, &repo, &fx.one.manifest).is_none(),
            "the manifest was pushed:\n{ctx}"
        );
        assert!(
            !blob_exists(&dst, &repo, &fx.one.layer),
            "the layer was committed from tampered bytes:\n{ctx}"
        );
        assert_eq!(
            catalog(&dst),
            Vec::<String>::new(),
            "something was pushed:\n{ctx}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile entry after a complete valid layout
// ---------------------------------------------------------------------------------------------

/// The valid layout comes first: unpack must still leave the target as it was, and restore
/// must push no manifest and no tag. Restore streams blobs as they arrive, so the config and
/// layer may already be uploaded when the bad entry is read; that is acceptable (blobs
/// without a manifest are invisible garbage), so the catalog is not checked here.
#[test]
fn a_hostile_entry_after_a_valid_layout_leaves_the_target_unchanged_and_pushes_no_manifest_or_tag()
{
    let fx = fixture();
    let dst = Registry::start();
    let cases: Vec<(Entry, &[&str])> = vec![
        (
            file("library/app/evil.sh", b"#!/bin/sh\n"),
            &["not a file of an oci layout"],
        ),
        (file("../../escape-late.txt", b"pwned\n"), DOTDOT),
        (symlink("library/app/link", "/etc"), &["symbolic link"]),
        (
            entry("library/app/fifo", tar::EntryType::Fifo),
            &["type fifo"],
        ),
    ];
    for (bad, reasons) in cases {
        let mut all = fx.one.entries.clone();
        all.push(bad);
        let archive = gzip(&tar_of(&all));
        let escapes = |sb: &Sandbox| vec![sb.resolve("../../escape-late.txt")];

        let sb = Sandbox::new();
        unpack_and_expect_refusal(&sb, &archive, false, &escapes(&sb), reasons);
        // A target already holding tag 2 of the same repository: a partial move of tag 1
        // into it (blobs or index.json) would show.
        let sb = Sandbox::new();
        copy_tree(&fx.two.root, &sb.target);
        unpack_and_expect_refusal(&sb, &archive, true, &escapes(&sb), reasons);

        for via_stdin in [false, true] {
            let ctx = restore_and_expect_refusal(&dst, &archive, via_stdin, reasons);
            let repo = format!("ns/{REPO}");
            assert_eq!(
                tags(&dst, &repo),
                Vec::<String>::new(),
                "a tag was pushed:\n{ctx}"
            );
            assert!(
                get_manifest(&dst, &repo, &fx.one.manifest).is_none(),
                "the manifest was pushed:\n{ctx}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged input
// ---------------------------------------------------------------------------------------------

const TRUNCATED: &[&str] = &["truncated", "unexpected end", "incomplete"];

/// The bytes of `oci-backup --output backup.tgz` of a one-tag image on a new registry.
fn backup_tgz_of_a_simple_image() -> Vec<u8> {
    let src = Registry::start();
    push_simple_image(&src, REPO, &["1"], "x");
    let tmp = TempDir::new().expect("test setup: temp dir");
    let tgz = tmp.path().join("backup.tgz");
    run_ok(
        "oci-backup",
        &[
            "--plain-http",
            "--output",
            path_str(&tgz),
            &src.reference(REPO, "1"),
        ],
        &[],
    );
    fs::read(&tgz).expect("test setup: read backup.tgz")
}

#[test]
fn a_truncated_archive_gives_one_clear_error_and_no_tag_is_pushed() {
    let whole = backup_tgz_of_a_simple_image();
    assert!(whole.len() > 200, "test setup: archive too small to cut");
    let half = &whole[..whole.len() / 2];
    let dst = Registry::start();

    let sb = Sandbox::new();
    unpack_and_expect_refusal(&sb, half, false, &[], TRUNCATED);
    let sb = Sandbox::new();
    unpack_and_expect_refusal(&sb, half, true, &[], TRUNCATED);
    for via_stdin in [false, true] {
        let ctx = restore_and_expect_refusal(&dst, half, via_stdin, TRUNCATED);
        // Blobs read before the cut may have been uploaded; no manifest or tag may be.
        assert_eq!(
            tags(&dst, &format!("ns/{REPO}")),
            Vec::<String>::new(),
            "a tag was pushed:\n{ctx}"
        );
    }
}

/// The gzip trailer (CRC-32 and size) is the archive's last check: a tail cut by a few
/// bytes, or a damaged CRC, must be refused even though every tar entry was complete.
#[test]
fn a_damaged_gzip_trailer_is_refused_and_no_tag_is_pushed() {
    let whole = backup_tgz_of_a_simple_image();
    let dst = Registry::start();
    let mut damaged: Vec<(String, Vec<u8>)> = [1, 4, 8]
        .iter()
        .map(|n| (format!("cut by {n}"), whole[..whole.len() - n].to_vec()))
        .collect();
    let mut bad_crc = whole.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0xff;
    damaged.push(("bad crc".to_string(), bad_crc));
    let reasons = &["truncated", "corrupt", "checksum"];
    for (what, bytes) in &damaged {
        let sb = Sandbox::new();
        unpack_and_expect_refusal(&sb, bytes, false, &[], reasons);
        let ctx = restore_and_expect_refusal(&dst, bytes, true, reasons);
        assert_eq!(
            tags(&dst, &format!("ns/{REPO}")),
            Vec::<String>::new(),
            "{what}: a tag was pushed:\n{ctx}"
        );
    }
}

/// A tar cut exactly at an entry boundary (no end-of-archive marker) after index.json and
/// the manifest: the tar format cannot tell, so the missing blobs must be noticed.
#[test]
fn an_archive_cut_at_an_entry_boundary_is_refused_as_incomplete_and_nothing_is_pushed() {
    let fx = fixture();
    let dst = Registry::start();
    let full = tar_of(&fx.one.entries[..3]);
    // Drop the two zero blocks of the end-of-archive marker.
    let cut = gzip(&full[..full.len() - 1024]);
    let reasons = &["incomplete", "missing", "truncated", "not in the archive"];

    let sb = Sandbox::new();
    unpack_and_expect_refusal(&sb, &cut, false, &[], reasons);
    for via_stdin in [false, true] {
        let ctx = restore_and_expect_refusal(&dst, &cut, via_stdin, reasons);
        assert_eq!(
            catalog(&dst),
            Vec::<String>::new(),
            "something was pushed:\n{ctx}"
        );
    }
}

/// `bytes` on stdin of `oci-unpack -C TARGET -` and `oci-restore --input - ADDR/ns`: exit 1,
/// one line naming stdin and giving one of `reasons`, nothing unpacked, nothing pushed.
fn assert_stdin_refused(dst: &Registry, what: &str, bytes: &[u8], reasons: &[&str]) {
    let sb = Sandbox::new();
    let args = ["-C", path_str(&sb.target), "-"];
    let out = run_with_stdin_bytes("oci-unpack", &args, &[], bytes);
    assert_single_error_line("oci-unpack", &args, &out, &["stdin"], reasons);
    assert_eq!(
        snapshot(&sb.target),
        BTreeMap::new(),
        "{what}: target changed"
    );

    let target = format!("{}/ns", dst.addr());
    let args = ["--plain-http", "--input", "-", target.as_str()];
    let out = run_with_stdin_bytes("oci-restore", &args, &[], bytes);
    assert_single_error_line("oci-restore", &args, &out, &["stdin"], reasons);
    assert_eq!(
        catalog(dst),
        Vec::<String>::new(),
        "{what}: something was pushed"
    );
}

#[test]
fn stdin_that_is_neither_gzip_nor_tar_gives_one_clear_error() {
    let dst = Registry::start();
    let hello = b"hello world\n".repeat(100);
    assert_stdin_refused(&dst, "text", &hello, &["not a gzip"]);
    assert_stdin_refused(&dst, "empty input", b"", &["empty"]);
    // Starts with the gzip magic but is no deflate stream.
    let mut bad_gzip = vec![0x1f, 0x8b];
    bad_gzip.extend_from_slice(&b"not really deflate data".repeat(40));
    assert_stdin_refused(&dst, "bad gzip", &bad_gzip, &["corrupt", "invalid", "gzip"]);
}

/// Valid gzip whose content is not a tar: the error must say so ("not a tar archive" or
/// "corrupt archive"), not quote the tar library's header-parsing jargon and input bytes.
#[test]
fn gzip_whose_content_is_not_a_tar_gives_one_clear_error() {
    let dst = Registry::start();
    let hello = b"hello world\n".repeat(100);
    assert_stdin_refused(
        &dst,
        "gzip of text",
        &gzip(&hello),
        &["not a tar", "corrupt"],
    );
}

/// "A refused archive leaves the target as it was": a target directory that did not exist
/// must not exist afterwards either (nor its missing parents).
#[test]
fn a_refused_archive_does_not_create_a_missing_target_directory() {
    let tmp = TempDir::new().expect("test setup: temp dir");
    let archive = tmp.path().join("hostile.tgz");
    fs::write(
        &archive,
        gzip(&tar_of(&[file("library/app/evil.sh", b"#!/bin/sh\n")])),
    )
    .expect("test setup: write archive");
    let parent = tmp.path().join("parent");
    fs::create_dir(&parent).expect("test setup: parent dir");
    let target = parent.join("new/target");
    let args = ["-C", path_str(&target), path_str(&archive)];
    let out = run("oci-unpack", &args, &[]);
    assert_single_error_line(
        "oci-unpack",
        &args,
        &out,
        &[path_str(&archive)],
        &["not a file of an oci layout"],
    );
    assert_eq!(
        snapshot(&parent),
        BTreeMap::new(),
        "the refused unpack created directories:\n{}",
        describe("oci-unpack", &args, &out)
    );
}

// ---------------------------------------------------------------------------------------------
// What must still be accepted
// ---------------------------------------------------------------------------------------------

/// Unpacks `archive` (from a file) into a fresh target and restores it (from stdin) into
/// `dst` under `ns`; checks tag 1 of `repo` resolves to `manifest` in both.
fn assert_accepted(archive: &[u8], repo: &str, manifest: &str, dst: &Registry) {
    let tmp = TempDir::new().expect("test setup: temp dir");
    let path = tmp.path().join("archive");
    fs::write(&path, archive).expect("test setup: write archive");

    let target = tmp.path().join("target");
    run_ok(
        "oci-unpack",
        &["-C", path_str(&target), path_str(&path)],
        &[],
    );
    let layout = target.join(repo);
    let entries = layout_entries(&layout);
    assert_eq!(entries.len(), 1, "{}: index.json entries", layout.display());
    assert_eq!(entries[0].tag.as_deref(), Some("1"));
    assert_eq!(entries[0].digest, manifest);
    assert_blob_files_verify(&layout);

    let dest = format!("{}/ns", dst.addr());
    run_ok_with_stdin_file(
        "oci-restore",
        &["--plain-http", "--input", "-", &dest],
        &[],
        &path,
    );
    let pushed = format!("ns/{repo}");
    assert_eq!(
        tags(dst, &pushed),
        vec!["1".to_string()],
        "tags of {pushed}"
    );
    let (digest, _, _) = get_manifest(dst, &pushed, "1")
        .unwrap_or_else(|| panic!("{pushed}:1 missing after restore"));
    assert_eq!(digest, manifest, "{pushed}:1");
}

#[test]
fn an_uncompressed_tar_of_a_layout_is_accepted_and_round_trips() {
    let fx = fixture();
    let dst = Registry::start();
    assert_accepted(&tar_of(&fx.one.entries), REPO, &fx.one.manifest, &dst);
    // From a file too.
    let tmp = TempDir::new().expect("test setup: temp dir");
    let path = tmp.path().join("layout.tar");
    fs::write(&path, tar_of(&fx.one.entries)).expect("test setup: write tar");
    let target = format!("{}/other", dst.addr());
    run_ok(
        "oci-restore",
        &["--plain-http", "--input", path_str(&path), &target],
        &[],
    );
    assert_layout_restored(&fx.one.layout(), &dst, &format!("other/{REPO}"));
}

#[test]
fn dot_slash_prefixes_no_directory_entries_and_pax_and_gnu_long_names_are_accepted() {
    let fx = fixture();
    let dst = Registry::start();
    let repo = "long-repository-name-0123456789/abcdefghijklmnopqrstuvwxyz/mirror/library/app";
    let mut entries = vec![pax(
        tar::EntryType::XGlobalHeader,
        &[("comment", "made by a test")],
    )];
    let mut long = 0;
    for e in fx.one.layout_entries(&format!("./{repo}/")) {
        let name = String::from_utf8(e.name.clone()).expect("test setup: utf-8 name");
        if name.len() <= 100 {
            entries.push(e);
            continue;
        }
        // Long names alternate between a PAX `path` record and a GNU long-name header; the
        // ustar name field holds a truncated name, as real writers leave it.
        let short = &name[name.len() - 90..];
        if long % 2 == 0 {
            entries.push(pax(tar::EntryType::XHeader, &[("path", &name)]));
        } else {
            entries.push(gnu_long_name(&name));
        }
        long += 1;
        entries.push(Entry {
            name: short.as_bytes().to_vec(),
            ..e
        });
    }
    assert!(long >= 2, "test setup: blob names must be long");
    assert_accepted(&gzip(&tar_of(&entries)), repo, &fx.one.manifest, &dst);
}

#[test]
fn a_multi_member_gzip_archive_is_accepted() {
    let fx = fixture();
    let dst = Registry::start();
    // Directory entries too, as GNU tar writes them.
    let mut entries = vec![dir_entry("library/"), dir_entry("library/app/")];
    entries.extend(fx.one.entries.iter().cloned());
    let tar = tar_of(&entries);
    // Cut anywhere, even inside a header or a blob: members concatenate to one stream.
    let (a, b) = (tar.len() / 3 + 7, 2 * tar.len() / 3 + 13);
    let mut multi = gzip(&tar[..a]);
    multi.extend(gzip(&tar[a..b]));
    multi.extend(gzip(&tar[b..]));
    assert_accepted(&multi, REPO, &fx.one.manifest, &dst);
}

/// `cat a.tgz b.tgz` is one gzip stream holding two tars: what follows the first
/// end-of-archive marker would be silently left out, so the input is refused instead.
#[test]
fn archives_joined_with_cat_are_refused_not_half_read() {
    let whole = backup_tgz_of_a_simple_image();
    let dst = Registry::start();
    let mut joined = whole.clone();
    joined.extend_from_slice(&whole);
    let reasons = &["after the end of the archive"];
    let sb = Sandbox::new();
    unpack_and_expect_refusal(&sb, &joined, false, &[], reasons);
    let ctx = restore_and_expect_refusal(&dst, &joined, true, reasons);
    assert_eq!(
        tags(&dst, &format!("ns/{REPO}")),
        Vec::<String>::new(),
        "a tag was pushed:\n{ctx}"
    );
}
