//! Repository locks.
//!
//! Writers (`backup`, `copy`, `check`) take a **shared** lock: any number may run at once, each
//! writing its own packs and index files. `forget` and `prune` take an **exclusive** lock, which
//! excludes every other lock. Readers (`mount`, `restore`, `ls`) take none: they cope with a
//! prune by reloading the index (see [`Repository::read_blob`]).
//!
//! Taking a lock: write our lock file, then list the others; on a conflict remove ours and fail
//! (or retry until a deadline). Two processes doing this at once each see the other's file, so
//! at most one of two conflicting lockers proceeds.
//!
//! A lock names its host, user, PID, process start time and purpose. It is **stale** when its
//! process is gone (same host: the PID does not exist, or belongs to a process started at
//! another time) or when it was not refreshed for [`STALE_AFTER`]; stale locks are ignored,
//! reported, and removed by `chronofs unlock`. A holder rewrites its lock every
//! [`REFRESH_EVERY`] and checks before destructive steps that it still holds it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::crypto::Scheme;
use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::lock::{Lock, MAX_LOCK_LEN};

use super::{Repository, layout, now_ns};
use crate::storage::Storage;

/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a holder refreshes its lock.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// Shared (writers) or exclusive (forget, prune).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Many holders at once.
    Shared,
    /// The only holder.
    Exclusive,
}

/// A lock file found in the repository.
#[derive(Debug)]
pub struct FoundLock {
    /// Repository-relative path.
    pub file: String,
    /// The lock, or why it could not be read.
    pub lock: Result<Lock>,
}

impl FoundLock {
    /// Why this lock is stale, or `None` if it may be live (an unreadable lock is not stale:
    /// it may come from a newer chronofs).
    #[must_use]
    pub fn stale_reason(&self) -> Option<String> {
        self.lock.as_ref().ok().and_then(stale_reason)
    }

    /// One line saying what the lock is.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.lock {
            Ok(l) => format!("{} ({})", describe(l), self.file),
            Err(e) => format!("unreadable lock file {}: {e}", self.file),
        }
    }
}

/// "exclusive lock by alice@host, PID 12 (prune), taken 2026-…".
#[must_use]
pub fn describe(l: &Lock) -> String {
    format!(
        "{} lock by {}@{}, PID {} ({}), refreshed {}",
        if l.exclusive { "exclusive" } else { "shared" },
        l.username,
        l.hostname,
        l.pid,
        l.purpose,
        crate::format::snapshot::rfc3339(l.time_ns)
    )
}

/// Why `l` is stale, if it is.
#[must_use]
pub fn stale_reason(l: &Lock) -> Option<String> {
    let age_ns = now_ns().saturating_sub(l.time_ns);
    if u128::try_from(age_ns).unwrap_or(0) > STALE_AFTER.as_nanos() {
        return Some(format!(
            "not refreshed for {} minutes",
            age_ns / 60_000_000_000
        ));
    }
    if l.hostname != crate::sys::hostname() {
        return None;
    }
    let reused = || {
        l.process_start != 0
            && crate::sys::process_start_ticks(l.pid).is_some_and(|t| t != l.process_start)
    };
    match crate::sys::process_exists(l.pid) {
        Some(false) => Some(format!("process {} no longer runs", l.pid)),
        Some(true) if reused() => Some(format!(
            "process {} no longer runs (its PID now belongs to another process)",
            l.pid
        )),
        _ => None,
    }
}

/// Every lock file in the repository.
///
/// # Errors
/// Failure to list the lock directory.
pub fn list(repo: &Repository) -> Result<Vec<FoundLock>> {
    let mut out = Vec::new();
    for name in repo.list_ids(layout::LOCK_DIR)? {
        let file = format!("{}/{name}", layout::LOCK_DIR);
        let lock = match repo.storage().read(&file, MAX_LOCK_LEN as u64) {
            Ok(b) => repo.scheme().and_then(|scheme| {
                Lock::decode(&b, scheme.payload()).map_err(|e| Error::corrupt(&file, e.to_string()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => Err(Error::repo_io("reading", &file, e)),
        };
        out.push(FoundLock { file, lock });
    }
    Ok(out)
}

/// Removes stale locks (all locks with `all`); returns the ones removed.
///
/// # Errors
/// Failure to list or remove lock files.
pub fn unlock(repo: &Repository, all: bool) -> Result<Vec<FoundLock>> {
    let mut removed = Vec::new();
    for found in list(repo)? {
        if all || found.stale_reason().is_some() {
            match repo.storage().remove(&found.file) {
                Ok(()) => removed.push(found),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::repo_io("removing", &found.file, e)),
            }
        }
    }
    Ok(removed)
}

/// A lock held by this process; released (its file removed) on drop.
pub struct RepoLock {
    held: Arc<Held>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
    /// Stale locks of other processes that were ignored when taking this one.
    pub ignored_stale: Vec<String>,
}

struct Held {
    storage: Arc<dyn Storage>,
    scheme: Scheme,
    lock: Lock,
    file: Mutex<String>,
    refreshed: Mutex<Instant>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes `lock` (with the current time) and returns its path.
fn write_lock(storage: &dyn Storage, scheme: &Scheme, lock: &mut Lock) -> Result<String> {
    lock.time_ns = now_ns();
    let bytes = lock
        .encode(scheme.payload())
        .map_err(|e| Error::corrupt("<new lock>", e.to_string()))?;
    let file = format!("{}/{}", layout::LOCK_DIR, Id::hash(&bytes).to_hex());
    storage
        .write(&file, &bytes)
        .map_err(|e| Error::repo_io("writing", &file, e))?;
    Ok(file)
}

impl RepoLock {
    /// Takes a lock of `kind` for `purpose`, retrying for up to `wait` while another process
    /// holds a conflicting one.
    ///
    /// # Errors
    /// [`Error::Locked`] naming the holder of a conflicting lock; I/O errors.
    pub fn acquire(
        repo: &Repository,
        kind: LockKind,
        purpose: &str,
        wait: Duration,
    ) -> Result<RepoLock> {
        let deadline = Instant::now() + wait;
        let pid = std::process::id();
        let uid = crate::sys::euid();
        let mut lock = Lock {
            exclusive: kind == LockKind::Exclusive,
            hostname: crate::sys::hostname(),
            username: crate::sys::user_name(uid).unwrap_or_else(|| uid.to_string()),
            pid,
            process_start: crate::sys::process_start_ticks(pid).unwrap_or(0),
            time_ns: 0,
            purpose: purpose.to_string(),
        };
        let mut pause = Duration::from_millis(50);
        loop {
            let file = write_lock(repo.storage(), repo.scheme()?, &mut lock)?;
            let mut conflict = None;
            let mut ignored_stale = Vec::new();
            let others = match list(repo) {
                Ok(o) => o,
                Err(e) => {
                    let _ = repo.storage().remove(&file);
                    return Err(e);
                }
            };
            for other in others.iter().filter(|o| o.file != file) {
                if let Some(why) = other.stale_reason() {
                    ignored_stale.push(format!("{}: stale, {why}", other.describe()));
                    continue;
                }
                let conflicts = match &other.lock {
                    Ok(l) => l.exclusive || kind == LockKind::Exclusive,
                    Err(_) => true,
                };
                if conflicts {
                    conflict = Some(other.describe());
                    break;
                }
            }
            let Some(holder) = conflict else {
                return Ok(RepoLock::start(
                    repo,
                    repo.scheme()?.clone(),
                    lock,
                    file,
                    ignored_stale,
                ));
            };
            let _ = repo.storage().remove(&file);
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Locked(format!(
                    "repository {} is locked: {holder}; wait for it to finish (or use \
                     --retry-lock), or if that process is gone, run `chronofs unlock`",
                    repo.location().display()
                )));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn start(
        repo: &Repository,
        scheme: Scheme,
        lock: Lock,
        file: String,
        ignored_stale: Vec<String>,
    ) -> Self {
        let held = Arc::new(Held {
            storage: repo.storage_arc(),
            scheme,
            lock,
            file: Mutex::new(file),
            refreshed: Mutex::new(Instant::now()),
        });
        let (tx, rx) = mpsc::channel::<()>();
        let h = Arc::clone(&held);
        let refresher = std::thread::Builder::new()
            .name("chronofs-lock".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(REFRESH_EVERY) {
                    h.refresh();
                }
            })
            .ok();
        RepoLock {
            held,
            stop: Some(tx),
            refresher,
            ignored_stale,
        }
    }

    /// Checks that the lock is still ours and fresh; call before a destructive step.
    ///
    /// # Errors
    /// [`Error::Locked`] if the lock file was removed or could not be refreshed in time.
    pub fn ensure_held(&self) -> Result<()> {
        let file = guard(&self.held.file).clone();
        let lost = |why: String| {
            Err(Error::Locked(format!(
                "lost the repository lock ({why}); stopped before changing anything more"
            )))
        };
        if guard(&self.held.refreshed).elapsed() + REFRESH_EVERY > STALE_AFTER {
            return lost("it could not be refreshed".into());
        }
        match self.held.storage.len(&file) {
            Ok(_) => Ok(()),
            Err(e) => lost(format!("{file}: {e}")),
        }
    }
}

impl Held {
    /// Writes a fresh lock file, then removes the previous one.
    fn refresh(&self) {
        let mut lock = self.lock.clone();
        if let Ok(new) = write_lock(&*self.storage, &self.scheme, &mut lock) {
            let old = std::mem::replace(&mut *guard(&self.file), new);
            *guard(&self.refreshed) = Instant::now();
            let _ = self.storage.remove(&old);
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let file = guard(&self.held.file).clone();
        let _ = self.held.storage.remove(&file);
    }
}
