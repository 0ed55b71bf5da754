//! What this process leaves behind when it is stopped. Temp files and staging
//! directories are registered here while they exist ([`Guard`]); on SIGINT, SIGTERM or
//! SIGHUP they are removed, newest first, and the process then dies of that signal as it
//! would have (so a shell sees the interruption). A process killed outright (SIGKILL,
//! power loss) cannot clean up: its temp names carry its pid ([`temp_prefix`]), and the
//! next run removes those of processes that are gone ([`remove_stale`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

/// What to remove for a registered path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A temp file.
    File,
    /// A staging directory and everything in it.
    Tree,
    /// A directory this process created, removed only if it is empty.
    EmptyDir,
}

static REGISTERED: Mutex<Vec<(u64, PathBuf, Kind)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// A registered path: removed if the process is interrupted while the guard lives.
/// Dropping the guard only forgets the path (the owner has removed or renamed it).
#[must_use]
pub struct Guard(u64);

impl Guard {
    /// A temp file at `path`.
    pub fn file(path: &Path) -> Guard {
        register(path, Kind::File)
    }

    /// A staging directory at `path`, removed with its content.
    pub fn tree(path: &Path) -> Guard {
        register(path, Kind::Tree)
    }

    /// A directory this process created at `path`, removed only if still empty.
    pub fn empty_dir(path: &Path) -> Guard {
        register(path, Kind::EmptyDir)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut r = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|(id, _, _)| *id != self.0);
    }
}

fn register(path: &Path, kind: Kind) -> Guard {
    install();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut r = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    r.push((id, path.to_path_buf(), kind));
    Guard(id)
}

/// Starts the thread that answers SIGINT, SIGTERM and SIGHUP (once per process; every
/// [`Guard`] calls it). Without it the signals keep their default action.
pub fn install() {
    INSTALL.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("interrupt".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    remove_registered();
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    std::process::exit(128 + sig);
                }
            });
    });
}

/// Removes every registered path, newest first (a staging tree before the directories
/// made to hold it).
fn remove_registered() {
    let r = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    for (_, path, kind) in r.iter().rev() {
        let _ = match kind {
            Kind::File => fs::remove_file(path),
            Kind::Tree => fs::remove_dir_all(path),
            Kind::EmptyDir => fs::remove_dir(path),
        };
    }
}

/// The prefix of this process's temp names: `<base><pid>-`.
pub fn temp_prefix(base: &str) -> String {
    format!("{base}{}-", std::process::id())
}

/// Removes the entries of `dir` named `<base><pid>-...` whose process no longer runs:
/// what a killed run left. Entries of running processes (another run writing into the
/// same place) are left alone, and so is everything when liveness cannot be told.
pub fn remove_stale(dir: &Path, base: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if process_is_gone(pid) {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}

/// True when no process `pid` runs (Linux: no `/proc/<pid>`, or only a zombie that its
/// parent has not reaped yet: a killed run stays one for a while); false when it cannot
/// tell.
fn process_is_gone(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return false;
    }
    match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
        // `pid (comm) S ...`: the state follows the last ')', as comm may hold one.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => !proc.join(pid.to_string()).exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_process_not_yet_reaped_counts_as_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        assert!(!process_is_gone(child.id()));
        child.kill().unwrap();
        // Not waited for: a zombie until `wait`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !process_is_gone(child.id()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(process_is_gone(child.id()), "a zombie counts as running");
        child.wait().unwrap();
        assert!(process_is_gone(child.id()));
    }

    #[test]
    fn stale_entries_of_gone_processes_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let mine = std::process::id();
        let stale_file = dir.path().join(format!("blob-{gone}-abc"));
        let stale_dir = dir.path().join(format!("blob-{gone}-dir"));
        let live = dir.path().join(format!("blob-{mine}-abc"));
        let other = dir.path().join(format!("other-{gone}-abc"));
        fs::write(&stale_file, b"x").unwrap();
        fs::create_dir(&stale_dir).unwrap();
        fs::write(stale_dir.join("f"), b"x").unwrap();
        fs::write(&live, b"x").unwrap();
        fs::write(&other, b"x").unwrap();
        remove_stale(dir.path(), "blob-");
        assert!(!stale_file.exists() && !stale_dir.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn dropped_guards_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        let g = Guard::file(&p);
        let count = |p: &Path| {
            REGISTERED
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, q, _)| q == p)
                .count()
        };
        assert_eq!(count(&p), 1);
        drop(g);
        assert_eq!(count(&p), 0);
    }
}
