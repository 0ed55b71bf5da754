//! The command line: parsing with lexopt in one explicit loop over the flag table
//! (`flags`), help, man pages and completions generated from it (`doc`), and the thin
//! composition of library stages each tool is. Exit status: 0 ok, 1 failure, 2 usage.

pub mod doc;
pub mod flags;

use std::ffi::OsString;
use std::path::PathBuf;

pub use flags::Tool;
use flags::{flags_for, Key};

use crate::fetch::{self, Options};
use crate::log::Log;
use crate::reference::{Reference, Target};
use crate::{push, registry};

/// The parsed command line, before the tool checks what it needs.
#[derive(Debug, Default)]
pub struct Args {
    pub output: Option<PathBuf>,
    pub input: Option<PathBuf>,
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
            if args.positionals.is_empty() {
                return Err(Usage("no references given".into()));
            }
            let refs = parse_refs(&args.positionals)?;
            if tool == Tool::Backup && !output.is_dir() {
                return Err(Usage(format!(
                    "{}: not an existing directory",
                    output.display()
                )));
            }
            if let Err(e) = std::fs::create_dir_all(&output) {
                log.error(format!("{}: {e}", output.display()));
                return Ok(1);
            }
            fetch::fetch_to_dir(&refs, &output, &opts, &log);
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
            push::push_dir(&input, &target, &opts, &log);
        }
    }
    Ok(if log.failures() > 0 { 1 } else { 0 })
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
        assert!(parse(Tool::Backup, argv(&["--input", "x"])).is_err());
        assert!(parse(Tool::Restore, argv(&["--output", "x"])).is_err());
        assert!(parse(Tool::Fetch, argv(&["--bogus"])).is_err());
    }

    #[test]
    fn repeated_output_is_a_usage_error() {
        assert!(parse(Tool::Fetch, argv(&["-o", "a", "-o", "b"])).is_err());
    }
}
