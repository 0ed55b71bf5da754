//! The push stage: every OCI layout under a directory into a registry. A directory holding
//! `index.json` is a layout and its path relative to the input is the repository; other
//! directories and plain files are passed over. Each layout's entries are pushed children
//! first, tagged entries under their tags and untagged ones by digest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::archive;
use crate::copy::{self, Moved, Root, Sink, Source};
use crate::digest::Digest;
use crate::fetch::{Options, Registries};
use crate::layout::{Index, Layout, INDEX_FILE};
use crate::log::{human_bytes, Log};
use crate::manifest::Descriptor;
use crate::manifest::MAX_MANIFEST_SIZE;
use crate::reference::{validate_tag, Target};
use crate::store::registry::{MountSources, Prepared, RepoSink};

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
pub fn entry_tag(desc: &Descriptor) -> Result<Option<String>> {
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

/// One line per root pushed (or failed).
fn report(
    log: &Log,
    from: &str,
    sink: &RepoSink<'_>,
    index: &Index,
    roots: &[Root],
    results: Vec<Result<copy::Summary>>,
) {
    let dest = format!("{}/{}", sink.registry.host(), sink.repository);
    // A layout whose entries all failed has said so already; only one that lists
    // nothing is empty.
    if index.manifests.is_empty() {
        log.info(format!(
            "{from}: an empty layout (index.json lists nothing), nothing to push to {dest}"
        ));
    }
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
                "{from} -> {} ({}, {} blobs, {} uploaded, {} mounted, {})",
                names.join(", "),
                root.desc.digest,
                s.blobs,
                s.copied_blobs,
                s.shared_blobs,
                human_bytes(s.copied_bytes)
            )),
            Err(e) => log.error(format!("{from}: {}: {e:#}", names.join(", "))),
        }
    }
}

/// The roots of a layout's `index.json`: one per digest, carrying all its tags, and the
/// errors of entries that cannot be read (each entry stands alone). `source` reads the
/// layout's manifests (a directory, or the blobs an archive stream holds).
pub fn layout_roots(source: &dyn Source, index: &Index) -> (Vec<Root>, Vec<anyhow::Error>) {
    let mut roots: Vec<Root> = Vec::new();
    let mut errors = Vec::new();
    for entry in &index.manifests {
        let tag = match entry_tag(entry) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(root) = roots.iter_mut().find(|r| r.desc.digest == entry.digest) {
            if !root.tags.contains(&tag) {
                root.tags.push(tag);
            }
            continue;
        }
        match source.manifest(entry) {
            Ok(bytes) => roots.push(Root {
                desc: entry.clone(),
                bytes,
                tags: vec![tag],
            }),
            Err(e) => errors.push(e.context(format!("manifest {}", entry.digest))),
        }
    }
    // An untagged entry whose digest is also tagged needs no push by digest.
    for root in &mut roots {
        if root.tags.len() > 1 {
            root.tags.retain(|t| t.is_some());
        }
    }
    (roots, errors)
}

/// What of `roots` can be pushed: a tag given to two different manifests (tools that write
/// whole references as ref names, `hello:latest` and `multi:latest`, in one layout) is an
/// error and pushed for neither, since whichever went last would silently win; a root
/// left without a name is not pushed.
fn without_clashing_tags(mut roots: Vec<Root>) -> (Vec<Root>, Vec<anyhow::Error>) {
    let mut errors = Vec::new();
    let mut digests_of: BTreeMap<&str, Vec<&Digest>> = BTreeMap::new();
    for root in &roots {
        for t in root.tags.iter().flatten() {
            digests_of.entry(t).or_default().push(&root.desc.digest);
        }
    }
    let clashing: Vec<String> = digests_of
        .into_iter()
        .filter(|(_, ds)| ds.len() > 1)
        .map(|(t, ds)| {
            let list: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
            errors.push(anyhow!(
                "tag {t:?} is given to {} different manifests ({}): not pushed (ref names written as NAME:TAG are pushed under TAG alone; give each image its own layout)",
                ds.len(),
                list.join(", ")
            ));
            t.to_string()
        })
        .collect();
    for root in &mut roots {
        root.tags
            .retain(|t| t.as_ref().is_none_or(|t| !clashing.contains(t)));
    }
    roots.retain(|r| !r.tags.is_empty());
    (roots, errors)
}

/// [`layout_roots`], then [`without_clashing_tags`]: what a push of the layout pushes.
fn roots_to_push(source: &dyn Source, index: &Index) -> (Vec<Root>, Vec<anyhow::Error>) {
    let (roots, mut errors) = layout_roots(source, index);
    let (roots, clashes) = without_clashing_tags(roots);
    errors.extend(clashes);
    (roots, errors)
}

/// Pushes every layout under `dir` to `target`. Failures are reported on `log`.
pub fn push_dir(dir: &Path, target: &Target, opts: &Options, log: &Log) {
    let layouts = match find_layouts(dir) {
        Ok(l) => l,
        Err(e) => return log.error(format!("{e:#}")),
    };
    if layouts.is_empty() {
        log.error(format!(
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
    let layout = match Layout::open(path) {
        Ok(l) => l,
        Err(e) => return log.error(format!("{e:#}")),
    };
    let index = match layout.read_index() {
        Ok(i) => i,
        Err(e) => return log.error(format!("{e:#}")),
    };
    let (roots, errors) = roots_to_push(&layout, &index);
    for e in errors {
        log.error(format!("{}: {e:#}", path.display()));
    }
    let results = copy::copy(&layout, sink, &roots, opts.jobs);
    report(
        log,
        &path.display().to_string(),
        sink,
        &index,
        &roots,
        results,
    );
}

/// Small blobs held in memory while their role is unknown (they may be manifests, which
/// are pushed last) are bounded by this much in all.
const MAX_HELD: u64 = 256 * 1024 * 1024;

/// One layout of an archive being pushed in one pass.
#[derive(Default)]
struct StreamLayout {
    index: Option<Index>,
    /// Digests known to be manifests (from the index and the manifests read so far).
    manifests: HashSet<Digest>,
    /// Manifests, and small blobs whose role was not known when they arrived.
    held: HashMap<Digest, Vec<u8>>,
    parsed: HashSet<Digest>,
    /// What happened to the blobs pushed while streaming.
    streamed: HashMap<Digest, Moved>,
}

impl StreamLayout {
    /// Learns more manifest digests from the held manifests, until nothing new is found.
    fn learn(&mut self) {
        loop {
            let ready: Vec<Digest> = self
                .manifests
                .iter()
                .filter(|d| self.held.contains_key(*d) && !self.parsed.contains(*d))
                .cloned()
                .collect();
            if ready.is_empty() {
                return;
            }
            for d in ready {
                self.parsed.insert(d.clone());
                let bytes = &self.held[&d];
                let Ok(mt) = crate::manifest::media_type_of(bytes, None) else {
                    continue;
                };
                if let Ok(children) = crate::manifest::children(&mt, bytes) {
                    for c in children.manifests {
                        self.manifests.insert(c.digest);
                    }
                }
            }
        }
    }

    /// True when the index is in and every manifest it reaches has arrived: any further
    /// blob is then known not to be a manifest.
    fn resolved(&self) -> bool {
        self.index.is_some() && self.manifests.iter().all(|d| self.held.contains_key(d))
    }
}

struct StreamPush<'a> {
    target: &'a Target,
    registry: &'a crate::registry::Registry,
    mounts: &'a MountSources,
    layouts: BTreeMap<String, StreamLayout>,
    held_total: u64,
}

impl StreamPush<'_> {
    fn sink(&self, rel: &str) -> Result<RepoSink<'_>> {
        Ok(RepoSink {
            registry: self.registry,
            repository: self.target.repository_for(rel).map_err(|e| anyhow!(e))?,
            mounts: self.mounts,
        })
    }
}

impl archive::Handler for StreamPush<'_> {
    fn item(&mut self, item: archive::Item<'_>) -> Result<()> {
        match item {
            archive::Item::LayoutFile { repo, name, bytes } => {
                if name == INDEX_FILE {
                    let index: Index = serde_json::from_slice(&bytes).with_context(|| {
                        format!("{}: invalid", archive::entry_path(&repo, name))
                    })?;
                    self.sink(&repo)?; // the target must fit this layout
                    let l = self.layouts.entry(repo).or_default();
                    l.manifests
                        .extend(index.manifests.iter().map(|m| m.digest.clone()));
                    l.index = Some(index);
                    l.learn();
                }
            }
            archive::Item::Blob {
                repo,
                digest,
                size,
                content,
            } => {
                let l = self.layouts.entry(repo.clone()).or_default();
                let hold =
                    l.manifests.contains(&digest) || (size <= MAX_MANIFEST_SIZE && !l.resolved());
                if hold {
                    if self.held_total + size > MAX_HELD {
                        bail!("too many small blobs before their index.json and manifests (put those first)");
                    }
                    let mut bytes = Vec::with_capacity(size as usize);
                    content.read_to_end(&mut bytes)?;
                    self.held_total += size;
                    l.held.insert(digest, bytes);
                    l.learn();
                } else {
                    let desc = Descriptor::new("application/octet-stream", digest, size);
                    let sink = self.sink(&repo)?;
                    let moved = match sink.prepare(&desc)? {
                        Prepared::Upload(location) => {
                            sink.upload(&desc, &location, content)?;
                            Moved::Copied
                        }
                        Prepared::Done(moved) => moved,
                    };
                    self.layouts
                        .entry(repo)
                        .or_default()
                        .streamed
                        .insert(desc.digest, moved);
                }
            }
            archive::Item::Link {
                repo,
                digest,
                from_repo,
            } => {
                let held = self
                    .layouts
                    .get(&from_repo)
                    .and_then(|l| l.held.get(&digest))
                    .cloned();
                match held {
                    Some(bytes) => {
                        let l = self.layouts.entry(repo).or_default();
                        l.held.insert(digest, bytes);
                        l.learn();
                    }
                    None => {
                        let sink = self.sink(&repo)?;
                        let desc = Descriptor::new("application/octet-stream", digest, 0);
                        let moved = match sink.prepare(&desc)? {
                            Prepared::Done(moved) => moved,
                            // The registry would not mount it (202): its bytes went by
                            // already, so copy them within the registry, verified.
                            Prepared::Upload(location) => {
                                let from = self.sink(&from_repo)?.repository;
                                let size = self
                                    .registry
                                    .blob_size(&from, &desc.digest)?
                                    .ok_or_else(|| {
                                        anyhow!(
                                            "blob {}: not in {from}, where the archive links it from",
                                            desc.digest
                                        )
                                    })?;
                                let desc = Descriptor::new(
                                    "application/octet-stream",
                                    desc.digest.clone(),
                                    size,
                                );
                                let mut content = self.registry.get_blob(&from, &desc)?;
                                sink.upload(&desc, &location, &mut content)?;
                                Moved::Copied
                            }
                        };
                        self.layouts
                            .entry(repo)
                            .or_default()
                            .streamed
                            .insert(desc.digest, moved);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The registry sink, once the stream is read: blobs pushed while streaming are known
/// to be there (no second request), the rest go through the sink.
struct AfterStream<'a> {
    sink: &'a RepoSink<'a>,
    streamed: &'a HashMap<Digest, Moved>,
}

impl Sink for AfterStream<'_> {
    fn put_blob(&self, desc: &Descriptor, source: &dyn Source) -> Result<Moved> {
        match self.streamed.get(&desc.digest) {
            Some(moved) => Ok(*moved),
            None => self.sink.put_blob(desc, source),
        }
    }

    fn has_manifest(&self, desc: &Descriptor) -> Result<bool> {
        self.sink.has_manifest(desc)
    }

    fn put_manifest(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.sink.put_manifest(desc, bytes)
    }

    fn put_root(&self, desc: &Descriptor, bytes: &[u8], tag: Option<&str>) -> Result<()> {
        self.sink.put_root(desc, bytes, tag)
    }
}

/// Blobs and manifests held in memory, as a copy source. Blobs not held were pushed
/// while streaming, so the sink finds them at the registry.
struct Held<'a>(&'a HashMap<Digest, Vec<u8>>);

impl Source for Held<'_> {
    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let bytes = self
            .0
            .get(&desc.digest)
            .ok_or_else(|| anyhow!("not in the archive"))?;
        desc.digest.verify(bytes, Some(desc.size))?;
        Ok(bytes.clone())
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        match self.0.get(&desc.digest) {
            Some(b) => Ok(Box::new(&b[..])),
            None => bail!("not in the archive, nor at the registry"),
        }
    }
}

/// Pushes an archive read from `input` (gzip or plain tar) to `target` in one pass:
/// blobs go to the registry as they arrive, manifests once the whole archive has been
/// read and checked, children first, tags last. Nothing is staged on disk.
pub fn push_stream(input: impl Read, what: &str, target: &Target, opts: &Options, log: &Log) {
    let registry = match Registries::default().get(&target.host, &opts.registry) {
        Ok(r) => r,
        Err(e) => return log.error(format!("{target}: {e:#}")),
    };
    let mounts = MountSources::default();
    let mut handler = StreamPush {
        target,
        registry: &registry,
        mounts: &mounts,
        layouts: BTreeMap::new(),
        held_total: 0,
    };
    if let Err(e) = archive::read(input, what, &mut handler) {
        return log.error(format!("{e:#}"));
    }
    let mut any = false;
    for (rel, layout) in &handler.layouts {
        let Some(index) = &layout.index else { continue };
        any = true;
        let sink = match handler.sink(rel) {
            Ok(s) => s,
            Err(e) => {
                log.error(format!("{what}: {e:#}"));
                continue;
            }
        };
        let source = Held(&layout.held);
        let (roots, errors) = roots_to_push(&source, index);
        for e in errors {
            log.error(format!("{what}: {e:#}"));
        }
        let after = AfterStream {
            sink: &sink,
            streamed: &layout.streamed,
        };
        let results = copy::copy(&source, &after, &roots, opts.jobs);
        let from = if rel.is_empty() {
            what.to_string()
        } else {
            format!("{what}:{rel}")
        };
        report(log, &from, &sink, index, &roots, results);
    }
    if !any {
        log.error(format!(
            "{what}: no OCI layouts (no index.json) in the archive"
        ));
    }
}
