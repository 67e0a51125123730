//! Loading the index: every index file into memory (a full index, for prune and check), or
//! a client's local index on disk brought up to date with the index files listed
//! (docs/FORMAT.md, "Local index runs"), and reloading either when the repository changed.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::crypto::KEM_CIPHERTEXT_LEN;
use crate::format::id::{Id, IndexId, PackId};
use crate::format::index::{Index as IndexRecord, MAX_INDEX_LEN, PruneState};

use super::index::build::BuildError;
use super::index::disk::DiskIndex;
use super::index::run::Run;
use super::index::store::{self, Store};
use super::index::{Index, IndexFileInfo};
use super::{IndexProblem, Repository, layout};

/// Blobs of index files read before a run is written from them (about 75 MB in memory).
const BUILD_BATCH: usize = 500_000;

impl Repository {
    /// Loads the index a client needs: the local index on disk brought up to date when the
    /// repository has a cache directory (and no full index was asked for), else every index
    /// file into memory. A damaged index file is an error.
    ///
    /// # Errors
    /// Listing failures, or the first damaged index file.
    pub fn load_index_strict(&self) -> Result<()> {
        let Some(store) = self.local_store() else {
            return first_problem(self.load_index()?);
        };
        let _loading = self
            .index_loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = self.list_ids(layout::INDEX_DIR)?;
        first_problem(self.load_local_index_or_memory(store, names)?)
    }

    /// Loads every index file into memory (what prune needs); a damaged one is an error.
    ///
    /// # Errors
    /// Listing failures, or the first damaged index file.
    pub fn load_full_index_strict(&self) -> Result<()> {
        first_problem(self.load_index()?)
    }

    /// From now on, loads every index file into memory and reads every snapshot file, never
    /// the local index or the snapshot catalog: prune and check, which walk the whole index
    /// and must see the repository's own snapshot files.
    pub fn prefer_repository(&self) {
        self.full_index
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The local index directory, made on first use (after unlocking: its tags are keyed);
    /// `None` without a cache directory, when a full index is preferred, or when the
    /// directory cannot be made (a warning says so).
    fn local_store(&self) -> Option<&Store> {
        if self.full_index.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let root = self.cache_root.as_ref()?;
        self.local_index
            .get_or_init(|| {
                let dir = root.join(self.config.repo_id.to_hex()).join("index");
                let (key, session_len) = match self.scheme().ok()?.crypto() {
                    Some(c) => (c.local_index_key(), KEM_CIPHERTEXT_LEN),
                    None => (
                        zeroize::Zeroizing::new(blake3::derive_key(
                            crate::format::crypto::context::LOCAL_INDEX,
                            &self.config.repo_id.0,
                        )),
                        0,
                    ),
                };
                match Store::new(&dir, &key, session_len) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!(
                            "chronofs: warning: no local index in {}: {e}; loading the whole index into memory",
                            dir.display()
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// [`Self::load_local_index`], or, when the cache directory fails (not writable, full),
    /// every index file into memory, with a warning: a cache problem never stops a command.
    /// The caller holds `index_loading` and listed `names`.
    fn load_local_index_or_memory(
        &self,
        store: &Store,
        names: Vec<String>,
    ) -> Result<Vec<IndexProblem>> {
        match self.load_local_index(store, names.clone()) {
            Err(Error::PathIo { path, cause, .. }) if path.starts_with(store.dir()) => {
                eprintln!(
                    "chronofs: warning: the local index in {} cannot be updated ({cause}); \
                     loading the whole index into memory",
                    store.dir().display()
                );
                self.load_index_files(names)
            }
            other => other,
        }
    }

    /// Brings the local index up to date with the index files listed (`names`): builds runs
    /// from the files it has not seen, marks superseded and deleted ones dead, merges runs
    /// where needed, and puts it in force. Damaged index files are returned as problems and
    /// skipped (and read again next time). The caller holds `index_loading`.
    ///
    /// # Errors
    /// Listing failures; I/O errors in the cache directory.
    fn load_local_index(&self, store: &Store, mut names: Vec<String>) -> Result<Vec<IndexProblem>> {
        let held = store.lock().map_err(|e| cache_error(store, e))?;
        let (mut runs, warnings) = store.open_runs(&held);
        for w in warnings {
            eprintln!("chronofs: warning: {w}");
        }
        let mut problems = Vec::new();
        let mut rebuilds = 0;
        let live_in = |names: &[String], runs: &[Run]| {
            let listed: HashSet<IndexId> = names
                .iter()
                .filter_map(|n| n.parse::<Id>().ok().map(IndexId))
                .collect();
            let superseded: HashSet<IndexId> = runs
                .iter()
                .flat_map(|r| r.header().sources.iter())
                .filter(|s| listed.contains(&s.id))
                .flat_map(|s| s.supersedes.iter().copied())
                .collect();
            move |run: &Run, s: u32| {
                run.header()
                    .sources
                    .get(s as usize)
                    .is_some_and(|s| listed.contains(&s.id) && !superseded.contains(&s.id))
            }
        };
        let live = loop {
            self.add_runs(store, &held, &mut runs, &mut names, &mut problems)?;
            // Merging keeps every live source, so the sets stay right for the runs after it.
            let live = live_in(&names, &runs);
            match store.settle(&held, &mut runs, &live) {
                Ok(()) => break live,
                // A run found damaged while merging: leave it out and build its index files
                // again (a disk that keeps damaging what is written ends in an error).
                Err(BuildError::Damage(d)) if rebuilds < 3 => {
                    eprintln!("chronofs: warning: {d}; rebuilding it");
                    Store::discard(&d);
                    runs.retain(|r| r.path() != d.path);
                    rebuilds += 1;
                }
                Err(e) => return Err(cache_error(store, e)),
            }
        };
        store
            .commit(&held, &runs)
            .map_err(|e| cache_error(store, e))?;
        drop(held);
        let runs: Vec<(Run, Vec<bool>)> = runs
            .into_iter()
            .map(|r| {
                let flags = (0..r.header().sources.len())
                    .map(|s| live(&r, s as u32))
                    .collect();
                (r, flags)
            })
            .collect();
        let disk = DiskIndex::new(runs, Arc::clone(&self.sessions));
        let (epoch, condemned) = prune_state(disk.live_sources().filter_map(|s| s.prune.as_ref()));
        let mut index = Index::with_sessions(Arc::clone(&self.sessions));
        index.set_prune_state(epoch, condemned);
        index.set_disk(disk);
        Ok(self.put_in_force(index, names, problems))
    }

    /// Makes `index`, built from the index files `names`, the one lookups use; returns the
    /// damaged files met (`problems`).
    fn put_in_force(
        &self,
        index: Index,
        names: Vec<String>,
        problems: Vec<IndexProblem>,
    ) -> Vec<IndexProblem> {
        *self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = index;
        *self
            .index_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = names;
        self.index_clean
            .store(problems.is_empty(), std::sync::atomic::Ordering::Release);
        problems
    }

    /// Builds runs from the index files of `names` that no run covers (read in batches of
    /// [`BUILD_BATCH`] blobs). A listed file that is gone was superseded by a prune: list
    /// again (into `names`) after a pause, as a full load does. Damaged files go to
    /// `problems` and are not read again in this load.
    fn add_runs(
        &self,
        store: &Store,
        held: &store::Locked,
        runs: &mut Vec<Run>,
        names: &mut Vec<String>,
        problems: &mut Vec<IndexProblem>,
    ) -> Result<()> {
        let mut covered: HashSet<IndexId> = runs
            .iter()
            .flat_map(|r| r.header().sources.iter().map(|s| s.id))
            .collect();
        let mut attempts = 0;
        loop {
            let mut batch: Vec<(IndexId, IndexRecord)> = Vec::new();
            let mut blobs = 0;
            let mut vanished = false;
            let bad: HashSet<String> = problems.iter().map(|p| p.file.clone()).collect();
            for name in names.iter() {
                let Ok(id) = name.parse::<Id>().map(IndexId) else {
                    continue;
                };
                let file = format!("{}/{name}", layout::INDEX_DIR);
                if covered.contains(&id) || bad.contains(&file) {
                    continue;
                }
                match self.read_index_file(&file, name) {
                    Ok(r) => {
                        blobs += r.packs.iter().map(|p| p.blobs.len()).sum::<usize>();
                        batch.push((id, r));
                    }
                    Err(Error::RepoIo { cause, .. })
                        if cause.kind() == io::ErrorKind::NotFound && attempts < 10 =>
                    {
                        vanished = true;
                        break;
                    }
                    Err(error) => problems.push(IndexProblem { file, error }),
                }
                if blobs >= BUILD_BATCH {
                    runs.push(self.build_run(store, held, &mut batch, &mut covered)?);
                    blobs = 0;
                }
            }
            if !batch.is_empty() {
                runs.push(self.build_run(store, held, &mut batch, &mut covered)?);
            }
            if !vanished {
                return Ok(());
            }
            // As in a full load: a prune superseded the file; list again after a pause.
            attempts += 1;
            std::thread::sleep(std::time::Duration::from_millis(10 << attempts.min(7)));
            *names = self.list_ids(layout::INDEX_DIR)?;
        }
    }

    /// Writes a run from `batch` (emptied) and counts its files as covered.
    fn build_run(
        &self,
        store: &Store,
        held: &store::Locked,
        batch: &mut Vec<(IndexId, IndexRecord)>,
        covered: &mut HashSet<IndexId>,
    ) -> Result<Run> {
        let run = store
            .build(held, batch)
            .map_err(|e| cache_error(store, e))?;
        covered.extend(batch.drain(..).map(|(id, _)| id));
        Ok(run)
    }

    /// (Re)loads every index file. Damaged index files are returned as problems and skipped.
    ///
    /// # Errors
    /// Failure to list the index directory.
    pub fn load_index(&self) -> Result<Vec<IndexProblem>> {
        let _loading = self
            .index_loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = self.list_ids(layout::INDEX_DIR)?;
        self.load_index_files(names)
    }

    /// Names of the index files the in-memory index was last built from (superseded ones
    /// included).
    #[must_use]
    pub fn index_files(&self) -> Vec<String> {
        self.index_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reloads the index if index files were added or removed since it was loaded (another
    /// process wrote a backup or pruned). Returns `None` if nothing changed.
    ///
    /// # Errors
    /// Failure to list the index directory.
    pub fn refresh_index(&self) -> Result<Option<Vec<IndexProblem>>> {
        let _loading = self
            .index_loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = self.list_ids(layout::INDEX_DIR)?;
        let known = self.index_files();
        let index = self.index();
        let (damaged, full) = (index.damage().is_some(), index.is_full());
        drop(index);
        if known == names && !damaged {
            return Ok(None);
        }
        if !full && let Some(store) = self.local_store() {
            return self.load_local_index_or_memory(store, names).map(Some);
        }
        if let Some(problems) = self.add_index_files(&known, &names)? {
            return Ok(Some(problems));
        }
        self.load_index_files(names).map(Some)
    }

    /// Adds to the in-memory index the files of `names` that are not in `known`, reading
    /// only those, when that is all that changed (backups or copies landed): no file was
    /// removed, no new one supersedes another or carries prune state, and the last load found
    /// no damaged file (a full load reports it again). `None`: a full load is needed.
    fn add_index_files(
        &self,
        known: &[String],
        names: &[String],
    ) -> Result<Option<Vec<IndexProblem>>> {
        use std::sync::atomic::Ordering;
        if known.is_empty() || !self.index_clean.load(Ordering::Acquire) {
            return Ok(None);
        }
        let listed: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        if known.iter().any(|k| !listed.contains(k.as_str())) {
            return Ok(None);
        }
        let before: std::collections::HashSet<&str> = known.iter().map(String::as_str).collect();
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for name in names.iter().filter(|n| !before.contains(n.as_str())) {
            let file = format!("{}/{name}", layout::INDEX_DIR);
            match self.read_index_file(&file, name) {
                Ok(r) if r.supersedes.is_empty() && r.prune.is_none() => records.push(r),
                Ok(_) => return Ok(None),
                Err(Error::RepoIo { cause, .. }) if cause.kind() == io::ErrorKind::NotFound => {
                    return Ok(None);
                }
                Err(error) => problems.push(IndexProblem { file, error }),
            }
        }
        let mut index = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for r in &records {
            index.add_record(r);
        }
        index.finalize();
        drop(index);
        *self
            .index_files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = names.to_vec();
        self.index_clean
            .store(problems.is_empty(), Ordering::Release);
        Ok(Some(problems))
    }

    /// Reads and decodes index file `file` (named `name`), checking it against its name.
    fn read_index_file(&self, file: &str, name: &str) -> Result<IndexRecord> {
        let scheme = self.scheme()?;
        self.read_verified(file, name, MAX_INDEX_LEN).and_then(|b| {
            IndexRecord::decode(&b, scheme.payload())
                .map_err(|e| Error::corrupt(file, e.to_string()))
        })
    }

    /// Builds the in-memory index from the index files `names`. A file that vanishes between
    /// the listing and the read was replaced by a prune (which writes the replacement first):
    /// list again and start over.
    ///
    /// Memory: each file is added to the table as it is read and dropped, so the peak is the
    /// table (48 bytes a blob) and one file, not every decoded file as well. Which files are
    /// superseded, and the prune state, are known only once all are read: the entries of
    /// condemned packs are flagged then, and in the rare case that a file read was superseded
    /// (a prune stopped between writing its replacement and deleting it) the table is built
    /// again from the files in force alone.
    fn load_index_files(&self, mut names: Vec<String>) -> Result<Vec<IndexProblem>> {
        let mut attempts = 0;
        let mut skip: HashSet<String> = HashSet::new();
        loop {
            let mut problems = Vec::new();
            let mut index = Index::with_sessions(Arc::clone(&self.sessions));
            // Of each file read: what the index keeps of it, the files it supersedes, its
            // prune state.
            let mut read: Vec<(IndexFileInfo, Vec<IndexId>, Option<PruneState>)> = Vec::new();
            let mut vanished = false;
            for name in names.iter().filter(|n| !skip.contains(*n)) {
                let file = format!("{}/{name}", layout::INDEX_DIR);
                match self.read_index_file(&file, name) {
                    Ok(r) => {
                        index.add_record(&r);
                        let info = IndexFileInfo {
                            name: name.clone(),
                            packs: r.packs.iter().map(|p| p.id).collect(),
                            blobs: r.packs.iter().map(|p| p.blobs.len()).sum(),
                            prune: r.prune.is_some(),
                        };
                        read.push((info, r.supersedes, r.prune));
                    }
                    Err(Error::RepoIo { cause, .. })
                        if cause.kind() == io::ErrorKind::NotFound && attempts < 10 =>
                    {
                        vanished = true;
                        break;
                    }
                    Err(error) => problems.push(IndexProblem { file, error }),
                }
            }
            if vanished {
                // A file listed a moment ago is gone: a prune superseded (or withdrew) it.
                // List again, after a pause that grows, so that a prune deleting many
                // superseded files one by one has finished before the attempts run out.
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10 << attempts.min(7)));
                names = self.list_ids(layout::INDEX_DIR)?;
                skip.clear();
                continue;
            }
            let superseded: HashSet<String> = read
                .iter()
                .flat_map(|(_, s, _)| s.iter().map(IndexId::to_hex))
                .collect();
            if read.iter().any(|(f, _, _)| superseded.contains(&f.name)) {
                // Read again without them (their packs and blobs must not count).
                skip = superseded;
                continue;
            }
            let (epoch, condemned) = prune_state(read.iter().filter_map(|(_, _, p)| p.as_ref()));
            index.set_prune_state(epoch, condemned);
            index.set_files(read.into_iter().map(|(f, _, _)| f).collect());
            index.finalize();
            return Ok(self.put_in_force(index, names, problems));
        }
    }
}

/// Ok, or the first damaged index file of a load.
fn first_problem(problems: Vec<IndexProblem>) -> Result<()> {
    match problems.into_iter().next() {
        Some(p) => Err(p.error),
        None => Ok(()),
    }
}

/// A failure in the local index directory (which the caller answers by loading the whole
/// index into memory).
fn cache_error(store: &Store, e: impl std::fmt::Display) -> Error {
    Error::path_io(
        "updating the local index",
        store.dir(),
        io::Error::other(e.to_string()),
    )
}

/// The prune epoch and condemned packs of the index files in force: the highest epoch, and
/// every pack any of them condemns (at the latest epoch given).
fn prune_state<'a>(
    states: impl Iterator<Item = &'a PruneState>,
) -> (u64, std::collections::HashMap<PackId, u64>) {
    let mut epoch = 0;
    let mut condemned = std::collections::HashMap::new();
    for state in states {
        epoch = epoch.max(state.epoch);
        for c in &state.condemned {
            let e = condemned.entry(c.pack).or_insert(c.epoch);
            *e = (*e).max(c.epoch);
        }
    }
    (epoch, condemned)
}
