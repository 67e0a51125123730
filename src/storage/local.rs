//! [`LocalStorage`]: a repository in a local directory, written with the classic durable
//! sequence (temp file in `tmp/`, fsync, rename, fsync the directory), private modes, and
//! reads that refuse anything but a regular file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::{ListToken, NewFile, Storage, TEMP_DIR, TEMP_PREFIX, too_large};

/// A local temp file streamed to, then fsynced and renamed into place.
struct LocalNewFile {
    file: io::BufWriter<File>,
    tmp: PathBuf,
    root: PathBuf,
    /// Mode of a directory made for it.
    dir_mode: u32,
    committed: bool,
}

impl NewFile for LocalNewFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)
    }

    fn commit(mut self: Box<Self>, path: &str) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        let target = self.root.join(path);
        if !put_in_place(&self.tmp, &target, false, self.dir_mode)? {
            return Ok(()); // Drop removes the temp file.
        }
        self.committed = true;
        let target_dir = target.parent().unwrap_or(&self.root);
        sync_dir(target_dir)?;
        match self.tmp.parent() {
            Some(d) if d != target_dir => sync_dir(d),
            _ => Ok(()),
        }
    }
}

impl Drop for LocalNewFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// How many open pack files [`LocalStorage`] keeps for [`Storage::read_at`].
const OPEN_FILE_CACHE: usize = 64;
/// A file time (seconds and nanoseconds, as `stat` gives them) in ns since the Unix epoch.
fn stamp_ns(secs: i64, nanos: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nanos)
}

/// How long a directory must have been still for its times to stand for its listing
/// ([`Storage::list_token`]).
const SETTLED: std::time::Duration = std::time::Duration::from_secs(1);

/// A repository in a local directory.
///
/// Ranged reads keep a small LRU of open files: repository files are written once and never
/// changed (a name is the hash of the content), so a cached descriptor can never see other
/// bytes than the name promises, even if the file is deleted meanwhile.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    counter: AtomicU64,
    open_files: Mutex<LruCache<String, Arc<File>>>,
    modes: Modes,
}

/// Permission bits of the files and directories a repository is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes {
    /// Files.
    pub file: u32,
    /// Directories.
    pub dir: u32,
}

impl Modes {
    /// Only the owner: the default.
    pub const PRIVATE: Modes = Modes {
        file: 0o600,
        dir: 0o700,
    };
    /// The owner, and the group for reading (`init --group-readable`, for a backup group).
    pub const GROUP_READABLE: Modes = Modes {
        file: 0o640,
        dir: 0o750,
    };

    /// The modes a repository was made with, told by its top directory: group-readable if
    /// the group may enter it, private otherwise.
    fn of_root(root: &Path) -> Modes {
        match fs::metadata(root) {
            Ok(m) if m.mode() & 0o050 != 0 => Modes::GROUP_READABLE,
            _ => Modes::PRIVATE,
        }
    }
}

impl LocalStorage {
    /// Storage rooted at `root` (which must exist); new files get the modes its top
    /// directory implies (see [`Modes`]).
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self::with_modes(root, Modes::of_root(root))
    }

    /// Storage rooted at `root` whose new files and directories get `modes`.
    #[must_use]
    pub fn with_modes(root: &Path, modes: Modes) -> Self {
        LocalStorage {
            root: root.to_path_buf(),
            counter: AtomicU64::new(0),
            open_files: Mutex::new(LruCache::new(
                NonZeroUsize::new(OPEN_FILE_CACHE).unwrap_or(NonZeroUsize::MIN),
            )),
            modes,
        }
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    /// Creates a new temp file in `tmp/` (creating the directory if an older repository lacks
    /// it).
    fn temp_file(&self, name: &str) -> io::Result<(File, PathBuf)> {
        let dir = self.full(TEMP_DIR);
        let mode = self.modes.file;
        let mut attempts = 0;
        let (file, tmp) = loop {
            // A crashed process may have left a file of the same name (same PID after a
            // reboot, same counter): take the next name then.
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!("{TEMP_PREFIX}{}-{n}-{name}", std::process::id()));
            let open = || {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&tmp)
            };
            match open() {
                Ok(f) => break (f, tmp),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    make_dir(&dir, self.modes.dir)?;
                    break (open()?, tmp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 1000 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        };
        // The umask may have taken bits away (a group-readable repository under umask 077).
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        Ok((file, tmp))
    }

    /// The durable write sequence behind [`Storage::write`] and [`Storage::replace`].
    fn write_file(&self, path: &str, data: &[u8], replace: bool) -> io::Result<()> {
        let target = self.full(path);
        if !replace && fs::symlink_metadata(&target).is_ok() {
            return Ok(());
        }
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut f, tmp) = self.temp_file(&name)?;
        let result = (|| {
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            if put_in_place(&tmp, &target, replace, self.modes.dir)? {
                sync_dir(&dir)?;
            }
            Ok(())
        })();
        let _ = fs::remove_file(&tmp);
        self.open_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop(path);
        result
    }

    /// An open descriptor for `path`, from the cache or freshly opened.
    fn open_cached(&self, path: &str) -> io::Result<Arc<File>> {
        let lock = || {
            self.open_files
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(f) = lock().get(path) {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(open_regular(&self.full(path))?);
        lock().put(path.to_string(), Arc::clone(&f));
        Ok(f)
    }
}

/// Opens a repository file for reading, refusing anything but a regular file: a symlink is
/// not followed (`O_NOFOLLOW`), and a FIFO or device is neither blocked on (`O_NONBLOCK`) nor
/// read.
///
/// # Errors
/// The OS error, or `InvalidData` naming what the file is instead.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_regular("a symbolic link"),
            _ => e,
        })?;
    let ft = file.metadata()?.file_type();
    if !ft.is_file() {
        return Err(not_regular(describe_type(ft)));
    }
    Ok(file)
}

/// The error for a repository path that holds something other than a regular file.
fn not_regular(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("is {what}, not a regular file"),
    )
}

fn describe_type(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "of an unknown type"
    }
}

/// Creates directory `dir` (and missing parents) with exactly `mode`, whatever the umask.
fn make_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = dir.parent().ok_or(e)?;
            make_dir(parent, mode)?;
            make_dir(dir, mode)
        }
        Err(e) => Err(e),
    }
}

/// Makes `dir`, the top directory of a new repository, private (or group-readable): its
/// mode decides who can reach anything inside.
///
/// # Errors
/// The OS error.
pub fn make_root(dir: &Path, modes: Modes) -> io::Result<()> {
    make_dir(dir, modes.dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(modes.dir))
}

/// Renames `tmp` to `target`; unless `replace`, an existing `target` is kept and `false`
/// returned (the caller then discards `tmp`). A missing directory of `target` is made (mode
/// `dir_mode`, its parent fsynced): a repository copied by a tool that drops empty
/// directories (git, `aws s3 sync` from a bucket) has no `locks/` or `data/XX/` until needed.
fn put_in_place(tmp: &Path, target: &Path, replace: bool, dir_mode: u32) -> io::Result<bool> {
    if !replace && fs::symlink_metadata(target).is_ok() {
        return Ok(false);
    }
    match fs::rename(tmp, target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && tmp.exists() => {
            let dir = target.parent().ok_or(e)?;
            make_dir(dir, dir_mode)?;
            if let Some(up) = dir.parent() {
                sync_dir(up)?;
            }
            fs::rename(tmp, target)?;
        }
        result => result?,
    }
    Ok(true)
}

/// fsyncs a directory so that a rename or create inside it is durable.
///
/// # Errors
/// The underlying I/O error.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for LocalStorage {
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        let file = open_regular(&self.full(path))?;
        let len = file.metadata()?.len();
        if len > limit {
            return Err(too_large(len, limit));
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        // The file may grow while read: never take more than one byte past the limit.
        file.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(too_large(buf.len() as u64, limit));
        }
        Ok(buf)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.open_cached(path)?.read_exact_at(buf, offset)
    }

    fn stream(&self, path: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        let file = open_regular(&self.full(path))?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, file)))
    }

    fn len(&self, path: &str) -> io::Result<u64> {
        let m = fs::symlink_metadata(self.full(path))?;
        if !m.is_file() {
            return Err(not_regular(describe_type(m.file_type())));
        }
        Ok(m.len())
    }

    fn privacy_warning(&self) -> Option<String> {
        let mode = fs::metadata(&self.root).ok()?.mode() & 0o7777;
        if mode & 0o007 == 0 {
            return None;
        }
        let root = self.root.display();
        let group = if mode & 0o070 != 0 {
            format!(" (or `chmod -R o-rwx {root}` to keep a backup group's access)")
        } else {
            String::new()
        };
        Some(format!(
            "repository {root} is open to all users (mode {mode:o}): anyone on this machine \
             can read the backed-up files; make it private with `chmod -R go-rwx {root}`{group}"
        ))
    }

    fn will_need(&self, path: &str) {
        if let Ok(f) = self.open_cached(path) {
            crate::sys::will_need(&f);
        }
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.write_file(path, data, false)
    }

    fn replace(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.write_file(path, data, true)
    }

    fn create_new<'a>(&'a self, _dir: &str) -> io::Result<Box<dyn NewFile + 'a>> {
        let (file, tmp) = self.temp_file("new")?;
        Ok(Box::new(LocalNewFile {
            file: io::BufWriter::with_capacity(1 << 20, file),
            tmp,
            root: self.root.clone(),
            dir_mode: self.modes.dir,
            committed: false,
        }))
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let mut names = self.list_unordered(dir)?;
        names.sort();
        Ok(names)
    }

    fn list_unordered(&self, dir: &str) -> io::Result<Vec<String>> {
        let rd = match fs::read_dir(self.full(dir)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn list_ids(&self, dir: &str) -> io::Result<Vec<crate::format::id::Id>> {
        use rustix::fs::{self as rfs, FileType, Mode, OFlags};
        // Straight from the directory entries: a million names parse without a string each.
        let fd = match rfs::open(
            self.full(dir),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in rfs::Dir::read_from(&fd)? {
            let entry = entry?;
            let Some(id) = crate::format::id::Id::from_hex(entry.file_name().to_bytes()) else {
                continue;
            };
            let is_file = match entry.file_type() {
                FileType::RegularFile => true,
                FileType::Unknown => {
                    rfs::statat(&fd, entry.file_name(), rfs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
                        |st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile,
                    )
                }
                _ => false,
            };
            if is_file {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn list_token(&self, dir: &str) -> io::Result<Option<ListToken>> {
        let m = match fs::metadata(self.full(dir)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let times = (
            stamp_ns(m.mtime(), m.mtime_nsec()),
            stamp_ns(m.ctime(), m.ctime_nsec()),
        );
        // File systems stamp times from a clock that ticks every few milliseconds: a change
        // in the same tick as the last one leaves the times as they were. Only a directory
        // that has been still for a while (by this clock, or stamped in the future) gives a
        // token.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        if now - times.0.max(times.1) < i128::try_from(SETTLED.as_nanos()).unwrap_or(i128::MAX) {
            return Ok(None);
        }
        Ok(Some(ListToken {
            file: (m.dev(), m.ino()),
            times,
        }))
    }

    fn list_times(&self, dir: &str) -> io::Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for name in self.list(dir)? {
            match fs::symlink_metadata(self.full(&format!("{dir}/{name}"))) {
                Ok(m) => {
                    let ns = stamp_ns(m.mtime(), m.mtime_nsec());
                    out.push((name, i64::try_from(ns).unwrap_or(i64::MAX)));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.open_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop(path);
        let full = self.full(path);
        fs::remove_file(&full)?;
        sync_dir(full.parent().unwrap_or(&self.root))
    }

    fn remove_all(&self, paths: &[String]) -> io::Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for path in paths {
            self.open_files
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop(path.as_str());
            let full = self.full(path);
            match fs::remove_file(&full) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            dirs.insert(full.parent().unwrap_or(&self.root).to_path_buf());
        }
        dirs.iter().try_for_each(|d| sync_dir(d))
    }

    fn create_dir(&self, dir: &str) -> io::Result<()> {
        let full = self.full(dir);
        make_dir(&full, self.modes.dir)?;
        sync_dir(full.parent().unwrap_or(&self.root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_is_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.create_dir("index").unwrap();
        s.write("index/a", b"hello").unwrap();
        s.write("index/a", b"hello2").unwrap();
        assert_eq!(
            s.read("index/a", 99).unwrap(),
            b"hello",
            "write never replaces"
        );
        s.replace("index/a", b"hello2").unwrap();
        assert_eq!(s.read("index/a", 99).unwrap(), b"hello2");
        assert_eq!(
            s.read("index/a", 5).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        assert!(s.list(TEMP_DIR).unwrap().is_empty(), "no temp file left");
        assert_eq!(s.list("index").unwrap(), vec!["a".to_string()]);
        assert_eq!(s.len("index/a").unwrap(), 6);
        let mut buf = [0u8; 3];
        s.read_at("index/a", 2, &mut buf).unwrap();
        assert_eq!(&buf, b"llo");
        assert!(s.read_at("index/a", 5, &mut buf).is_err());
        assert!(s.list("missing").unwrap().is_empty());
        s.remove("index/a").unwrap();
        assert!(s.read("index/a", 99).is_err());
    }

    #[test]
    fn only_regular_files_are_read_and_new_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::with_modes(dir.path(), Modes::PRIVATE);
        s.create_dir("index/sub").unwrap();
        s.write("index/f", b"x").unwrap();
        let mode = |p: &str| fs::metadata(dir.path().join(p)).unwrap().mode() & 0o777;
        assert_eq!(mode("index"), 0o700);
        assert_eq!(mode("index/sub"), 0o700);
        assert_eq!(mode("index/f"), 0o600);
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("index/link")).unwrap();
        let fifo = dir.path().join("index/fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        for p in ["index/link", "index/fifo", "index/sub"] {
            assert_eq!(
                s.read(p, 1 << 20).unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{p}"
            );
            assert_eq!(
                s.len(p).unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{p}"
            );
            let mut b = [0u8; 4];
            assert_eq!(
                s.read_at(p, 0, &mut b).unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{p}"
            );
        }
        // A sparse giant is refused by its size, before anything is read.
        let giant = File::create(dir.path().join("index/giant")).unwrap();
        giant.set_len(200 << 20).unwrap();
        assert_eq!(
            s.read("index/giant", 16 << 20).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        let g = LocalStorage::with_modes(dir.path(), Modes::GROUP_READABLE);
        g.write("index/g", b"y").unwrap();
        assert_eq!(mode("index/g"), 0o640);
    }

    #[test]
    fn temp_files_left_by_a_crash_do_not_block_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.create_dir(TEMP_DIR).unwrap();
        s.create_dir("index").unwrap();
        // What a crashed process with this PID left behind.
        for n in 0..3 {
            let name = format!("{TEMP_PREFIX}{}-{n}-a", std::process::id());
            fs::write(dir.path().join(TEMP_DIR).join(name), b"partial").unwrap();
        }
        s.write("index/a", b"whole").unwrap();
        assert_eq!(s.read("index/a", 99).unwrap(), b"whole");
    }

    #[test]
    fn streamed_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.create_dir("data/ab").unwrap();
        let mut f = s.create_new("data").unwrap();
        f.append(b"hello ").unwrap();
        f.append(b"world").unwrap();
        assert!(s.list("data/ab").unwrap().is_empty());
        f.commit("data/ab/x").unwrap();
        assert_eq!(s.read("data/ab/x", 99).unwrap(), b"hello world");
        assert!(s.list(TEMP_DIR).unwrap().is_empty(), "no temp file left");

        let mut dropped = s.create_new("data").unwrap();
        dropped.append(b"lost").unwrap();
        drop(dropped);
        assert!(
            s.list(TEMP_DIR).unwrap().is_empty(),
            "an abandoned file is removed"
        );
    }

    #[test]
    fn a_missing_directory_is_made_when_a_file_is_put_there() {
        // A repository copied by a tool that keeps no empty directories.
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.write("locks/l", b"lock").unwrap();
        assert_eq!(s.read("locks/l", 99).unwrap(), b"lock");
        let mut f = s.create_new("data").unwrap();
        f.append(b"pack").unwrap();
        f.commit("data/cd/p").unwrap();
        assert_eq!(s.read("data/cd/p", 99).unwrap(), b"pack");
        s.create_dir("index").unwrap();
        let mode = |p: &str| fs::metadata(dir.path().join(p)).unwrap().mode() & 0o7777;
        assert_eq!(
            mode("data/cd"),
            mode("index"),
            "made like the repository's directories"
        );
        assert_eq!(mode("locks"), mode("index"));
    }
}
