//! The pack stage: layouts into an archive stream, in the order a one-pass reader wants:
//! every layout's `oci-layout`, `index.json` and manifests first (small, so a reader can
//! plan early), then the blobs, each once (later copies are hard links). The layouts come
//! from a directory (`oci-pack`) or are planned straight from a registry (`oci-fetch -o -`,
//! `oci-backup -o FILE`), so nothing is staged on disk.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};

use anyhow::{anyhow, bail, Context, Result};

use crate::archive::{self, entry_path, Writer};
use crate::copy::{self, Plan, Root, Source};
use crate::digest::Digest;
use crate::layout::{Index, Layout, INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE};
use crate::manifest::Descriptor;
use crate::push::{find_layouts, layout_roots};

/// One layout to write: its repository path in the archive, its `index.json` bytes, the
/// planned graphs of its entries, blobs outside those graphs, and where content is read.
/// Several parts may share a repository path (the same repository on two registries):
/// only the first carries the `index.json`, which then covers them all.
pub struct Part<'a> {
    pub repo: String,
    pub index_json: Option<Vec<u8>>,
    pub plans: Vec<Plan>,
    /// What named each plan's root (references, for a backup), for errors; may be empty.
    pub names: Vec<String>,
    pub extra_blobs: Vec<Descriptor>,
    pub source: &'a dyn Source,
}

impl Part<'_> {
    /// The names of the roots whose graphs hold `digest`: who a failed blob fails.
    fn names_holding(&self, digest: &Digest) -> Option<String> {
        let mut names: Vec<&str> = Vec::new();
        for (plan, name) in self.plans.iter().zip(&self.names) {
            if plan.blobs.iter().any(|b| &b.digest == digest) && !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        (!names.is_empty()).then(|| names.join(", "))
    }
}

/// Writes `parts` to `w`: small files first, then blobs.
///
/// Blobs are read ahead: while one is written (compressed, checksummed), the next
/// [`READ_AHEAD`] are already being read and verified by their own threads, each through a
/// bounded channel, so a slow source (a registry answering one request at a time) and a busy
/// writer overlap, and memory stays under `READ_AHEAD` x [`CHUNKS_AHEAD`] x [`CHUNK`].
pub fn write_parts<W: Write>(w: &mut Writer<W>, parts: &[Part<'_>]) -> Result<()> {
    for p in parts {
        if let Some(index_json) = &p.index_json {
            w.add_file(&entry_path(&p.repo, OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT)?;
            w.add_file(&entry_path(&p.repo, INDEX_FILE), index_json)?;
        }
        let mut done = HashSet::new();
        for (desc, bytes) in p.plans.iter().flat_map(|plan| &plan.manifests) {
            if done.insert(desc.digest.clone()) {
                w.add_blob(&p.repo, desc, &mut &bytes[..])?;
            }
        }
    }
    // Every blob entry in archive order: read it, or link it to its first copy.
    let mut entries: Vec<(&Part<'_>, &Descriptor, bool)> = Vec::new();
    let mut written: HashSet<Digest> = HashSet::new();
    for p in parts {
        let mut done: HashSet<Digest> = p
            .plans
            .iter()
            .flat_map(|plan| plan.manifests.iter().map(|(d, _)| d.digest.clone()))
            .collect();
        let blobs = p
            .plans
            .iter()
            .flat_map(|plan| &plan.blobs)
            .chain(&p.extra_blobs);
        for desc in blobs {
            if !done.insert(desc.digest.clone()) {
                continue;
            }
            let link = w.has_blob(&desc.digest) || !written.insert(desc.digest.clone());
            entries.push((p, desc, link));
        }
    }
    std::thread::scope(|scope| -> Result<()> {
        let mut to_read = entries.iter().filter(|(_, _, link)| !link);
        let mut ahead: VecDeque<Receiver<io::Result<Vec<u8>>>> = VecDeque::new();
        let mut start_next = |ahead: &mut VecDeque<_>| {
            if let Some(&(p, desc, _)) = to_read.next() {
                ahead.push_back(read_ahead(scope, p.source, desc));
            }
        };
        for _ in 0..READ_AHEAD {
            start_next(&mut ahead);
        }
        for &(p, desc, link) in &entries {
            if link {
                w.add_link(&p.repo, &desc.digest)?;
                continue;
            }
            let rx = ahead
                .pop_front()
                .ok_or_else(|| anyhow!("blob {}: not read ahead", desc.digest))?;
            start_next(&mut ahead);
            let mut content = ChannelReader {
                rx,
                chunk: Vec::new(),
                at: 0,
            };
            // add_blob names the blob in its errors; the references holding it go first.
            w.add_blob(&p.repo, desc, &mut content).map_err(|e| {
                match p.names_holding(&desc.digest) {
                    Some(names) => e.context(names),
                    None => e,
                }
            })?;
        }
        Ok(())
    })
}

/// How many blobs are read while an earlier one is written.
const READ_AHEAD: usize = 4;
/// Chunks a reader may get ahead of the writer, per blob.
const CHUNKS_AHEAD: usize = 8;
const CHUNK: usize = 512 * 1024;

/// Starts reading blob `desc` from `source` on its own thread; its chunks, then any error,
/// arrive on the returned channel. The thread stops when the receiver is dropped.
fn read_ahead<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    source: &'scope dyn Source,
    desc: &'scope Descriptor,
) -> Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = sync_channel(CHUNKS_AHEAD);
    scope.spawn(move || {
        let mut reader = match source.blob(desc) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(io::Error::other(format!("{e:#}"))));
                return;
            }
        };
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let mut filled = 0;
            // Fill whole chunks: fewer, larger messages.
            while filled < CHUNK {
                match reader.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                return; // end of blob: dropping `tx` ends the channel
            }
            chunk.truncate(filled);
            if tx.send(Ok(chunk)).is_err() {
                return; // the writer gave up
            }
        }
    });
    rx
}

/// The reading end of [`read_ahead`].
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The index a set of roots gives: one entry per tag, untagged entries by digest.
pub fn index_of(roots: &[&Root]) -> Result<Vec<u8>> {
    let mut index = Index::default();
    for r in roots {
        for t in &r.tags {
            index.upsert(&r.desc, t.as_deref());
        }
    }
    // Tags in order (untagged entries, by digest, after them): the same content gives the
    // same index, whatever order the references came in.
    index.manifests.sort_by(|a, b| {
        (a.ref_name().is_none(), a.ref_name(), &a.digest).cmp(&(
            b.ref_name().is_none(),
            b.ref_name(),
            &b.digest,
        ))
    });
    let mut bytes = serde_json::to_vec_pretty(&index)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Packs every layout under `dir` into `w`. Every blob is verified against its name as
/// it is written; anything wrong fails the whole pack.
pub fn pack_dir<W: Write>(dir: &Path, w: &mut Writer<W>) -> Result<()> {
    let layouts = find_layouts(dir)?;
    if layouts.is_empty() {
        bail!("{}: no OCI layouts (no index.json) found", dir.display());
    }
    let opened: Vec<(String, Layout)> = layouts
        .into_iter()
        .map(|(rel, path)| Ok((rel, Layout::open(&path)?)))
        .collect::<Result<_>>()?;
    let mut parts = Vec::new();
    for (rel, layout) in &opened {
        let here = layout.root().display().to_string();
        let index_json = fs::read(layout.root().join(INDEX_FILE))
            .with_context(|| format!("{here}/{INDEX_FILE}"))?;
        let index = layout.read_index()?;
        let (roots, errors) = layout_roots(layout, &index);
        if let Some(e) = errors.into_iter().next() {
            return Err(e.context(here));
        }
        let plans = roots
            .iter()
            .map(|r| copy::plan(layout, r))
            .collect::<Result<Vec<_>>>()
            .with_context(|| here.clone())?;
        let planned: HashSet<&Digest> = plans
            .iter()
            .flat_map(|p| {
                p.manifests
                    .iter()
                    .map(|(d, _)| &d.digest)
                    .chain(p.blobs.iter().map(|d| &d.digest))
            })
            .collect();
        let extra_blobs = stray_blobs(layout)?
            .into_iter()
            .filter(|d| !planned.contains(&d.digest))
            .collect();
        parts.push(Part {
            repo: rel.clone(),
            index_json: Some(index_json),
            names: vec![here.clone(); plans.len()],
            plans,
            extra_blobs,
            source: layout,
        });
    }
    write_parts(w, &parts)
}

/// Every file under a layout's `blobs/`, sorted, as descriptors from its name and size.
fn stray_blobs(layout: &Layout) -> Result<Vec<Descriptor>> {
    let blobs = layout.root().join("blobs");
    let mut out = Vec::new();
    let Ok(algs) = fs::read_dir(&blobs) else {
        return Ok(out);
    };
    let mut algs: Vec<_> = algs.collect::<std::io::Result<_>>()?;
    algs.sort_by_key(|e| e.file_name());
    for alg in algs {
        if !alg.file_type()?.is_dir() {
            continue;
        }
        let mut files: Vec<_> = fs::read_dir(alg.path())?.collect::<std::io::Result<_>>()?;
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let name = format!(
                "{}:{}",
                alg.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            let digest: Digest = name
                .parse()
                .map_err(|e: String| anyhow::anyhow!("{}: {e}", f.path().display()))?;
            let meta = f.metadata()?;
            if !meta.is_file() {
                bail!("{}: not a regular file", f.path().display());
            }
            out.push(Descriptor::new(
                "application/octet-stream",
                digest,
                meta.len(),
            ));
        }
    }
    Ok(out)
}

/// Copies an archive stream to another, entry by entry, checking every entry on the way
/// (`oci-pack -` and `oci-unpack -C -`).
pub struct Repack<'w, W: Write> {
    pub writer: &'w mut Writer<W>,
}

impl<W: Write> archive::Handler for Repack<'_, W> {
    fn item(&mut self, item: archive::Item<'_>) -> Result<()> {
        match item {
            archive::Item::LayoutFile { repo, name, bytes } => {
                self.writer.add_file(&entry_path(&repo, name), &bytes)
            }
            archive::Item::Blob {
                repo,
                digest,
                size,
                content,
            } => {
                let desc = Descriptor::new("application/octet-stream", digest, size);
                self.writer.add_blob(&repo, &desc, content)
            }
            archive::Item::Link { repo, digest, .. } => self.writer.add_link(&repo, &digest),
        }
    }
}
