//! The fetch stage: registry references into a directory of per-repository OCI layouts
//! (`DIR/<repository>/`). References are grouped by repository so each layout's
//! `index.json` is written once, after its content; one reference's failure is reported
//! and the others still proceed.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::archive;
use crate::copy::{self, Root};
use crate::layout::Layout;
use crate::log::{human_bytes, Log};
use crate::manifest::{self, Descriptor};
use crate::pack::{self, Part};
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

/// The references of one repository, resolved: roots (references to the same manifest
/// share one) and, for each root, the references that named it.
struct Group<'r> {
    registry: Arc<Registry>,
    repository: String,
    roots: Vec<Root>,
    names: Vec<Vec<&'r Reference>>,
}

/// Groups references by repository (in the order given, each reference once) and
/// resolves them. Failures are reported on `log` and leave the reference out; so do
/// repositories that cannot be stored beside the others (`store_conflict`) in `dir`, or
/// in an archive when `dir` is `None`, before anything is asked of their registry.
fn resolve_groups<'r>(
    refs: &'r [Reference],
    dir: Option<&Path>,
    opts: &Options,
    log: &Log,
) -> Vec<Group<'r>> {
    let mut by_repo: Vec<((Host, String), Vec<&Reference>)> = Vec::new();
    for r in refs {
        let key = (r.host.clone(), r.repository.clone());
        match by_repo.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => {
                if !list.iter().any(|x| x.tag == r.tag && x.digest == r.digest) {
                    list.push(r)
                }
            }
            None => by_repo.push((key, vec![r])),
        }
    }
    let repos: Vec<&str> = by_repo.iter().map(|((_, r), _)| r.as_str()).collect();
    let mut registries = Registries::default();
    let mut groups = Vec::new();
    for ((host, repository), refs) in &by_repo {
        if let Some(why) = store_conflict(dir, repository, &repos) {
            for r in refs {
                log.error(format!("{r}: {why}"));
            }
            continue;
        }
        let (repository, refs) = (repository.clone(), refs.clone());
        let registry = match registries.get(&host, &opts.registry) {
            Ok(r) => r,
            Err(e) => {
                for r in refs {
                    log.error(format!("{r}: {e:#}"));
                }
                continue;
            }
        };
        let mut group = Group {
            registry,
            repository,
            roots: Vec::new(),
            names: Vec::new(),
        };
        for r in refs {
            match resolve(&group.registry, r) {
                Ok((desc, bytes)) => {
                    match group
                        .roots
                        .iter()
                        .position(|x| x.desc.digest == desc.digest)
                    {
                        Some(i) => {
                            if !group.roots[i].tags.contains(&r.tag) {
                                group.roots[i].tags.push(r.tag.clone());
                            }
                            group.names[i].push(r);
                        }
                        None => {
                            group.roots.push(Root {
                                desc,
                                bytes,
                                tags: vec![r.tag.clone()],
                            });
                            group.names.push(vec![r]);
                        }
                    }
                }
                Err(e) => log.error(format!("{r}: {e:#}")),
            }
        }
        if !group.roots.is_empty() {
            groups.push(group);
        }
    }
    drop_clashing_tags(&mut groups, log);
    groups
}

/// One layout per repository path takes references from several registries (or one
/// registry spelt two ways): a tag that two of them give to different manifests in one
/// run would silently keep only one. The first keeps it; each later one is an error.
fn drop_clashing_tags(groups: &mut Vec<Group<'_>>, log: &Log) {
    let mut given: HashMap<(String, String), (crate::digest::Digest, String)> = HashMap::new();
    for group in groups.iter_mut() {
        for (root, names) in group.roots.iter_mut().zip(group.names.iter_mut()) {
            names.retain(|r| {
                let Some(tag) = &r.tag else { return true };
                let key = (group.repository.clone(), tag.clone());
                match given.get(&key) {
                    Some((digest, first)) if *digest != root.desc.digest => {
                        log.error(format!(
                            "{r}: tag {tag} of {} is given to {digest} by {first} in this run already",
                            group.repository
                        ));
                        false
                    }
                    Some(_) => true,
                    None => {
                        given.insert(key, (root.desc.digest.clone(), r.to_string()));
                        true
                    }
                }
            });
            root.tags.retain(|t| names.iter().any(|r| &r.tag == t));
        }
        let kept: (Vec<Root>, Vec<_>) = std::mem::take(&mut group.roots)
            .into_iter()
            .zip(std::mem::take(&mut group.names))
            .filter(|(_, names)| !names.is_empty())
            .unzip();
        (group.roots, group.names) = kept;
    }
    groups.retain(|g| !g.roots.is_empty());
}

/// Fetches every reference into `DIR/<repository>/`. Failures are reported on `log`.
pub fn fetch_to_dir(refs: &[Reference], dir: &Path, opts: &Options, log: &Log) {
    let pool = BlobPool::default();
    for group in resolve_groups(refs, Some(dir), opts, log) {
        fetch_repository(&group, dir, &pool, opts, log);
    }
}

/// Why repository `repo` cannot be stored as a layout beside the others: a layout's
/// `blobs/` and `ingest/` hold only its own content, so `a/blobs` (or `a/ingest/x`)
/// cannot be a layout when `a` is one, in this run (`repos`) or already in `dir`; nor can
/// `a` become one over a layout that `dir` already holds under `a/blobs`. Every reader
/// would pass such a nested layout over, and restore would silently leave it out.
fn store_conflict(dir: Option<&Path>, repo: &str, repos: &[&str]) -> Option<String> {
    let parts: Vec<&str> = repo.split('/').collect();
    let is_layout = |rel: &str| {
        repos.contains(&rel)
            || dir.is_some_and(|d| {
                let p = d.join(rel);
                p.join(crate::layout::INDEX_FILE).is_file()
                    || p.join(crate::layout::OCI_LAYOUT_FILE).is_file()
            })
    };
    for i in 1..parts.len() {
        if matches!(parts[i], "blobs" | "ingest") {
            let parent = parts[..i].join("/");
            if is_layout(&parent) {
                return Some(format!(
                    "repository {repo} would be stored inside the {}/ directory of the layout {parent}; back it up into another directory",
                    parts[i]
                ));
            }
        }
    }
    let dir = dir?;
    for area in ["blobs", "ingest"] {
        let nested = dir.join(repo).join(area);
        if crate::push::find_layouts(&nested).is_ok_and(|l| !l.is_empty()) {
            return Some(format!(
                "{} holds a layout; repository {repo} would mix its blobs into it; back it up into another directory",
                nested.display()
            ));
        }
    }
    None
}

fn fetch_repository(group: &Group<'_>, dir: &Path, pool: &BlobPool, opts: &Options, log: &Log) {
    let source = RepoSource {
        registry: &group.registry,
        repository: group.repository.clone(),
    };
    let target = dir.join(&group.repository);
    let sink = match Layout::create(&target) {
        Ok(layout) => LayoutSink::new(layout, pool),
        Err(e) => {
            for r in group.names.iter().flatten() {
                log.error(format!("{r}: {e:#}"));
            }
            return;
        }
    };
    let results = copy::copy(&source, &sink, &group.roots, opts.jobs);
    let finished = sink.finish();
    // One line per manifest (the references that named it together, so blobs copied once
    // are counted once); a failure is one line per reference.
    for ((root, result), refs) in group.roots.iter().zip(results).zip(&group.names) {
        match (&result, &finished) {
            (Ok(s), Ok(())) => {
                let names: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
                log.info(format!(
                    "{} -> {} ({}, {} blobs, {} copied, {})",
                    names.join(", "),
                    target.display(),
                    root.desc.digest,
                    s.blobs,
                    s.copied_blobs,
                    human_bytes(s.copied_bytes)
                ))
            }
            (Err(e), _) | (_, Err(e)) => {
                for r in refs {
                    log.error(format!("{r}: {e:#}"));
                }
            }
        }
    }
}

/// Fetches every reference into an archive stream: all layouts' small files first, then
/// blobs, straight from the registry into `w` (no copy on disk). A reference that cannot
/// be resolved or planned is reported on `log` and left out; a failure once blobs are
/// being written fails the whole stream (the archive would not hold what its indexes say).
pub fn fetch_to_archive<W: Write>(
    refs: &[Reference],
    w: &mut archive::Writer<W>,
    opts: &Options,
    log: &Log,
) -> Result<()> {
    let mut groups = resolve_groups(refs, None, opts, log);
    let registries: Vec<Arc<Registry>> = groups.iter().map(|g| g.registry.clone()).collect();
    let sources: Vec<RepoSource<'_>> = registries
        .iter()
        .zip(&groups)
        .map(|(registry, g)| RepoSource {
            registry,
            repository: g.repository.clone(),
        })
        .collect();
    let mut parts = Vec::new();
    for (group, source) in groups.iter_mut().zip(&sources) {
        let mut plans = Vec::new();
        let mut kept = Vec::new();
        for (root, names) in group.roots.drain(..).zip(std::mem::take(&mut group.names)) {
            match copy::plan(source, &root) {
                Ok(p) => {
                    plans.push(p);
                    kept.push((root, names));
                }
                Err(e) => {
                    for r in names {
                        log.error(format!("{r}: {e:#}"));
                    }
                }
            }
        }
        if kept.is_empty() {
            continue;
        }
        let (roots, names): (Vec<Root>, Vec<_>) = kept.into_iter().unzip();
        let labels = names
            .iter()
            .map(|refs| {
                let refs: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
                refs.join(", ")
            })
            .collect();
        group.names = names;
        parts.push(Part {
            repo: group.repository.clone(),
            index_json: None,
            plans,
            names: labels,
            extra_blobs: Vec::new(),
            source,
        });
        group.roots = roots;
    }
    // One layout per repository path, as in a directory backup: the same repository on
    // two registries (or one registry spelt two ways) shares one index.json, the later
    // reference winning a tag. Layouts go in the order of their paths, so the archive
    // does not depend on the order the references were given in.
    let kept: Vec<&Group<'_>> = groups.iter().filter(|g| !g.roots.is_empty()).collect();
    for (i, part) in parts.iter_mut().enumerate() {
        if kept[..i].iter().all(|g| g.repository != part.repo) {
            let roots: Vec<&Root> = kept
                .iter()
                .filter(|g| g.repository == part.repo)
                .flat_map(|g| &g.roots)
                .collect();
            part.index_json = Some(pack::index_of(&roots)?);
        }
    }
    parts.sort_by(|a, b| a.repo.cmp(&b.repo));
    pack::write_parts(w, &parts)?;
    for group in &groups {
        for (root, names) in group.roots.iter().zip(&group.names) {
            for r in names {
                log.info(format!("{r} ({})", root.desc.digest));
            }
        }
    }
    Ok(())
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
