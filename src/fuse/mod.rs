//! The FUSE mount: a repository mounted read-only, every snapshot a dated directory.
//!
//! What the mount shows is [`crate::vfs`]'s; here are only the parts that talk to the kernel:
//! - [`fs`]: the request handlers, translating to and from the virtual tree;
//! - [`mountpoint`]: mount point state, stale mounts, unmounting.
//!
//! [`serve`] mounts and serves until unmounted or signalled.

pub mod fs;
pub mod mountpoint;

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::sys;

use crate::vfs::Vfs;
use crate::vfs::state::{self, Settings, State};

use self::mountpoint::MountState;

/// Threads reading chunks ahead of sequential readers, and as many for the next files of a
/// directory being read (bench/RESULTS.md, "The read path").
const PREFETCH_THREADS: usize = 2;

/// How a mount is set up.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Bytes of decompressed chunks cached in memory.
    pub cache_bytes: usize,
    /// Threads serving kernel requests.
    pub threads: usize,
    /// Let other users in (their access still checked against the stored modes).
    pub allow_other: bool,
    /// How often the snapshot list is polled for new and forgotten snapshots.
    pub refresh_interval: Duration,
    /// Keep answering extended-attribute queries even when no snapshot holds any, so that
    /// snapshots arriving with some are shown (see [`crate::vfs::xattr_queries`]).
    pub keep_xattrs: bool,
    /// Inodes the kernel may hold before it is asked to drop the least recently used (the
    /// table costs about 190 bytes per inode, see bench/RESULTS.md).
    pub max_inodes: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            cache_bytes: 32 << 20,
            threads: 4,
            allow_other: false,
            refresh_interval: Duration::from_millis(500),
            keep_xattrs: false,
            max_inodes: 700_000,
        }
    }
}

/// The signals that end a foreground mount cleanly.
const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
/// How long the mount may take to end after one of them before the process exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Mounts `repo` (opened and unlocked) on `mountpoint` and serves it until it is unmounted
/// (`chronofs umount`, `fusermount3 -u`) or the process gets SIGINT, SIGTERM or SIGHUP, which
/// unmount it. `on_ready` runs once the mount answers requests; `warn` receives warnings for
/// the user (a stale mount that was cleared).
///
/// # Errors
/// No repository, mount point missing or in use, FUSE unavailable.
pub fn serve(
    repo: Repository,
    mountpoint: &Path,
    options: &MountOptions,
    warn: &mut dyn FnMut(&str),
    on_ready: impl FnOnce(),
) -> Result<()> {
    // Before any thread starts, so that all of them inherit the mask and only the signal
    // thread below receives these.
    sys::block_signals(&STOP_SIGNALS)
        .map_err(|e| Error::Mount(format!("cannot set up signal handling: {e}")))?;
    sys::limit_malloc_retention(32 << 20);
    let mountpoint = mountpoint::absolute(mountpoint)?;
    match mountpoint::probe(&mountpoint)? {
        MountState::Free => {}
        MountState::Stale => warn(&mountpoint::clear_stale(&mountpoint)?),
        MountState::Mounted(fstype) => {
            return Err(Error::Mount(format!(
                "{} is already a mount point ({fstype}); unmount it first with `chronofs umount {}`",
                mountpoint.display(),
                mountpoint.display()
            )));
        }
    }
    let repo = Arc::new(repo);
    // Telling the kernel "no extended attributes" or "no ACLs" cannot be taken back on a
    // connection; a mount that has done so replaces its connection when a snapshot needs them
    // (see `replace`), which takes CAP_SYS_ADMIN. Without it, it never tells the kernel.
    let keep_xattrs = options.keep_xattrs || sys::euid() != 0;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut current = 0;
    let (first, mut unmounter) = start_session(
        &repo,
        &mountpoint,
        &mountpoint,
        options,
        keep_xattrs,
        (current, tx.clone()),
        warn,
    )?;
    let traffic_of = Arc::clone(&repo);
    let mp = mountpoint.clone();
    let stop_tx = tx.clone();
    std::thread::Builder::new()
        .name("chronofs-signals".into())
        .spawn(move || {
            if sys::wait_for_signal(&STOP_SIGNALS).is_ok() {
                let _ = stop_tx.send(Event::Stop);
            }
        })
        .map_err(|e| Error::Mount(format!("cannot start the signal thread: {e}")))?;
    drop(first);
    on_ready();
    let mut result = Ok(());
    while let Ok(event) = rx.recv() {
        match event {
            Event::Ended(n, r) if n == current => {
                result = r.map_err(|e| Error::Mount(format!("serving {}: {e}", mp.display())));
                break;
            }
            Event::Ended(..) => {}
            Event::Hidden(n) if n == current => {
                match replace(&repo, &mp, options, &mut unmounter, (n + 1, tx.clone())) {
                    Ok(next) => {
                        unmounter = next;
                        current = n + 1;
                        state::log("the mount now shows every snapshot (a new connection)");
                    }
                    Err(e) => state::log(&format!("cannot replace the connection: {e}")),
                }
            }
            Event::Hidden(_) => {}
            Event::Stop => {
                if mountpoint::unmount(&mp, false).is_err() {
                    // Busy: detach it so the process can end; the kernel finishes when idle.
                    let _ = mountpoint::unmount(&mp, true);
                }
                // A request stuck in the kernel (a hung disk) would keep the session's
                // threads, and so the process, alive: a signal to stop is obeyed all the same.
                std::thread::spawn(|| {
                    std::thread::sleep(STOP_GRACE);
                    state::log("the mount did not end within 10 s of the signal; exiting");
                    std::process::exit(0);
                });
            }
        }
    }
    if let Some(t) = traffic_of.storage().traffic() {
        state::log(&format!("unmounted; object storage: {}", t.summary()));
    }
    result
}

/// What the serving loop hears about.
enum Event {
    /// Connection `n` ended (unmounted), with how its session ended.
    Ended(usize, std::io::Result<()>),
    /// Connection `n` had to leave a snapshot out: replace it.
    Hidden(usize),
    /// A signal to stop.
    Stop,
}

/// Opens a view of `repo` and serves it on a new FUSE connection mounted at `at` (the mount
/// point itself, or a directory from which `replace` moves it); its session runs in the
/// background and reports its end as connection `n`.
fn start_session(
    repo: &Arc<Repository>,
    mountpoint: &Path,
    at: &Path,
    options: &MountOptions,
    keep_xattrs: bool,
    (n, tx): (usize, mpsc::Sender<Event>),
    warn: &mut dyn FnMut(&str),
) -> Result<(Arc<State>, SessionUnmounter)> {
    let state = State::open(
        Arc::clone(repo),
        &Settings {
            cache_bytes: options.cache_bytes,
            tree_cache_bytes: (options.cache_bytes / 4).max(4 << 20),
            prefetch_threads: PREFETCH_THREADS,
            keep_xattrs,
            max_inodes: options.max_inodes,
        },
        warn,
    )?;
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
        MountOption::DefaultPermissions,
        MountOption::FSName(format!("chronofs:{}", repo.location().display())),
        MountOption::Subtype("chronofs".into()),
    ];
    config.acl = if options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    let vfs = Vfs::new(Arc::clone(&state));
    let mut session = Session::new(fs::ChronoFs::new(vfs), at, &config).map_err(|e| {
        Error::Mount(format!(
            "cannot mount on {}: {e} (is the fuse3 package installed and /dev/fuse present?)",
            mountpoint.display()
        ))
    })?;
    state.set_notifier(Box::new(fs::Notifier(session.notifier())));
    if !keep_xattrs {
        let hidden = tx.clone();
        state.set_on_hidden(Box::new(move || {
            let _ = hidden.send(Event::Hidden(n));
        }));
    }
    let weak = Arc::downgrade(&state);
    let interval = options.refresh_interval;
    std::thread::Builder::new()
        .name("chronofs-refresh".into())
        .spawn(move || State::run_refresher(&weak, interval))
        .map_err(|e| Error::Mount(format!("cannot start the refresh thread: {e}")))?;
    // The session's own unmounting is taken over here: fuser unmounts a session's mount
    // point when the session ends if it thinks the connection is still mounted, which after
    // a replacement would be the new connection at the same path.
    let unmounter = session.unmount_callable();
    std::thread::Builder::new()
        .name("chronofs-session".into())
        .spawn(move || {
            let _ = tx.send(Event::Ended(n, session.run()));
        })
        .map_err(|e| Error::Mount(format!("cannot start the session thread: {e}")))?;
    if at == mountpoint {
        raise_readahead(mountpoint);
    }
    Ok((state, unmounter))
}

/// Replaces the connection at `mountpoint` by a new one (connection `n`) whose view shows
/// every snapshot: mounted at a private directory, moved beneath the old one
/// ([`sys::mount_beneath`]), and the old one detached; processes working inside the old one
/// keep it until they leave it, and nobody ever finds the mount point empty.
fn replace(
    repo: &Arc<Repository>,
    mountpoint: &Path,
    options: &MountOptions,
    old: &mut SessionUnmounter,
    to: (usize, mpsc::Sender<Event>),
) -> Result<SessionUnmounter> {
    let staging = tempfile::Builder::new()
        .prefix(".chronofs-remount-")
        .tempdir()
        .map_err(|e| Error::Mount(format!("cannot make a directory to mount on: {e}")))?;
    let mut notes = |m: &str| state::log(m);
    // The new connection decides afresh: the snapshot that was left out now counts.
    let (state, mut unmounter) = start_session(
        repo,
        mountpoint,
        staging.path(),
        options,
        options.keep_xattrs,
        to,
        &mut notes,
    )?;
    let device = |p: &Path| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::dev(&m));
    let new_dev = device(staging.path())
        .map_err(|e| Error::Mount(format!("the new connection does not answer: {e}")))?;
    if let Err(e) = sys::mount_beneath(staging.path(), mountpoint) {
        let _ = unmounter.unmount();
        drop(state);
        return Err(Error::Mount(format!(
            "cannot mount beneath {}: {e}",
            mountpoint.display()
        )));
    }
    // The old connection goes from the top: unmounted if idle, else detached (processes
    // inside it keep it until they leave).
    if old.unmount().is_err() || device(mountpoint).is_ok_and(|d| d != new_dev) {
        sys::unmount(mountpoint, true)
            .map_err(|e| Error::Mount(format!("cannot detach the old connection: {e}")))?;
    }
    if !device(mountpoint).is_ok_and(|d| d == new_dev) {
        return Err(Error::Mount(format!(
            "{} does not show the new connection after the replacement",
            mountpoint.display()
        )));
    }
    raise_readahead(mountpoint);
    Ok(unmounter)
}

fn raise_readahead(mountpoint: &Path) {
    if let Some(m) = mountpoint::find_mount(mountpoint) {
        let knob = format!("/sys/class/bdi/{}/read_ahead_kb", m.dev);
        let _ = std::fs::write(knob, "4096");
    }
}
