//! Repository locks.
//!
//! Three modes (docs/FORMAT.md, "Lock files" and "Prune beside writers"):
//! - **shared**: writers (`backup`, `copy`, `check`); any number at once;
//! - **maintenance**: `forget` and `prune`; one at a time, but beside any number of writers;
//! - **exclusive**: format changes (`append-only`); alone.
//!
//! Readers (`mount`, `restore`, `ls`) take none: they cope with a prune by reloading the index
//! (see [`Repository::read_blob`]).
//!
//! Taking a lock: write our lock file, then list the others; on a conflict remove ours and fail
//! (or retry until a deadline). Two processes doing this at once each see the other's file, so
//! at most one of two conflicting lockers proceeds.
//!
//! A lock names its holder ([`WriterId`], host, user, PID, process start time, purpose) and,
//! for a writer, the prune epoch of the index it deduplicates against (its *basis*). A holder
//! rewrites its lock every [`refresh_every`]. A lock is **stale** when its process is gone
//! (same host: the PID does not exist, or belongs to a process started at another time) or
//! when it was not refreshed for [`stale_after`] by *both* the storage's clock (the file's
//! modification time against the newest lock file's) and the holder's stated time against
//! ours, so that no single skewed clock can make a live lock look stale. A prune revokes a
//! stale writer through a fence ([`super::fence`]) rather than just deleting its lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::crypto::Scheme;
use crate::error::{Error, Result};
use crate::format::id::{Id, WriterId};
use crate::format::lock::{Lock, MAX_LOCK_LEN};

use super::{Repository, layout, now_ns};
use crate::storage::Storage;

pub use crate::format::lock::LockMode as LockKind;

/// A lock not refreshed for this long (30 minutes) is stale.
const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// How long an unrefreshed lock stays live: 30 minutes, or `CHRONOFS_LOCK_STALE_SECS` seconds
/// (for tests that stop a writer past it; at least 2).
#[must_use]
pub fn stale_after() -> Duration {
    std::env::var("CHRONOFS_LOCK_STALE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(STALE_AFTER, |s| Duration::from_secs(s.max(2)))
}

/// How often a holder refreshes its lock: a sixth of [`stale_after`].
#[must_use]
pub fn refresh_every() -> Duration {
    stale_after() / 6
}

/// A lock file found in the repository.
#[derive(Debug)]
pub struct FoundLock {
    /// Repository-relative path.
    pub file: String,
    /// The lock, or why it could not be read.
    pub lock: Result<Lock>,
    /// How long ago the file was written, by the storage's clock (ns), against the newest
    /// lock file listed with it.
    pub storage_age_ns: i64,
}

impl FoundLock {
    /// Why this lock is stale, or `None` if it may be live (an unreadable lock is not stale:
    /// it may come from a newer chronofs).
    #[must_use]
    pub fn stale_reason(&self) -> Option<String> {
        self.lock
            .as_ref()
            .ok()
            .and_then(|l| stale_reason(l, self.storage_age_ns))
    }

    /// One line saying what the lock is.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.lock {
            Ok(l) => format!("{} ({})", describe(l), self.file),
            Err(e) => format!("unreadable lock file {}: {e}", self.file),
        }
    }

    /// Whether a holder of a `kind` lock may run beside this one (a stale one is ignored by
    /// the caller before asking).
    #[must_use]
    pub fn allows(&self, kind: LockKind) -> bool {
        let Ok(l) = &self.lock else {
            return false;
        };
        match (kind, l.mode) {
            (LockKind::Exclusive, _) | (_, LockKind::Exclusive) => false,
            (LockKind::Maintenance, LockKind::Maintenance) => false,
            // A writer of a chronofs that predates prune beside writers does not take part in
            // the protocol: maintenance waits for it.
            (LockKind::Maintenance, LockKind::Shared) => !l.is_legacy(),
            (LockKind::Shared, _) => true,
        }
    }
}

/// "maintenance lock by alice@host, PID 12 (prune), refreshed 2026-…".
#[must_use]
pub fn describe(l: &Lock) -> String {
    let mode = match l.mode {
        LockKind::Shared => "shared",
        LockKind::Maintenance => "maintenance",
        LockKind::Exclusive => "exclusive",
    };
    format!(
        "{mode} lock by {}@{}, PID {} ({}), refreshed {}",
        l.username,
        l.hostname,
        l.pid,
        l.purpose,
        crate::format::snapshot::rfc3339(l.time_ns)
    )
}

/// Why `l`, whose file was written `storage_age_ns` ago by the storage's clock, is stale, or
/// `None` if it may be live.
#[must_use]
pub fn stale_reason(l: &Lock, storage_age_ns: i64) -> Option<String> {
    let limit = i64::try_from(stale_after().as_nanos()).unwrap_or(i64::MAX);
    let stated_age_ns = now_ns().saturating_sub(l.time_ns);
    if storage_age_ns > limit && stated_age_ns > limit {
        let secs = storage_age_ns.min(stated_age_ns) / 1_000_000_000;
        return Some(if secs < 120 {
            format!("not refreshed for {secs} seconds")
        } else {
            format!("not refreshed for {} minutes", secs / 60)
        });
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

/// Every lock file in the repository (unreadable ones included, as errors), with its age by
/// the storage's clock against the newest lock file (or `now_file`, one just written).
///
/// # Errors
/// Listing failures.
pub fn list(repo: &Repository) -> Result<Vec<FoundLock>> {
    let times = repo
        .storage()
        .list_times(layout::LOCK_DIR)
        .map_err(|e| Error::repo_io("listing", layout::LOCK_DIR, e))?;
    let newest = times.iter().map(|(_, t)| *t).max().unwrap_or(0);
    let mut out = Vec::new();
    for (name, modified) in times.into_iter().filter(|(n, _)| n.parse::<Id>().is_ok()) {
        let file = format!("{}/{name}", layout::LOCK_DIR);
        let lock = match repo.storage().read(&file, MAX_LOCK_LEN as u64) {
            Ok(b) => repo.scheme().and_then(|scheme| {
                Lock::decode(&b, scheme.payload()).map_err(|e| Error::corrupt(&file, e.to_string()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => Err(Error::repo_io("reading", &file, e)),
        };
        out.push(FoundLock {
            file,
            lock,
            storage_age_ns: newest.saturating_sub(modified),
        });
    }
    Ok(out)
}

/// A lock held by this process. Dropping it removes the lock file.
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
    lock: Mutex<Lock>,
    file: Mutex<String>,
    refreshed: Mutex<Instant>,
    /// Our lock file vanished (a prune revoked us, or `unlock --remove-all` removed it): we
    /// stop refreshing and refuse to commit.
    lost: AtomicBool,
    /// Held while the lock file is replaced or checked, so that a check never looks for the
    /// file a refresh just replaced.
    replacing: Mutex<()>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_lock(storage: &dyn Storage, scheme: &Scheme, lock: &mut Lock) -> Result<String> {
    lock.time_ns = now_ns();
    let bytes = lock
        .encode(scheme.payload())
        .map_err(|e| Error::corrupt("<new lock>", e.to_string()))?;
    let file = format!("{}/{}", layout::LOCK_DIR, Id::hash(&bytes).to_hex());
    storage.write(&file, &bytes).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            // Our temporary file went: this process was stopped past the grace period while
            // writing, and a prune removed the file of a process that held no lock.
            Error::Revoked(format!(
                "writing the lock file {file} failed: its temporary file was removed while this \
                 process was stopped longer than the lock's grace period ({} s); nothing was \
                 written (run the command again)",
                stale_after().as_secs()
            ))
        } else {
            Error::repo_io("writing", &file, e)
        }
    })?;
    Ok(file)
}

/// A lock of `kind` for `purpose`, held by this process.
fn new_lock(kind: LockKind, purpose: &str) -> Result<Lock> {
    let pid = std::process::id();
    let uid = crate::sys::euid();
    Ok(Lock {
        mode: kind,
        writer: new_writer_id()?,
        basis: None,
        hostname: crate::sys::hostname(),
        username: crate::sys::user_name(uid).unwrap_or_else(|| uid.to_string()),
        pid,
        process_start: crate::sys::process_start_ticks(pid).unwrap_or(0),
        time_ns: 0,
        purpose: purpose.to_string(),
    })
}

/// A new random writer id.
fn new_writer_id() -> Result<WriterId> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .map_err(|e| Error::repo_io("writing", "<new lock>", std::io::Error::other(e)))?;
    Ok(WriterId(Id(b)))
}

impl RepoLock {
    /// Takes a lock of `kind`, retrying for up to `wait` while a conflicting one is held.
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
        let mut lock = new_lock(kind, purpose)?;
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
                if !other.allows(kind) {
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

    /// A shared lock taken whatever else is held: `unlock` writes one to learn the storage's
    /// "now" (the file's modification time) while others may hold any lock.
    ///
    /// # Errors
    /// Write failures.
    pub fn probe(repo: &Repository, purpose: &str) -> Result<RepoLock> {
        let mut lock = new_lock(LockKind::Shared, purpose)?;
        let file = write_lock(repo.storage(), repo.scheme()?, &mut lock)?;
        Ok(RepoLock::start(
            repo,
            repo.scheme()?.clone(),
            lock,
            file,
            Vec::new(),
        ))
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
            lock: Mutex::new(lock),
            file: Mutex::new(file),
            refreshed: Mutex::new(Instant::now()),
            lost: AtomicBool::new(false),
            replacing: Mutex::new(()),
        });
        let (tx, rx) = mpsc::channel::<()>();
        let h = Arc::clone(&held);
        let every = refresh_every();
        let refresher = std::thread::Builder::new()
            .name("chronofs-lock".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    // Revoked: stop. Anything else (storage unreachable) is tried again.
                    if let Err(Error::Revoked(_)) = h.refresh() {
                        break;
                    }
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

    /// This holder's writer id, named in its lock and in the snapshots it commits.
    #[must_use]
    pub fn writer(&self) -> WriterId {
        guard(&self.held.lock).writer
    }

    /// The repository-relative path of our lock file now.
    #[must_use]
    pub fn file(&self) -> String {
        guard(&self.held.file).clone()
    }

    /// The basis recorded so far (see [`RepoLock::set_basis`]).
    #[must_use]
    pub fn basis(&self) -> Option<u64> {
        guard(&self.held.lock).basis
    }

    /// Records the prune epoch of the index this holder just loaded, and rewrites the lock at
    /// once so that a prune sees it. Only the first call counts: a writer keeps deduplicating
    /// against what it saw first.
    ///
    /// # Errors
    /// As [`RepoLock::ensure_held`], or a failed write.
    pub fn set_basis(&self, epoch: u64) -> Result<()> {
        {
            let mut l = guard(&self.held.lock);
            if l.basis.is_some() {
                return Ok(());
            }
            l.basis = Some(epoch);
        }
        self.held.refresh()
    }

    /// `e`, a failed write of this holder, or the revocation that caused it: a prune that
    /// revoked a stopped writer removes its temporary files, so its next write fails with a
    /// missing file, and the revocation is what to report.
    #[must_use]
    pub fn cause_of(&self, e: Error) -> Error {
        match self.ensure_held() {
            Err(revoked @ Error::Revoked(_)) => revoked,
            _ => e,
        }
    }

    /// Checks that the lock is still ours: it was refreshed in time and its file still exists
    /// (a prune that revoked us, or `unlock --remove-all`, removes it).
    ///
    /// # Errors
    /// [`Error::Revoked`] if the lock is gone or went stale; the storage's error if it cannot
    /// be asked.
    pub fn ensure_held(&self) -> Result<()> {
        let _replacing = guard(&self.held.replacing);
        let file = guard(&self.held.file).clone();
        let lost = |why: String| {
            Err(Error::Revoked(format!(
                "lost the repository lock ({why}): this process was stopped or cut off longer \
                 than the lock's grace period ({} s), and a prune or `chronofs unlock` may have \
                 revoked it; nothing more was committed (run the command again)",
                stale_after().as_secs()
            )))
        };
        if self.held.lost.load(Ordering::SeqCst) {
            return lost("its file was removed".into());
        }
        if guard(&self.held.refreshed).elapsed() + refresh_every() > stale_after() {
            return lost("it could not be refreshed in time".into());
        }
        match self.held.storage.len(&file) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => lost(format!("{file}: {e}")),
            // The storage cannot be asked (a network failure): that error, not a revocation.
            Err(e) => Err(Error::repo_io("checking the lock", &file, e)),
        }
    }
}

impl std::fmt::Debug for RepoLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RepoLock({})", describe(&guard(&self.held.lock)))
    }
}

impl Held {
    /// Writes a new lock file and removes the old one; if the old one is gone, the lock was
    /// taken from us and is not written again.
    fn refresh(&self) -> Result<()> {
        let _replacing = guard(&self.replacing);
        let old = guard(&self.file).clone();
        let gone = || Error::Revoked(format!("{old} was removed"));
        if self.lost.load(Ordering::SeqCst) {
            return Err(gone());
        }
        match self.storage.len(&old) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.lost.store(true, Ordering::SeqCst);
                return Err(gone());
            }
            // The storage cannot be asked now (a network failure): try again next time.
            Err(e) => return Err(Error::repo_io("checking the lock", &old, e)),
        }
        let mut lock = guard(&self.lock).clone();
        let new = write_lock(&*self.storage, &self.scheme, &mut lock)?;
        *guard(&self.file) = new;
        *guard(&self.refreshed) = Instant::now();
        let _ = self.storage.remove(&old);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_from(host: &str, stated_age_s: i64) -> Lock {
        Lock {
            mode: LockKind::Shared,
            writer: WriterId(Id::hash(b"w")),
            basis: Some(1),
            hostname: host.into(),
            username: "u".into(),
            pid: 1,
            process_start: 0,
            time_ns: now_ns() - stated_age_s * 1_000_000_000,
            purpose: "backup".into(),
        }
    }

    #[test]
    fn stale_only_when_both_clocks_say_so() {
        let old = i64::try_from(stale_after().as_nanos()).unwrap() * 2;
        let (host, fresh, aged) = ("another host", 5, 4 * 3600);
        // The holder's clock runs hours behind (or the reader's ahead): its file is fresh.
        assert_eq!(stale_reason(&lock_from(host, aged), 1_000_000_000), None);
        // The storage says old, but the holder refreshed by its own (fast) clock just now.
        assert_eq!(stale_reason(&lock_from(host, fresh), old), None);
        let why = stale_reason(&lock_from(host, aged), old).unwrap();
        assert!(why.contains("not refreshed for 60 minutes"), "{why}");
    }

    #[test]
    fn maintenance_runs_beside_writers_but_not_beside_maintenance_or_old_writers() {
        let found = |mode, legacy: bool| FoundLock {
            file: "locks/x".into(),
            lock: Ok(Lock {
                mode,
                writer: if legacy {
                    WriterId::default()
                } else {
                    WriterId(Id::hash(b"w"))
                },
                ..lock_from("h", 0)
            }),
            storage_age_ns: 0,
        };
        assert!(found(LockKind::Shared, false).allows(LockKind::Maintenance));
        assert!(found(LockKind::Maintenance, false).allows(LockKind::Shared));
        assert!(!found(LockKind::Maintenance, false).allows(LockKind::Maintenance));
        assert!(!found(LockKind::Shared, true).allows(LockKind::Maintenance));
        assert!(found(LockKind::Shared, true).allows(LockKind::Shared));
        assert!(!found(LockKind::Exclusive, false).allows(LockKind::Shared));
        assert!(!found(LockKind::Shared, false).allows(LockKind::Exclusive));
        let unreadable = FoundLock {
            file: "locks/y".into(),
            lock: Err(Error::corrupt("locks/y", "junk")),
            storage_age_ns: 0,
        };
        assert!(!unreadable.allows(LockKind::Shared));
    }
}
