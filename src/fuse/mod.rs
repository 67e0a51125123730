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
use std::sync::Arc;
use std::time::Duration;

use fuser::{Config, MountOption, Session, SessionACL};

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::sys;

use crate::vfs::Vfs;
use crate::vfs::state::{self, Settings, State};

use self::mountpoint::MountState;

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
    let state = State::open(
        repo,
        &Settings {
            cache_bytes: options.cache_bytes,
            tree_cache_bytes: (options.cache_bytes / 4).max(4 << 20),
            prefetch_threads: 2,
            keep_xattrs: options.keep_xattrs,
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
        MountOption::FSName(format!("chronofs:{}", state.repo().location().display())),
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
    let mut session = Session::new(fs::ChronoFs::new(vfs), &mountpoint, &config).map_err(|e| {
        Error::Mount(format!(
            "cannot mount on {}: {e} (is the fuse3 package installed and /dev/fuse present?)",
            mountpoint.display()
        ))
    })?;
    state.set_notifier(Box::new(fs::Notifier(session.notifier())));
    raise_readahead(&mountpoint);

    let weak = Arc::downgrade(&state);
    let interval = options.refresh_interval;
    std::thread::Builder::new()
        .name("chronofs-refresh".into())
        .spawn(move || State::run_refresher(&weak, interval))
        .map_err(|e| Error::Mount(format!("cannot start the refresh thread: {e}")))?;

    let mut unmounter = session.unmount_callable();
    let mp = mountpoint.clone();
    std::thread::Builder::new()
        .name("chronofs-signals".into())
        .spawn(move || {
            if sys::wait_for_signal(&STOP_SIGNALS).is_err() {
                return;
            }
            if unmounter.unmount().is_err() {
                // Busy: detach it so the process can end; the kernel finishes when idle.
                let _ = mountpoint::unmount(&mp, true);
            }
            // A request stuck in the kernel (a hung disk) would keep the session's threads,
            // and so the process, alive: a signal to stop is obeyed all the same.
            std::thread::sleep(STOP_GRACE);
            state::log("the mount did not end within 10 s of the signal; exiting");
            std::process::exit(0);
        })
        .map_err(|e| Error::Mount(format!("cannot start the signal thread: {e}")))?;
    let traffic_of = Arc::clone(&state);
    drop(state);
    on_ready();
    let served = session
        .run()
        .map_err(|e| Error::Mount(format!("serving {}: {e}", mountpoint.display())));
    if let Some(t) = traffic_of.repo().storage().traffic() {
        state::log(&format!("unmounted; object storage: {}", t.summary()));
    }
    served
}

/// Raises the kernel's readahead for the mount (root only; best effort): the default 128 KiB
/// window makes sequential reads wait on each FUSE round trip.
fn raise_readahead(mountpoint: &Path) {
    if let Some(m) = mountpoint::find_mount(mountpoint) {
        let knob = format!("/sys/class/bdi/{}/read_ahead_kb", m.device);
        let _ = std::fs::write(knob, "4096");
    }
}
