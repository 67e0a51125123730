//! The mount point's state (free, mounted, or left stale by a mount process that died) and
//! unmounting: `umount2(2)` as root, `fusermount3 -u` otherwise.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::{mountinfo, sys};

/// What is at a mount point.
#[derive(Debug, PartialEq, Eq)]
pub enum MountState {
    /// An ordinary directory.
    Free,
    /// A live mount of this file system type (`fuse.chronofs`, `ext4`, …).
    Mounted(String),
    /// A FUSE mount whose process is gone ("Transport endpoint is not connected").
    Stale,
}

/// The mount at exactly `path` (the last one, if several are stacked).
#[must_use]
pub fn find_mount(path: &Path) -> Option<mountinfo::Mount> {
    mountinfo::at(&mountinfo::table().ok()?, path)
}

/// `path` made absolute without touching the mount point itself (which may be stale).
///
/// # Errors
/// The parent directory cannot be resolved.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::path_io("resolving", path, e))?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => Ok(parent
            .canonicalize()
            .map_err(|e| Error::path_io("resolving", parent, e))?
            .join(name)),
        _ => Ok(abs),
    }
}

/// What is at `path` (absolute, as from [`absolute`]).
///
/// # Errors
/// [`Error::Mount`] if it is missing or not a directory.
pub fn probe(path: &Path) -> Result<MountState> {
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return Ok(MountState::Stale),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Mount(format!(
                "mount point {} does not exist (create it with `mkdir -p {}`)",
                path.display(),
                path.display()
            )));
        }
        Err(e) => return Err(Error::path_io("examining mount point", path, e)),
        Ok(m) if !m.is_dir() => {
            return Err(Error::Mount(format!(
                "mount point {} is not a directory",
                path.display()
            )));
        }
        Ok(_) => {}
    }
    Ok(match find_mount(path) {
        Some(m) => MountState::Mounted(m.fstype),
        None => MountState::Free,
    })
}

/// Unmounts `path`; `lazy` detaches a busy or stale mount at once.
///
/// # Errors
/// [`Error::Mount`] saying why (busy, not permitted, not mounted).
pub fn unmount(path: &Path, lazy: bool) -> Result<()> {
    let fail = |why: String| Error::Mount(format!("cannot unmount {}: {why}", path.display()));
    if sys::euid() == 0 {
        return sys::unmount(path, lazy).map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => fail(
                "it is busy (a process has a file open or its working directory in it); \
                 close those, or detach it with `umount -l`"
                    .into(),
            ),
            Some(libc::EINVAL) => fail("nothing is mounted there".into()),
            _ => fail(e.to_string()),
        });
    }
    let mut cmd = Command::new("fusermount3");
    cmd.arg(if lazy { "-uz" } else { "-u" }).arg(path);
    let out = cmd
        .output()
        .map_err(|e| fail(format!("cannot run fusermount3 (install fuse3): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(fail(msg))
    }
}

/// Clears a stale mount left by a mount process that was killed, so a new mount can take its
/// place. Returns a note for the user.
///
/// # Errors
/// [`Error::Mount`] naming the command that clears it by hand.
pub fn clear_stale(path: &Path) -> Result<String> {
    unmount(path, true).map_err(|e| {
        Error::Mount(format!(
            "{} holds a stale mount left by a mount process that died, and clearing it failed \
             ({e}); clear it with `fusermount3 -uz {}` (or `umount -l` as root)",
            path.display(),
            path.display()
        ))
    })?;
    Ok(format!(
        "cleared a stale mount at {} left by a mount process that died",
        path.display()
    ))
}
