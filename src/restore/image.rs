//! Image restore: one regular file of a snapshot (a disk or volume image, such as a block
//! device that was backed up as its content) written onto a block device, or over an existing
//! file, then read back and checked against the snapshot.
//!
//! Safety: the target is opened exclusively (`O_EXCL` on a block device fails while it is
//! mounted or held by another device), must hold the whole image, and is written over only
//! when the caller says so. Data goes through the restore's `Batch` (spans read in pack
//! order, written in parallel). The image's holes are zeroed on a device (`fallocate`
//! `ZERO_RANGE`, or zeros written where the device cannot), unless the caller says the device
//! is fresh (`sparse`); a file target is emptied first, so its holes stay holes. After a
//! flush to the device, the page cache of the range is dropped and every data piece is read
//! back and hashed against its chunk id, and every zeroed hole checked: a restore that
//! reports success wrote what the snapshot holds.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::dirfd::DirFd;
use crate::error::{Error, Result};
use crate::format::id::BlobId;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Piece};
use crate::repo::Repository;

use super::data::{Batch, Queued, Written};

/// How to restore an image.
#[derive(Clone, Debug, Default)]
pub struct ImageOptions {
    /// The target may be written over (without it, nothing is written).
    pub overwrite: bool,
    /// The target device reads as zeros already (fresh, or discarded): holes are not written.
    pub sparse: bool,
    /// Live counters for a display: the image's data bytes expected, and written.
    pub progress: Arc<crate::progress::Progress>,
}

/// What an image restore did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImageStats {
    /// The image's size.
    pub size: u64,
    /// The target's size (a device may be larger than the image).
    pub target_size: u64,
    /// Bytes of data written.
    pub data_bytes: u64,
    /// Bytes of holes zeroed on the target.
    pub zeroed_bytes: u64,
    /// Bytes of holes left unwritten (a file's holes, or a fresh device's with `sparse`).
    pub skipped_bytes: u64,
    /// Bytes read back and checked after writing.
    pub verified_bytes: u64,
    /// Wall-clock time, ns.
    pub duration_ns: u64,
}

/// Whether `target` names something an image is restored onto (an existing block device or
/// regular file, through symlinks) rather than a directory to restore into.
#[must_use]
pub fn is_image_target(target: &Path) -> bool {
    std::fs::metadata(target)
        .is_ok_and(|m| m.file_type().is_block_device() || m.file_type().is_file())
}

/// Writes file `path` of `snapshot` onto `target` (a block device or an existing regular file)
/// and verifies it.
///
/// # Errors
/// [`Error::Refused`] without `overwrite`, for a device that is mounted or in use, or one too
/// small; [`Error::InvalidInput`] when `path` is not a regular file or `target` neither a
/// device nor a file; damaged repository data as [`Error::Corrupt`] and friends (the target
/// then holds a partial image); a write or a read-back that fails or differs as
/// [`Error::PathIo`].
pub fn restore_image(
    repo: &Repository,
    snapshot: &Snapshot,
    path: &Path,
    target: &Path,
    options: &ImageOptions,
) -> Result<ImageStats> {
    let started = Instant::now();
    let root = repo.read_tree(&snapshot.root)?;
    let node = crate::snapshot::find_node(repo, &root, path)?
        .ok_or_else(|| Error::NotFound(format!("{} is not in the snapshot", path.display())))?;
    let NodeKind::File { content } = &node.kind else {
        return Err(Error::InvalidInput(format!(
            "{} is not a regular file in the snapshot: only a file (a disk image) is restored onto {}",
            path.display(),
            target.display()
        )));
    };
    let size = content.iter().try_fold(0u64, |a, p| a.checked_add(p.len()));
    if size != Some(node.size) {
        return Err(Error::corrupt(
            path.display().to_string(),
            "the file's pieces do not add up to its size",
        ));
    }
    if !options.overwrite {
        return Err(Error::Refused(format!(
            "restoring an image writes over {}: add --overwrite to go ahead",
            target.display()
        )));
    }
    let (file, device, target_size) = open_target(target, node.size)?;
    let file = Arc::new(file);
    let mut stats = ImageStats {
        size: node.size,
        target_size,
        ..ImageStats::default()
    };
    let zero_holes = device && !options.sparse;
    let data: u64 = content
        .iter()
        .filter(|p| matches!(p, Piece::Data { .. }))
        .map(Piece::len)
        .sum();
    options.progress.expect(1, data);
    let mut at = 0u64;
    for piece in content {
        match piece {
            Piece::Data { len, .. } => stats.data_bytes += u64::from(*len),
            Piece::Hole { len } if zero_holes => {
                zero_range(&file, at, *len).map_err(|e| Error::path_io("zeroing", target, e))?;
                stats.zeroed_bytes += len;
            }
            Piece::Hole { len } => stats.skipped_bytes += len,
        }
        at += piece.len();
    }
    let canonical =
        std::fs::canonicalize(target).map_err(|e| Error::path_io("resolving", target, e))?;
    let (parent, name) = match (canonical.parent(), canonical.file_name()) {
        (Some(p), Some(n)) => (p, n.to_os_string()),
        _ => (Path::new("/"), OsString::from(".")),
    };
    let dir = Arc::new(DirFd::open(parent).map_err(|e| Error::path_io("opening", parent, e))?);
    let mut batch = Batch::new(super::reads_for(repo));
    batch.push(
        Queued::image(
            &dir,
            name,
            target.to_path_buf(),
            node.clone(),
            Arc::clone(&file),
        ),
        content,
    )?;
    for Written { outcome, .. } in batch.write(repo, &options.progress) {
        outcome?;
    }
    file.sync_all()
        .map_err(|e| Error::path_io("flushing", target, e))?;
    stats.verified_bytes = read_back(repo.scheme()?, &file, content, zero_holes || !device)
        .map_err(|e| Error::path_io("verifying", target, e))?;
    stats.duration_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok(stats)
}

/// Opens the target for writing: a block device exclusively (refused while mounted or in
/// use, or when smaller than `size`), or an existing regular file, emptied and given the
/// image's size. Returns the file, whether it is a device, and its size.
fn open_target(target: &Path, size: u64) -> Result<(File, bool, u64)> {
    let meta = std::fs::metadata(target).map_err(|e| Error::path_io("opening", target, e))?;
    if meta.file_type().is_block_device() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
            .open(target)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EBUSY) => Error::Refused(format!(
                    "{} is mounted or in use by another device; unmount or release it first",
                    target.display()
                )),
                _ => Error::path_io("opening", target, e),
            })?;
        let device_size = std::io::Seek::seek(&mut &file, io::SeekFrom::End(0))
            .map_err(|e| Error::path_io("sizing", target, e))?;
        if device_size < size {
            return Err(Error::Refused(format!(
                "{} holds {device_size} bytes, the image {size}: the device is too small",
                target.display()
            )));
        }
        return Ok((file, true, device_size));
    }
    if !meta.file_type().is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is neither a block device nor a regular file (to restore into a directory, name one that is not a file)",
            target.display()
        )));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(target)
        .map_err(|e| Error::path_io("opening", target, e))?;
    file.set_len(0)
        .and_then(|()| file.set_len(size))
        .map_err(|e| Error::path_io("sizing", target, e))?;
    Ok((file, false, size))
}

/// Makes `len` bytes at `at` of a device read as zeros: one `fallocate(ZERO_RANGE)` where the
/// device supports it (a discard or write-zeroes request), else zeros written.
fn zero_range(file: &File, at: u64, len: u64) -> io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    if fallocate(
        file,
        FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
        at,
        len,
    )
    .is_ok()
    {
        return Ok(());
    }
    let zeros = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = usize::try_from((len - done).min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all_at(&zeros[..n], at + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Drops the target's cached pages and reads the image back: every data piece must hash to
/// its chunk id, and, when `check_holes`, every hole must read as zeros. Returns the bytes
/// checked.
fn read_back(
    scheme: &crate::crypto::Scheme,
    file: &File,
    content: &[Piece],
    check_holes: bool,
) -> io::Result<u64> {
    crate::sys::drop_cached(file);
    let mut buf = Vec::new();
    let (mut at, mut checked) = (0u64, 0u64);
    for piece in content {
        match piece {
            Piece::Data { id, len } => {
                buf.resize(*len as usize, 0);
                file.read_exact_at(&mut buf, at)?;
                if scheme.blob_id(&buf) != BlobId::from(*id) {
                    return Err(io::Error::other(format!(
                        "bytes {at}..{} read back differ from the snapshot",
                        at + u64::from(*len)
                    )));
                }
                checked += u64::from(*len);
            }
            Piece::Hole { len } if check_holes => {
                io::Seek::seek(&mut &*file, io::SeekFrom::Start(at))?;
                super::verify::zeros(file, *len).map_err(|e| {
                    io::Error::other(format!(
                        "in the image's hole at bytes {at}..{}: {e}",
                        at + len
                    ))
                })?;
                checked += len;
            }
            Piece::Hole { .. } => {}
        }
        at += piece.len();
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Scheme;

    /// An image of 3 pieces (data, hole, data) in a file, and its pieces.
    fn image() -> (tempfile::NamedTempFile, Vec<Piece>) {
        let a: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let b = vec![7u8; 3000];
        let mut bytes = a.clone();
        bytes.extend(std::iter::repeat_n(0u8, 4096));
        bytes.extend(&b);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        let data = |raw: &[u8]| Piece::Data {
            id: crate::format::id::ChunkId(Scheme::Plain.blob_id(raw).0),
            len: raw.len() as u32,
        };
        (file, vec![data(&a), Piece::Hole { len: 4096 }, data(&b)])
    }

    /// Overwrites byte `at` of `file` with `value`.
    fn poke(file: &tempfile::NamedTempFile, at: u64, value: u8) {
        let f = OpenOptions::new().write(true).open(file.path()).unwrap();
        f.write_all_at(&[value], at).unwrap();
    }

    #[test]
    fn read_back_counts_what_it_checked_and_names_a_range_that_differs() {
        let (file, pieces) = image();
        let open = || File::open(file.path()).unwrap();
        assert_eq!(
            read_back(&Scheme::Plain, &open(), &pieces, true).unwrap(),
            5000 + 4096 + 3000
        );
        assert_eq!(
            read_back(&Scheme::Plain, &open(), &pieces, false).unwrap(),
            8000
        );
        // A byte of the second data piece differs (a device that lost a write).
        poke(&file, 5000 + 4096 + 2999, 8);
        let err = read_back(&Scheme::Plain, &open(), &pieces, true).unwrap_err();
        assert!(
            err.to_string()
                .contains("bytes 9096..12096 read back differ"),
            "{err}"
        );
        poke(&file, 5000 + 4096 + 2999, 7);
        // A byte in the hole: an error when holes were zeroed, not when they were skipped
        // (a fresh device with --sparse is trusted to read as zeros).
        poke(&file, 5000 + 10, 1);
        let err = read_back(&Scheme::Plain, &open(), &pieces, true).unwrap_err();
        assert!(
            err.to_string()
                .contains("in the image's hole at bytes 5000..9096"),
            "{err}"
        );
        assert_eq!(
            read_back(&Scheme::Plain, &open(), &pieces, false).unwrap(),
            8000
        );
    }
}
