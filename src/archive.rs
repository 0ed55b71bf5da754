//! Tar archives of backup trees (`<repository>/oci-layout`, `<repository>/index.json`,
//! `<repository>/blobs/<alg>/<hex>`), compressed with gzip or not (the uncompressed form
//! is the layout stream the tools pipe to each other).
//!
//! Writing is reproducible: entries in the order given, mtime 0, uid/gid 0, no user
//! names, mode 0644, GNU headers (long names, sizes of 8 GiB and more), a gzip header
//! without time or name, and a blob seen a second time written as a hard link to the first.
//!
//! Reading accepts only what a layout tree holds and refuses everything else before it is
//! handed on: `..` components, absolute names, links other than hard links between blob
//! entries of the same digest, devices, FIFOs, malformed digests. `./` prefixes, missing
//! directory entries, PAX and GNU headers and multi-member gzip are handled; input that is
//! not gzip is read as a plain tar. Every blob is verified against its name as it streams.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};

use anyhow::{anyhow, bail, Context, Result};
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

use crate::digest::{Digest, VerifyingReader};
use crate::layout::{INDEX_FILE, OCI_LAYOUT_FILE};
use crate::manifest::Descriptor;
use crate::reference::validate_repository;

/// The gzip level for content that compresses. Content that does not (layers that are
/// gzip, zstd, xz... already, or that fail a trial compression) is stored instead, in its
/// own gzip member: recompressing such data is what makes `.tgz` backups slow (GNU gzip
/// manages ~25 MB/s on it) and gains nothing. See `make bench`.
pub const GZIP_LEVEL: u32 = 6;

/// The entry a writer that failed part-way adds to a stream it cannot take back (stdout):
/// readers refuse the archive on meeting it, so a pipeline does not restore a part of a
/// backup as if it were the whole.
pub const INCOMPLETE: &str = ".ocipipe-incomplete";

/// How much of a blob is looked at to decide whether it compresses.
const SAMPLE: usize = 64 * 1024;

/// True when `sample` (the start of a blob) is worth compressing.
fn compressible(sample: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        &[0x1f, 0x8b],                      // gzip
        &[0x28, 0xb5, 0x2f, 0xfd],          // zstd
        &[0xfd, b'7', b'z', b'X', b'Z', 0], // xz
        b"BZh",                             // bzip2
        &[0x04, 0x22, 0x4d, 0x18],          // lz4
        b"PK\x03\x04",                      // zip
    ];
    if MAGIC.iter().any(|m| sample.starts_with(m)) {
        return false;
    }
    if sample.len() < 512 {
        return true;
    }
    // A trial at the fastest level: keep compressing only what shrinks by 5% or more.
    let mut c = flate2::Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(sample.len() + 1024);
    if c.compress_vec(sample, &mut out, flate2::FlushCompress::Finish)
        .is_err()
    {
        return true;
    }
    (out.len() as f64) < (sample.len() as f64) * 0.95
}

/// The archive's byte stream: plain tar, or gzip made of members, each compressed or
/// stored according to what it holds. Multi-member gzip is standard: gunzip, GNU tar and
/// every gzip library read it as one stream.
///
/// The compressor is fed in pieces of exactly [`FEED`] bytes (the last of a member may be
/// shorter), whatever sizes the writes come in: deflate's block boundaries (stored blocks
/// above all) follow the sizes of its input, and the archive must not depend on how a
/// registry response or a pipe happened to deliver the content.
pub enum Output<W: Write> {
    Plain(W),
    Gzip {
        member: Option<GzEncoder<W>>,
        level: u32,
        pending: Vec<u8>,
    },
}

/// The size of every piece handed to the compressor.
const FEED: usize = 64 * 1024;

impl<W: Write> Output<W> {
    pub fn plain(w: W) -> Output<W> {
        Output::Plain(w)
    }

    pub fn gzip(w: W) -> Output<W> {
        Output::Gzip {
            member: Some(gzip_member(w, GZIP_LEVEL)),
            level: GZIP_LEVEL,
            pending: Vec::with_capacity(FEED),
        }
    }

    /// Starts a new gzip member when the next bytes want another level.
    fn set_compressible(&mut self, yes: bool) -> io::Result<()> {
        let Output::Gzip {
            member,
            level,
            pending,
        } = self
        else {
            return Ok(());
        };
        let want = if yes { GZIP_LEVEL } else { 0 };
        if want != *level {
            let w = finish_member(member.take(), pending)?;
            *member = Some(gzip_member(w, want));
            *level = want;
        }
        Ok(())
    }

    /// Ends the gzip stream and returns the writer underneath.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Output::Plain(w) => Ok(w),
            Output::Gzip {
                member,
                mut pending,
                ..
            } => finish_member(member, &mut pending),
        }
    }
}

/// Feeds what is pending to `member` and ends it.
fn finish_member<W: Write>(member: Option<GzEncoder<W>>, pending: &mut Vec<u8>) -> io::Result<W> {
    let mut m = member.ok_or_else(|| io::Error::other("gzip stream closed"))?;
    m.write_all(pending)?;
    pending.clear();
    m.finish()
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Plain(w) => w.write(buf),
            Output::Gzip {
                member, pending, ..
            } => {
                let m = member
                    .as_mut()
                    .ok_or_else(|| io::Error::other("gzip stream closed"))?;
                let n = buf.len().min(FEED - pending.len());
                pending.extend_from_slice(&buf[..n]);
                if pending.len() == FEED {
                    m.write_all(pending)?;
                    pending.clear();
                }
                Ok(n)
            }
        }
    }

    /// Flushes the plain writer; a gzip stream is only flushed by [`Output::finish`] (a
    /// flush in between would put a sync block where the timing of the call says).
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Plain(w) => w.flush(),
            Output::Gzip { .. } => Ok(()),
        }
    }
}

/// A gzip member with a reproducible header (no mtime, no file name).
fn gzip_member<W: Write>(w: W, level: u32) -> GzEncoder<W> {
    GzBuilder::new().write(w, Compression::new(level))
}

/// Joins a repository path and a name inside its layout (`""` = the archive root).
pub fn entry_path(repo: &str, name: &str) -> String {
    if repo.is_empty() {
        name.to_string()
    } else {
        format!("{repo}/{name}")
    }
}

pub fn blob_entry_path(repo: &str, digest: &Digest) -> String {
    entry_path(
        repo,
        &format!("blobs/{}/{}", digest.algorithm().name(), digest.hex()),
    )
}

/// Writes a backup tree as a tar stream.
pub struct Writer<W: Write> {
    tar: tar::Builder<Output<W>>,
    /// Blob entries written so far, by digest: later copies become hard links.
    blobs: HashMap<Digest, String>,
}

fn header(entry_type: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(entry_type);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl<W: Write> Writer<W> {
    /// An archive on `out` (`Output::plain` or `Output::gzip`).
    pub fn new(out: Output<W>) -> Writer<W> {
        Writer {
            tar: tar::Builder::new(out),
            blobs: HashMap::new(),
        }
    }

    /// A small file (`oci-layout`, `index.json`) from memory.
    pub fn add_file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let mut h = header(tar::EntryType::Regular, bytes.len() as u64);
        self.tar
            .append_data(&mut h, path, bytes)
            .with_context(|| format!("archive entry {path}"))
    }

    /// True when blob `digest` is already in the archive (a further copy is a link).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.contains_key(digest)
    }

    /// Blob `desc` of `repo`, streamed from `content` and verified on the way: a mismatch
    /// fails here, leaving an incomplete archive that no reader accepts. A blob already
    /// in the archive is written as a hard link to its first copy and `content` is unused.
    pub fn add_blob(
        &mut self,
        repo: &str,
        desc: &Descriptor,
        content: &mut dyn Read,
    ) -> Result<()> {
        let path = blob_entry_path(repo, &desc.digest);
        if let Some(first) = self.blobs.get(&desc.digest) {
            if *first == path {
                return Ok(());
            }
            let mut h = header(tar::EntryType::Link, 0);
            return self
                .tar
                .append_link(&mut h, &path, first)
                .with_context(|| format!("archive entry {path}"));
        }
        let mut h = header(tar::EntryType::Regular, desc.size);
        let mut verified = VerifyingReader::new(content, &desc.digest, desc.size);
        let mut sample = Vec::with_capacity(SAMPLE);
        (&mut verified)
            .take(SAMPLE as u64)
            .read_to_end(&mut sample)
            .with_context(|| format!("blob {}", desc.digest))?;
        self.tar.get_mut().set_compressible(compressible(&sample))?;
        self.tar
            .append_data(&mut h, &path, (&sample[..]).chain(verified))
            .with_context(|| format!("blob {}", desc.digest))?;
        // Small files and headers that follow compress again.
        self.tar.get_mut().set_compressible(true)?;
        self.blobs.insert(desc.digest.clone(), path);
        Ok(())
    }

    /// A hard link entry: blob `digest` of `repo` is the one already written for `from`.
    pub fn add_link(&mut self, repo: &str, digest: &Digest) -> Result<()> {
        let first = self
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| anyhow!("blob {digest}: linked before it was written"))?;
        let path = blob_entry_path(repo, digest);
        if first == path {
            return Ok(());
        }
        let mut h = header(tar::EntryType::Link, 0);
        self.tar
            .append_link(&mut h, &path, &first)
            .with_context(|| format!("archive entry {path}"))
    }

    /// Adds the [`INCOMPLETE`] entry: every reader will refuse this archive.
    pub fn mark_incomplete(&mut self) -> Result<()> {
        self.add_file(INCOMPLETE, b"the run that wrote this archive failed\n")
    }

    /// Writes the end-of-archive marker, ends the compression, and returns the writer.
    pub fn finish(self) -> Result<W> {
        let out = self.tar.into_inner().context("finishing the archive")?;
        let mut w = out.finish().context("finishing the archive")?;
        w.flush().context("finishing the archive")?;
        Ok(w)
    }
}

/// What an archive entry is, once its name and type have been checked.
pub enum Item<'a> {
    /// `oci-layout` or `index.json` of layout `repo` (small; read into memory).
    LayoutFile {
        repo: String,
        name: &'static str,
        bytes: Vec<u8>,
    },
    /// A blob; `content` fails at its end unless it matches `digest` and `size`.
    Blob {
        repo: String,
        digest: Digest,
        size: u64,
        content: &'a mut dyn Read,
    },
    /// Blob `digest` of `repo` is the same file as the earlier entry of `from_repo`.
    Link {
        repo: String,
        digest: Digest,
        from_repo: String,
    },
}

/// Consumes an archive's items in order.
pub trait Handler {
    fn item(&mut self, item: Item<'_>) -> Result<()>;
}

/// `index.json` and `oci-layout` larger than this are refused (they are read into memory).
const MAX_LAYOUT_FILE: u64 = 16 * 1024 * 1024;

/// Reads an archive (gzip or plain tar) from `input`, checking every entry and handing
/// the layout's items to `handler` in archive order. `what` names the input in errors.
pub fn read(input: impl Read, what: &str, handler: &mut dyn Handler) -> Result<()> {
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let head = buffered
        .fill_buf()
        .with_context(|| format!("{what}: cannot read"))?;
    if head.is_empty() {
        bail!("{what}: empty input, not an archive");
    }
    let gzipped = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    if gzipped {
        let mut decoder = MultiGzDecoder::new(buffered);
        let first = first_block(&mut decoder).map_err(|e| input_error(what, e))?;
        if !looks_like_tar(&first) {
            bail!("{what}: gzip data that is not a tar archive");
        }
        let mut input = io::Cursor::new(first).chain(decoder);
        read_tar(&mut input, what, handler)?;
        drain(&mut input, what)
    } else {
        if head.len() < 512 || !looks_like_tar(head) {
            bail!("{what}: not a gzip-compressed tar (nor a plain tar)");
        }
        read_tar(&mut buffered, what, handler)?;
        drain(&mut buffered, what)
    }
}

/// Reads what follows the end-of-archive marker (the record padding, the gzip trailer):
/// only then are the last CRC and size checked, and a tail cut short noticed.
/// Only zeros may follow it: anything else is a second archive appended to the first
/// (`cat a.tgz b.tgz`) or damage, and reading on would silently leave it out.
fn drain(input: &mut impl Read, what: &str) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(input_error(what, e)),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            bail!(
                "{what}: data after the end of the archive (archives joined with cat are not read as one: restore each)"
            );
        }
    }
}

/// Reads up to one tar block (512 bytes) from `input`.
fn first_block(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(512);
    input.take(512).read_to_end(&mut block)?;
    Ok(block)
}

/// True for a ustar or GNU header block, or the zero block that ends an empty tar.
fn looks_like_tar(block: &[u8]) -> bool {
    // ustar magic at offset 257 ("ustar\0" POSIX, "ustar " GNU).
    (block.len() >= 263 && &block[257..262] == b"ustar")
        || (block.len() == 512 && block.iter().all(|&b| b == 0))
}

fn read_tar(input: &mut impl Read, what: &str, handler: &mut dyn Handler) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .with_context(|| format!("{what}: not a tar archive"))?;
    let mut blobs_seen: HashMap<String, Digest> = HashMap::new();
    let mut layout_files_seen: HashSet<String> = HashSet::new();
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| input_error(what, e))?;
        count += 1;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let bad = |why: &str| anyhow!("{what}: refused entry {raw_path:?}: {why}");
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            continue;
        }
        let path = clean_path(&raw_path).map_err(|why| bad(&why))?;
        if path == INCOMPLETE {
            bail!("{what}: an incomplete archive: the run that wrote it failed (see its errors)");
        }
        match entry_type {
            tar::EntryType::Directory => {
                classify_dir(&path).map_err(|why| bad(&why))?;
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Link => {
                let Name::Blob { repo, digest } = classify(&path).map_err(|why| bad(&why))? else {
                    return Err(bad("a hard link that is not a blob"));
                };
                let target_raw = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let target = clean_path(&target_raw).map_err(|why| bad(&why))?;
                let from_repo = match classify(&target) {
                    Ok(Name::Blob {
                        repo: from,
                        digest: d,
                    }) if d == digest && blobs_seen.get(&target) == Some(&d) => from,
                    _ => {
                        return Err(bad(&format!(
                        "a hard link to {target_raw:?}, not to an earlier copy of the same blob"
                    )))
                    }
                };
                blobs_seen.insert(path, digest.clone());
                handler.item(Item::Link {
                    repo,
                    digest,
                    from_repo,
                })?;
                continue;
            }
            tar::EntryType::Symlink => return Err(bad("symbolic links are not allowed")),
            _ => {
                return Err(bad(&format!(
                    "entries of type {entry_type:?} are not allowed"
                )))
            }
        }
        match classify(&path).map_err(|why| bad(&why))? {
            Name::Ingest => {
                io::copy(&mut entry, &mut io::sink()).map_err(|e| input_error(what, e))?;
            }
            Name::LayoutFile { repo, name } => {
                // Two index.json for one layout: which one holds is anyone's guess.
                if !layout_files_seen.insert(path.clone()) {
                    return Err(bad("a second entry of this name"));
                }
                let size = entry.size();
                if size > MAX_LAYOUT_FILE {
                    return Err(bad("too large"));
                }
                let mut bytes = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| input_error(what, e))?;
                handler
                    .item(Item::LayoutFile { repo, name, bytes })
                    .with_context(|| what.to_string())?;
            }
            Name::Blob { repo, digest } => {
                let size = entry.size();
                let mut content = VerifyingReader::new(&mut entry, &digest, size);
                handler
                    .item(Item::Blob {
                        repo,
                        digest: digest.clone(),
                        size,
                        content: &mut content,
                    })
                    .with_context(|| format!("{what}: {raw_path}"))?;
                // Whatever the handler left unread is still checked.
                io::copy(&mut content, &mut io::sink())
                    .with_context(|| format!("{what}: {raw_path}"))?;
                blobs_seen.insert(path, digest);
            }
        }
    }
    if count == 0 {
        bail!("{what}: an empty archive");
    }
    Ok(())
}

fn input_error(what: &str, e: io::Error) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            anyhow!("{what}: truncated archive (unexpected end of data)")
        }
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            anyhow!("{what}: corrupt archive: {e}")
        }
        // The tar parser reports a bad header as `Other`, quoting the header's bytes:
        // name the problem instead.
        io::ErrorKind::Other if e.get_ref().is_some() => {
            anyhow!("{what}: corrupt archive: invalid tar header")
        }
        _ => anyhow!("{what}: {e}"),
    }
}

/// An entry name without `./` prefixes; refuses absolute names, `..`, and empty parts.
fn clean_path(raw: &str) -> Result<String, String> {
    if raw.starts_with('/') {
        return Err("absolute names are not allowed".into());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("'..' in names is not allowed".into()),
            p if p.contains('\\') || p.contains('\0') => {
                return Err("backslashes and NUL in names are not allowed".into())
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

enum Name {
    LayoutFile { repo: String, name: &'static str },
    Blob { repo: String, digest: Digest },
    Ingest,
}

fn check_repo(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        Ok(())
    } else {
        validate_repository(repo)
    }
}

fn classify(path: &str) -> Result<Name, String> {
    let parts: Vec<&str> = path.split('/').collect();
    let n = parts.len();
    let repo_of = |k: usize| -> Result<String, String> {
        let repo = parts[..n - k].join("/");
        check_repo(&repo)?;
        Ok(repo)
    };
    let last = parts[n - 1];
    if last == OCI_LAYOUT_FILE {
        return Ok(Name::LayoutFile {
            repo: repo_of(1)?,
            name: OCI_LAYOUT_FILE,
        });
    }
    if last == INDEX_FILE {
        return Ok(Name::LayoutFile {
            repo: repo_of(1)?,
            name: INDEX_FILE,
        });
    }
    if n >= 3 && parts[n - 3] == "blobs" {
        let digest: Digest = format!("{}:{}", parts[n - 2], parts[n - 1])
            .parse()
            .map_err(|e: String| format!("not a blob name: {e}"))?;
        return Ok(Name::Blob {
            repo: repo_of(3)?,
            digest,
        });
    }
    if let Some(i) = parts.iter().position(|p| *p == "ingest") {
        check_repo(&parts[..i].join("/"))?;
        return Ok(Name::Ingest);
    }
    Err("not a file of an OCI layout (oci-layout, index.json, blobs/<alg>/<hex>)".into())
}

fn classify_dir(path: &str) -> Result<(), String> {
    // Directories are created as needed; only their names are checked.
    if path.is_empty() {
        return Ok(());
    }
    let parts: Vec<&str> = path.split('/').collect();
    let cut = parts
        .iter()
        .position(|p| *p == "blobs" || *p == "ingest")
        .unwrap_or(parts.len());
    check_repo(&parts[..cut].join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<String>);

    impl Handler for Collect {
        fn item(&mut self, item: Item<'_>) -> Result<()> {
            self.0.push(match item {
                Item::LayoutFile { repo, name, .. } => format!("file {repo} {name}"),
                Item::Blob { repo, content, .. } => {
                    io::copy(content, &mut io::sink())?;
                    format!("blob {repo}")
                }
                Item::Link {
                    repo, from_repo, ..
                } => format!("link {repo} {from_repo}"),
            });
            Ok(())
        }
    }

    fn blob(bytes: &[u8]) -> Descriptor {
        Descriptor::new("x", Digest::sha256_of(bytes), bytes.len() as u64)
    }

    #[test]
    fn written_archive_reads_back_with_links_for_duplicates() {
        let mut w = Writer::new(Output::gzip(Vec::new()));
        w.add_file("a/oci-layout", b"{}").unwrap();
        w.add_blob("a", &blob(b"layer"), &mut &b"layer"[..])
            .unwrap();
        w.add_blob("b/c", &blob(b"layer"), &mut &b"layer"[..])
            .unwrap();
        let bytes = w.finish().unwrap();
        // Reproducible gzip header: no mtime, no file name.
        assert_eq!(&bytes[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(bytes[3] & 0x08, 0);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        let mut c = Collect(Vec::new());
        read(&bytes[..], "test", &mut c).unwrap();
        assert_eq!(c.0, ["file a oci-layout", "blob a", "link b/c a"]);
    }

    #[test]
    fn writer_refuses_content_that_does_not_match_its_digest() {
        let mut w = Writer::new(Output::plain(Vec::new()));
        assert!(w
            .add_blob("a", &blob(b"layer"), &mut &b"LAYER"[..])
            .is_err());
    }

    #[test]
    fn compressed_and_random_data_are_stored_text_is_compressed() {
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
        gz.write_all(&[7u8; 4096]).unwrap();
        assert!(!compressible(&gz.finish().unwrap()));
        let mut x: u64 = 1;
        let random: Vec<u8> = (0..SAMPLE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!compressible(&random));
        assert!(compressible(&b"{\"schemaVersion\": 2}\n".repeat(100)));
    }

    /// Hands out `data` in pieces whose sizes follow `sizes`, cycling.
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        n: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let want = self.sizes[self.n % self.sizes.len()];
            self.n += 1;
            let k = want.min(buf.len()).min(self.data.len());
            buf[..k].copy_from_slice(&self.data[..k]);
            self.data = &self.data[k..];
            Ok(k)
        }
    }

    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut x: u64 = 88172645463325252;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Reproducible archives: the bytes must not depend on how the content was read (a
    /// registry's response, a pipe, a file each deliver it in other pieces).
    #[test]
    fn archive_bytes_do_not_depend_on_how_blob_content_is_chunked() {
        let stored = pseudo_random(3 << 20);
        let text = b"compressible text, line after line\n".repeat(60_000);
        let archive = |sizes: &[usize]| {
            let mut w = Writer::new(Output::gzip(Vec::new()));
            w.add_file("a/oci-layout", b"{}").unwrap();
            for data in [&stored[..], &text[..]] {
                let mut r = Chunked {
                    data,
                    sizes: sizes.to_vec(),
                    n: 0,
                };
                w.add_blob("a", &blob(data), &mut r).unwrap();
            }
            w.finish().unwrap()
        };
        let whole = archive(&[usize::MAX]);
        for sizes in [&[4096][..], &[1, 7000, 333, 65536, 10], &[131072, 17]] {
            assert!(
                archive(sizes) == whole,
                "archive differs for reads of {sizes:?}"
            );
        }
    }

    #[test]
    fn headers_carry_sizes_of_8_gib_and_more() {
        let size = 9u64 << 30;
        let h = header(tar::EntryType::Regular, size);
        assert_eq!(h.entry_size().unwrap(), size);
        assert_eq!(h.size().unwrap(), size);
    }

    #[test]
    fn clean_path_strips_dot_prefixes_and_refuses_escapes() {
        assert_eq!(clean_path("./a/./b").unwrap(), "a/b");
        assert!(clean_path("/etc/passwd").is_err());
        assert!(clean_path("a/../../b").is_err());
    }

    #[test]
    fn classify_knows_layout_files_and_blobs() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let hex = &d[7..];
        assert!(
            matches!(classify("team/app/index.json"), Ok(Name::LayoutFile { repo, .. }) if repo == "team/app")
        );
        assert!(
            matches!(classify("oci-layout"), Ok(Name::LayoutFile { repo, .. }) if repo.is_empty())
        );
        assert!(
            matches!(classify(&format!("a/blobs/sha256/{hex}")), Ok(Name::Blob { repo, .. }) if repo == "a")
        );
        assert!(classify("a/blobs/sha256/zz").is_err());
        assert!(classify("a/etc/passwd").is_err());
        assert!(classify("A/index.json").is_err());
        assert!(matches!(classify("a/ingest/tmp123"), Ok(Name::Ingest)));
    }
}
