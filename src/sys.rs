//! Safe wrappers around the system calls std does not offer: through rustix where it has them,
//! and around the few libc functions it does not (user and group names, signal masks, the
//! allocator's knobs, `getrusage`). The only module allowed to use `unsafe`; every block states
//! why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::path::Path;

/// Where the next data (`SEEK_DATA`) or hole (`SEEK_HOLE`) starts at or after `offset`.
/// `Ok(None)` means there is no more data (ENXIO).
///
/// # Errors
/// The OS error; `EINVAL` if the file system does not support the query.
pub fn seek_data_or_hole(file: &std::fs::File, offset: u64, data: bool) -> io::Result<Option<u64>> {
    use rustix::fs::SeekFrom;
    let whence = if data {
        SeekFrom::Data(offset)
    } else {
        SeekFrom::Hole(offset)
    };
    match rustix::fs::seek(file, whence) {
        Ok(at) => Ok(Some(at)),
        Err(rustix::io::Errno::NXIO) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Lowers the calling thread's scheduling priority to the least (nice 19), so that it runs on
/// what other threads leave (Linux keeps the nice value per thread). Best effort.
pub fn lower_thread_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of ours; with
    // PRIO_PROCESS and 0 Linux applies it to the calling thread only.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
}

/// The effective user id.
#[must_use]
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether process `pid` exists on this machine (`None` if that cannot be told).
#[must_use]
pub fn process_exists(pid: u32) -> Option<bool> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    match rustix::process::test_kill_process(pid) {
        Ok(()) | Err(rustix::io::Errno::PERM) => Some(true),
        Err(rustix::io::Errno::SRCH) => Some(false),
        Err(_) => None,
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/PID/stat` field 22).
#[must_use]
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The machine's host name.
#[must_use]
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The name of user `uid`, if the system knows it.
#[must_use]
pub fn user_name(uid: u32) -> Option<String> {
    let mut pwd: libc::passwd = unsafe_zeroed_passwd();
    let mut buf = vec![0u8; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are to live locals/buffers of the stated sizes; getpwuid_r writes only
    // within them and sets `result` to `&mut pwd` or null.
    let r = unsafe {
        libc::getpwuid_r(
            uid,
            &raw mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &raw mut result,
        )
    };
    if r != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`, still alive.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The name of group `gid`, if the system knows it.
#[must_use]
pub fn group_name(gid: u32) -> Option<String> {
    let mut grp: libc::group = unsafe_zeroed_group();
    let mut buf = vec![0u8; 64 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `user_name`, with getgrgid_r.
    let r = unsafe {
        libc::getgrgid_r(
            gid,
            &raw mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &raw mut result,
        )
    };
    if r != 0 || result.is_null() || grp.gr_name.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points to a NUL-terminated string inside `buf`, still alive.
    let name = unsafe { std::ffi::CStr::from_ptr(grp.gr_name) };
    Some(name.to_string_lossy().into_owned())
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: passwd is a plain C struct of pointers and integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

fn unsafe_zeroed_group() -> libc::group {
    // SAFETY: group is a plain C struct of pointers and integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The effective group id.
#[must_use]
pub fn egid() -> u32 {
    rustix::process::getegid().as_raw()
}

/// Starts a new session so that the terminal's signals (Ctrl-C, hangup) no longer reach this
/// process. Used by the background mount process. Fails harmlessly if already a session leader.
pub fn detach_from_terminal() {
    let _ = rustix::process::setsid();
}

/// Points standard output and standard error at `file` (e.g. `/dev/null` or a log file).
///
/// # Errors
/// The OS error of `dup2`.
pub fn redirect_stdout_stderr(file: &std::fs::File) -> io::Result<()> {
    rustix::stdio::dup2_stdout(file)?;
    rustix::stdio::dup2_stderr(file)?;
    Ok(())
}

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset then initialises it properly.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t for both calls.
    unsafe {
        libc::sigemptyset(&raw mut set);
        for &s in signals {
            libc::sigaddset(&raw mut set, s);
        }
    }
    set
}

/// Blocks `signals` in the calling thread and in every thread it starts afterwards, so that
/// [`wait_for_signal`] can receive them synchronously.
///
/// # Errors
/// The OS error of `pthread_sigmask`.
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is a valid initialised sigset_t; the old mask is not requested (null).
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// Waits until one of `signals` (which must be blocked) arrives; returns its number.
///
/// # Errors
/// The OS error of `sigwait`.
pub fn wait_for_signal(signals: &[i32]) -> io::Result<i32> {
    let set = sigset(signals);
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` and `sig` are valid locals that outlive the call.
    let r = unsafe { libc::sigwait(&raw const set, &raw mut sig) };
    if r == 0 {
        Ok(sig)
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// Unmounts the file system at `path` with `umount2(2)`; `detach` makes it lazy
/// (`MNT_DETACH`): the mount disappears now and is cleaned up when no longer busy.
///
/// # Errors
/// The OS error (`EPERM` for non-root users, `EBUSY`, `EINVAL` if nothing is mounted).
pub fn unmount(path: &Path, detach: bool) -> io::Result<()> {
    use rustix::mount::UnmountFlags;
    let flags = if detach {
        UnmountFlags::DETACH
    } else {
        UnmountFlags::empty()
    };
    rustix::mount::unmount(path, flags).map_err(io::Error::from)
}

/// Moves the mount at `mounted` beneath the mount on top of `target` (`open_tree(2)` and
/// `move_mount(2)` with `MOVE_MOUNT_BENEATH`, Linux 6.5): once the top one is detached, the
/// moved one shows at `target`, with no moment in which nothing is mounted there.
///
/// # Errors
/// The OS error: `EPERM` without `CAP_SYS_ADMIN`, `EINVAL` or `ENOSYS` on older kernels.
pub fn mount_beneath(mounted: &Path, target: &Path) -> io::Result<()> {
    use rustix::mount::{MoveMountFlags, OpenTreeFlags};
    let tree =
        rustix::mount::open_tree(rustix::fs::CWD, mounted, OpenTreeFlags::OPEN_TREE_CLOEXEC)?;
    rustix::mount::move_mount(
        &tree,
        c"",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_BENEATH,
    )
    .map_err(io::Error::from)
}

/// `makedev` in the encoding the FUSE protocol's 32-bit `rdev` uses (the kernel's
/// `new_encode_dev`): 12 bits of major, 20 bits of minor.
#[must_use]
pub fn encode_dev32(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// Asks the kernel to read the whole file into the page cache in the background
/// (`posix_fadvise(WILLNEED)`); a hint, so failures are ignored.
pub fn will_need(file: &std::fs::File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::WillNeed);
}

/// Drops the file's clean pages from the page cache (`posix_fadvise(DONTNEED)`), so the next
/// read comes from the device; a hint, so failures are ignored.
pub fn drop_cached(file: &std::fs::File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// Keeps a process's memory close to what it uses: threads share two malloc arenas, so memory
/// freed by one thread is reused by the next instead of piling up in per-thread arenas;
/// buffers below `mmap_threshold` come from the heap and are reused (mapping and unmapping
/// each one costs a page fault per 4 KiB), larger ones are mapped and returned at once; and
/// freed memory beyond 16 MiB at the top of the heap goes back to the system. The mount uses
/// 32 MiB (chunk buffers stay on the heap), the backup 256 KiB (its buffers come and go).
pub fn limit_malloc_retention(mmap_threshold: usize) {
    let threshold = i32::try_from(mmap_threshold).unwrap_or(i32::MAX);
    // SAFETY: mallopt only adjusts allocator parameters; valid at any time.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

/// Gives the free memory inside the allocator's heaps back to the system (`malloc_trim(0)`,
/// which also releases free pages in the middle of a heap). The mount calls it after it
/// rebuilt its view of the snapshots, so that a mount living through thousands of additions
/// keeps only what it shows.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns unused memory of the allocator; valid at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The largest resident set this process has had, in bytes: `VmHWM` of `/proc/self/status`,
/// which starts afresh at `exec`. (`getrusage`'s `ru_maxrss`, the fallback, carries over the
/// peak of the address space the process had before `exec`: a process started with
/// `posix_spawn` by a large parent would report the parent's.)
#[must_use]
pub fn peak_rss_bytes() -> u64 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let Some(kib) = from_proc {
        return kib * 1024;
    }
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; getrusage writes only into it.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    if r != 0 {
        return 0;
    }
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024 // Linux reports KiB
}

/// The width of the terminal on standard error, if it is one.
#[must_use]
pub fn terminal_width() -> Option<usize> {
    let ws = rustix::termios::tcgetwinsize(std::io::stderr()).ok()?;
    (ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// This process's soft limit on open files (`u64::MAX` if unlimited).
pub fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Raises this process's soft limit on open files to its hard limit: a backup or restore of a
/// deep tree holds one descriptor per directory level (up to
/// [`MAX_DEPTH`](crate::format::tree::MAX_DEPTH)) besides the files being read. Best effort.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit};
    let lim = rustix::process::getrlimit(Resource::Nofile);
    let below = match (lim.current, lim.maximum) {
        (Some(cur), Some(max)) => cur < max,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        let _ = rustix::process::setrlimit(Resource::Nofile, raised);
    }
}

/// `FIFREEZE` (`_IOWR('X', 119, int)`): freezes the file system a descriptor is on.
const FIFREEZE: libc::c_ulong = 0xC004_5877;
/// `FITHAW` (`_IOWR('X', 120, int)`): thaws it.
const FITHAW: libc::c_ulong = 0xC004_5878;

/// Freezes the file system that `dir` (an open directory on it, usually its mount point) is
/// on: pending writes are flushed and new ones wait until [`thaw_fs`]. Needs root.
///
/// # Errors
/// The OS error: `EBUSY` if it is frozen already, `EOPNOTSUPP` if it cannot be frozen.
pub fn freeze_fs(dir: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: FIFREEZE takes no argument memory (the kernel ignores the int argument); the
    // descriptor is open for the duration of the call.
    let r = unsafe { libc::ioctl(dir.as_raw_fd(), FIFREEZE, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Thaws a file system frozen with [`freeze_fs`].
///
/// # Errors
/// The OS error (`EINVAL` if it was not frozen).
pub fn thaw_fs(dir: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: as in `freeze_fs`, with FITHAW.
    let r = unsafe { libc::ioctl(dir.as_raw_fd(), FITHAW, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
