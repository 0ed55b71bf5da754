//! The command line: parsing with lexopt in one explicit loop over the flag table
//! (`flags`), help, man pages and completions generated from it (`doc`), and the thin
//! composition of library stages each tool is. Exit status: 0 ok, 1 failure, 2 usage.

pub mod doc;
pub mod flags;

use std::ffi::OsString;
use std::path::PathBuf;

pub use flags::Tool;
use flags::{flags_for, Key};

use crate::archive::{self, Output};
use crate::fetch::{self, Options};
use crate::log::Log;
use crate::reference::{Reference, Target};
use crate::{pack, push, registry, unpack};

/// The parsed command line, before the tool checks what it needs.
#[derive(Debug, Default)]
pub struct Args {
    pub output: Option<PathBuf>,
    pub input: Option<PathBuf>,
    pub directory: Option<PathBuf>,
    pub plain_http: bool,
    pub jobs: Option<usize>,
    pub quiet: bool,
    pub positionals: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Args),
    Help,
    Version,
    Generate(String),
}

/// A usage error: exit 2.
#[derive(Debug)]
pub struct Usage(pub String);

pub fn parse(tool: Tool, argv: impl IntoIterator<Item = OsString>) -> Result<Command, Usage> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(argv);
    let mut args = Args::default();
    while let Some(arg) = parser.next().map_err(|e| Usage(e.to_string()))? {
        let key = match &arg {
            Short(c) => flags_for(tool)
                .find(|d| d.flag.short == Some(*c))
                .map(|d| d.key)
                .ok_or_else(|| Usage(format!("unknown option -{c}")))?,
            Long(name) => flags_for(tool)
                .find(|d| d.flag.long == *name)
                .map(|d| d.key)
                .ok_or_else(|| Usage(format!("unknown option --{name}")))?,
            Value(v) => {
                args.positionals.push(v.clone());
                continue;
            }
        };
        let mut value =
            || -> Result<OsString, Usage> { parser.value().map_err(|e| Usage(format!("{e}"))) };
        match key {
            Key::Output => {
                args.output = Some(PathBuf::from(once(
                    args.output.is_some(),
                    "--output",
                    value()?,
                )?))
            }
            Key::Input => {
                args.input = Some(PathBuf::from(once(
                    args.input.is_some(),
                    "--input",
                    value()?,
                )?))
            }
            Key::Directory => {
                args.directory = Some(PathBuf::from(once(
                    args.directory.is_some(),
                    "--directory",
                    value()?,
                )?))
            }
            Key::PlainHttp => args.plain_http = true,
            Key::Quiet => args.quiet = true,
            Key::Jobs => {
                let v = value()?;
                let n = v
                    .to_str()
                    .and_then(|s| s.parse::<usize>().ok())
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| {
                        Usage(format!("--jobs takes a number from 1 to 64, not {v:?}"))
                    })?;
                args.jobs = Some(n);
            }
            Key::Help => return Ok(Command::Help),
            Key::Version => return Ok(Command::Version),
            Key::Generate => {
                let v = value()?;
                return Ok(Command::Generate(v.to_string_lossy().into_owned()));
            }
        }
    }
    Ok(Command::Run(args))
}

fn once(already: bool, name: &str, v: OsString) -> Result<OsString, Usage> {
    if already {
        return Err(Usage(format!("{name} given more than once")));
    }
    if v.is_empty() {
        return Err(Usage(format!(
            "{name} takes a path ('-' for a pipe), not ''"
        )));
    }
    Ok(v)
}

/// Runs `tool` with the process's arguments; returns the exit status.
pub fn main(tool: Tool) -> i32 {
    let doc = tool.doc();
    let command = match parse(tool, std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(Usage(msg)) => return usage_error(tool, &msg),
    };
    match command {
        Command::Help => {
            print!("{}", doc::help(tool));
            0
        }
        Command::Version => {
            println!("{} {}", doc.name, env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Generate(kind) => match doc::generate(tool, &kind) {
            Some(text) => {
                print!("{text}");
                0
            }
            None => usage_error(tool, &format!("unknown --generate kind {kind:?}")),
        },
        Command::Run(args) => match run(tool, args) {
            Ok(code) => code,
            Err(Usage(msg)) => usage_error(tool, &msg),
        },
    }
}

fn usage_error(tool: Tool, msg: &str) -> i32 {
    let doc = tool.doc();
    eprintln!("{}: {msg}", doc.name);
    eprintln!("usage: {} (see '{} --help')", doc.usage, doc.name);
    2
}

fn run(tool: Tool, args: Args) -> Result<i32, Usage> {
    let doc = tool.doc();
    let log = Log::new(doc.name, args.quiet);
    let opts = Options {
        registry: registry::Options {
            plain_http: args.plain_http,
        },
        jobs: args.jobs.unwrap_or(4),
    };
    match tool {
        Tool::Fetch | Tool::Backup => {
            let output = args
                .output
                .ok_or_else(|| Usage("--output is required".into()))?;
            let refs =
                match (&args.input, args.positionals.is_empty()) {
                    (Some(_), false) => return Err(Usage(
                        "references come either from --input or from the command line, not both"
                            .into(),
                    )),
                    (Some(list), true) => refs_from_list(list)?,
                    (None, true) => return Err(Usage("no references given".into())),
                    (None, false) => parse_refs(&args.positionals)?,
                };
            if is_dash(&output) {
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    return Err(Usage(
                        "refusing to write an archive to a terminal (use -o PATH or a pipe)".into(),
                    ));
                }
                // Fetch writes the plain layout stream, backup the compressed archive.
                let stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                let out = if tool == Tool::Fetch {
                    Output::plain(stdout)
                } else {
                    Output::gzip(stdout)
                };
                // Stdout cannot be taken back: a run with failures ends its stream with the
                // mark that makes every reader refuse it, as a file would not be written.
                let result = write_archive(out, |w| {
                    fetch::fetch_to_archive(&refs, w, &opts, &log)?;
                    if log.failures() > 0 {
                        w.mark_incomplete()?;
                    }
                    Ok(())
                });
                if let Err(e) = result {
                    log.error(format!("writing to stdout: {e:#}"));
                }
            } else if tool == Tool::Fetch || output.is_dir() || names_a_directory(&output) {
                if output.exists() && !output.is_dir() {
                    log.error(format!(
                        "{}: exists and is not a directory",
                        output.display()
                    ));
                    return Ok(1);
                }
                if tool == Tool::Backup && !output.is_dir() {
                    // `-o new/`: a directory was meant, and only an existing one is a directory
                    // output; an archive named `new/` cannot be.
                    log.error(format!(
                        "{}: no such directory (an output ending in '/' must be an existing directory)",
                        output.display()
                    ));
                    return Ok(1);
                }
                if output.join(crate::layout::INDEX_FILE).is_file() {
                    // Layouts written inside it would sit beside its blobs/, and restore
                    // and pack, which take it for a single layout, would leave them out.
                    log.error(format!(
                        "{}: is an OCI layout itself (it holds index.json); back up into a directory of layouts",
                        output.display()
                    ));
                    return Ok(1);
                }
                if let Some(layout) = inside_a_layouts_store(&output) {
                    log.error(format!(
                        "{}: is inside the blobs/ or ingest/ directory of the layout {}; back up into a directory of layouts",
                        output.display(),
                        layout.display()
                    ));
                    return Ok(1);
                }
                if let Err(e) = std::fs::create_dir_all(&output) {
                    log.error(format!("{}: {e}", output.display()));
                    return Ok(1);
                }
                fetch::fetch_to_dir(&refs, &output, &opts, &log);
            } else {
                let result = OutputFile::create(&output).and_then(|file| {
                    let stream = file.is_stream();
                    let file = write_archive(Output::gzip(file), |w| {
                        fetch::fetch_to_archive(&refs, w, &opts, &log)?;
                        if stream && log.failures() > 0 {
                            w.mark_incomplete()?;
                        }
                        Ok(())
                    })?;
                    if log.failures() > 0 && stream {
                        anyhow::bail!("incomplete, because some references failed");
                    }
                    if log.failures() > 0 {
                        anyhow::bail!("not written, because some references failed");
                    }
                    file.commit()
                });
                if let Err(e) = result {
                    log.error(format!("{}: {e:#}", output.display()));
                }
            }
        }
        Tool::Push | Tool::Restore => {
            let input = args
                .input
                .ok_or_else(|| Usage("--input is required".into()))?;
            let target = match args.positionals.as_slice() {
                [t] => {
                    let t = t
                        .to_str()
                        .ok_or_else(|| Usage(format!("invalid target {t:?}")))?;
                    Target::parse(t).map_err(Usage)?
                }
                [] => return Err(Usage("no TARGET given".into())),
                _ => return Err(Usage("exactly one TARGET is taken".into())),
            };
            if is_dash(&input) {
                if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    return Err(Usage(
                        "--input - reads an archive, and stdin is a terminal".into(),
                    ));
                }
                push::push_stream(std::io::stdin().lock(), "stdin", &target, &opts, &log);
            } else if input.is_dir() {
                if target.namespace.is_none() && input.join(crate::layout::INDEX_FILE).is_file() {
                    return Err(Usage(format!(
                        "{} is a single layout, so TARGET must name a repository (HOST/REPOSITORY)",
                        input.display()
                    )));
                }
                push::push_dir(&input, &target, &opts, &log);
            } else {
                match std::fs::File::open(&input) {
                    Ok(f) => {
                        push::push_stream(f, &input.display().to_string(), &target, &opts, &log)
                    }
                    Err(e) => log.error(format!("{}: {e}", input.display())),
                }
            }
        }
        Tool::Pack => {
            let dir = match args.positionals.as_slice() {
                [] => PathBuf::from("."),
                [d] => PathBuf::from(d),
                _ => return Err(Usage("at most one DIR is taken".into())),
            };
            if is_dash(&dir) && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(Usage(
                    "DIR '-' reads a layout stream, and stdin is a terminal".into(),
                ));
            }
            if !is_dash(&dir) && !dir.is_dir() {
                // Checked first, so that nothing is written to stdout for a wrong path.
                log.error(format!("{}: no such directory", dir.display()));
                return Ok(1);
            }
            let result = match &args.output {
                Some(out) if !is_dash(out) => OutputFile::create(out).and_then(|file| {
                    write_archive(Output::gzip(file), |w| pack_into(&dir, w))?.commit()
                }),
                _ => {
                    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                        return Err(Usage(
                            "refusing to write compressed data to a terminal (use -o FILE or a pipe)"
                                .into(),
                        ));
                    }
                    let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                    write_archive(Output::gzip(out), |w| pack_into(&dir, w)).map(|_| ())
                }
            };
            if let Err(e) = result {
                log.error(format!("{e:#}"));
            }
        }
        Tool::Unpack => {
            let (input, what): (Box<dyn std::io::Read>, String) = match args.positionals.as_slice()
            {
                [] if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                    return Err(Usage("no FILE given and stdin is a terminal".into()))
                }
                [] => (Box::new(std::io::stdin().lock()), "stdin".into()),
                [f] if f == "-" => (Box::new(std::io::stdin().lock()), "stdin".into()),
                [f] => {
                    let path = PathBuf::from(f);
                    match std::fs::File::open(&path) {
                        Ok(file) => (Box::new(file), path.display().to_string()),
                        Err(e) => {
                            log.error(format!("{}: {e}", path.display()));
                            return Ok(1);
                        }
                    }
                }
                _ => return Err(Usage("at most one FILE is taken".into())),
            };
            let dir = args.directory.unwrap_or_else(|| PathBuf::from("."));
            if is_dash(&dir) {
                let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                let result = write_archive(Output::plain(out), |w| {
                    let mut repack = pack::Repack { writer: w };
                    archive::read(input, &what, &mut repack)
                });
                if let Err(e) = result {
                    log.error(format!("{e:#}"));
                }
            } else {
                match unpack::unpack(input, &what, &dir) {
                    Ok(repos) => {
                        for r in repos {
                            let shown = if r.is_empty() {
                                dir.clone()
                            } else {
                                dir.join(r)
                            };
                            log.info(format!("{what} -> {}", shown.display()));
                        }
                    }
                    Err(e) => log.error(format!("{e:#}")),
                }
            }
        }
    }
    Ok(if log.failures() > 0 { 1 } else { 0 })
}

/// Packs `dir`, or the layout stream on stdin for `-`, into `w`.
fn pack_into<W: std::io::Write>(
    dir: &std::path::Path,
    w: &mut archive::Writer<W>,
) -> anyhow::Result<()> {
    if is_dash(dir) {
        let mut repack = pack::Repack { writer: w };
        archive::read(std::io::stdin().lock(), "stdin", &mut repack)
    } else {
        pack::pack_dir(dir, w)
    }
}

fn is_dash(p: &std::path::Path) -> bool {
    p.as_os_str() == "-"
}

/// Runs `fill` on an archive writer over `w`, then finishes the archive and returns `w`.
/// When `fill` fails, the archive is ended with the mark that every reader refuses (what
/// went to a pipe cannot be taken back; a file is not committed anyway).
fn write_archive<W: std::io::Write>(
    out: Output<W>,
    fill: impl FnOnce(&mut archive::Writer<W>) -> anyhow::Result<()>,
) -> anyhow::Result<W> {
    let mut writer = archive::Writer::new(out);
    if let Err(e) = fill(&mut writer) {
        let _ = writer.mark_incomplete();
        let _ = writer.finish();
        return Err(e);
    }
    writer.finish()
}

/// Where an archive file goes. A regular file (new or replaced) is written through a temp
/// file beside it and renamed into place by `commit`; dropped without `commit`, it leaves
/// nothing, and an existing file is untouched. A symbolic link is followed: the file it
/// points at is replaced, the link stays. An existing device, FIFO or socket (`/dev/null`,
/// a named pipe, `/dev/stdout`) is written to in place, as `>` would: replacing it with a
/// file would destroy it.
enum OutputFile {
    Atomic {
        tmp: std::io::BufWriter<tempfile::NamedTempFile>,
        dest: PathBuf,
        _guard: crate::interrupt::Guard,
    },
    /// Bytes written here cannot be taken back: a stream, like stdout.
    Stream(std::io::BufWriter<std::fs::File>),
}

impl OutputFile {
    fn create(dest: &std::path::Path) -> anyhow::Result<OutputFile> {
        if let Ok(meta) = std::fs::metadata(dest) {
            if !meta.is_file() && !meta.is_dir() {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dest)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", dest.display()))?;
                return Ok(OutputFile::Stream(std::io::BufWriter::with_capacity(
                    1 << 20,
                    file,
                )));
            }
        }
        let dest = resolve_links(dest);
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The temp file of a killed earlier run is removed; one of a running one is kept.
        let base = format!(".{name}.tmp-");
        crate::interrupt::remove_stale(&dir, &base);
        let tmp = tempfile::Builder::new()
            .prefix(&crate::interrupt::temp_prefix(&base))
            .tempfile_in(&dir)
            .map_err(|e| {
                let e = crate::layout::without_temp_path(e);
                anyhow::anyhow!("cannot create a file in {}: {e}", dir.display())
            })?;
        let guard = crate::interrupt::Guard::file(tmp.path());
        Ok(OutputFile::Atomic {
            tmp: std::io::BufWriter::with_capacity(1 << 20, tmp),
            dest,
            _guard: guard,
        })
    }

    /// True when what is written goes out at once (a device or a pipe), so a failed run
    /// must end its stream with the mark every reader refuses.
    fn is_stream(&self) -> bool {
        matches!(self, OutputFile::Stream(_))
    }

    fn commit(self) -> anyhow::Result<()> {
        let (tmp, dest) = match self {
            OutputFile::Stream(mut w) => return Ok(std::io::Write::flush(&mut w)?),
            OutputFile::Atomic { tmp, dest, .. } => (tmp, dest),
        };
        let tmp = tmp
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        tmp.as_file().sync_all()?;
        tmp.persist(&dest)
            .map_err(|e| anyhow::anyhow!("{}", e.error))?;
        Ok(())
    }
}

/// `path` with symbolic links in its last component followed (a dangling link names the
/// file to create), so that replacing the file keeps the link.
fn resolve_links(path: &std::path::Path) -> PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {}
            _ => break,
        }
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    path
}

impl std::io::Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            OutputFile::Atomic { tmp, .. } => tmp.write(buf),
            OutputFile::Stream(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            OutputFile::Atomic { tmp, .. } => tmp.flush(),
            OutputFile::Stream(w) => w.flush(),
        }
    }
}

/// The layout whose `blobs/` or `ingest/` holds `dir`, if one does: layouts written
/// there would be mixed into its store, where no reader looks for them.
fn inside_a_layouts_store(dir: &std::path::Path) -> Option<PathBuf> {
    let abs = std::fs::canonicalize(dir).ok()?;
    let mut child: Option<&std::path::Path> = None;
    for a in abs.ancestors() {
        if let Some(c) = child {
            let store = c.file_name().is_some_and(|n| n == "blobs" || n == "ingest");
            if store && a.join(crate::layout::INDEX_FILE).is_file() {
                return Some(a.to_path_buf());
            }
        }
        child = Some(a);
    }
    None
}

/// True when `path` is written with a trailing '/': a directory is meant.
fn names_a_directory(path: &std::path::Path) -> bool {
    path.as_os_str().as_encoded_bytes().ends_with(b"/")
}

/// References from a list file (or stdin for `-`): one per line; blank lines and `#`
/// comments (whole lines, or after a space at the end of one) skipped; spaces, CR and a
/// leading byte-order mark trimmed. A bad line is a usage error naming it.
fn refs_from_list(list: &std::path::Path) -> Result<Vec<Reference>, Usage> {
    let (text, name) = if is_dash(list) {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut s)
            .map_err(|e| Usage(format!("stdin: {e}")))?;
        (s, "stdin".to_string())
    } else {
        let s =
            std::fs::read_to_string(list).map_err(|e| Usage(format!("{}: {e}", list.display())))?;
        (s, list.display().to_string())
    };
    let mut refs = Vec::new();
    // A byte-order mark (editors on Windows write one) is not part of the first reference.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    for (i, line) in text.lines().enumerate() {
        // A comment runs from a '#' that starts the line or follows a space or tab.
        let line = match line.find(" #").or_else(|| line.find("\t#")) {
            Some(at) => &line[..at],
            None => line,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        refs.push(Reference::parse(line).map_err(|e| Usage(format!("{name}:{}: {e}", i + 1)))?);
    }
    if refs.is_empty() {
        return Err(Usage(format!("{name}: no references in the list")));
    }
    Ok(refs)
}

fn parse_refs(values: &[OsString]) -> Result<Vec<Reference>, Usage> {
    values
        .iter()
        .map(|v| {
            let s = v
                .to_str()
                .ok_or_else(|| Usage(format!("invalid reference {v:?}")))?;
            Reference::parse(s).map_err(Usage)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_flags_and_positionals_in_any_order() {
        let Command::Run(a) = parse(
            Tool::Backup,
            argv(&["r1", "-o", "d", "--plain-http", "r2", "-j3"]),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.output, Some(PathBuf::from("d")));
        assert!(a.plain_http);
        assert_eq!(a.jobs, Some(3));
        assert_eq!(a.positionals, argv(&["r1", "r2"]));
    }

    #[test]
    fn flags_of_other_tools_are_refused() {
        assert!(parse(Tool::Backup, argv(&["--directory", "x"])).is_err());
        assert!(parse(Tool::Pack, argv(&["--plain-http"])).is_err());
        assert!(parse(Tool::Restore, argv(&["--output", "x"])).is_err());
        assert!(parse(Tool::Fetch, argv(&["--bogus"])).is_err());
    }

    #[test]
    fn repeated_output_is_a_usage_error() {
        assert!(parse(Tool::Fetch, argv(&["-o", "a", "-o", "b"])).is_err());
    }
}
