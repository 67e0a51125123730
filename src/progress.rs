//! Live counters of a running command (a backup, a restore, a check of the data, a copy, a
//! prune's phases), shared
//! between the threads that do the work (which add to them) and whoever displays progress
//! (which reads them). Plain relaxed atomics: a display that is a few files behind is fine,
//! and updating them costs the work nothing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters of one run, updated as it goes.
#[derive(Debug, Default)]
pub struct Progress {
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    bytes_read: AtomicU64,
    errors: AtomicU64,
    expected_files: AtomicU64,
    expected_bytes: AtomicU64,
    scanning: AtomicBool,
    scanned_files: AtomicU64,
    scanned_bytes: AtomicU64,
    current: Mutex<Option<PathBuf>>,
    phase: Mutex<Option<&'static str>>,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressView {
    /// Files finished (a backup: read, or reused from the parent; a restore: written; a
    /// check: packs read).
    pub files_done: u64,
    /// Bytes done (a backup: of finished files, read or reused; a restore: written; a
    /// check: of packs read).
    pub bytes_done: u64,
    /// Bytes actually read from the source so far (a backup).
    pub bytes_read: u64,
    /// Entries that could not be read or written so far.
    pub errors: u64,
    /// Files expected in all (0 = unknown).
    pub expected_files: u64,
    /// Bytes expected in all (0 = unknown).
    pub expected_bytes: u64,
    /// A scan for the totals is under way (they are not known yet).
    pub scanning: bool,
    /// Files the scan has counted so far.
    pub scanned_files: u64,
    /// Bytes the scan has counted so far.
    pub scanned_bytes: u64,
    /// A file being worked on right now.
    pub current: Option<PathBuf>,
    /// What a command of several phases is doing now (a prune: "marking", "repacking", …).
    pub phase: Option<&'static str>,
}

impl Progress {
    /// Sets the expected totals (a backup: from the parent snapshot, or a scan of the
    /// sources; a restore: from the snapshot's trees).
    pub fn expect(&self, files: u64, bytes: u64) {
        self.expected_files.store(files, Ordering::Relaxed);
        self.expected_bytes.store(bytes, Ordering::Relaxed);
        self.scanning.store(false, Ordering::Relaxed);
    }

    /// A new phase begins, with its totals (0: unknown): what was done is counted again
    /// from zero.
    pub fn phase(&self, name: &'static str, files: u64, bytes: u64) {
        if let Ok(mut p) = self.phase.lock() {
            *p = Some(name);
        }
        self.files_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        self.expect(files, bytes);
    }

    /// A file is finished; `size` bytes of it are in the snapshot.
    pub fn file_done(&self, size: u64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(size, Ordering::Relaxed);
    }

    /// A scan for the totals has counted `files` and `bytes` so far (it sets them with
    /// [`Progress::expect`] when done).
    pub fn scanned(&self, files: u64, bytes: u64) {
        self.scanning.store(true, Ordering::Relaxed);
        self.scanned_files.store(files, Ordering::Relaxed);
        self.scanned_bytes.store(bytes, Ordering::Relaxed);
    }

    /// `n` more bytes are done, before the file they belong to is (a restore writes a large
    /// file in many pieces).
    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` bytes were read from the source.
    pub fn read(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }

    /// An entry could not be read.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the file being read now.
    pub fn reading(&self, path: &Path) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(path.to_path_buf());
        }
    }

    /// The counters now.
    #[must_use]
    pub fn view(&self) -> ProgressView {
        ProgressView {
            files_done: self.files_done.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            expected_files: self.expected_files.load(Ordering::Relaxed),
            expected_bytes: self.expected_bytes.load(Ordering::Relaxed),
            scanning: self.scanning.load(Ordering::Relaxed),
            scanned_files: self.scanned_files.load(Ordering::Relaxed),
            scanned_bytes: self.scanned_bytes.load(Ordering::Relaxed),
            current: self.current.lock().ok().and_then(|c| c.clone()),
            phase: self.phase.lock().ok().and_then(|p| *p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let p = Progress::default();
        p.expect(3, 300);
        p.file_done(100);
        p.file_done(50);
        p.read(80);
        p.error();
        p.reading(Path::new("/a/b"));
        let v = p.view();
        assert_eq!(
            (v.files_done, v.bytes_done, v.bytes_read, v.errors),
            (2, 150, 80, 1)
        );
        assert_eq!((v.expected_files, v.expected_bytes), (3, 300));
        assert_eq!(v.current.as_deref(), Some(Path::new("/a/b")));
    }
}
