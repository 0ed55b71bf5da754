//! The push stage: every OCI layout under a directory into a registry. A directory holding
//! `index.json` is a layout and its path relative to the input is the repository; other
//! directories and plain files are passed over. Each layout's entries are pushed children
//! first, tagged entries under their tags and untagged ones by digest.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::copy::{self, Root};
use crate::fetch::{Options, Registries};
use crate::layout::{Layout, INDEX_FILE};
use crate::log::{human_bytes, Log};
use crate::manifest::Descriptor;
use crate::reference::{validate_tag, Target};
use crate::store::registry::{MountSources, RepoSink};

/// Layouts under `dir`: `(relative path with '/' separators, path)`, sorted. When `dir`
/// itself is a layout, it is the only one, with an empty relative path.
pub fn find_layouts(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let meta = fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    if dir.join(INDEX_FILE).is_file() {
        return Ok(vec![(String::new(), dir.to_path_buf())]);
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let is_layout = dir != root && dir.join(INDEX_FILE).is_file();
    if is_layout {
        let rel = dir
            .strip_prefix(root)
            .map_err(|_| anyhow!("{}: outside {}", dir.display(), root.display()))?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        out.push((parts.join("/"), dir.to_path_buf()));
    }
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("{}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        // Symbolic links are not followed: a layout tree is plain directories.
        let ft = e
            .file_type()
            .with_context(|| format!("{}", e.path().display()))?;
        if !ft.is_dir() {
            continue;
        }
        // A layout's own blob store and ingest area hold no repositories.
        if is_layout && (e.file_name() == "blobs" || e.file_name() == "ingest") {
            continue;
        }
        walk(root, &e.path(), out)?;
    }
    Ok(())
}

/// The tag an index entry carries: its `org.opencontainers.image.ref.name`, which some
/// tools write as a whole reference (`name:tag`); `None` when untagged.
fn entry_tag(desc: &Descriptor) -> Result<Option<String>> {
    let Some(name) = desc.ref_name() else {
        return Ok(None);
    };
    if validate_tag(name).is_ok() {
        return Ok(Some(name.to_string()));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) if validate_tag(tag).is_ok() => Ok(Some(tag.to_string())),
        _ => bail!("entry {}: ref name {name:?} is not a tag", desc.digest),
    }
}

/// Pushes every layout under `dir` to `target`. Failures are reported on `log`.
pub fn push_dir(dir: &Path, target: &Target, opts: &Options, log: &Log) {
    let layouts = match find_layouts(dir) {
        Ok(l) => l,
        Err(e) => return log.error(format!("{e:#}")),
    };
    if layouts.is_empty() {
        log.info(format!(
            "{}: no OCI layouts (no index.json) found",
            dir.display()
        ));
        return;
    }
    let registry = match Registries::default().get(&target.host, &opts.registry) {
        Ok(r) => r,
        Err(e) => return log.error(format!("{target}: {e:#}")),
    };
    let mounts = MountSources::default();
    for (rel, path) in layouts {
        let repo = match target.repository_for(&rel) {
            Ok(r) => r,
            Err(e) => {
                log.error(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let sink = RepoSink {
            registry: &registry,
            repository: repo.clone(),
            mounts: &mounts,
        };
        push_layout(&path, &sink, opts, log);
    }
}

fn push_layout(path: &Path, sink: &RepoSink<'_>, opts: &Options, log: &Log) {
    let dest = format!("{}/{}", sink.registry.host(), sink.repository);
    let layout = match Layout::open(path) {
        Ok(l) => l,
        Err(e) => return log.error(format!("{e:#}")),
    };
    let index = match layout.read_index() {
        Ok(i) => i,
        Err(e) => return log.error(format!("{e:#}")),
    };
    // One root per digest, carrying all its tags.
    let mut roots: Vec<Root> = Vec::new();
    for entry in &index.manifests {
        let tag = match entry_tag(entry) {
            Ok(t) => t,
            Err(e) => {
                log.error(format!("{}: {e:#}", path.display()));
                continue;
            }
        };
        if let Some(root) = roots.iter_mut().find(|r| r.desc.digest == entry.digest) {
            if !root.tags.contains(&tag) {
                root.tags.push(tag);
            }
            continue;
        }
        match layout.read_manifest(entry) {
            Ok(bytes) => roots.push(Root {
                desc: entry.clone(),
                bytes,
                tags: vec![tag],
            }),
            Err(e) => log.error(format!("{}: {e:#}", path.display())),
        }
    }
    // An untagged entry whose digest is also tagged needs no push by digest.
    for root in &mut roots {
        if root.tags.len() > 1 {
            root.tags.retain(|t| t.is_some());
        }
    }
    let results = copy::copy(&layout, sink, &roots, opts.jobs);
    for (root, result) in roots.iter().zip(results) {
        let names: Vec<String> = root
            .tags
            .iter()
            .map(|t| match t {
                Some(t) => format!("{dest}:{t}"),
                None => format!("{dest}@{}", root.desc.digest),
            })
            .collect();
        match result {
            Ok(s) => log.info(format!(
                "{} -> {} ({}, {} blobs, {} uploaded, {} mounted, {})",
                path.display(),
                names.join(", "),
                root.desc.digest,
                s.blobs,
                s.copied_blobs,
                s.shared_blobs,
                human_bytes(s.copied_bytes)
            )),
            Err(e) => log.error(format!("{}: {}: {e:#}", path.display(), names.join(", "))),
        }
    }
}
