//! The repository engine: where and how bytes are stored, crash-safely.
//!
//! Invariants (see docs/FORMAT.md, "Crash safety"):
//! - every file is written once, atomically and durably through [`Storage::write`];
//! - a writer makes packs durable before the index file that names them, and index files durable
//!   before the snapshot that needs them; a snapshot is visible only once its file exists;
//! - so after a crash at any instant every listed snapshot is complete, and the only leftovers
//!   are temp files and packs no index names, both harmless;
//! - every blob read is decompressed and re-hashed: damaged data is an error, never wrong bytes.
//!
//! This file opens, creates and unlocks a repository; `load.rs` loads the index (into memory,
//! or the local index on disk, `index/`), `read.rs` reads blobs, `snapshots.rs` snapshot files.

pub mod blob;
pub mod cache;
mod catalog;
pub mod commit;
pub mod fence;
pub mod index;
pub mod keys;
pub mod layout;
mod load;
pub mod lock;
pub mod pack;
mod read;
pub(crate) mod snapshot_sets;
mod snapshot_table;
mod snapshots;

pub mod writer;

pub use snapshot_table::SnapshotTable;

use std::io;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::crypto::{Crypto, Scheme};
use crate::error::{Error, Result};
use crate::format::config::{
    ChunkerParams, Config, DEFAULT_COMPRESSION_LEVEL, DEFAULT_PACK_TARGET, MAX_CONFIG_LEN,
};
use crate::format::crypto::{CIPHER_NAME, CIPHER_NONE, MasterKey, SessionKey};
use crate::format::id::{BlobId, Id, IndexId, SnapshotId, TreeId};
use crate::format::index::{Index as IndexRecord, IndexedPack};
use crate::format::snapshot::Snapshot;

use self::index::Index;
use self::writer::BlobWriter;
use crate::storage::location::Location;
use crate::storage::{self, Modes, Storage};

/// Readable snapshots (oldest first) and the errors of unreadable snapshot files.
pub type SnapshotListing = (Vec<(SnapshotId, Snapshot)>, Vec<Error>);

/// Parameters chosen at `init`.
pub struct InitOptions {
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// zstd level, 0 to store raw.
    pub compression_level: i32,
    /// Pack size target in bytes.
    pub pack_target_size: u32,
    /// Refuse deletes and rewrites.
    pub append_only: bool,
    /// Let the repository directory's group read it (for a deliberate backup group); by
    /// default only the owner can.
    pub group_readable: bool,
    /// Encrypt (format version 2) with this first key; `None` makes a plaintext repository.
    pub encryption: Option<keys::NewKey>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::default(),
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            pack_target_size: DEFAULT_PACK_TARGET,
            append_only: false,
            group_readable: false,
            encryption: None,
        }
    }
}

/// An open repository with its index loaded.
pub struct Repository {
    storage: Arc<dyn Storage>,
    location: Location,
    config: Config,
    /// What objects are sealed with; `None` while an encrypted repository is not unlocked.
    scheme: Option<Scheme>,
    /// The unlocked master key and the key file it came from (encrypted repositories).
    key: Option<(MasterKey, String)>,
    /// With a backup-only key: the host's own snapshots and trees, for change detection.
    cache: Option<cache::LocalCache>,
    /// Tree blobs of a remote repository kept on local disk.
    tree_cache: Option<storage::disk_cache::BlobCache>,
    index: RwLock<Index>,
    /// Names of the index files the in-memory index was built from.
    index_files: std::sync::Mutex<Vec<String>>,
    /// The last load of the index found no damaged index file.
    index_clean: std::sync::atomic::AtomicBool,
    /// Held while the index is (re)loaded, so that two refreshes do not interleave.
    index_loading: std::sync::Mutex<()>,
    /// Session keys met, numbered for the process's life (blob locations name them).
    sessions: Arc<index::sessions::SessionTable>,
    /// Where this user's caches live (`None`: no cache, the index is loaded into memory).
    cache_root: Option<std::path::PathBuf>,
    /// The local index directory, made on first load.
    local_index: std::sync::OnceLock<Option<index::store::Store>>,
    /// Load every index file into memory (prune, check).
    full_index: std::sync::atomic::AtomicBool,
    /// The snapshot catalog directory, made on first listing.
    catalog: std::sync::OnceLock<Option<catalog::Catalog>>,
    /// The snapshot sets met, and the records of their members read.
    sets: std::sync::Mutex<snapshot_sets::Registry>,
}

/// A problem found while loading index files (reported by `check`, fatal elsewhere).
#[derive(Debug)]
pub struct IndexProblem {
    /// The index file.
    pub file: String,
    /// What is wrong.
    pub error: Error,
}

impl Repository {
    /// Creates a new repository in directory `path` (created if missing, must be empty).
    ///
    /// # Errors
    /// As [`Repository::init_at`].
    pub fn init(path: &Path, options: &InitOptions) -> Result<Repository> {
        Self::init_at(&Location::from(path), options)
    }

    /// Creates a new repository at `location`: a directory (created if missing, must be
    /// empty) or a bucket prefix (must hold no object; the bucket must exist).
    ///
    /// # Errors
    /// [`Error::InitRefused`] if the place is not empty; I/O errors.
    pub fn init_at(location: &Location, options: &InitOptions) -> Result<Repository> {
        let modes = if options.group_readable {
            Modes::GROUP_READABLE
        } else {
            Modes::PRIVATE
        };
        let storage = location.create(modes, layout::CONFIG)?;
        let config = Config {
            repo_id: random_id(),
            chunker: ChunkerParams {
                // An encrypted repository seeds the gear table from its id key.
                seed: if options.encryption.is_some() {
                    0
                } else {
                    options.chunker.seed
                },
                ..options.chunker
            },
            compression_level: options.compression_level,
            pack_target_size: options.pack_target_size,
            cipher: if options.encryption.is_some() {
                CIPHER_NAME
            } else {
                CIPHER_NONE
            }
            .into(),
            append_only: options.append_only,
            created_ns: now_ns(),
        };
        config
            .validate()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mkdir = |d: &str| {
            storage
                .create_dir(d)
                .map_err(|e| Error::repo_io("creating", d, e))
        };
        for d in [
            layout::INDEX_DIR,
            layout::SNAPSHOT_DIR,
            layout::LOCK_DIR,
            layout::DATA_DIR,
            storage::TEMP_DIR,
        ] {
            mkdir(d)?;
        }
        for d in layout::pack_dirs() {
            mkdir(&d)?;
        }
        if options.encryption.is_some() {
            mkdir(layout::KEY_DIR)?;
        }
        let mut repo = Repository {
            storage,
            location: location.clone(),
            config,
            scheme: None,
            key: None,
            cache: None,
            tree_cache: None,
            index: RwLock::new(Index::new()),
            sessions: Arc::default(),
            cache_root: None,
            local_index: std::sync::OnceLock::new(),
            full_index: std::sync::atomic::AtomicBool::new(false),
            catalog: std::sync::OnceLock::new(),
            sets: std::sync::Mutex::default(),
            index_files: std::sync::Mutex::new(Vec::new()),
            index_clean: std::sync::atomic::AtomicBool::new(false),
            index_loading: std::sync::Mutex::new(()),
        };
        match &options.encryption {
            None => repo.scheme = Some(Scheme::Plain),
            Some(new) => {
                let master = keys::first_master_key(new)?;
                let id = keys::write_key_file(&repo, &master, new)?;
                repo.set_key(master, id)?;
            }
        }
        // The config is written last: a directory without it is not (yet) a repository.
        let bytes = repo
            .config
            .encode()
            .map_err(|e| Error::corrupt(layout::CONFIG, e.to_string()))?;
        repo.storage
            .write(layout::CONFIG, &bytes)
            .map_err(|e| Error::repo_io("writing", layout::CONFIG, e))?;
        Ok(repo)
    }

    /// Whether the repository is encrypted (format version 2).
    #[must_use]
    pub fn encrypted(&self) -> bool {
        self.config.encrypted()
    }

    /// Whether the repository was opened with a backup-only key.
    #[must_use]
    pub fn backup_only(&self) -> bool {
        self.scheme
            .as_ref()
            .and_then(Scheme::crypto)
            .is_some_and(|c| c.backup_only())
    }

    /// What the repository's objects are sealed with.
    ///
    /// # Errors
    /// [`Error::Key`] for an encrypted repository that was not unlocked.
    pub fn scheme(&self) -> Result<&Scheme> {
        self.scheme.as_ref().ok_or_else(|| {
            Error::Key(format!(
                "the repository at {} is encrypted and no key was unlocked",
                self.location.display()
            ))
        })
    }

    /// Fails with [`Error::BackupOnly`] when the repository was opened with a backup-only key
    /// (`what` names the operation).
    ///
    /// # Errors
    /// As described.
    pub fn require_full_key(&self, what: &str) -> Result<()> {
        if self.backup_only() {
            return Err(Error::BackupOnly(what.into()));
        }
        Ok(())
    }

    /// Makes `master` (from key file `key_id`) the repository's key.
    fn set_key(&mut self, master: MasterKey, key_id: String) -> Result<()> {
        let crypto = Crypto::new(&master)
            .map_err(|e| Error::corrupt(format!("{}/{key_id}", layout::KEY_DIR), e.to_string()))?;
        if crypto.backup_only() {
            // Without a cache every backup reads every file again; it still works.
            self.cache = cache::LocalCache::open(&self.config.repo_id).ok();
        }
        self.scheme = Some(Scheme::Encrypted(Arc::new(crypto)));
        self.key = Some((master, key_id));
        Ok(())
    }

    /// Keeps a tree this backup wrote or reused in the backup-only cache (a no-op with a full
    /// key). A failure only costs reading the files again next time.
    pub fn cache_tree(&self, id: &TreeId, raw: &[u8]) {
        if let Some(c) = &self.cache {
            let _ = c.put_tree(id, raw);
        }
    }

    /// The newest snapshot of host `host`, source paths `paths` (any order) and `stdin` that
    /// `matches` accepts: a backup's parent. Only that group's records are opened. With a
    /// backup-only key, among the ones this host wrote and keeps in its cache.
    ///
    /// # Errors
    /// As [`Self::snapshot_table`].
    pub fn newest_where(
        &self,
        matches: impl Fn(&Snapshot) -> bool,
        host: &str,
        paths: &[crate::format::bytes::ByteString],
        stdin: bool,
    ) -> Result<Option<(SnapshotId, Snapshot)>> {
        if self.backup_only() {
            let cached = self.cache.as_ref().map(cache::LocalCache::snapshots);
            return Ok(cached
                .unwrap_or_default()
                .into_iter()
                .rev()
                .find(|(_, s)| matches(s)));
        }
        let table = self.snapshot_table()?;
        let group = table.group_of(host, paths, stdin);
        for i in (0..table.len()).rev() {
            if table.group(i) != group {
                continue;
            }
            let s = table.record(i)?;
            if matches(&s) {
                return Ok(Some((table.id(i), s)));
            }
        }
        Ok(None)
    }

    /// The unlocked master key and the name of its key file.
    #[must_use]
    pub fn master_key(&self) -> Option<(&MasterKey, &str)> {
        self.key.as_ref().map(|(k, id)| (k, id.as_str()))
    }

    /// The chunker parameters writers use: the config's, with the gear seed derived from the
    /// id key in an encrypted repository.
    ///
    /// # Errors
    /// [`Error::Key`] if an encrypted repository was not unlocked.
    pub fn chunker_params(&self) -> Result<ChunkerParams> {
        let mut p = self.config.chunker;
        if let Some(c) = self.scheme()?.crypto() {
            p.seed = c.chunker_seed();
        }
        Ok(p)
    }

    /// Opens the repository in directory `path` and loads its index.
    ///
    /// # Errors
    /// As [`Repository::open_at`].
    pub fn open(path: &Path) -> Result<Repository> {
        Self::open_at(&Location::from(path))
    }

    /// Opens the repository at `location` and loads its index.
    ///
    /// # Errors
    /// [`Error::NoRepository`] if there is none; [`Error::Corrupt`] for a damaged config or
    /// index file.
    pub fn open_at(location: &Location) -> Result<Repository> {
        let repo = Self::open_unindexed_at(location)?;
        repo.load_index_strict()?;
        Ok(repo)
    }

    /// Opens a repository and reads its config, without loading the index.
    ///
    /// # Errors
    /// As [`Repository::open`].
    pub fn open_unindexed(path: &Path) -> Result<Repository> {
        Self::open_unindexed_at(&Location::from(path))
    }

    /// Opens the repository at `location` and reads its config, without loading the index.
    ///
    /// # Errors
    /// As [`Repository::open_at`].
    pub fn open_unindexed_at(location: &Location) -> Result<Repository> {
        Self::open_storage(location.open()?, location.clone())
    }

    /// Opens a repository on any storage (tests use this with fault-injecting storage).
    ///
    /// # Errors
    /// As [`Repository::open`].
    pub fn open_storage(
        storage: Arc<dyn Storage>,
        location: impl Into<Location>,
    ) -> Result<Repository> {
        let location = location.into();
        let bytes = match storage.read(layout::CONFIG, MAX_CONFIG_LEN as u64) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoRepository {
                    path: location.as_path_buf(),
                    reason: "no config file (not a chronofs repository; run `chronofs init`)"
                        .into(),
                });
            }
            Err(e) => return Err(Error::repo_io("reading", layout::CONFIG, e)),
        };
        let config =
            Config::decode(&bytes).map_err(|e| Error::corrupt(layout::CONFIG, e.to_string()))?;
        let repo = Repository {
            storage,
            location,
            scheme: (!config.encrypted()).then_some(Scheme::Plain),
            config,
            key: None,
            cache: None,
            tree_cache: None,
            index: RwLock::new(Index::new()),
            sessions: Arc::default(),
            cache_root: None,
            local_index: std::sync::OnceLock::new(),
            full_index: std::sync::atomic::AtomicBool::new(false),
            catalog: std::sync::OnceLock::new(),
            sets: std::sync::Mutex::default(),
            index_files: std::sync::Mutex::new(Vec::new()),
            index_clean: std::sync::atomic::AtomicBool::new(false),
            index_loading: std::sync::Mutex::new(()),
        };
        if !repo.encrypted()
            && !repo
                .list_ids(layout::KEY_DIR)
                .unwrap_or_default()
                .is_empty()
        {
            return Err(Error::corrupt(
                layout::CONFIG,
                "it says the repository is not encrypted, but keys/ holds key files (was the \
                 config replaced?)",
            ));
        }
        Ok(repo)
    }

    /// Unlocks an encrypted repository with `passphrase`, trying every key file; returns the
    /// name of the key file that opened. A plaintext repository needs no unlocking.
    ///
    /// # Errors
    /// [`Error::Key`] when no key file opens with the passphrase (or there are none);
    /// [`Error::Corrupt`] for a damaged key file that nothing else opened.
    pub fn unlock(&mut self, passphrase: &[u8]) -> Result<Option<String>> {
        if !self.encrypted() {
            return Ok(None);
        }
        let (master, id) = keys::open(self, passphrase)?;
        self.set_key(master, id.clone())?;
        Ok(Some(id))
    }

    /// Reads a content-addressed file of at most `limit` bytes and checks that its blake3
    /// matches its name.
    fn read_verified(&self, file: &str, name: &str, limit: usize) -> Result<Vec<u8>> {
        let bytes = self
            .storage
            .read(file, limit as u64)
            .map_err(|e| Error::repo_io("reading", file, e))?;
        if Id::hash(&bytes).to_hex() != name {
            return Err(Error::corrupt(
                file,
                "contents do not match the file name's hash",
            ));
        }
        Ok(bytes)
    }

    /// Hex names in `dir` that look like ids (temp files and strays are skipped).
    pub(crate) fn list_ids(&self, dir: &str) -> Result<Vec<String>> {
        let names = self
            .storage
            .list(dir)
            .map_err(|e| Error::repo_io("listing", dir, e))?;
        Ok(names
            .into_iter()
            .filter(|n| n.parse::<Id>().is_ok())
            .collect())
    }

    /// The storage backend.
    #[must_use]
    pub fn storage(&self) -> &dyn Storage {
        &*self.storage
    }

    /// A warning if users other than the owner (and a backup group) can read the
    /// repository, with the command that fixes it.
    #[must_use]
    pub fn privacy_warning(&self) -> Option<String> {
        self.storage.privacy_warning()
    }

    /// Deletes a repository file; one that is already gone is not an error (an earlier,
    /// interrupted run or another process removed it).
    ///
    /// # Errors
    /// Other I/O errors, naming the file.
    pub fn remove_if_present(&self, path: &str) -> Result<()> {
        match self.storage.remove(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::repo_io("removing", path, e))
            }
            _ => Ok(()),
        }
    }

    /// Deletes every file of `paths` (repository-relative) that exists, in as few requests
    /// as the storage allows ([`Storage::remove_all`]).
    ///
    /// # Errors
    /// [`Error::RepoIo`] naming the first path of the failed request.
    pub fn remove_all_present(&self, paths: &[String]) -> Result<()> {
        self.storage
            .remove_all(paths)
            .map_err(|e| Error::repo_io("removing", paths.first().map_or("", String::as_str), e))
    }

    /// Keeps the index and snapshot files of a remote repository in a local cache under
    /// `root` (one directory per repository id), so later commands fetch only what is new. A
    /// local repository needs none; a cache that cannot be made is skipped with `Err`.
    ///
    /// # Errors
    /// When the cache directory cannot be created.
    pub fn attach_disk_cache(&mut self, root: &Path) -> Result<()> {
        self.cache_root = Some(root.to_path_buf());
        if self.location.local().is_some() {
            return Ok(());
        }
        let dir = root.join(self.config.repo_id.to_hex()).join("remote");
        let cached = storage::disk_cache::DiskCache::new(
            Arc::clone(&self.storage),
            &dir,
            storage::disk_cache::DEFAULT_LIMIT,
        )
        .map_err(|e| Error::path_io("creating the cache", &dir, e))?;
        self.tree_cache = storage::disk_cache::BlobCache::new(&dir).ok();
        self.storage = Arc::new(cached);
        Ok(())
    }

    /// Keeps a tree blob this process writes in the local tree cache of a remote repository
    /// (a no-op otherwise), so the next command does not download it. A blob whose pack never
    /// lands is never asked for, and one sealed in another session fails verification and is
    /// fetched instead.
    pub fn remember_tree_blob(&self, id: &BlobId, stored: &[u8]) {
        if let Some(c) = &self.tree_cache {
            c.put(&id.to_hex(), stored);
        }
    }

    /// A shared handle on the storage backend (for threads that outlive a borrow).
    #[must_use]
    pub fn storage_arc(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.storage)
    }

    /// Where the repository is (for messages).
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The repository config.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Turns append-only mode on or off by replacing `config` atomically. The caller holds the
    /// exclusive lock.
    ///
    /// # Errors
    /// I/O errors (for example `config` made immutable with `chattr +i`).
    pub fn set_append_only(&mut self, on: bool) -> Result<()> {
        let mut config = self.config.clone();
        config.append_only = on;
        let bytes = config
            .encode()
            .map_err(|e| Error::corrupt(layout::CONFIG, e.to_string()))?;
        self.storage
            .replace(layout::CONFIG, &bytes)
            .map_err(|e| Error::repo_io("replacing", layout::CONFIG, e))?;
        self.config = config;
        Ok(())
    }

    /// Read access to the in-memory index.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a blob is indexed.
    #[must_use]
    pub fn has_blob(&self, id: &BlobId) -> bool {
        self.index().contains(id)
    }

    pub(crate) fn add_to_index(&self, packs: &[IndexedPack], session: Option<&SessionKey>) {
        let mut index = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        packs.iter().for_each(|p| index.add_pack(p, session));
        index.finalize();
    }

    /// Writes an index file (sealed in an encrypted repository) under its id.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn write_index_record(&self, record: &IndexRecord) -> Result<IndexId> {
        let bytes = record
            .encode(self.scheme()?.payload())
            .map_err(|e| Error::corrupt("<new index>", e.to_string()))?;
        self.write_named(&bytes, |id| layout::index_path(&IndexId(id)))
            .map(IndexId)
    }

    /// Writes `bytes` as the file `path(its blake3)` (it becomes visible atomically); returns
    /// the hash.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub(crate) fn write_named(&self, bytes: &[u8], path: impl Fn(Id) -> String) -> Result<Id> {
        let id = Id::hash(bytes);
        let path = path(id);
        self.storage
            .write(&path, bytes)
            .map_err(|e| Error::repo_io("writing", path, e))?;
        Ok(id)
    }

    /// Starts adding blobs.
    ///
    /// # Errors
    /// An encrypted repository that was not unlocked, or no random numbers for its session.
    pub fn writer(&self) -> Result<BlobWriter<'_>> {
        BlobWriter::new(self)
    }

    /// Starts rewriting blobs that are already indexed into new packs (prune's repacking):
    /// no deduplication against the index, and no index files written.
    ///
    /// # Errors
    /// As [`Self::writer`].
    pub fn repack_writer(&self) -> Result<BlobWriter<'_>> {
        BlobWriter::for_repack(self)
    }
}

/// Current time in nanoseconds since the Unix epoch.
#[must_use]
pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// 32 random bytes from the OS, mixed with the time and pid as a fallback.
fn random_id() -> Id {
    let mut h = blake3::Hasher::new();
    if let Ok(b) = std::fs::read("/proc/sys/kernel/random/uuid") {
        h.update(&b);
    }
    h.update(&now_ns().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    Id(*h.finalize().as_bytes())
}
