//! A registry repository as a copy source (pull) and sink (push). The sink skips blobs the
//! registry has, mounts blobs it has in another repository of this run instead of
//! uploading them again, and checks every uploaded byte against its descriptor.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::copy::{Moved, Sink, Source};
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::registry::{retry, Mount, Registry};

/// One repository of a registry, read from.
pub struct RepoSource<'a> {
    pub registry: &'a Registry,
    pub repository: String,
}

impl Source for RepoSource<'_> {
    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let m = self
            .registry
            .get_manifest(&self.repository, &desc.digest.to_string())?;
        desc.digest.verify(&m.bytes, Some(desc.size))?;
        Ok(m.bytes)
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.registry.get_blob(&self.repository, desc)?))
    }
}

/// Which repository of the target registry holds which blob, as learned during one run:
/// the candidates for cross-repository mounts.
#[derive(Default)]
pub struct MountSources(Mutex<HashMap<Digest, String>>);

impl MountSources {
    fn get(&self, d: &Digest) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(d)
            .cloned()
    }

    fn insert(&self, d: &Digest, repo: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(d.clone())
            .or_insert_with(|| repo.to_string());
    }
}

/// One repository of a registry, written to.
pub struct RepoSink<'a> {
    pub registry: &'a Registry,
    pub repository: String,
    pub mounts: &'a MountSources,
}

/// What pushing a blob still needs after `RepoSink::prepare`.
pub enum Prepared {
    Done(Moved),
    /// The content must be uploaded to this upload session.
    Upload(String),
}

impl RepoSink<'_> {
    /// Skips a blob the repository has, mounts one another repository of this run holds,
    /// or opens an upload session for it.
    pub fn prepare(&self, desc: &Descriptor) -> Result<Prepared> {
        let repo = &self.repository;
        if self.registry.has_blob(repo, &desc.digest)? {
            self.mounts.insert(&desc.digest, repo);
            return Ok(Prepared::Done(Moved::Present));
        }
        let from = self.mounts.get(&desc.digest).filter(|f| f != repo);
        Ok(match from {
            Some(from) => match self.registry.mount_blob(repo, &desc.digest, &from)? {
                Mount::Mounted => {
                    self.mounts.insert(&desc.digest, repo);
                    Prepared::Done(Moved::Shared)
                }
                Mount::Upload(location) => Prepared::Upload(location),
            },
            None => Prepared::Upload(self.registry.start_upload(repo)?),
        })
    }

    /// Uploads `content` (checked against `desc` as it goes) to a session from `prepare`.
    pub fn upload(&self, desc: &Descriptor, location: &str, content: &mut dyn Read) -> Result<()> {
        self.registry
            .finish_upload(&self.repository, location, desc, content)?;
        self.mounts.insert(&desc.digest, &self.repository);
        Ok(())
    }
}

impl Sink for RepoSink<'_> {
    /// An upload that failed on the way (a dropped connection, a 503) is started again
    /// from a new read of the source: the source can be read again, unlike a stream.
    fn put_blob(&self, desc: &Descriptor, source: &dyn Source) -> Result<Moved> {
        // `prepare`'s requests are retried inside the client already; only the upload,
        // whose streamed body the client cannot replay, is tried again here.
        retry::retrying(|| match self.prepare(desc) {
            Ok(Prepared::Done(moved)) => retry::Try::Done(Ok(moved)),
            Ok(Prepared::Upload(location)) => retry::again_if_transient(
                source
                    .blob(desc)
                    .and_then(|mut content| self.upload(desc, &location, &mut content))
                    .map(|()| Moved::Copied),
            ),
            Err(e) => retry::Try::Done(Err(e)),
        })
    }

    fn has_manifest(&self, desc: &Descriptor) -> Result<bool> {
        self.registry.has_manifest(&self.repository, &desc.digest)
    }

    fn put_manifest(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.put_root(desc, bytes, None)
    }

    fn put_root(&self, desc: &Descriptor, bytes: &[u8], tag: Option<&str>) -> Result<()> {
        let reference = match tag {
            Some(t) => t.to_string(),
            None => desc.digest.to_string(),
        };
        self.registry
            .put_manifest(&self.repository, &reference, desc, bytes)
            .with_context(|| format!("{}/{}:{reference}", self.registry.host(), self.repository))
    }
}
