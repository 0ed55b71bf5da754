//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), owned by
//! a `Layout` value. Every blob is written through a temp file under `ingest/`, verified
//! against its digest and size while it streams, and renamed into place, so `blobs/` never
//! holds a partial or wrong file. `index.json` is replaced atomically the same way.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, VerifyingReader};
use crate::interrupt;
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE, OCI_INDEX};

pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const INGEST_DIR: &str = "ingest";
/// Temp names: `<prefix><pid>-<random or digest>` (see `interrupt::remove_stale`).
const BLOB_PREFIX: &str = "blob-";
const LINK_PREFIX: &str = "link-";
const TMP_PREFIX: &str = ".tmp-";

/// A layout's `index.json`. Fields other than these are not kept when we rewrite it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `null` and a missing field both mean "nothing in this layout".
    #[serde(default, deserialize_with = "null_as_empty")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Descriptor>, D::Error> {
    Ok(Option::<Vec<Descriptor>>::deserialize(d)?.unwrap_or_default())
}

impl Default for Index {
    fn default() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
        }
    }
}

impl Index {
    /// Adds `desc` under `tag`: one entry per tag (the new one replaces the old), and one
    /// untagged entry per digest.
    pub fn upsert(&mut self, desc: &Descriptor, tag: Option<&str>) {
        let entry = desc.clone().with_ref_name(tag);
        match tag {
            Some(t) => {
                self.manifests.retain(|m| m.ref_name() != Some(t));
                self.manifests.push(entry);
            }
            None => {
                let present = self
                    .manifests
                    .iter()
                    .any(|m| m.ref_name().is_none() && m.digest == desc.digest);
                if !present {
                    self.manifests.push(entry);
                }
            }
        }
    }
}

/// An OCI layout directory.
/// The lock of [`Layout::lock_index`]; dropping it unlocks.
pub struct IndexLock(#[allow(dead_code)] File);

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `root` for writing, creating the directory and `oci-layout` if
    /// they are missing. An existing `oci-layout` must declare version 1.0.0.
    pub fn create(root: &Path) -> Result<Layout> {
        fs::create_dir_all(root).with_context(|| format!("{}: cannot create", root.display()))?;
        // What killed runs left behind (their processes are gone).
        let ingest = root.join(INGEST_DIR);
        interrupt::remove_stale(&ingest, BLOB_PREFIX);
        interrupt::remove_stale(&ingest, LINK_PREFIX);
        interrupt::remove_stale(root, TMP_PREFIX);
        let marker = root.join(OCI_LAYOUT_FILE);
        match fs::read(&marker) {
            Ok(bytes) => check_oci_layout(&bytes, &marker)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomic(root, &marker, OCI_LAYOUT_CONTENT)?;
            }
            Err(e) => return Err(anyhow!("{}: {e}", marker.display())),
        }
        Ok(Layout {
            root: root.to_path_buf(),
        })
    }

    /// Opens an existing layout for reading: `index.json` must be there.
    pub fn open(root: &Path) -> Result<Layout> {
        let marker = root.join(OCI_LAYOUT_FILE);
        match fs::read(&marker) {
            Ok(bytes) => check_oci_layout(&bytes, &marker)?,
            // Tolerated: some tools omit it, and the index tells us everything we need.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("{}: {e}", marker.display())),
        }
        if !root.join(INDEX_FILE).is_file() {
            bail!("{}: not an OCI layout (no index.json)", root.display());
        }
        Ok(Layout {
            root: root.to_path_buf(),
        })
    }

    /// The layout at `root`, for reading blobs that may or may not be there.
    pub fn at(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Reads `index.json`; a layout without one has an empty index.
    pub fn read_index(&self) -> Result<Index> {
        let path = self.root.join(INDEX_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(e) => return Err(anyhow!("{}: {e}", path.display())),
        };
        serde_json::from_slice(&bytes).with_context(|| format!("{}: invalid", path.display()))
    }

    /// Locks the layout for a read-change-write of `index.json` (an advisory lock on the
    /// layout directory itself, so no file is added): two runs backing up into the same
    /// layout at once each add their tags, neither losing the other's. Released on drop.
    pub fn lock_index(&self) -> Result<IndexLock> {
        let dir = File::open(&self.root)
            .with_context(|| format!("{}: cannot open to lock", self.root.display()))?;
        dir.lock()
            .with_context(|| format!("{}: cannot lock", self.root.display()))?;
        Ok(IndexLock(dir))
    }

    /// Adds `entries` to `index.json` (one entry per tag, the latest wins) under the lock.
    pub fn add_to_index<'d>(
        &self,
        entries: impl IntoIterator<Item = (&'d Descriptor, Option<&'d str>)>,
    ) -> Result<()> {
        let _lock = self.lock_index()?;
        let mut index = self.read_index()?;
        for (desc, tag) in entries {
            index.upsert(desc, tag);
        }
        self.write_index(&index)
    }

    /// Replaces `index.json` atomically.
    pub fn write_index(&self, index: &Index) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(index)?;
        bytes.push(b'\n');
        write_atomic(&self.root, &self.root.join(INDEX_FILE), &bytes)
    }

    /// True when the blob is present with the right size and content. A blob that fails
    /// the check is removed so that it gets written again.
    pub fn has_verified_blob(&self, desc: &Descriptor) -> Result<bool> {
        let path = self.blob_path(&desc.digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(anyhow!("{}: {e}", path.display())),
        };
        let reader = VerifyingReader::new(file, &desc.digest, desc.size);
        match io::copy(
            &mut io::BufReader::with_capacity(1 << 20, reader),
            &mut io::sink(),
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                fs::remove_file(&path)
                    .with_context(|| format!("{}: cannot remove bad blob", path.display()))?;
                Ok(false)
            }
            Err(e) => Err(anyhow!("{}: {e}", path.display())),
        }
    }

    /// Streams `reader` into the blob `desc`, verifying digest and size before the blob
    /// appears under `blobs/`. Errors do not name the blob: every caller does.
    pub fn write_blob(&self, desc: &Descriptor, reader: &mut dyn Read) -> Result<()> {
        let (mut tmp, _guard) = self.ingest_file()?;
        let mut verified = VerifyingReader::new(reader, &desc.digest, desc.size);
        copy_large(&mut verified, tmp.as_file_mut())?;
        self.persist(tmp, &desc.digest)
    }

    /// Writes `bytes` (already in memory, e.g. a manifest) as blob `desc`, after checking them.
    pub fn write_blob_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        desc.digest
            .verify(bytes, Some(desc.size))
            .with_context(|| format!("blob {}", desc.digest))?;
        let (mut tmp, _guard) = self.ingest_file()?;
        tmp.write_all(bytes)
            .with_context(|| format!("{}: write failed", tmp.path().display()))?;
        self.persist(tmp, &desc.digest)
    }

    /// Makes blob `desc` a hard link to `existing` (a verified copy in another layout),
    /// so duplicated blobs are stored once. Falls back to an error the caller can answer
    /// with a copy (e.g. across file systems).
    pub fn link_blob(&self, desc: &Descriptor, existing: &Path) -> io::Result<()> {
        let dest = self.blob_path(&desc.digest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let ingest = self.root.join(INGEST_DIR);
        let tmp = ingest.join(format!(
            "{}{}",
            interrupt::temp_prefix(LINK_PREFIX),
            desc.digest.hex()
        ));
        let _guard = interrupt::Guard::file(&tmp);
        let _ = fs::remove_file(&tmp);
        in_ingest(&ingest, |_| fs::hard_link(existing, &tmp))?;
        fs::rename(&tmp, &dest).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    /// Reads a manifest blob into memory (bounded), verified against `desc`.
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&desc.digest);
        if desc.size > MAX_MANIFEST_SIZE {
            bail!(
                "manifest {} is {} bytes, more than the {} a registry accepts",
                desc.digest,
                desc.size,
                MAX_MANIFEST_SIZE
            );
        }
        let file = File::open(&path).with_context(|| format!("{}", path.display()))?;
        let mut bytes = Vec::with_capacity(desc.size as usize);
        VerifyingReader::new(file, &desc.digest, desc.size)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}", path.display()))?;
        Ok(bytes)
    }

    /// Opens blob `desc` for reading; the reader fails at the end unless the content
    /// matches the descriptor.
    pub fn open_blob(&self, desc: &Descriptor) -> Result<VerifyingReader<File>> {
        let path = self.blob_path(&desc.digest);
        let file = File::open(&path).with_context(|| format!("{}", path.display()))?;
        Ok(VerifyingReader::new(file, &desc.digest, desc.size))
    }

    /// Removes `ingest/` if nothing is left in it.
    pub fn tidy(&self) {
        let _ = fs::remove_dir(self.root.join(INGEST_DIR));
    }

    /// A temp file under `ingest/`, registered for removal if the run is interrupted.
    fn ingest_file(&self) -> Result<(tempfile::NamedTempFile, interrupt::Guard)> {
        let ingest = self.root.join(INGEST_DIR);
        let tmp = in_ingest(&ingest, |dir| {
            tempfile::Builder::new()
                .prefix(&interrupt::temp_prefix(BLOB_PREFIX))
                .tempfile_in(dir)
                .map_err(without_temp_path)
        })
        .with_context(|| format!("{}: cannot create a temp file", ingest.display()))?;
        let guard = interrupt::Guard::file(tmp.path());
        Ok((tmp, guard))
    }

    fn persist(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        // Blobs are read-only content; 0644 rather than the temp file's 0600.
        set_mode_644(tmp.as_file());
        tmp.persist(&dest)
            .map_err(|e| anyhow!("{}: {}", dest.display(), e.error))?;
        Ok(())
    }
}

#[cfg(unix)]
fn set_mode_644(f: &File) {
    use std::os::unix::fs::PermissionsExt;
    let _ = f.set_permissions(fs::Permissions::from_mode(0o644));
}

#[cfg(not(unix))]
fn set_mode_644(_: &File) {}

pub(crate) fn check_oci_layout(bytes: &[u8], path: &Path) -> Result<()> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Marker {
        image_layout_version: String,
    }
    let m: Marker = serde_json::from_slice(bytes)
        .with_context(|| format!("{}: not an oci-layout file", path.display()))?;
    if m.image_layout_version != "1.0.0" {
        bail!(
            "{}: unsupported imageLayoutVersion {:?}",
            path.display(),
            m.image_layout_version
        );
    }
    Ok(())
}

/// Runs `make` (which creates something in `ingest`) after creating `ingest`, again if
/// `ingest` vanished in between: another run into the same layout removes it when it
/// finds it empty (`Layout::tidy`).
fn in_ingest<T>(ingest: &Path, mut make: impl FnMut(&Path) -> io::Result<T>) -> io::Result<T> {
    let mut tries = 0;
    loop {
        fs::create_dir_all(ingest)?;
        match make(ingest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// A temp-file creation error without the random name it tried (`... at path "/d/.tmp-1-x"`):
/// the directory is named by the caller, and the random name means nothing to a reader.
pub fn without_temp_path(e: io::Error) -> io::Error {
    let text = e.to_string();
    match text.split_once(" at path ") {
        Some((reason, _)) => io::Error::new(e.kind(), reason.to_string()),
        None => e,
    }
}

/// Writes `bytes` to `dest` through a temp file in `dir` and a rename.
pub fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&interrupt::temp_prefix(TMP_PREFIX))
        .tempfile_in(dir)
        .map_err(without_temp_path)
        .with_context(|| format!("{}: cannot create a temp file", dir.display()))?;
    let _guard = interrupt::Guard::file(tmp.path());
    tmp.write_all(bytes)
        .with_context(|| format!("{}: write failed", dest.display()))?;
    set_mode_644(tmp.as_file());
    tmp.persist(dest)
        .map_err(|e| anyhow!("{}: {}", dest.display(), e.error))?;
    Ok(())
}

/// `io::copy` with a 1 MiB buffer: large blobs move in fewer system calls.
pub fn copy_large(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OCI_MANIFEST;

    fn desc(bytes: &[u8]) -> Descriptor {
        Descriptor::new(
            "application/octet-stream",
            Digest::sha256_of(bytes),
            bytes.len() as u64,
        )
    }

    #[test]
    fn temp_file_errors_name_no_random_path() {
        let e = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in("/nonexistent/dir")
            .map_err(without_temp_path)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!e.to_string().contains(".tmp-"), "{e}");
    }

    #[test]
    fn write_blob_verifies_and_leaves_nothing_on_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let good = desc(b"hello");
        layout.write_blob(&good, &mut &b"hello"[..]).unwrap();
        assert!(layout.has_verified_blob(&good).unwrap());

        let bad = desc(b"other");
        assert!(layout.write_blob(&bad, &mut &b"OTHER"[..]).is_err());
        assert!(!layout.blob_path(&bad.digest).exists());
        layout.tidy();
        assert!(!dir.path().join("ingest").exists());
    }

    #[test]
    fn corrupt_blob_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let d = desc(b"hello");
        layout.write_blob(&d, &mut &b"hello"[..]).unwrap();
        fs::write(layout.blob_path(&d.digest), b"hellO").unwrap();
        assert!(!layout.has_verified_blob(&d).unwrap());
        assert!(!layout.blob_path(&d.digest).exists());
    }

    #[test]
    fn index_upsert_keeps_one_entry_per_tag() {
        let mut idx = Index::default();
        let a = Descriptor::new(OCI_MANIFEST, Digest::sha256_of(b"a"), 1);
        let b = Descriptor::new(OCI_MANIFEST, Digest::sha256_of(b"b"), 1);
        idx.upsert(&a, Some("v1"));
        idx.upsert(&a, Some("latest"));
        idx.upsert(&b, Some("v1"));
        idx.upsert(&b, None);
        idx.upsert(&b, None);
        let tags: Vec<_> = idx.manifests.iter().map(|m| m.ref_name()).collect();
        assert_eq!(tags, vec![Some("latest"), Some("v1"), None]);
        assert_eq!(idx.manifests[1].digest, b.digest);
    }

    #[test]
    fn null_manifests_reads_as_empty() {
        let idx: Index = serde_json::from_str(r#"{"schemaVersion":2,"manifests":null}"#).unwrap();
        assert!(idx.manifests.is_empty());
    }
}
