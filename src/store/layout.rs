//! A layout directory as a copy source and sink. The sink verifies blobs already present
//! before reusing them, hard-links blobs that another layout of the same run already holds
//! (duplicates are stored once), and records tags for `index.json`, which is written once
//! at the end so a failed run leaves the previous index in place.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;

use crate::copy::{Moved, Sink, Source};
use crate::digest::Digest;
use crate::layout::Layout;
use crate::manifest::Descriptor;

impl Source for Layout {
    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        self.read_manifest(desc)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.open_blob(desc)?))
    }
}

/// Verified blob files written or checked during one run, by digest: the targets for hard
/// links when another layout needs the same blob.
#[derive(Default)]
pub struct BlobPool(Mutex<HashMap<Digest, PathBuf>>);

impl BlobPool {
    fn get(&self, d: &Digest) -> Option<PathBuf> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(d)
            .cloned()
    }

    fn insert(&self, d: &Digest, path: PathBuf) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(d.clone())
            .or_insert(path);
    }
}

/// A layout being written, and the index entries to add when the copy is done.
pub struct LayoutSink<'a> {
    pub layout: Layout,
    pub pool: &'a BlobPool,
    entries: Mutex<Vec<(Descriptor, Option<String>)>>,
}

impl<'a> LayoutSink<'a> {
    pub fn new(layout: Layout, pool: &'a BlobPool) -> Self {
        LayoutSink {
            layout,
            pool,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Adds the tags recorded by `put_manifest` to `index.json` (one entry per tag, the
    /// latest wins) and removes the empty `ingest/` directory.
    pub fn finish(self) -> Result<()> {
        let entries = self.entries.into_inner().unwrap_or_else(|e| e.into_inner());
        if !entries.is_empty() {
            self.layout
                .add_to_index(entries.iter().map(|(d, t)| (d, t.as_deref())))?;
        }
        self.layout.tidy();
        Ok(())
    }
}

impl Sink for LayoutSink<'_> {
    fn put_blob(&self, desc: &Descriptor, source: &dyn Source) -> Result<Moved> {
        let path = self.layout.blob_path(&desc.digest);
        let pooled = self.pool.get(&desc.digest);
        if pooled.as_ref() == Some(&path) {
            return Ok(Moved::Present);
        }
        if let Some(existing) = pooled {
            if same_file(&existing, &path) {
                return Ok(Moved::Present);
            }
            if self.layout.link_blob(desc, &existing).is_ok() {
                return Ok(Moved::Shared);
            }
        }
        if self.layout.has_verified_blob(desc)? {
            self.pool.insert(&desc.digest, path);
            return Ok(Moved::Present);
        }
        let mut content = source.blob(desc)?;
        self.layout.write_blob(desc, &mut content)?;
        self.pool.insert(&desc.digest, path);
        Ok(Moved::Copied)
    }

    fn has_manifest(&self, desc: &Descriptor) -> Result<bool> {
        self.layout.has_verified_blob(desc)
    }

    fn put_manifest(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        if !self.layout.has_verified_blob(desc)? {
            self.layout.write_blob_bytes(desc, bytes)?;
        }
        Ok(())
    }

    fn put_root(&self, desc: &Descriptor, bytes: &[u8], tag: Option<&str>) -> Result<()> {
        self.put_manifest(desc, bytes)?;
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((desc.clone(), tag.map(str::to_string)));
        Ok(())
    }
}

#[cfg(unix)]
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::path::Path, _: &std::path::Path) -> bool {
    false
}
