//! Live counters of a running backup, shared between the pipeline's threads (which add to
//! them) and whoever displays progress (which reads them). Plain relaxed atomics: a display
//! that is a few files behind is fine, and updating them costs the pipeline nothing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one backup run, updated as it goes.
#[derive(Debug, Default)]
pub struct Progress {
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    bytes_read: AtomicU64,
    errors: AtomicU64,
    expected_files: AtomicU64,
    expected_bytes: AtomicU64,
    current: Mutex<Option<PathBuf>>,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressView {
    /// Files finished (read, or reused from the parent).
    pub files_done: u64,
    /// Bytes of finished files, read or reused.
    pub bytes_done: u64,
    /// Bytes actually read from the source so far.
    pub bytes_read: u64,
    /// Source entries that could not be read so far.
    pub errors: u64,
    /// Files expected in all (from the parent snapshot; 0 = unknown).
    pub expected_files: u64,
    /// Bytes expected in all (from the parent snapshot; 0 = unknown).
    pub expected_bytes: u64,
    /// A file being read right now.
    pub current: Option<PathBuf>,
}

impl Progress {
    /// Sets the expected totals (from the parent snapshot).
    pub fn expect(&self, files: u64, bytes: u64) {
        self.expected_files.store(files, Ordering::Relaxed);
        self.expected_bytes.store(bytes, Ordering::Relaxed);
    }

    /// A file is finished; `size` bytes of it are in the snapshot.
    pub fn file_done(&self, size: u64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(size, Ordering::Relaxed);
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
            current: self.current.lock().ok().and_then(|c| c.clone()),
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
