//! `backup --consistent`: makes the sources hold still while they are read, records how, and
//! lets go on every path out.
//!
//! - **btrfs-snapshot**: each source's btrfs subvolume gets a read-only snapshot, taken
//!   atomically, and the backup reads the snapshot in the source's place, recording every
//!   entry under the source's own path (so the snapshot's tree, and change detection against
//!   the parent, look exactly as without it). The snapshot sits in a private holding
//!   directory inside the subvolume, named after the subvolume so that names line up, and is
//!   deleted afterwards; the holding directory, which the snapshot itself contains as an empty
//!   directory, is left out of the backup. Writers never wait. A subvolume nested below a
//!   source is not in its snapshot (btrfs snapshots stop at subvolume boundaries; it shows as
//!   an empty directory): the walk meets that directory and snapshots the nested subvolume
//!   then, reading it from its own snapshot (one instant per subvolume, not one for all). A
//!   file system mounted below a source, which a snapshot holds as its bare mount point, is
//!   read live (`Taken::live_mounts`). With `--one-file-system` both stay out, as they would
//!   without `--consistent`.
//! - **freeze**: for block devices backed up as their content, the file system mounted from
//!   each (found by its device number or, for btrfs, by its source; see [`crate::mountinfo`]) is
//!   frozen (`FIFREEZE`: dirty data flushed, the journal clean, new writes wait) while
//!   the device is read, then thawed. Without device-mapper there is no copy-on-write snapshot
//!   to shorten that, so writers wait for the whole read; `timeout` bounds the wait (the file
//!   system is thawed then and the backup fails rather than record an image that is not
//!   consistent). The repository and the cache must not be on a frozen file system (their
//!   writes would wait for a thaw that never comes): refused before anything is frozen.
//!
//! Release: `Taken::finish` on success; dropping a [`Taken`] on any error or panic; and
//! [`release_all`] from a signal handler (the CLI calls it on SIGINT, SIGTERM and SIGHUP
//! before it exits). Each hold is in one process-wide list and released exactly once,
//! whichever comes first.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::snapshot::Consistency;

use super::Reporter;
use crate::mountinfo as mounts;

/// How to make the sources consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A read-only btrfs snapshot of each source's subvolume, read in its place.
    BtrfsSnapshot,
    /// The file systems on the block devices being read, frozen during the read.
    Freeze,
}

impl Method {
    /// The name recorded in the snapshot.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Method::BtrfsSnapshot => "btrfs-snapshot",
            Method::Freeze => "freeze",
        }
    }
}

/// `backup --consistent` settings.
#[derive(Clone, Debug)]
pub struct ConsistentOptions {
    /// The method.
    pub method: Method,
    /// Longest time a file system stays frozen.
    pub timeout: Duration,
    /// Paths the backup writes to (the repository, the cache): never on a frozen file system.
    pub writes_to: Vec<PathBuf>,
}

/// One thing taken, to give back.
enum Hold {
    /// A frozen file system: its mount point, open.
    Frozen { mount: PathBuf, dir: File },
    /// A btrfs snapshot and its holding directory.
    Snapshot { snapshot: PathBuf, holder: PathBuf },
}

/// Every hold of this process not yet released, by number.
static HELD: Mutex<Vec<(u64, Hold)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Takes a hold with `take` and lists it, under the list's lock: a signal arriving meanwhile
/// waits in [`release_all`] until the hold is listed, then releases it, so nothing taken is
/// ever missed.
fn hold(take: impl FnOnce() -> Result<Hold>) -> Result<u64> {
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let h = take()?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    held.push((n, h));
    Ok(n)
}

/// Takes hold `n` out of the list (if nobody released it yet).
fn unhold(n: u64) -> Option<Hold> {
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let i = held.iter().position(|(k, _)| *k == n)?;
    Some(held.remove(i).1)
}

/// Gives a hold back; a failure is described (for the user to clean up by hand).
fn release(h: Hold) -> std::result::Result<(), String> {
    match h {
        Hold::Frozen { mount, dir } => crate::sys::thaw_fs(&dir).map_err(|e| {
            format!(
                "cannot thaw {}: {e}; run `fsfreeze --unfreeze {}`",
                mount.display(),
                mount.display()
            )
        }),
        Hold::Snapshot { snapshot, holder } => {
            let deleted = Command::new("btrfs")
                .args(["subvolume", "delete", "--commit-after"])
                .arg(&snapshot)
                .output();
            match deleted {
                Ok(o) if o.status.success() => std::fs::remove_dir(&holder)
                    .map_err(|e| format!("cannot remove {}: {e}", holder.display())),
                Ok(o) => Err(format!(
                    "cannot delete the snapshot {}: {}; run `btrfs subvolume delete {}`",
                    snapshot.display(),
                    String::from_utf8_lossy(&o.stderr).trim(),
                    snapshot.display()
                )),
                Err(e) => Err(format!(
                    "cannot run btrfs to delete the snapshot {}: {e}",
                    snapshot.display()
                )),
            }
        }
    }
}

/// Gives holds back, thaws first (writers wait on those); returns what could not be released.
fn release_in_order(mut holds: Vec<Hold>) -> Vec<String> {
    holds.sort_by_key(|h| !matches!(h, Hold::Frozen { .. }));
    holds.into_iter().filter_map(|h| release(h).err()).collect()
}

/// Releases every hold of this process (thaws first): for a signal handler, before exit.
/// Returns what could not be released.
pub fn release_all() -> Vec<String> {
    let held = std::mem::take(
        &mut *HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    release_in_order(held.into_iter().map(|(_, h)| h).collect())
}

/// What a backup took: where to read each source instead, and what to give back.
pub struct Taken {
    method: Method,
    /// Source path → the path to read it from (btrfs snapshots).
    pub(super) remaps: Vec<(PathBuf, PathBuf)>,
    /// Recorded paths the walk leaves out (the holding directories).
    pub(super) skip: Vec<PathBuf>,
    /// File systems mounted below a snapshotted subvolume: its snapshot holds only the
    /// directories they are mounted on, so the walk reads them live.
    pub(super) live_mounts: Vec<PathBuf>,
    subjects: Vec<String>,
    holds: Vec<u64>,
    frozen_at: Option<Instant>,
    /// Set by the watchdog when it thawed at the timeout.
    timed_out: Arc<AtomicBool>,
    /// Tells the watchdog the holds were released in time.
    done: Option<mpsc::Sender<()>>,
    timeout: Duration,
}

impl Taken {
    /// Where to read `source` from, if not from itself.
    pub(super) fn read_from(&self, source: &Path) -> Option<PathBuf> {
        self.remaps.iter().find_map(|(root, snap)| {
            let rel = source.strip_prefix(root).ok()?;
            Some(if rel.as_os_str().is_empty() {
                snap.clone()
            } else {
                snap.join(rel)
            })
        })
    }

    /// Whether the sources are read from btrfs snapshots (where a nested subvolume shows as
    /// an empty directory, [`EMPTY_SUBVOLUME_INO`]).
    pub(super) fn reads_btrfs_snapshots(&self) -> bool {
        self.method == Method::BtrfsSnapshot
    }

    /// Snapshots the subvolume nested at `live` (its path in the source), which the snapshot
    /// of the subvolume around it holds as an empty directory (btrfs snapshots stop at
    /// subvolume boundaries). Taken later than that one: each subvolume holds one instant of
    /// its own. Returns the snapshot to read in its place and the holding directory to leave
    /// out.
    ///
    /// # Errors
    /// `live` is no longer a subvolume's root, or the snapshot fails.
    pub(super) fn snapshot_nested(
        &mut self,
        live: &Path,
        reporter: &dyn Reporter,
    ) -> Result<(PathBuf, PathBuf)> {
        let m =
            std::fs::symlink_metadata(live).map_err(|e| Error::path_io("examining", live, e))?;
        if !(m.is_dir() && m.ino() == SUBVOLUME_ROOT_INO) {
            return Err(Error::SourceFailed(format!(
                "{} reads as a nested subvolume in the snapshot, but is no longer one",
                live.display()
            )));
        }
        let taken = snapshot_subvolume(self, live.to_path_buf(), reporter)?;
        self.remaps
            .sort_by_key(|(root, _)| std::cmp::Reverse(root.components().count()));
        Ok(taken)
    }

    /// Releases everything once the sources are read, and says how they were held.
    ///
    /// # Errors
    /// [`Error::SourceFailed`] if the freeze outlasted the timeout (the image read is not
    /// consistent) or a hold could not be released.
    pub(super) fn finish(mut self) -> Result<Consistency> {
        let held_ns = self.frozen_at.map_or(0, |t| {
            u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
        });
        let failures = self.release_now();
        if self.timed_out.load(Ordering::SeqCst) {
            return Err(Error::SourceFailed(format!(
                "the file system stayed frozen for the whole --freeze-timeout ({} s) and was thawed while the device was read: no snapshot written (the image would not be consistent)",
                self.timeout.as_secs()
            )));
        }
        if !failures.is_empty() {
            return Err(Error::SourceFailed(failures.join("; ")));
        }
        Ok(Consistency {
            method: self.method.name().to_string(),
            subjects: std::mem::take(&mut self.subjects),
            held_ns,
        })
    }

    fn release_now(&mut self) -> Vec<String> {
        drop(self.done.take());
        release_in_order(self.holds.drain(..).filter_map(unhold).collect())
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        for failure in self.release_now() {
            eprintln!("chronofs: error: {failure}");
        }
    }
}

/// Takes what `options.method` needs for the absolute source `paths`.
///
/// # Errors
/// A source the method cannot apply to, a repository or cache on a file system to freeze, a
/// snapshot or freeze that fails (nothing stays held then).
pub fn take(
    paths: &[PathBuf],
    options: &ConsistentOptions,
    reporter: &dyn Reporter,
) -> Result<Taken> {
    let mut taken = Taken {
        method: options.method,
        remaps: Vec::new(),
        skip: Vec::new(),
        live_mounts: Vec::new(),
        subjects: Vec::new(),
        holds: Vec::new(),
        frozen_at: None,
        timed_out: Arc::new(AtomicBool::new(false)),
        done: None,
        timeout: options.timeout,
    };
    match options.method {
        Method::BtrfsSnapshot => snapshot_subvolumes(&mut taken, paths, reporter)?,
        Method::Freeze => freeze_devices(&mut taken, paths, options, reporter)?,
    }
    Ok(taken)
}

/// `BTRFS_SUPER_MAGIC`.
const BTRFS_MAGIC: i64 = 0x9123_683E;
/// The inode number of every btrfs subvolume's root directory.
const SUBVOLUME_ROOT_INO: u64 = 256;
/// The inode number of the empty directory a btrfs snapshot holds in place of a subvolume
/// nested in the one it snapshots (`BTRFS_EMPTY_SUBVOL_DIR_OBJECTID`).
pub(super) const EMPTY_SUBVOLUME_INO: u64 = 2;

fn snapshot_subvolumes(
    taken: &mut Taken,
    paths: &[PathBuf],
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for p in paths {
        // `f_type`'s width differs between architectures.
        #[allow(clippy::useless_conversion)]
        let on_btrfs = rustix::fs::statfs(p.as_path())
            .map(|s| i64::from(s.f_type) == BTRFS_MAGIC)
            .map_err(|e| Error::path_io("examining", p, e.into()))?;
        if !on_btrfs {
            return Err(Error::InvalidInput(format!(
                "{} is not on btrfs: --consistent btrfs-snapshot snapshots btrfs subvolumes",
                p.display()
            )));
        }
        let root = subvolume_root(p)?;
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    taken.live_mounts = mounts::below(&mounts::table()?, &roots);
    for root in roots {
        snapshot_subvolume(taken, root, reporter)?;
    }
    // Deepest subvolume first, so that a source inside a nested subvolume maps through it.
    taken
        .remaps
        .sort_by_key(|(root, _)| std::cmp::Reverse(root.components().count()));
    Ok(())
}

/// Takes a read-only snapshot of subvolume `root` in a private holding directory inside it,
/// named like `root` (so that names line up), and records it: read from it, leave the
/// holding directory out, give it back. Returns the snapshot and the holding directory.
fn snapshot_subvolume(
    taken: &mut Taken,
    root: PathBuf,
    reporter: &dyn Reporter,
) -> Result<(PathBuf, PathBuf)> {
    let name = root
        .file_name()
        .map_or_else(|| "root".into(), std::ffi::OsStr::to_os_string);
    let holder = root.join(format!(
        ".chronofs-consistent-{}-{:x}",
        std::process::id(),
        crate::repo::now_ns()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&holder)
        .map_err(|e| Error::path_io("creating", &holder, e))?;
    let snapshot = holder.join(&name);
    let taking = hold(|| {
        let out = Command::new("btrfs")
            .args(["subvolume", "snapshot", "-r"])
            .arg(&root)
            .arg(&snapshot)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Ok(Hold::Snapshot {
                    snapshot: snapshot.clone(),
                    holder: holder.clone(),
                });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("cannot run btrfs: {e} (install btrfs-progs)"),
        };
        Err(Error::SourceFailed(format!(
            "cannot snapshot the subvolume {}: {why}",
            root.display()
        )))
    });
    match taking {
        Ok(n) => taken.holds.push(n),
        Err(e) => {
            let _ = std::fs::remove_dir(&holder);
            return Err(e);
        }
    }
    reporter.note(
        &root,
        &format!("read from the snapshot {}", snapshot.display()),
    );
    taken.subjects.push(format!(
        "{} (subvolume, read from a read-only snapshot)",
        root.display()
    ));
    taken.skip.push(holder.clone());
    taken.remaps.push((root, snapshot.clone()));
    Ok((snapshot, holder))
}

/// The root of the btrfs subvolume `p` is in: the nearest directory from `p` up, on the same
/// device, whose inode is a subvolume root's.
fn subvolume_root(p: &Path) -> Result<PathBuf> {
    let meta = std::fs::symlink_metadata(p).map_err(|e| Error::path_io("examining", p, e))?;
    let dev = meta.dev();
    let start = if meta.is_dir() { Some(p) } else { p.parent() };
    for a in start.into_iter().flat_map(Path::ancestors) {
        let m = std::fs::metadata(a).map_err(|e| Error::path_io("examining", a, e))?;
        if m.dev() != dev {
            break;
        }
        if m.ino() == SUBVOLUME_ROOT_INO {
            return Ok(a.to_path_buf());
        }
    }
    Err(Error::InvalidInput(format!(
        "cannot find the btrfs subvolume {} is in",
        p.display()
    )))
}

fn freeze_devices(
    taken: &mut Taken,
    paths: &[PathBuf],
    options: &ConsistentOptions,
    reporter: &dyn Reporter,
) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let table = mounts::table()?;
    // (device, mount point, the file system's number in the mount table)
    let mut frozen: Vec<(u64, PathBuf, String)> = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::path_io("examining", p, e))?;
        if !meta.file_type().is_block_device() {
            return Err(Error::InvalidInput(format!(
                "{} is not a block device: --consistent freeze reads devices whole while their file system is frozen (for files on btrfs, use --consistent btrfs-snapshot)",
                p.display()
            )));
        }
        match mounts::of_device(&table, meta.rdev()) {
            Some(m) => {
                if !frozen.iter().any(|(d, _, _)| *d == meta.rdev()) {
                    frozen.push((meta.rdev(), m.at.clone(), m.dev.clone()));
                }
            }
            None if in_use(p) => {
                return Err(Error::Refused(format!(
                    "{} is in use (mounted, or held by another device) but no mount of it is in /proc/self/mountinfo: refusing to read it unfrozen",
                    p.display()
                )));
            }
            None => {
                reporter.note(p, "is not mounted: read as it is, nothing to freeze");
                taken
                    .subjects
                    .push(format!("{} (not mounted)", p.display()));
            }
        }
    }
    for (dev, mount, number) in &frozen {
        for w in &options.writes_to {
            // The path's own device (ext4, xfs), or the mount that holds it (btrfs, whose
            // files carry an anonymous device number): either may be all a stacked file
            // system such as overlayfs shows.
            if on_device(w) == Some(*dev)
                || mounts::holding(&table, w).is_some_and(|h| h.dev == *number)
            {
                return Err(Error::Refused(format!(
                    "{} is on the file system to freeze ({}): its writes would wait for the thaw forever; keep the repository and the cache elsewhere",
                    w.display(),
                    mount.display()
                )));
            }
        }
    }
    let (tx, rx) = mpsc::channel::<()>();
    for (_, mount, _) in frozen {
        let dir = File::open(&mount).map_err(|e| Error::path_io("opening", &mount, e))?;
        let n = hold(|| {
            crate::sys::freeze_fs(&dir).map_err(|e| {
                Error::SourceFailed(format!("cannot freeze {}: {e}", mount.display()))
            })?;
            Ok(Hold::Frozen {
                mount: mount.clone(),
                dir,
            })
        })?;
        taken.frozen_at.get_or_insert_with(Instant::now);
        taken.holds.push(n);
        taken.subjects.push(format!("{} (frozen)", mount.display()));
    }
    if taken.frozen_at.is_some() {
        let holds = taken.holds.clone();
        let timed_out = Arc::clone(&taken.timed_out);
        let timeout = options.timeout;
        std::thread::Builder::new()
            .name("freeze-watchdog".into())
            .spawn(move || {
                if rx.recv_timeout(timeout) == Err(RecvTimeoutError::Timeout) {
                    timed_out.store(true, Ordering::SeqCst);
                    for h in holds.into_iter().filter_map(unhold) {
                        if let Err(e) = release(h) {
                            eprintln!("chronofs: error: {e}");
                        }
                    }
                }
            })
            .map_err(|e| Error::Thread(e.to_string()))?;
        taken.done = Some(tx);
    }
    Ok(())
}

/// Whether block device `p` is mounted or held (an exclusive open fails with `EBUSY`).
fn in_use(p: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(p)
        .is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY))
}

/// The device of the file system `p` is on (or its nearest existing ancestor's).
fn on_device(p: &Path) -> Option<u64> {
    p.ancestors()
        .find_map(|a| std::fs::metadata(a).ok())
        .map(|m| m.dev())
}
