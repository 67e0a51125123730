//! The storage seam: every byte the repository reads or writes goes through [`Storage`].
//!
//! The interface fits object storage as well as a directory: files are written once and
//! atomically, whole ([`Storage::write`]) or streamed and named when complete
//! ([`Storage::create_new`], as a multipart upload would be), never appended to, replaced or
//! updated in place once visible (only `config` is ever replaced, by [`Storage::replace`]), and
//! directories are never renamed. [`LocalStorage`] implements it for a local directory with the
//! classic durable sequence: write a temp file in `tmp/`, fsync it, rename it to the final name,
//! fsync the directory. Because temp files live in their own directory and a writer never
//! replaces or deletes a file, the data directories can be made append-only (`chattr +a`).
//! Tests implement it to inject crashes and I/O failures.
//!
//! Hostile repositories: every read is bounded. [`Storage::read`] takes the largest size the
//! caller accepts and never reads more than one byte past it; a file that is not a regular
//! file (a symlink, FIFO, device or directory planted where a repository file should be) is
//! refused with [`io::ErrorKind::InvalidData`] instead of being followed, blocked on, or read
//! without end. Repository files are private: directories 0700 and files 0600 (0750 and 0640
//! for a repository made with `init --group-readable`), whatever the umask.

//!
//! Backends: [`local::LocalStorage`] (a directory) and [`s3::S3Storage`] (an S3-compatible
//! bucket); [`location::Location`] names one and opens it.

pub mod blocks;
pub mod disk_cache;
pub mod local;
pub mod location;
pub mod s3;

use std::io::{self, Read};

pub use local::{LocalStorage, Modes, make_root, open_regular, sync_dir};

/// Prefix of temporary files; a crash can leave them behind, and they are harmless.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Directory of temporary files (renamed into place when complete).
pub const TEMP_DIR: &str = "tmp";

/// Implements, inside `impl Storage for Wrapper`, the methods a wrapper with an `inner`
/// backend passes through unchanged: `forward!(read_at, len, list);`.
macro_rules! forward {
    ($($method:ident),* $(,)?) => { $( forward!(@one $method); )* };
    (@one read) => {
        fn read(&self, path: &str, limit: u64) -> std::io::Result<Vec<u8>> {
            self.inner.read(path, limit)
        }
    };
    (@one read_at) => {
        fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.inner.read_at(path, offset, buf)
        }
    };
    (@one read_up_to) => {
        fn read_up_to(&self, path: &str, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            self.inner.read_up_to(path, offset, buf)
        }
    };
    (@one len) => {
        fn len(&self, path: &str) -> std::io::Result<u64> {
            self.inner.len(path)
        }
    };
    (@one privacy_warning) => {
        fn privacy_warning(&self) -> Option<String> {
            self.inner.privacy_warning()
        }
    };
    (@one write) => {
        fn write(&self, path: &str, data: &[u8]) -> std::io::Result<()> {
            self.inner.write(path, data)
        }
    };
    (@one replace) => {
        fn replace(&self, path: &str, data: &[u8]) -> std::io::Result<()> {
            self.inner.replace(path, data)
        }
    };
    (@one create_new) => {
        fn create_new<'a>(
            &'a self,
            dir: &str,
        ) -> std::io::Result<Box<dyn $crate::storage::NewFile + 'a>> {
            self.inner.create_new(dir)
        }
    };
    (@one list) => {
        fn list(&self, dir: &str) -> std::io::Result<Vec<String>> {
            self.inner.list(dir)
        }
    };
    (@one list_times) => {
        fn list_times(&self, dir: &str) -> std::io::Result<Vec<(String, i64)>> {
            self.inner.list_times(dir)
        }
    };
    (@one create_dir) => {
        fn create_dir(&self, dir: &str) -> std::io::Result<()> {
            self.inner.create_dir(dir)
        }
    };
    (@one list_token) => {
        fn list_token(
            &self,
            dir: &str,
        ) -> std::io::Result<Option<$crate::storage::ListToken>> {
            self.inner.list_token(dir)
        }
    };
    (@one traffic) => {
        fn traffic(&self) -> Option<$crate::storage::Traffic> {
            self.inner.traffic()
        }
    };
}
pub(crate) use forward;

/// What [`Storage::list_token`] gives: equal tokens of one directory, taken at two moments,
/// mean that it held the same files at both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListToken {
    /// The directory's device and inode (a directory replaced by another is a change).
    pub file: (u64, u64),
    /// Its modification and change times, ns.
    pub times: (i128, i128),
}

impl ListToken {
    /// Its bytes, as a saved listing holds them
    /// ([`crate::format::snapshot_listing::TOKEN_LEN`]).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[..8].copy_from_slice(&self.file.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.file.1.to_le_bytes());
        out[16..32].copy_from_slice(&self.times.0.to_le_bytes());
        out[32..].copy_from_slice(&self.times.1.to_le_bytes());
        out
    }
}

/// Whole-file, write-once access to repository files named by relative paths such as
/// `index/ab12…`.
pub trait Storage: Send + Sync {
    /// Reads a whole file of at most `limit` bytes.
    ///
    /// # Errors
    /// The underlying I/O error; `NotFound` if the file does not exist; `FileTooLarge` if it
    /// holds more than `limit` bytes (never more than `limit + 1` are read); `InvalidData` if
    /// it is not a regular file.
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>>;

    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// The underlying I/O error; `UnexpectedEof` if the file is shorter.
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Reads up to `buf.len()` bytes at `offset`, fewer only where the file ends; returns how
    /// many were read.
    ///
    /// # Errors
    /// The underlying I/O error; `UnexpectedEof` if `offset` is at or past the end.
    fn read_up_to(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len(path)?;
        if offset >= len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} is {len} bytes, read at {offset}"),
            ));
        }
        let n = usize::try_from(len - offset).map_or(buf.len(), |left| left.min(buf.len()));
        self.read_at(path, offset, &mut buf[..n])?;
        Ok(n)
    }

    /// The file's length in bytes.
    ///
    /// # Errors
    /// The underlying I/O error; `InvalidData` if it is not a regular file.
    fn len(&self, path: &str) -> io::Result<u64>;

    /// A warning for the user if others than the owner (and a deliberate backup group) can
    /// read the repository, with the command that fixes it.
    fn privacy_warning(&self) -> Option<String> {
        None
    }

    /// Reads a whole file front to back, for files too large to hold in memory (packs).
    ///
    /// # Errors
    /// As [`Storage::read`].
    fn stream(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(RangedReader {
            storage: self,
            path: path.to_string(),
            pos: 0,
            len: self.len(path)?,
        }))
    }

    /// A hint that the whole file will be read soon (a mount about to walk directory trees).
    /// Backends that cannot use it ignore it.
    fn will_need(&self, _path: &str) {}

    /// Writes a whole file atomically and durably: when this returns `Ok`, the file exists and
    /// survives a crash; if it fails or the process dies, the file is either absent or
    /// complete. A file that already exists under `path` is left untouched: names are hashes
    /// of contents, so it holds the same bytes (and append-only storage forbids replacing it).
    ///
    /// # Errors
    /// The underlying I/O error.
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()>;

    /// Like [`Storage::write`], but atomically replaces an existing file (only `config`, whose
    /// name is not a hash, is ever replaced).
    ///
    /// # Errors
    /// The underlying I/O error.
    fn replace(&self, path: &str, data: &[u8]) -> io::Result<()>;

    /// Starts a file in `dir` that is written piece by piece and gets its name only when
    /// complete (a pack, named by the hash of its bytes). Nothing is visible under a final name
    /// before [`NewFile::commit`]; dropping it uncommitted discards what was written.
    ///
    /// The default keeps the pieces in memory and calls [`Storage::write`] at commit.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn create_new<'a>(&'a self, _dir: &str) -> io::Result<Box<dyn NewFile + 'a>> {
        Ok(Box::new(Buffered {
            storage: self,
            data: Vec::new(),
        }))
    }

    /// Names of the files directly in `dir` (temporary files included, directories excluded).
    /// A missing directory lists as empty.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;

    /// As [`Storage::list`], in no particular order (a local directory of a million snapshot
    /// files lists without sorting their names).
    ///
    /// # Errors
    /// The underlying I/O error.
    fn list_unordered(&self, dir: &str) -> io::Result<Vec<String>> {
        self.list(dir)
    }

    /// The files in `dir` named by an id (64 hex digits), in no particular order: others
    /// (temporary files) are left out.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn list_ids(&self, dir: &str) -> io::Result<Vec<crate::format::id::Id>> {
        Ok(self
            .list_unordered(dir)?
            .iter()
            .filter_map(|n| crate::format::id::Id::from_hex(n.as_bytes()))
            .collect())
    }

    /// A token that stays the same while the files in `dir` do, when the storage can tell
    /// without listing them (a local directory's times); `None` when it cannot (object
    /// storage: only a listing tells), or when `dir` changed so recently that a change to come
    /// could leave its times as they are.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn list_token(&self, _dir: &str) -> io::Result<Option<ListToken>> {
        Ok(None)
    }

    /// Like [`Storage::list`], with each file's modification time in ns since the Unix epoch
    /// **by the storage's clock** (a local file's mtime; an object's `Last-Modified`): the one
    /// clock that maintenance compares ages with, so a client's skewed clock cannot make a live
    /// writer look silent.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn list_times(&self, dir: &str) -> io::Result<Vec<(String, i64)>>;

    /// Deletes a file durably.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn remove(&self, path: &str) -> io::Result<()>;

    /// Deletes every file of `paths` durably; one already gone is no error. Object storage
    /// deletes up to 1,000 in one request; a directory syncs each directory once.
    ///
    /// # Errors
    /// The first I/O error other than a missing file (the files before it are gone).
    fn remove_all(&self, paths: &[String]) -> io::Result<()> {
        paths.iter().try_for_each(|p| match self.remove(p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
    }

    /// Requests made so far, for backends that bill by request (`None` for local storage).
    fn traffic(&self) -> Option<Traffic> {
        None
    }

    /// Creates a directory (and parents) durably; succeeds if it exists.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn create_dir(&self, dir: &str) -> io::Result<()>;
}

/// A file being written by [`Storage::create_new`].
pub trait NewFile: Send {
    /// Appends bytes.
    ///
    /// # Errors
    /// The underlying I/O error.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;

    /// Makes the file durable under `path`, with the same guarantee as [`Storage::write`] (an
    /// existing file of that name is kept).
    ///
    /// # Errors
    /// The underlying I/O error; the file is then absent.
    fn commit(self: Box<Self>, path: &str) -> io::Result<()>;
}

/// [`Storage::stream`]'s default: ranged reads of at most 4 MiB.
struct RangedReader<'a, S: Storage + ?Sized> {
    storage: &'a S,
    path: String,
    pos: u64,
    len: u64,
}

impl<S: Storage + ?Sized> Read for RangedReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len - self.pos;
        let n = buf
            .len()
            .min(4 << 20)
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        self.storage.read_at(&self.path, self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// [`Storage::create_new`]'s default: collect in memory, write whole at commit.
struct Buffered<'a, S: Storage + ?Sized> {
    storage: &'a S,
    data: Vec<u8>,
}

impl<S: Storage + ?Sized> NewFile for Buffered<'_, S> {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn commit(self: Box<Self>, path: &str) -> io::Result<()> {
        self.storage.write(path, &self.data)
    }
}

/// The error for a file larger than its kind allows.
#[must_use]
pub fn too_large(len: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("is {len} bytes, more than the {limit} bytes such a file may hold"),
    )
}

/// Requests made and bytes moved by a remote backend (what object storage bills for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    /// GET requests (whole objects and ranges).
    pub get: u64,
    /// HEAD requests.
    pub head: u64,
    /// PUT requests.
    pub put: u64,
    /// LIST requests (one per page).
    pub list: u64,
    /// DELETE requests.
    pub delete: u64,
    /// Requests that failed and were sent again.
    pub retries: u64,
    /// Bytes received in response bodies.
    pub bytes_down: u64,
    /// Bytes sent in request bodies.
    pub bytes_up: u64,
}

impl Traffic {
    /// All requests.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.get + self.head + self.put + self.list + self.delete
    }

    /// "412 requests (GET 300, PUT 100, LIST 12), 1.2 MB down, 400 MB up, 0 retries".
    #[must_use]
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = [
            ("GET", self.get),
            ("HEAD", self.head),
            ("PUT", self.put),
            ("LIST", self.list),
            ("DELETE", self.delete),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
        format!(
            "{} requests ({}), {} bytes down, {} bytes up, {} retries",
            self.requests(),
            kinds.join(", "),
            self.bytes_down,
            self.bytes_up,
            self.retries
        )
    }
}
