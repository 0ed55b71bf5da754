//! The copy walk: every tool is this one operation with different ends. It walks a content
//! graph (index -> manifests -> config and layers) from a `Source`, plans what the `Sink`
//! is missing, moves the missing blobs in parallel, then writes manifests children first,
//! and the roots (under their tags) last — so nothing points at content not yet there.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;

use crate::digest::Digest;
use crate::manifest::{self, Descriptor};

/// A place content is read from.
pub trait Source: Sync {
    /// The bytes of manifest `desc`, verified against it.
    fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>>;
    /// A reader of blob `desc`; it fails at the end unless the content matches `desc`.
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>>;
}

/// What happened to one blob at the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    /// Already there (and verified, where the sink can verify).
    Present,
    /// Copied byte by byte.
    Copied,
    /// Linked or mounted from a copy the sink already had elsewhere.
    Shared,
}

/// A place content is written to.
pub trait Sink: Sync {
    /// Makes blob `desc` present at the sink, reading it from `source` if needed.
    fn put_blob(&self, desc: &Descriptor, source: &dyn Source) -> Result<Moved>;
    /// True when manifest `desc` is already at the sink.
    fn has_manifest(&self, desc: &Descriptor) -> Result<bool>;
    /// Writes a child manifest (stored by digest only).
    fn put_manifest(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()>;
    /// Writes a root manifest under `tag`, or by digest alone when `tag` is `None`.
    fn put_root(&self, desc: &Descriptor, bytes: &[u8], tag: Option<&str>) -> Result<()>;
}

/// A graph to copy: a root manifest and the tags it goes under (`None` = by digest).
pub struct Root {
    pub desc: Descriptor,
    pub bytes: Vec<u8>,
    pub tags: Vec<Option<String>>,
}

/// What copying one root did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub manifests: usize,
    pub blobs: usize,
    pub copied_blobs: usize,
    pub copied_bytes: u64,
    pub shared_blobs: usize,
}

/// A root's graph: manifests children first (root last), and blobs, each once.
pub struct Plan {
    pub manifests: Vec<(Descriptor, Vec<u8>)>,
    pub blobs: Vec<Descriptor>,
}

/// Copies every root from `source` to `sink`, using up to `jobs` parallel transfers. The
/// result for each root is independent: one root's failure does not stop the others.
pub fn copy(
    source: &dyn Source,
    sink: &dyn Sink,
    roots: &[Root],
    jobs: usize,
) -> Vec<Result<Summary>> {
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            return roots
                .iter()
                .map(|_| Err(anyhow!("cannot start threads: {e}")))
                .collect()
        }
    };
    pool.install(|| copy_in_pool(source, sink, roots))
}

fn copy_in_pool(source: &dyn Source, sink: &dyn Sink, roots: &[Root]) -> Vec<Result<Summary>> {
    let plans: Vec<Result<Plan>> = roots.par_iter().map(|r| plan(source, r)).collect();

    // Every distinct blob once, in parallel; results by digest.
    let mut unique: BTreeMap<Digest, &Descriptor> = BTreeMap::new();
    for p in plans.iter().flatten() {
        for b in &p.blobs {
            unique.entry(b.digest.clone()).or_insert(b);
        }
    }
    let moved: HashMap<Digest, Result<Moved, String>> = unique
        .into_par_iter()
        .map(|(d, desc)| {
            let foreign = if desc.urls.as_ref().is_some_and(|u| !u.is_empty()) {
                " (a foreign layer: its descriptor lists urls, which are not fetched)"
            } else {
                ""
            };
            let r = sink
                .put_blob(desc, source)
                .with_context(|| format!("blob {d}{foreign}"))
                .map_err(|e| format!("{e:#}"));
            (d, r)
        })
        .collect();

    let written: Mutex<HashSet<Digest>> = Mutex::new(HashSet::new());
    roots
        .iter()
        .zip(plans)
        .map(|(root, plan)| {
            let plan = plan?;
            let mut summary = Summary {
                manifests: plan.manifests.len(),
                blobs: plan.blobs.len(),
                ..Summary::default()
            };
            for b in &plan.blobs {
                match moved.get(&b.digest) {
                    Some(Ok(Moved::Copied)) => {
                        summary.copied_blobs += 1;
                        summary.copied_bytes += b.size;
                    }
                    Some(Ok(Moved::Shared)) => summary.shared_blobs += 1,
                    Some(Ok(Moved::Present)) => {}
                    Some(Err(e)) => return Err(anyhow!("{e}")),
                    None => return Err(anyhow!("blob {}: not planned", b.digest)),
                }
            }
            put_manifests(sink, root, &plan, &written)?;
            Ok(summary)
        })
        .collect()
}

/// Children-first manifests, then the root under each of its tags.
fn put_manifests(
    sink: &dyn Sink,
    root: &Root,
    plan: &Plan,
    written: &Mutex<HashSet<Digest>>,
) -> Result<()> {
    let (children, _) = plan.manifests.split_at(plan.manifests.len() - 1);
    for (desc, bytes) in children {
        let done = written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&desc.digest);
        if done || sink.has_manifest(desc)? {
            continue;
        }
        sink.put_manifest(desc, bytes)
            .with_context(|| format!("manifest {}", desc.digest))?;
        written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(desc.digest.clone());
    }
    for tag in &root.tags {
        sink.put_root(&root.desc, &root.bytes, tag.as_deref())
            .with_context(|| match tag {
                Some(t) => format!("manifest {} (tag {t})", root.desc.digest),
                None => format!("manifest {}", root.desc.digest),
            })?;
    }
    written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(root.desc.digest.clone());
    Ok(())
}

/// Walks a root's graph, fetching child manifests (in parallel for an index's entries).
pub fn plan(source: &dyn Source, root: &Root) -> Result<Plan> {
    let mut plan = Plan {
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let mut seen_blobs = HashSet::new();
    let mut seen_manifests = HashSet::new();
    visit(
        source,
        &root.desc,
        root.bytes.clone(),
        &mut plan,
        &mut seen_blobs,
        &mut seen_manifests,
        0,
    )?;
    Ok(plan)
}

/// An index nested deeper than this is refused: it bounds work on hostile input.
const MAX_DEPTH: usize = 8;

fn visit(
    source: &dyn Source,
    desc: &Descriptor,
    bytes: Vec<u8>,
    plan: &mut Plan,
    seen_blobs: &mut HashSet<Digest>,
    seen_manifests: &mut HashSet<Digest>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(anyhow!(
            "manifest {}: indexes nested more than {MAX_DEPTH} deep",
            desc.digest
        ));
    }
    if !seen_manifests.insert(desc.digest.clone()) {
        return Ok(());
    }
    let media_type = manifest::media_type_of(&bytes, Some(&desc.media_type))
        .with_context(|| format!("manifest {}", desc.digest))?;
    let children = manifest::children(&media_type, &bytes)
        .with_context(|| format!("manifest {}", desc.digest))?;
    let fetched: Vec<Result<(Descriptor, Vec<u8>)>> = children
        .manifests
        .into_par_iter()
        .filter(|c| !seen_manifests.contains(&c.digest))
        .map(|c| {
            let b = source
                .manifest(&c)
                .with_context(|| format!("manifest {}", c.digest))?;
            Ok((c, b))
        })
        .collect();
    for child in fetched {
        let (c, b) = child?;
        visit(source, &c, b, plan, seen_blobs, seen_manifests, depth + 1)?;
    }
    for b in children.blobs {
        if seen_blobs.insert(b.digest.clone()) {
            plan.blobs.push(b);
        }
    }
    plan.manifests.push((desc.clone(), bytes));
    Ok(())
}
