//! [`DiskCache`]: the index and snapshot files of a remote repository kept on local disk, so
//! that `snapshots`, `ls`, a mount and an unchanged re-backup read next to nothing from the
//! server but the listings.
//!
//! Every repository file but `config` is named by the blake3 of its bytes and never changes,
//! so a cached copy is checked against its name each time it is read: a damaged or planted
//! entry is dropped and fetched again, never believed. Files this process writes are cached as
//! they are written; a listing drops cached files the server no longer has (after a prune);
//! the cache is kept under its byte limit by dropping the least recently used files when
//! opened. The directory is private (0700, files 0600), under
//! `$XDG_CACHE_HOME/chronofs/` or `~/.cache/chronofs/` by default, one per repository id.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Storage, forward};

/// The repository directories whose files are cached.
const CACHED_DIRS: [&str; 2] = ["index", "snapshots"];

/// Directory of cached tree blobs (see [`BlobCache`]), trimmed with the rest.
const TREE_DIR: &str = "trees";

/// Default size bound of one repository's cache.
pub const DEFAULT_LIMIT: u64 = 2 << 30;

/// A backend whose index and snapshot files are also kept in a local directory.
pub struct DiskCache {
    inner: Arc<dyn Storage>,
    dir: PathBuf,
    counter: AtomicU64,
    hits: AtomicU64,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The directory under which caches live: `$XDG_CACHE_HOME/chronofs` or `~/.cache/chronofs`.
#[must_use]
pub fn default_root() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("chronofs"))
}

/// Writes `bytes` to `target` atomically (a private temp file in `dir`, renamed into place).
/// A failure only costs a download next time, so it is not reported.
fn keep(dir: &Path, target: &Path, bytes: &[u8], counter: &AtomicU64) {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let ok = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| fs::rename(&tmp, target));
    if ok.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Whether `path` is a cached kind of file; returns its name (the hex hash of its bytes).
fn cached_name(path: &str) -> Option<&str> {
    let (dir, name) = path.split_once('/')?;
    (CACHED_DIRS.contains(&dir) && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(name)
}

impl DiskCache {
    /// Wraps `inner`, caching in `dir` (created private if missing), trimmed to `limit` bytes.
    ///
    /// # Errors
    /// When `dir` cannot be created.
    pub fn new(inner: Arc<dyn Storage>, dir: &Path, limit: u64) -> io::Result<DiskCache> {
        for d in CACHED_DIRS.iter().chain(&[TREE_DIR]) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir.join(d))?;
        }
        let cache = DiskCache {
            inner,
            dir: dir.to_path_buf(),
            counter: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        };
        cache.trim(limit);
        Ok(cache)
    }

    /// Reads answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// A cached copy of `path` that matches its name and fits `limit`.
    fn lookup(&self, path: &str, name: &str, limit: u64) -> Option<Vec<u8>> {
        let file = self.dir.join(path);
        let bytes = fs::read(&file).ok()?;
        if bytes.len() as u64 > limit || blake3::hash(&bytes).to_hex().as_str() != name {
            let _ = fs::remove_file(&file);
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(bytes)
    }

    /// Keeps a copy (atomically: a temp file renamed into place). Failures only cost a
    /// download next time.
    fn store(&self, path: &str, bytes: &[u8]) {
        keep(&self.dir, &self.dir.join(path), bytes, &self.counter);
    }

    /// Drops the least recently modified files until the cache holds at most `limit` bytes.
    fn trim(&self, limit: u64) {
        let mut files = Vec::new();
        for d in CACHED_DIRS.iter().chain(&[TREE_DIR]) {
            let Ok(rd) = fs::read_dir(self.dir.join(d)) else {
                continue;
            };
            for e in rd.flatten() {
                if let Ok(m) = e.metadata() {
                    files.push((m.modified().ok(), m.len(), e.path()));
                }
            }
        }
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= limit {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Tree blobs of a remote repository as stored (sealed when the repository is encrypted), by
/// blob id, beside the cached files: a walk of a snapshot's directories (`ls`, a mount, change
/// detection) then reads no pack from the server twice. The repository opens and verifies
/// every cached blob like one read from a pack, and drops one that fails.
#[derive(Debug)]
pub struct BlobCache {
    dir: PathBuf,
    counter: AtomicU64,
}

impl BlobCache {
    /// The tree cache beside a [`DiskCache`] in `dir` (created private if missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: &Path) -> io::Result<BlobCache> {
        let dir = dir.join(TREE_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(BlobCache {
            dir,
            counter: AtomicU64::new(0),
        })
    }

    /// The stored bytes of blob `hex`, if cached with exactly `len` bytes.
    #[must_use]
    pub fn get(&self, hex: &str, len: usize) -> Option<Vec<u8>> {
        let f = fs::File::open(self.dir.join(hex)).ok()?;
        if f.metadata().ok()?.len() != len as u64 {
            return None;
        }
        let mut bytes = Vec::with_capacity(len);
        std::io::Read::read_to_end(&mut std::io::Read::take(f, len as u64), &mut bytes).ok()?;
        (bytes.len() == len).then_some(bytes)
    }

    /// Keeps the stored bytes of blob `hex` (failures only cost a download next time).
    pub fn put(&self, hex: &str, bytes: &[u8]) {
        keep(&self.dir, &self.dir.join(hex), bytes, &self.counter);
    }

    /// Drops a cached blob that failed verification.
    pub fn forget(&self, hex: &str) {
        let _ = fs::remove_file(self.dir.join(hex));
    }
}

impl Storage for DiskCache {
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        let Some(name) = cached_name(path) else {
            return self.inner.read(path, limit);
        };
        if let Some(bytes) = self.lookup(path, name, limit) {
            return Ok(bytes);
        }
        let bytes = self.inner.read(path, limit)?;
        if blake3::hash(&bytes).to_hex().as_str() == name {
            self.store(path, &bytes);
        }
        Ok(bytes)
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.inner.write(path, data)?;
        if cached_name(path).is_some() {
            self.store(path, data);
        }
        Ok(())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let names = self.inner.list(dir)?;
        if CACHED_DIRS.contains(&dir)
            && let Ok(rd) = fs::read_dir(self.dir.join(dir))
        {
            // What the server no longer has (a prune removed it) leaves the cache too.
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if names.binary_search(&name).is_err() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(names)
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        if cached_name(path).is_some() {
            let _ = fs::remove_file(self.dir.join(path));
        }
        self.inner.remove(path)
    }

    fn remove_all(&self, paths: &[String]) -> io::Result<()> {
        for path in paths.iter().filter(|p| cached_name(p).is_some()) {
            let _ = fs::remove_file(self.dir.join(path));
        }
        self.inner.remove_all(paths)
    }

    forward!(
        read_at,
        read_up_to,
        len,
        privacy_warning,
        replace,
        create_new,
        list_times,
        list_token,
        create_dir,
        traffic
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    #[test]
    fn serves_verified_copies_and_forgets_removed_files() {
        let remote_dir = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let remote = Arc::new(LocalStorage::new(remote_dir.path()));
        remote.create_dir("index").unwrap();
        let bytes = b"an index file".to_vec();
        let name = format!("index/{}", blake3::hash(&bytes).to_hex());
        remote.write(&name, &bytes).unwrap();
        let c = DiskCache::new(remote.clone(), cache_dir.path(), DEFAULT_LIMIT).unwrap();
        assert_eq!(c.read(&name, 100).unwrap(), bytes);
        assert_eq!(c.hits(), 0);
        assert_eq!(c.read(&name, 100).unwrap(), bytes);
        assert_eq!(c.hits(), 1, "the second read comes from the cache");
        // A damaged cached copy is dropped and fetched again.
        fs::write(cache_dir.path().join(&name), b"planted").unwrap();
        assert_eq!(c.read(&name, 100).unwrap(), bytes);
        assert_eq!(c.hits(), 1);
        // The server lost it (a prune): the listing drops it from the cache.
        remote.remove(&name).unwrap();
        assert!(c.list("index").unwrap().is_empty());
        assert!(!cache_dir.path().join(&name).exists());
        // A size limit of zero empties the cache on open.
        c.write(&name, &bytes).unwrap();
        assert!(cache_dir.path().join(&name).exists());
        let _ = DiskCache::new(remote, cache_dir.path(), 0).unwrap();
        assert!(!cache_dir.path().join(&name).exists());
    }
}
