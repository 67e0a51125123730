//! Test fixture: a temp directory with a source tree and a repository, a runner for the real
//! binary, and a field-by-field comparison of two directory trees.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The repository: a directory, or an `s3:` location (a path holding that text).
    pub repo: PathBuf,
    pub src: PathBuf,
    /// Environment for every command (an S3 server's credentials).
    pub env: Vec<(String, String)>,
}

impl Fixture {
    /// A fresh fixture with an initialised repository and an empty `src/`.
    pub fn new() -> Fixture {
        Self::with_init(&[])
    }

    /// As [`Fixture::new`], passing `init_args` to `chronofs init`.
    pub fn with_init(init_args: &[&str]) -> Fixture {
        Self::at(None, Vec::new(), init_args)
    }

    /// A fixture whose repository is at `repo` (default: `repo/` in its directory), commands
    /// run with `env`, initialised with `init_args`.
    pub fn at(repo: Option<&str>, env: Vec<(String, String)>, init_args: &[&str]) -> Fixture {
        let f = Self::attach(repo, env);
        let mut args = vec!["init"];
        args.extend_from_slice(init_args);
        f.ok(&args);
        f
    }

    /// A fixture on the existing repository at `repo` (not initialised).
    pub fn attach(repo: Option<&str>, env: Vec<(String, String)>) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("chronofs-test-")
            .tempdir_in(test_tmp())
            .unwrap();
        let repo = repo.map_or_else(|| dir.path().join("repo"), PathBuf::from);
        let src = dir.path().join("src");
        fs::create_dir(&src).unwrap();
        Fixture {
            dir,
            repo,
            src,
            env,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The binary on this fixture's repository, with the test passphrase in the environment.
    /// `init` makes an encrypted repository whose key is cheap to derive (the suite runs
    /// thousands of commands; the default cost is tested on its own).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.arg("--repo").arg(&self.repo).args(args);
        if args.first() == Some(&"init") {
            c.args(CHEAP_KDF);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "chronofs {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts the exit code; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "chronofs {args:?}: stderr {stderr}\nstdout {}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    pub fn src_str(&self) -> &str {
        self.src.to_str().unwrap()
    }

    /// Where a restore of the whole snapshot puts `src`.
    pub fn restored_src(&self, target: &Path) -> PathBuf {
        target.join(self.src.strip_prefix("/").unwrap())
    }
}

/// Modification and change times of every directory above `path`: a snapshot holds its
/// source's ancestors with their metadata, and other tests running at the same time create
/// and remove directories in shared ones (the test temp directory), which changes them.
pub fn ancestor_stamps(path: &Path) -> Vec<(i64, i64, i64, i64)> {
    path.ancestors()
        .skip(1)
        .filter_map(|a| fs::metadata(a).ok())
        .map(|m| (m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))
        .collect()
}

/// Runs `backup` (which returns its output) until one ran with the source's ancestors
/// unchanged since the backup before it (at most 5 times), so that "unchanged" means
/// unchanged; returns that run's output. Each try first takes a backup that takes in whatever
/// changed above the source since the last one (the caller's, or the try before).
pub fn unchanged_backup(src: &Path, backup: impl Fn() -> String) -> String {
    for _ in 0..5 {
        backup();
        let before = ancestor_stamps(src);
        let out = backup();
        if ancestor_stamps(src) == before {
            return out;
        }
    }
    panic!("the ancestors of {} kept changing", src.display())
}

/// (id, dated name) of every snapshot of `f`'s repository, oldest first.
pub fn snapshot_listing(f: &Fixture) -> Vec<(String, String)> {
    let out = f.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The passphrase of every test repository.
pub const PASSWORD: &str = "correct horse battery staple";
/// Argon2id options that make a key in a millisecond (tests only).
pub const CHEAP_KDF: [&str; 4] = ["--kdf-memory", "64K", "--kdf-time", "1"];

/// The chronofs binary, with the test passphrase in its environment and no standard input.
/// A fixture whose commands keep their caches in `cache/` of the fixture, made by `init` with
/// `init_args`.
pub fn cached_fixture(init_args: &[&str]) -> Fixture {
    let mut f = Fixture::attach(None, Vec::new());
    f.env.push((
        "XDG_CACHE_HOME".into(),
        f.path("cache").to_string_lossy().into_owned(),
    ));
    let mut args = vec!["init"];
    args.extend_from_slice(init_args);
    f.ok(&args);
    f
}

/// Directory `sub` (`index`, `catalog`) of the one repository in the cache under `cache/` of
/// the fixture.
pub fn repo_cache_dir(f: &Fixture, cache: &str, sub: &str) -> PathBuf {
    let root = f.path(cache).join("chronofs");
    let repos: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(repos.len(), 1, "{repos:?}");
    repos[0].join(sub)
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chronofs"));
    c.env("CHRONOFS_PASSWORD", PASSWORD).stdin(Stdio::null());
    c
}

/// Asserts that a command succeeded, showing its stderr if not.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `base` made encrypted with [`PASSWORD`] and a cheap key, as [`Fixture::cmd`] makes `init`.
pub fn encrypted(base: chronofs::repo::InitOptions) -> chronofs::repo::InitOptions {
    let mut key =
        chronofs::repo::keys::NewKey::new(zeroize::Zeroizing::new(PASSWORD.as_bytes().to_vec()));
    key.kdf = chronofs::format::keyfile::Kdf {
        memory_kib: 64,
        time: 1,
        lanes: 1,
    };
    chronofs::repo::InitOptions {
        encryption: Some(key),
        ..base
    }
}

/// Opens (and unlocks with [`PASSWORD`]) the repository at `path`, index loaded.
pub fn open_repo(path: &Path) -> chronofs::repo::Repository {
    try_open(path).unwrap()
}

/// Writes `count - 1` more snapshot records through the library: copies of the repository's
/// first, a second apart after it, each given the host name `host(i)` when that names one.
pub fn copies_of_first_snapshot(path: &Path, count: i64, host: impl Fn(i64) -> Option<String>) {
    let repo = open_repo(path);
    let (snaps, _) = repo.snapshots().unwrap();
    let first = snaps[0].1.clone();
    for i in 1..count {
        let mut s = first.clone();
        s.time_ns += i * 1_000_000_000;
        if let Some(h) = host(i) {
            s.hostname = h;
        }
        repo.save_snapshot(&s).unwrap();
    }
}

/// Opens the repository at `path` as a command does: config, keys ([`PASSWORD`], if it is
/// encrypted), then the index; any of them may fail.
pub fn try_open(path: &Path) -> chronofs::Result<chronofs::repo::Repository> {
    let mut repo = chronofs::repo::Repository::open_unindexed(path)?;
    repo.unlock(PASSWORD.as_bytes())?;
    repo.load_index_strict()?;
    Ok(repo)
}

/// Opens (and unlocks) the repository at `path` through `storage`, without its index.
pub fn open_on(
    storage: std::sync::Arc<dyn chronofs::storage::Storage>,
    path: &Path,
) -> chronofs::repo::Repository {
    let mut repo = chronofs::repo::Repository::open_storage(storage, path).unwrap();
    repo.unlock(PASSWORD.as_bytes()).unwrap();
    repo
}

/// Temp directory on a disk file system (not tmpfs) so sparse files and xattrs behave like
/// users' disks; override with CHRONOFS_TEST_TMP.
pub fn test_tmp() -> PathBuf {
    let p = std::env::var_os("CHRONOFS_TEST_TMP")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    fs::create_dir_all(&p).unwrap();
    p
}

/// Whether we run as root. Tests needing root skip loudly when not, and fail in CI
/// (CHRONOFS_REQUIRE_ROOT_TESTS=1) so they can never be skipped silently there.
pub fn have_root(test: &str) -> bool {
    // SAFETY-free: geteuid via the library's wrapper.
    if chronofs::sys::euid() == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CHRONOFS_REQUIRE_ROOT_TESTS").is_none(),
        "{test} needs root and CHRONOFS_REQUIRE_ROOT_TESTS is set"
    );
    eprintln!("SKIPPED {test}: needs root (run the suite as root, as CI does)");
    false
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut v);
    v
}

/// Compares two trees entry by entry: type, mode, owner, size, mtime (ns), symlink target,
/// device numbers, xattrs, content, sparseness and hardlink structure. Panics with the first
/// difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let mut links: HashMap<(u64, u64), (u64, u64)> = HashMap::new();
    compare(a, b, &mut links);
}

fn compare(a: &Path, b: &Path, links: &mut HashMap<(u64, u64), (u64, u64)>) {
    let (ma, mb) = (
        fs::symlink_metadata(a).unwrap(),
        fs::symlink_metadata(b).unwrap_or_else(|e| panic!("{}: {e}", b.display())),
    );
    let what = |f: &str| format!("{f} differs: {} vs {}", a.display(), b.display());
    assert_eq!(ma.file_type(), mb.file_type(), "{}", what("type"));
    assert_eq!(ma.mode(), mb.mode(), "{}", what("mode"));
    assert_eq!(
        (ma.uid(), ma.gid()),
        (mb.uid(), mb.gid()),
        "{}",
        what("owner")
    );
    // A directory's size is the file system's business (ext4 says 4096, the mount the entry
    // count); everything else must match.
    if !ma.is_dir() {
        assert_eq!(ma.size(), mb.size(), "{}", what("size"));
    }
    assert_eq!(
        (ma.mtime(), ma.mtime_nsec()),
        (mb.mtime(), mb.mtime_nsec()),
        "{}",
        what("mtime")
    );
    assert_eq!(ma.nlink(), mb.nlink(), "{}", what("link count"));
    assert_eq!(xattrs(a), xattrs(b), "{}", what("xattrs"));
    let ft = ma.file_type();
    if !ft.is_dir() && ma.nlink() > 1 {
        let key = (ma.dev(), ma.ino());
        let seen = *links.entry(key).or_insert((mb.dev(), mb.ino()));
        assert_eq!(seen, (mb.dev(), mb.ino()), "{}", what("hardlink grouping"));
    }
    if ft.is_symlink() {
        assert_eq!(
            fs::read_link(a).unwrap(),
            fs::read_link(b).unwrap(),
            "{}",
            what("symlink target")
        );
    } else if ft.is_block_device() || ft.is_char_device() {
        assert_eq!(ma.rdev(), mb.rdev(), "{}", what("device numbers"));
    } else if ft.is_file() {
        assert!(same_content(a, b), "{}", what("content"));
        // Holes come back as holes: the copy allocates no more than the original (+ a block).
        assert!(
            mb.blocks() <= ma.blocks() + 8,
            "{}",
            what("allocated blocks (sparseness)")
        );
    } else if ft.is_dir() {
        let names = |d: &Path| {
            let mut v: Vec<_> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let (na, nb) = (names(a), names(b));
        assert_eq!(na, nb, "{}", what("directory entries"));
        for n in na {
            compare(&a.join(&n), &b.join(&n), links);
        }
    }
}

/// Streams both files in 1 MiB blocks (files may be many GiB, mostly holes).
fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
    fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        n
    }
}

fn xattrs(p: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut v: Vec<_> = xattr::list(p)
        .map(|names| {
            names
                .map(|n| {
                    let val = xattr::get(p, &n).ok().flatten().unwrap_or_default();
                    (n, val)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Bytes in the files under `p`, as `du -sb` counts them.
pub fn dir_bytes(p: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs a shell command, asserting success.
pub fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "`{cmd}` failed");
}

pub fn os(s: &[u8]) -> &OsStr {
    std::os::unix::ffi::OsStrExt::from_bytes(s)
}

/// Files under `dir` (recursive) whose names end with a hex id (pack files).
pub fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in fs::read_dir(repo.join("data")).unwrap() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Flips one bit in the first blob of the largest pack of `repo` (a data pack, when a backup
/// wrote one pack of trees beside it) and returns that pack's path.
pub fn damage_largest_pack(repo: &Path) -> PathBuf {
    let pack = pack_files(repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    flip_byte(&pack, 16 + 1000);
    pack
}

/// Flips one bit of byte `at` of file `path`.
pub fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    fs::write(path, &bytes).unwrap();
}

/// Storage that passes everything through until `fail_at` write steps have happened; from
/// then on each fails as a crash would: a write or a streamed file leaves its partial temp file
/// behind. Steps are every write, replace and delete, and for streamed files (packs, the real
/// path of a backup) the start, every append and the commit.
pub struct FaultyStorage {
    pub inner: chronofs::storage::LocalStorage,
    pub ops: std::sync::atomic::AtomicUsize,
    pub fail_at: usize,
}

impl FaultyStorage {
    pub fn new(repo: &Path, fail_at: usize) -> FaultyStorage {
        FaultyStorage {
            inner: chronofs::storage::LocalStorage::new(repo),
            ops: std::sync::atomic::AtomicUsize::new(0),
            fail_at,
        }
    }

    fn step(&self) -> std::io::Result<()> {
        if self.ops.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= self.fail_at {
            return Err(std::io::Error::other("simulated crash"));
        }
        Ok(())
    }
}

/// A streamed file of [`FaultyStorage`]: a failing step abandons it like a crash, which
/// leaves a partial temp file behind.
struct FaultyNewFile<'a> {
    inner: Option<Box<dyn chronofs::storage::NewFile + 'a>>,
    storage: &'a FaultyStorage,
    written: usize,
}

impl FaultyNewFile<'_> {
    fn crash(&mut self, e: std::io::Error) -> std::io::Error {
        // Dropping the file deletes its temp file, which a crash never does: leave one like it.
        self.inner = None;
        let n = self.storage.ops.load(std::sync::atomic::Ordering::SeqCst);
        let tmp = self
            .storage
            .inner
            .root()
            .join(format!("tmp/.tmp-crash-new-{n}"));
        let _ = fs::write(tmp, vec![0x5a; self.written.min(1 << 20)]);
        e
    }
}

impl chronofs::storage::NewFile for FaultyNewFile<'_> {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.storage.step() {
            return Err(self.crash(e));
        }
        self.written += data.len();
        match &mut self.inner {
            Some(f) => f.append(data),
            None => Err(std::io::Error::other("simulated crash")),
        }
    }

    fn commit(mut self: Box<Self>, path: &str) -> std::io::Result<()> {
        if let Err(e) = self.storage.step() {
            return Err(self.crash(e));
        }
        match self.inner.take() {
            Some(f) => f.commit(path),
            None => Err(std::io::Error::other("simulated crash")),
        }
    }
}

impl chronofs::storage::Storage for FaultyStorage {
    fn read(&self, p: &str, limit: u64) -> std::io::Result<Vec<u8>> {
        self.inner.read(p, limit)
    }
    fn read_at(&self, p: &str, o: u64, b: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(p, o, b)
    }
    fn len(&self, p: &str) -> std::io::Result<u64> {
        self.inner.len(p)
    }
    fn list(&self, d: &str) -> std::io::Result<Vec<String>> {
        self.inner.list(d)
    }
    fn list_times(&self, d: &str) -> std::io::Result<Vec<(String, i64)>> {
        self.inner.list_times(d)
    }
    fn remove(&self, p: &str) -> std::io::Result<()> {
        self.step()?;
        self.inner.remove(p)
    }
    fn create_dir(&self, d: &str) -> std::io::Result<()> {
        self.inner.create_dir(d)
    }
    fn write(&self, p: &str, data: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.step() {
            let name = p.rsplit('/').next().unwrap_or(p);
            let tmp = self.inner.root().join(format!("tmp/.tmp-crash-{name}"));
            let _ = fs::write(tmp, &data[..data.len() / 2]);
            return Err(e);
        }
        self.inner.write(p, data)
    }
    fn replace(&self, p: &str, data: &[u8]) -> std::io::Result<()> {
        self.step()?;
        self.inner.replace(p, data)
    }
    fn create_new<'a>(
        &'a self,
        dir: &str,
    ) -> std::io::Result<Box<dyn chronofs::storage::NewFile + 'a>> {
        self.step()?;
        Ok(Box::new(FaultyNewFile {
            inner: Some(self.inner.create_new(dir)?),
            storage: self,
            written: 0,
        }))
    }
}

/// What a repository holds at one moment, seen from outside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoState {
    /// Temporary files (writes in progress, or left by a crash).
    pub temps: Vec<String>,
    pub packs: std::collections::BTreeSet<String>,
    pub indexes: std::collections::BTreeSet<String>,
    pub snapshots: std::collections::BTreeSet<String>,
}

fn names_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The repository's files now.
pub fn repo_state(repo: &Path) -> RepoState {
    let mut st = RepoState {
        temps: names_in(&repo.join("tmp")),
        indexes: names_in(&repo.join("index")).into_iter().collect(),
        snapshots: names_in(&repo.join("snapshots")).into_iter().collect(),
        ..RepoState::default()
    };
    for sub in names_in(&repo.join("data")) {
        st.packs.extend(names_in(&repo.join("data").join(sub)));
    }
    st
}

/// Starts `cmd`, watches the repository, and SIGKILLs the process the moment `when` holds of
/// what it sees. Returns that state. Panics if the process ended first: the kill must land in
/// the middle of the run.
pub fn kill_when(
    mut cmd: Command,
    repo: &Path,
    what: &str,
    when: impl Fn(&RepoState) -> bool,
) -> RepoState {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = loop {
        let st = repo_state(repo);
        if when(&st) {
            let _ = child.kill();
            break st;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the process ended ({status}) before {what}");
        }
    };
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the process ended ({status}) before the kill at {what}"
    );
    seen
}

/// Local storage that tells `before` of each call it is about to pass on, as (operation,
/// path): `"list"`, `"list_times"`, `"write"` and so on. Tests count calls with it, or run
/// something at a chosen moment of a command (see [`once_at`]).
pub struct Observed {
    inner: chronofs::storage::LocalStorage,
    before: Box<Observer>,
}

/// What [`Observed`] calls before each call: (operation, path).
type Observer = dyn Fn(&str, &str) + Send + Sync;

impl Observed {
    pub fn new(repo: &Path, before: impl Fn(&str, &str) + Send + Sync + 'static) -> Observed {
        Observed {
            inner: chronofs::storage::LocalStorage::new(repo),
            before: Box::new(before),
        }
    }
}

/// A handle on the repository at `path` (index loaded) whose storage runs `hook` once, when
/// its `n`-th write of a file under `dir` starts.
pub fn hooked_at_write(
    path: &Path,
    n: usize,
    dir: &'static str,
    hook: impl FnOnce() + Send + 'static,
) -> chronofs::repo::Repository {
    let storage = std::sync::Arc::new(Observed::new(
        path,
        once_at(n, move |op, p| op == "write" && p.starts_with(dir), hook),
    ));
    let repo = open_on(storage, path);
    repo.load_index_strict().unwrap();
    repo
}

/// An observer for [`Observed`] that runs `hook` once, when the `n`-th call that `matches`
/// (operation, path) starts.
pub fn once_at(
    n: usize,
    matches: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    hook: impl FnOnce() + Send + 'static,
) -> impl Fn(&str, &str) + Send + Sync + 'static {
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let hook = std::sync::Mutex::new(Some(hook));
    move |op, path| {
        if matches(op, path)
            && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == n
            && let Some(h) = hook.lock().unwrap().take()
        {
            h();
        }
    }
}

impl chronofs::storage::Storage for Observed {
    fn read(&self, p: &str, limit: u64) -> std::io::Result<Vec<u8>> {
        (self.before)("read", p);
        self.inner.read(p, limit)
    }
    fn read_at(&self, p: &str, o: u64, b: &mut [u8]) -> std::io::Result<()> {
        (self.before)("read_at", p);
        self.inner.read_at(p, o, b)
    }
    fn len(&self, p: &str) -> std::io::Result<u64> {
        (self.before)("len", p);
        self.inner.len(p)
    }
    fn list(&self, d: &str) -> std::io::Result<Vec<String>> {
        (self.before)("list", d);
        self.inner.list(d)
    }
    fn list_times(&self, d: &str) -> std::io::Result<Vec<(String, i64)>> {
        (self.before)("list_times", d);
        self.inner.list_times(d)
    }
    fn list_token(&self, d: &str) -> std::io::Result<Option<chronofs::storage::ListToken>> {
        (self.before)("list_token", d);
        self.inner.list_token(d)
    }
    fn remove(&self, p: &str) -> std::io::Result<()> {
        (self.before)("remove", p);
        self.inner.remove(p)
    }
    fn create_dir(&self, d: &str) -> std::io::Result<()> {
        (self.before)("create_dir", d);
        self.inner.create_dir(d)
    }
    fn write(&self, p: &str, data: &[u8]) -> std::io::Result<()> {
        (self.before)("write", p);
        self.inner.write(p, data)
    }
    fn replace(&self, p: &str, data: &[u8]) -> std::io::Result<()> {
        (self.before)("replace", p);
        self.inner.replace(p, data)
    }
    fn create_new<'a>(
        &'a self,
        dir: &str,
    ) -> std::io::Result<Box<dyn chronofs::storage::NewFile + 'a>> {
        (self.before)("create_new", dir);
        self.inner.create_new(dir)
    }
}

/// `c` run through the shell with its soft and hard limits on open files set to `n`.
pub fn with_open_file_limit(c: &std::process::Command, n: u32) -> std::process::Command {
    let mut s = std::process::Command::new("sh");
    s.arg("-c")
        .arg(format!("ulimit -n {n} && exec \"$@\""))
        .arg("sh")
        .arg(c.get_program())
        .args(c.get_args())
        .stdin(std::process::Stdio::null());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => s.env(k, v),
            None => s.env_remove(k),
        };
    }
    s
}
