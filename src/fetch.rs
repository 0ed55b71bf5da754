//! The fetch stage: registry references into a directory of per-repository OCI layouts
//! (`DIR/<repository>/`). References are grouped by repository so each layout's
//! `index.json` is written once, after its content; one reference's failure is reported
//! and the others still proceed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::copy::{self, Root};
use crate::layout::Layout;
use crate::log::{human_bytes, Log};
use crate::manifest::{self, Descriptor};
use crate::reference::{Host, Reference};
use crate::registry::{self, Registry};
use crate::store::layout::{BlobPool, LayoutSink};
use crate::store::registry::RepoSource;

/// Settings shared by the stages.
#[derive(Clone, Debug)]
pub struct Options {
    pub registry: registry::Options,
    /// Parallel blob transfers.
    pub jobs: usize,
}

/// Registry clients by host, so tokens and connections are reused across references.
#[derive(Default)]
pub struct Registries(HashMap<Host, Arc<Registry>>);

impl Registries {
    pub fn get(&mut self, host: &Host, opts: &registry::Options) -> Result<Arc<Registry>> {
        if let Some(r) = self.0.get(host) {
            return Ok(r.clone());
        }
        let r = Arc::new(Registry::new(host, opts)?);
        self.0.insert(host.clone(), r.clone());
        Ok(r)
    }
}

/// Fetches every reference into `DIR/<repository>/`. Failures are reported on `log`.
pub fn fetch_to_dir(refs: &[Reference], dir: &Path, opts: &Options, log: &Log) {
    // Group by repository, keeping the order given and dropping exact repeats.
    let mut groups: Vec<((Host, String), Vec<&Reference>)> = Vec::new();
    for r in refs {
        let key = (r.host.clone(), r.repository.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => {
                if !list.iter().any(|x| x.to_string() == r.to_string()) {
                    list.push(r)
                }
            }
            None => groups.push((key, vec![r])),
        }
    }
    let mut registries = Registries::default();
    let pool = BlobPool::default();
    for ((host, repo), refs) in groups {
        let registry = match registries.get(&host, &opts.registry) {
            Ok(r) => r,
            Err(e) => {
                for r in refs {
                    log.error(format!("{r}: {e:#}"));
                }
                continue;
            }
        };
        fetch_repository(&registry, &repo, &refs, dir, &pool, opts, log);
    }
}

fn fetch_repository(
    registry: &Registry,
    repo: &str,
    refs: &[&Reference],
    dir: &Path,
    pool: &BlobPool,
    opts: &Options,
    log: &Log,
) {
    let source = RepoSource {
        registry,
        repository: repo.to_string(),
    };
    // Resolve each reference; references to the same manifest become one root.
    let mut roots: Vec<Root> = Vec::new();
    let mut names: Vec<Vec<&Reference>> = Vec::new();
    for r in refs {
        match resolve(registry, r) {
            Ok((desc, bytes)) => {
                if let Some(i) = roots.iter().position(|x| x.desc.digest == desc.digest) {
                    roots[i].tags.push(r.tag.clone());
                    names[i].push(r);
                } else {
                    roots.push(Root {
                        desc,
                        bytes,
                        tags: vec![r.tag.clone()],
                    });
                    names.push(vec![r]);
                }
            }
            Err(e) => log.error(format!("{r}: {e:#}")),
        }
    }
    if roots.is_empty() {
        return;
    }
    let target = dir.join(repo);
    let sink = match Layout::create(&target) {
        Ok(layout) => LayoutSink::new(layout, pool),
        Err(e) => {
            for r in names.iter().flatten() {
                log.error(format!("{r}: {e:#}"));
            }
            return;
        }
    };
    let results = copy::copy(&source, &sink, &roots, opts.jobs);
    let finished = sink.finish();
    for ((root, result), refs) in roots.iter().zip(results).zip(names) {
        for r in refs {
            match (&result, &finished) {
                (Ok(s), Ok(())) => log.info(format!(
                    "{r} -> {} ({}, {} blobs, {} copied, {})",
                    target.display(),
                    root.desc.digest,
                    s.blobs,
                    s.copied_blobs,
                    human_bytes(s.copied_bytes)
                )),
                (Err(e), _) => log.error(format!("{r}: {e:#}")),
                (_, Err(e)) => log.error(format!("{r}: {e:#}")),
            }
        }
    }
}

/// Fetches the root manifest a reference names.
pub fn resolve(registry: &Registry, r: &Reference) -> Result<(Descriptor, Vec<u8>)> {
    let m = registry.get_manifest(&r.repository, &r.manifest_reference())?;
    let media_type = manifest::media_type_of(&m.bytes, m.content_type.as_deref())
        .with_context(|| format!("manifest {}", m.digest))?;
    if !manifest::is_manifest(&media_type) {
        anyhow::bail!("unsupported manifest media type {media_type:?}");
    }
    let desc = Descriptor::new(&media_type, m.digest, m.bytes.len() as u64);
    Ok((desc, m.bytes))
}
