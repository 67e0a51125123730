//! Snapshot sets in a repository (docs/FORMAT.md, "Snapshot sets"): reading a file of
//! `snapshots/` that may be a set, expanding a listing of `snapshots/` into snapshot ids, and
//! writing a set.
//!
//! A process keeps the table of every set it has met (members and replaced sets) and the
//! records of the members it has read; a client with a cache directory also keeps the tables
//! in `<catalog>/sets/`, so that its later listings expand a set without reading it again.
//! The repository stays the authority: a table is used only while its set is listed, and a
//! table that fails its tag is removed and the set read again.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::format::id::{Id, SnapshotId, WriterId};
use crate::format::snapshot::{MAX_SNAPSHOT_LEN, Snapshot};
use crate::format::snapshot_listing::{self as listing, SetTable};
use crate::format::snapshot_set::{self as format, MAX_SET_LEN, OpenedSet};

use super::fence::Fences;
use super::{Repository, layout};

/// The sets a process has met.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    tables: HashMap<SnapshotId, Arc<SetTable>>,
    /// Records of the members of sets read by this process, by set, ascending by id.
    records: HashMap<SnapshotId, Vec<(SnapshotId, Snapshot)>>,
    /// The cache directory's tables were read.
    local_read: bool,
}

/// The sets of a listing of `snapshots/` that a process knows, by what they are to readers.
#[derive(Debug, Default)]
pub(crate) struct ListedSets {
    /// Sets whose members the listing stands for: not void, and not replaced by another
    /// listed set that is not void.
    pub standing: Vec<Arc<SetTable>>,
    /// Sets that a standing or replaced set replaces (left by an interrupted replacement).
    pub replaced: Vec<Arc<SetTable>>,
    /// Sets written too late by a maintenance process that a prune had revoked: readers
    /// ignore them, what they hold and what they replace.
    pub void: Vec<Arc<SetTable>>,
}

/// Whether `set` is void by `fences`: its writer was revoked, and the revocation's end did
/// not accept it (it was written after that prune listed the snapshots).
pub(crate) fn is_void(fences: &Fences, set: &SetTable) -> bool {
    fences.voids(&set.set, Some(&set.writer))
}

/// Whether a newly read `set` replaces one of `files` (a listing must be expanded again).
pub(crate) fn replaces_listed(set: &SetTable, files: &[SnapshotId]) -> bool {
    set.supersedes
        .iter()
        .any(|s| files.binary_search(s).is_ok())
}

/// A file of `snapshots/`, read.
#[derive(Debug)]
pub(crate) enum ListedFile {
    /// A snapshot file.
    Snapshot(Box<Snapshot>),
    /// A set, now known to the process (its members' records with it).
    Set(Arc<SetTable>),
}

impl Repository {
    fn sets(&self) -> MutexGuard<'_, Registry> {
        self.sets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where this client keeps set tables: `<catalog>/sets/` (`None` without a catalog).
    fn local_tables(&self) -> Option<PathBuf> {
        self.catalog().map(|c| c.dir().join("sets"))
    }

    /// The verified bytes of `snapshots/<id>` (a snapshot file or a set).
    ///
    /// # Errors
    /// I/O errors, or contents that do not match the name.
    pub fn snapshot_file_bytes(&self, id: &SnapshotId) -> Result<Vec<u8>> {
        let file = layout::snapshot_path(id);
        self.read_verified(&file, &id.to_hex(), MAX_SET_LEN.max(MAX_SNAPSHOT_LEN))
    }

    /// Reads and opens set `id`.
    ///
    /// # Errors
    /// I/O errors, or [`Error::Corrupt`] naming the file (also when it is a snapshot file).
    pub fn read_set(&self, id: &SnapshotId) -> Result<OpenedSet> {
        let bytes = self.snapshot_file_bytes(id)?;
        OpenedSet::decode(id, &bytes, self.scheme()?.payload())
            .map_err(|e| Error::corrupt(layout::snapshot_path(id), e.to_string()))
    }

    /// Reads `snapshots/<id>`, which may be a snapshot or a set. A set's members are opened
    /// (each must be a snapshot file), and its table and their records kept for this process;
    /// its table is also saved in the cache directory.
    ///
    /// # Errors
    /// I/O errors, or [`Error::Corrupt`] naming the file.
    pub(crate) fn read_listed(&self, id: &SnapshotId) -> Result<ListedFile> {
        self.require_full_key("reading snapshots")?;
        let file = layout::snapshot_path(id);
        let bytes = self.snapshot_file_bytes(id)?;
        let cipher = self.scheme()?.payload();
        if !format::is_set(&bytes) {
            if bytes.len() > MAX_SNAPSHOT_LEN {
                return Err(Error::corrupt(file, "larger than any snapshot file"));
            }
            return Snapshot::decode(&bytes, cipher)
                .map(|s| ListedFile::Snapshot(Box::new(s)))
                .map_err(|e| Error::corrupt(file, e.to_string()));
        }
        let set = OpenedSet::decode(id, &bytes, cipher)
            .map_err(|e| Error::corrupt(&file, e.to_string()))?;
        drop(bytes);
        let mut records = Vec::with_capacity(set.members.len());
        for (member, body) in &set.members {
            let s = Snapshot::decode(body, cipher)
                .map_err(|e| Error::corrupt(&file, format!("member {}: {e}", member.short())))?;
            records.push((*member, s));
        }
        let table = Arc::new(SetTable {
            set: *id,
            writer: set.writer,
            supersedes: set.supersedes,
            members: records.iter().map(|(m, _)| *m).collect(),
        });
        self.save_table(&table);
        let mut reg = self.sets();
        reg.tables.insert(*id, Arc::clone(&table));
        reg.records.insert(*id, records);
        Ok(ListedFile::Set(table))
    }

    /// The table of set `id`, if this process has met it.
    pub fn known_set(&self, id: &SnapshotId) -> Option<Arc<SetTable>> {
        self.sets().tables.get(id).cloned()
    }

    /// The records of the members of set `set` that this process read, taken out of its
    /// memory (a later reader reads the set again): for a listing that keeps them itself.
    pub(crate) fn take_set_records(&self, set: &SnapshotId) -> Vec<(SnapshotId, Snapshot)> {
        self.sets().records.remove(set).unwrap_or_default()
    }

    /// The record of set member `id` if this process has read its set.
    pub(crate) fn set_member(&self, id: &SnapshotId) -> Option<Snapshot> {
        self.sets().records.values().find_map(|members| {
            members
                .binary_search_by(|(m, _)| m.cmp(id))
                .ok()
                .map(|i| members[i].1.clone())
        })
    }

    /// A known set that holds snapshot `id` and is not void by `fences`, for a member whose
    /// record is wanted but was not read (its file is gone: it was gathered into a set). A
    /// void set may hold a snapshot that was forgotten since: it is never the answer.
    pub(crate) fn set_holding(&self, id: &SnapshotId, fences: &Fences) -> Option<SnapshotId> {
        self.read_local_tables();
        self.sets()
            .tables
            .values()
            .find(|t| t.members.binary_search(id).is_ok() && !is_void(fences, t))
            .map(|t| t.set)
    }

    /// The sets among `files` (a listing of `snapshots/`) that this process knows, sorted out
    /// by `fences` ([`ListedSets`]).
    pub(crate) fn listed_sets(&self, files: &[SnapshotId], fences: &Fences) -> ListedSets {
        self.read_local_tables();
        let reg = self.sets();
        let mut out = ListedSets::default();
        let mut live = Vec::new();
        for t in files.iter().filter_map(|f| reg.tables.get(f)) {
            if is_void(fences, t) {
                out.void.push(Arc::clone(t));
            } else {
                live.push(Arc::clone(t));
            }
        }
        drop(reg);
        let superseded: HashSet<SnapshotId> = live
            .iter()
            .flat_map(|t| t.supersedes.iter().copied())
            .collect();
        for t in live {
            if superseded.contains(&t.set) {
                out.replaced.push(t);
            } else {
                out.standing.push(t);
            }
        }
        out
    }

    /// The snapshot ids a listing of `snapshots/` (`files`) stands for, sorted and each once:
    /// every listed set this process knows is replaced by its members if it stands, and left
    /// out if it does not ([`ListedSets`]); every other file stays (a snapshot, or a set not
    /// met yet, which reading it reveals).
    pub(crate) fn expand_listing(&self, files: &[SnapshotId], fences: &Fences) -> Vec<SnapshotId> {
        let sets = self.listed_sets(files, fences);
        let known: HashSet<SnapshotId> = [&sets.standing, &sets.replaced, &sets.void]
            .into_iter()
            .flatten()
            .map(|t| t.set)
            .collect();
        let mut out: Vec<SnapshotId> = files
            .iter()
            .filter(|f| !known.contains(f))
            .copied()
            .collect();
        for t in &sets.standing {
            out.extend_from_slice(&t.members);
        }
        // The members of each set ascend, and so do the listed files: a stable sort merges
        // such runs.
        out.sort();
        out.dedup();
        out
    }

    /// Removes the saved tables of sets not in `files` (a whole listing of `snapshots/`,
    /// sorted): their sets were replaced or forgotten.
    pub(crate) fn drop_unlisted_tables(&self, files: &[SnapshotId]) {
        self.read_local_tables();
        let gone: Vec<SnapshotId> = {
            let mut reg = self.sets();
            let gone: Vec<SnapshotId> = reg
                .tables
                .keys()
                .filter(|s| files.binary_search(s).is_err())
                .copied()
                .collect();
            for g in &gone {
                reg.tables.remove(g);
            }
            gone
        };
        if let Some(dir) = self.local_tables() {
            for g in gone {
                let _ = fs::remove_file(dir.join(g.to_hex()));
            }
        }
    }

    /// Reads the tables this client saved, once per process.
    fn read_local_tables(&self) {
        if std::mem::replace(&mut self.sets().local_read, true) {
            return;
        }
        let Some(dir) = self.local_tables() else {
            return;
        };
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        let keys = self.catalog_keys();
        let mut found = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            let Some(name) = e.file_name().to_str().and_then(|n| n.parse::<Id>().ok()) else {
                continue;
            };
            let table = super::cache::read_bounded(&path, listing::max_len())
                .map_err(|e| e.to_string())
                .and_then(|b| SetTable::decode(&keys, &b).map_err(|e| e.to_string()))
                .and_then(|t| {
                    if t.set.0 == name {
                        Ok(t)
                    } else {
                        Err("the table of another set".to_string())
                    }
                });
            match table {
                Ok(t) => found.push(t),
                Err(err) => {
                    eprintln!(
                        "chronofs: warning: snapshot catalog: {}: {err}; reading that snapshot \
                         set again",
                        path.display()
                    );
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let mut reg = self.sets();
        for t in found {
            reg.tables.entry(t.set).or_insert_with(|| Arc::new(t));
        }
    }

    /// Saves `table` in the cache directory. Not synced: a table cut by a crash fails its tag,
    /// and the set is read again.
    fn save_table(&self, table: &SetTable) {
        let Some(dir) = self.local_tables() else {
            return;
        };
        let saved = (|| -> io::Result<()> {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            let bytes = table
                .encode(&self.catalog_keys())
                .map_err(io::Error::other)?;
            let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o600))?;
            tmp.as_file_mut().write_all(&bytes)?;
            tmp.persist(dir.join(table.set.to_hex()))
                .map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(e) = saved {
            eprintln!(
                "chronofs: warning: the table of snapshot set {} cannot be saved in {}: {e}",
                table.set.short(),
                dir.display()
            );
        }
    }

    /// Writes a set of `members` (snapshot files: id and bytes) replacing the sets
    /// `supersedes`, in the name of maintenance process `writer`; it becomes visible
    /// atomically. Returns its id.
    ///
    /// # Errors
    /// Out of bounds (see [`OpenedSet::encode`]), I/O errors.
    pub fn write_snapshot_set(
        &self,
        members: Vec<(SnapshotId, Vec<u8>)>,
        supersedes: Vec<SnapshotId>,
        writer: WriterId,
    ) -> Result<SnapshotId> {
        let mut ids: Vec<SnapshotId> = members.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut replaced = supersedes.clone();
        replaced.sort_unstable();
        replaced.dedup();
        let bytes = OpenedSet::encode(members, supersedes, writer, self.scheme()?.payload())
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let set = self
            .write_named(&bytes, |id| layout::snapshot_path(&SnapshotId(id)))
            .map(SnapshotId)?;
        // Known from now on, as if read: the writer's later listings expand it.
        let table = Arc::new(SetTable {
            set,
            writer,
            supersedes: replaced,
            members: ids,
        });
        self.save_table(&table);
        self.sets().tables.insert(set, table);
        Ok(set)
    }
}
