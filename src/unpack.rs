//! The unpack stage: an archive stream into a directory of layouts. Everything is written
//! first into a staging directory inside the target (blobs verified as they stream, hard
//! links kept), and moved into place only when the whole archive has been read and every
//! layout's graph is complete. A refused or broken archive leaves the target as it was.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::archive::{self, Handler, Item};
use crate::copy;
use crate::digest::Digest;
use crate::interrupt;
use crate::layout::{self, Index, Layout, INDEX_FILE, OCI_LAYOUT_FILE};
use crate::manifest::Descriptor;

/// The staging directory's name: `<prefix><pid>-<random>`.
const STAGING_PREFIX: &str = ".oci-unpack-";

/// What the archive held for one layout, besides its blobs (which are in staging).
#[derive(Default)]
struct Pending {
    index_json: Option<Vec<u8>>,
    has_blobs: bool,
}

struct Unpacker {
    staging: PathBuf,
    layouts: BTreeMap<String, Pending>,
}

impl Unpacker {
    fn staged(&self, repo: &str) -> Result<Layout> {
        Layout::create(&self.staging.join(if repo.is_empty() { "." } else { repo }))
    }
}

impl Handler for Unpacker {
    fn item(&mut self, item: Item<'_>) -> Result<()> {
        match item {
            Item::LayoutFile { repo, name, bytes } => {
                if name == INDEX_FILE {
                    serde_json::from_slice::<Index>(&bytes).with_context(|| {
                        format!("{}: invalid", archive::entry_path(&repo, name))
                    })?;
                    self.layouts.entry(repo).or_default().index_json = Some(bytes);
                } else if name == OCI_LAYOUT_FILE {
                    let v: serde_json::Value =
                        serde_json::from_slice(&bytes).ok().unwrap_or_default();
                    if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                        bail!(
                            "{}: not an oci-layout 1.0.0 file",
                            archive::entry_path(&repo, name)
                        );
                    }
                    self.layouts.entry(repo).or_default();
                }
            }
            Item::Blob {
                repo,
                digest,
                size,
                content,
            } => {
                let layout = self.staged(&repo)?;
                let desc = Descriptor::new("application/octet-stream", digest, size);
                layout.write_blob(&desc, content)?;
                self.layouts.entry(repo).or_default().has_blobs = true;
            }
            Item::Link {
                repo,
                digest,
                from_repo,
            } => {
                let first = self.staged(&from_repo)?.blob_path(&digest);
                let desc = Descriptor::new("application/octet-stream", digest, 0);
                self.staged(&repo)?
                    .link_blob(&desc, &first)
                    .with_context(|| format!("linking blob {}", desc.digest))?;
                self.layouts.entry(repo).or_default().has_blobs = true;
            }
        }
        Ok(())
    }
}

/// Unpacks the archive read from `input` (named `what` in errors) into `dir`.
/// Returns the repositories unpacked. When it fails, the directories it created for `dir`
/// (which may not have existed) are removed again: the target is left as it was.
pub fn unpack(input: impl std::io::Read, what: &str, dir: &Path) -> Result<Vec<String>> {
    let created = missing_ancestors(dir);
    // Shallowest first: an interruption removes the newest first.
    let _guards: Vec<_> = created
        .iter()
        .rev()
        .map(|d| interrupt::Guard::empty_dir(d))
        .collect();
    fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let result = unpack_into(input, what, dir);
    if result.is_err() {
        // Deepest first; `remove_dir` only removes what is still empty.
        for d in &created {
            let _ = fs::remove_dir(d);
        }
    }
    result
}

/// `dir` and those of its ancestors that do not exist, deepest first.
fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .take_while(|a| fs::symlink_metadata(a).is_err())
        .map(Path::to_path_buf)
        .collect()
}

fn unpack_into(input: impl std::io::Read, what: &str, dir: &Path) -> Result<Vec<String>> {
    // A staging directory left by a killed run is removed; one of a running one is kept.
    interrupt::remove_stale(dir, STAGING_PREFIX);
    let staging = tempfile::Builder::new()
        .prefix(&interrupt::temp_prefix(STAGING_PREFIX))
        .tempdir_in(dir)
        .map_err(layout::without_temp_path)
        .with_context(|| format!("{}: cannot create a staging directory", dir.display()))?;
    let _guard = interrupt::Guard::tree(staging.path());
    let mut unpacker = Unpacker {
        staging: staging.path().to_path_buf(),
        layouts: BTreeMap::new(),
    };
    archive::read(input, what, &mut unpacker)?;

    // Check every layout's graph against staging and what the target already holds.
    let mut done = Vec::new();
    for (repo, pending) in &unpacker.layouts {
        let Some(index_json) = &pending.index_json else {
            if pending.has_blobs {
                bail!("{what}: {repo:?} has blobs but no index.json");
            }
            continue;
        };
        let staged = unpacker.staged(repo)?;
        let final_dir = if repo.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(repo)
        };
        let index: Index = serde_json::from_slice(index_json)?;
        check_complete(&staged, &final_dir, &index)
            .with_context(|| format!("{what}: layout {:?} is incomplete", display_repo(repo)))?;
        check_placeable(dir, &final_dir)?;
        done.push((repo.clone(), staged, final_dir, index));
    }
    // Move into place: blobs first, then each index.json.
    let mut repos = Vec::new();
    for (repo, staged, final_dir, index) in done {
        let layout = Layout::create(&final_dir)?;
        move_blobs(&staged, &layout)?;
        let index_path = final_dir.join(INDEX_FILE);
        // Under the layout's lock (not add_to_index: a second lock from this process
        // would wait for the first).
        let _lock = layout.lock_index()?;
        if index_path.exists() {
            let mut merged = layout.read_index()?;
            for entry in &index.manifests {
                merged.upsert(entry, entry.ref_name());
            }
            layout.write_index(&merged)?;
        } else {
            let bytes = unpacker.layouts[&repo]
                .index_json
                .clone()
                .unwrap_or_default();
            layout::write_atomic(&final_dir, &index_path, &bytes)?;
        }
        layout.tidy();
        repos.push(repo);
    }
    Ok(repos)
}

/// What is already in the target cannot stop a layout from being moved into place: every
/// directory on the way is a directory or missing, and what the layout has there is of
/// the right kind. Checked for every layout before any is moved, so that a refusal leaves
/// the target as it was.
fn check_placeable(dir: &Path, final_dir: &Path) -> Result<()> {
    if final_dir != dir && dir.join(INDEX_FILE).is_file() {
        bail!(
            "{}: is an OCI layout itself (it holds index.json); unpack into a directory of layouts",
            dir.display()
        );
    }
    let kind = |p: &Path| fs::symlink_metadata(p).ok().map(|m| m.file_type());
    let rel = final_dir.strip_prefix(dir).unwrap_or(Path::new(""));
    let mut at = dir.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match kind(&at) {
            None => return Ok(()),
            Some(t) if t.is_dir() => {}
            Some(_) => bail!("{}: exists and is not a directory", at.display()),
        }
    }
    for (name, want_dir) in [("blobs", true), ("ingest", true), (INDEX_FILE, false)] {
        let p = final_dir.join(name);
        if let Some(t) = kind(&p) {
            if t.is_dir() != want_dir || (!want_dir && !t.is_file()) {
                let want = if want_dir { "a directory" } else { "a file" };
                bail!("{}: exists and is not {want}", p.display());
            }
        }
    }
    let marker = final_dir.join(layout::OCI_LAYOUT_FILE);
    if let Ok(bytes) = fs::read(&marker) {
        layout::check_oci_layout(&bytes, &marker)?;
    }
    if final_dir.join(INDEX_FILE).is_file() {
        // Merged with the archive's entries later: it must read now.
        Layout::at(final_dir).read_index()?;
    }
    Ok(())
}

fn display_repo(repo: &str) -> &str {
    if repo.is_empty() {
        "."
    } else {
        repo
    }
}

/// Every manifest and blob the index reaches is in staging or already in the target.
fn check_complete(staged: &Layout, final_dir: &Path, index: &Index) -> Result<()> {
    let existing = final_dir
        .join("blobs")
        .is_dir()
        .then(|| Layout::at(final_dir));
    let either = Either {
        staged,
        existing: existing.as_ref(),
    };
    let (roots, errors) = layout_roots_either(&either, index);
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    for root in &roots {
        let plan = copy::plan(&either, root)?;
        for b in &plan.blobs {
            if either.path_of(&b.digest, b.size).is_none() {
                bail!("blob {} is missing", b.digest);
            }
        }
    }
    Ok(())
}

fn layout_roots_either(
    either: &Either<'_>,
    index: &Index,
) -> (Vec<copy::Root>, Vec<anyhow::Error>) {
    // Manifests may sit in staging or in the target: read through `Either`.
    let mut roots = Vec::new();
    let mut errors = Vec::new();
    for entry in &index.manifests {
        match copy::Source::manifest(either, entry) {
            Ok(bytes) => roots.push(copy::Root {
                desc: entry.clone(),
                bytes,
                tags: vec![entry.ref_name().map(str::to_string)],
            }),
            Err(e) => errors.push(e.context(format!("manifest {}", entry.digest))),
        }
    }
    (roots, errors)
}

/// Staging first, then the target's existing layout.
struct Either<'a> {
    staged: &'a Layout,
    existing: Option<&'a Layout>,
}

impl Either<'_> {
    fn path_of(&self, digest: &Digest, size: u64) -> Option<PathBuf> {
        let candidates = std::iter::once(self.staged).chain(self.existing);
        for l in candidates {
            let p = l.blob_path(digest);
            if fs::metadata(&p)
                .map(|m| m.is_file() && m.len() == size)
                .unwrap_or(false)
            {
                return Some(p);
            }
        }
        None
    }
}

impl copy::Source for Either<'_> {
    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        match self.staged.read_manifest(desc) {
            Ok(b) => Ok(b),
            Err(e) => match self.existing {
                Some(l) if l.blob_path(&desc.digest).exists() => l.read_manifest(desc),
                _ => Err(e.context("not in the archive")),
            },
        }
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn std::io::Read + '_>> {
        Err(anyhow!("blob {}: not read while checking", desc.digest))
    }
}

/// Renames every staged blob into `layout` unless it already holds it.
fn move_blobs(staged: &Layout, layout: &Layout) -> Result<()> {
    let blobs = staged.root().join("blobs");
    let Ok(algs) = fs::read_dir(&blobs) else {
        return Ok(());
    };
    for alg in algs {
        let alg = alg?;
        for f in fs::read_dir(alg.path())? {
            let f = f?;
            let dest = layout
                .root()
                .join("blobs")
                .join(alg.file_name())
                .join(f.file_name());
            // A copy the target has already is replaced by the staged one, verified as it
            // was unpacked: the target's may be damaged, and reads by size cannot tell.
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(f.path(), &dest)
                .with_context(|| format!("{}: cannot move into place", dest.display()))?;
        }
    }
    Ok(())
}
