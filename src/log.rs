//! What the tools tell the user: one line per reference or layout on stderr, prefixed with
//! the tool's name, and a count of failures that decides the exit status.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Log {
    tool: &'static str,
    quiet: bool,
    failures: AtomicUsize,
}

impl Log {
    pub fn new(tool: &'static str, quiet: bool) -> Log {
        Log {
            tool,
            quiet,
            failures: AtomicUsize::new(0),
        }
    }

    pub fn tool(&self) -> &'static str {
        self.tool
    }

    /// A progress or result line (silenced by `--quiet`).
    pub fn info(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}: {msg}", self.tool);
        }
    }

    /// A failure: always printed, on one line, and counted.
    pub fn error(&self, msg: impl std::fmt::Display) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        let one_line = msg.to_string().replace('\n', " ");
        let _ = writeln!(std::io::stderr().lock(), "{}: {one_line}", self.tool);
    }

    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }
}

/// Sizes for people: `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
