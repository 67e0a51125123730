//! The snapshot table: what a listing knows of every snapshot without opening its record
//! (id, time, host, group, committing writer), built from the listing of `snapshots/`, the
//! snapshot catalog's tables and the files the catalog does not hold yet. Commands select
//! from it (the newest, one host's, one group's) and open only the records they use, so
//! that their time and memory grow with what they show rather than with every snapshot of
//! every host.

use std::io::{self, BufReader, Read as _, Seek as _};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::format::snapshot_catalog::{self as format, Entry, Keys, TagSeal};
use crate::format::snapshot_listing::SetTable;

use super::catalog::Found;
use super::snapshot_sets::{self, ListedFile};
use super::{Repository, fence};
use crate::storage::ListToken;

/// Where the `i`th snapshot of a table is: its time (the sort key, held here so that
/// sorting touches no other memory) and its entry, in the catalog or read by this command.
#[derive(Clone, Copy, Debug)]
struct Slot {
    time_ns: i64,
    /// An index into the catalog's entries, or with [`HERE`] into `here`.
    at: u32,
}

/// Marks a [`Slot`] of a record read from its file by this command.
const HERE: u32 = 1 << 31;

/// Listings a whole table takes at most (see [`Repository::whole_table`]).
const LISTINGS: usize = 3;

/// The listed, readable, non-void snapshots of a repository, oldest first (ties by id). About
/// 140 bytes a snapshot in memory; records are opened one at a time.
pub struct SnapshotTable<'r> {
    repo: &'r Repository,
    keys: Keys<'r>,
    found: Found,
    /// Records read from their files by this command, with their entries.
    here: Vec<(Entry, Snapshot)>,
    order: Vec<Slot>,
    /// Why snapshot files that were listed could not be read.
    pub unreadable: Vec<Error>,
    /// A listed file was gone, or a set read replaces a listed one: list again.
    look_again: bool,
    /// The sets whose members the table holds (docs/FORMAT.md, "Snapshot sets").
    sets: Vec<Arc<SetTable>>,
    /// The listed snapshots left out as void (committed too late by a revoked writer).
    void: Vec<SnapshotId>,
}

impl std::fmt::Debug for SnapshotTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotTable")
            .field("snapshots", &self.order.len())
            .field("unreadable", &self.unreadable)
            .finish_non_exhaustive()
    }
}

impl Repository {
    /// The table of the snapshots: listed (or, while the directory is unchanged, as the
    /// catalog saved its last listing), then the fences read (a fence written meanwhile can
    /// only void more of them).
    ///
    /// # Errors
    /// Failure to list the snapshot directory or read the fences.
    pub fn snapshot_table(&self) -> Result<SnapshotTable<'_>> {
        self.require_full_key("listing snapshots")?;
        self.whole_table(|| self.snapshot_ids_under(self.snapshot_list_token()?))
    }

    /// [`Repository::snapshot_table`] from a listing of the directory taken now, never a
    /// saved one: for a decision that must see every snapshot file there is (accepting the
    /// snapshots of revoked writers).
    ///
    /// # Errors
    /// As [`Repository::snapshot_table`].
    pub fn snapshot_table_listed_now(&self) -> Result<SnapshotTable<'_>> {
        self.require_full_key("listing snapshots")?;
        self.whole_table(|| {
            let mut ids = self.snapshot_ids()?;
            ids.sort_unstable();
            Ok(ids)
        })
    }

    /// The table of the whole listing `list` gives, with the fences read after it. Listed
    /// again (up to [`LISTINGS`] times in all) when the first look found a file gone (a set
    /// replaced by another that the listing did not show) or a set that replaces one it
    /// listed: a table never leaves out the members of a set being replaced.
    fn whole_table(&self, list: impl Fn() -> Result<Vec<SnapshotId>>) -> Result<SnapshotTable<'_>> {
        let mut listings = 0;
        loop {
            let files = list()?;
            let fences = fence::Fences::load(self)?;
            let table = self.table_of(files, true, &fences);
            listings += 1;
            if !table.look_again || listings >= LISTINGS {
                return Ok(table);
            }
        }
    }

    /// The ids of the snapshot files, sorted: the catalog's saved listing if `token` (the
    /// directory's, taken by the caller before) is the one it was saved under; else a listing
    /// of the directory, saved under `token`. Without a token (object storage, or a
    /// directory changed in the last second) or a catalog, always a listing.
    ///
    /// # Errors
    /// Failure to list the directory.
    pub fn snapshot_ids_under(&self, token: Option<ListToken>) -> Result<Vec<SnapshotId>> {
        // Where a listing is saved: under the directory's token, in the catalog.
        let saved_under = token
            .zip(self.catalog())
            .map(|(t, c)| (t.to_bytes(), c, self.catalog_keys()));
        if let Some((token, catalog, keys)) = &saved_under {
            match catalog.saved_listing(keys, token) {
                Ok(Some(ids)) => return Ok(ids),
                Ok(None) => {}
                Err(damage) => eprintln!(
                    "chronofs: warning: snapshot catalog: {damage}; listing the snapshot directory again"
                ),
            }
        }
        let mut ids = self.snapshot_ids()?;
        ids.sort_unstable();
        ids.dedup();
        if let Some((token, catalog, keys)) = &saved_under
            && let Err(e) = catalog.save_listing(keys, token, &ids)
        {
            eprintln!(
                "chronofs: warning: the snapshot listing in {} cannot be saved: {e}",
                catalog.dir().display()
            );
        }
        Ok(ids)
    }

    /// The table of the snapshots in the files `files` of `snapshots/` (each a snapshot or
    /// a set), void snapshots and sets left out by `fences`. When `files` is the whole listing
    /// (`whole`), the catalog gives what it holds and the files it does not are read and
    /// added to it; otherwise every file is read.
    pub(crate) fn table_of(
        &self,
        mut files: Vec<SnapshotId>,
        whole: bool,
        fences: &fence::Fences,
    ) -> SnapshotTable<'_> {
        let keys = self.catalog_keys();
        // A few new ids (a mount's refresh) are read from their files: reading every table
        // to find them would cost more, and the next whole listing adds them.
        let catalog = if whole { self.catalog() } else { None };
        files.sort_unstable();
        files.dedup();
        if whole {
            self.drop_unlisted_tables(&files);
        }
        let wanted = self.expand_listing(&files, fences);
        let found = catalog.map_or_else(|| Found::none(wanted.len()), |c| c.read(&keys, &wanted));
        for d in &found.damage {
            eprintln!(
                "chronofs: warning: snapshot catalog: {d}; reading those snapshot files again"
            );
        }
        let missing: Vec<SnapshotId> = wanted
            .iter()
            .zip(&found.have)
            .filter(|(_, have)| !**have)
            .map(|(id, _)| *id)
            .collect();
        let mut unreadable = Vec::new();
        let mut new = Vec::new();
        let mut look_again = false;
        // Members of sets met here that the listing did not name (once each).
        let mut from_sets: std::collections::HashSet<SnapshotId> = std::collections::HashSet::new();
        for (id, r) in self.read_snapshot_files(&missing) {
            match r {
                Ok(ListedFile::Snapshot(s)) => new.push((id, *s)),
                Ok(ListedFile::Set(set)) if snapshot_sets::is_void(fences, &set) => {
                    drop(self.take_set_records(&set.set));
                }
                Ok(ListedFile::Set(set)) => {
                    look_again |= snapshot_sets::replaces_listed(&set, &files);
                    new.extend(
                        self.take_set_records(&set.set)
                            .into_iter()
                            .filter(|(m, _)| {
                                wanted.binary_search(m).is_err() && from_sets.insert(*m)
                            }),
                    );
                }
                // Forgotten between the listing and the read, or a set replaced: whole
                // listings look again.
                Err(Error::RepoIo { cause, .. }) if cause.kind() == io::ErrorKind::NotFound => {
                    look_again |= whole;
                }
                Err(e) => unreadable.push(e),
            }
        }
        drop(wanted);
        if let Some(c) = catalog
            && let Err(e) = c.update(&keys, &found, &new, whole)
        {
            eprintln!(
                "chronofs: warning: the snapshot catalog in {} cannot be updated: {e}",
                c.dir().display()
            );
        }
        let mut voided = Vec::new();
        let mut void = |e: &Entry| {
            let v = fences.voids(&e.id, e.writer.as_ref());
            if v {
                voided.push(e.id);
            }
            v
        };
        let here: Vec<(Entry, Snapshot)> = new
            .into_iter()
            .map(|(id, s)| (Entry::of(&keys, id, &s), s))
            .filter(|(e, _)| !void(e))
            .collect();
        let mut order: Vec<Slot> = Vec::with_capacity(found.entries.len() + here.len());
        for (i, (_, e)) in found.entries.iter().enumerate() {
            if !void(e) {
                // Fewer than 2^31 entries: a segment holds at most 2^24.
                order.push(Slot {
                    time_ns: e.time_ns,
                    at: u32::try_from(i).unwrap_or(HERE - 1),
                });
            }
        }
        for (i, (e, _)) in here.iter().enumerate() {
            order.push(Slot {
                time_ns: e.time_ns,
                at: HERE | u32::try_from(i).unwrap_or(HERE - 1),
            });
        }
        let mut table = SnapshotTable {
            repo: self,
            keys,
            found,
            here,
            order: Vec::new(),
            unreadable,
            look_again,
            sets: self.listed_sets(&files, fences).standing,
            void: voided,
        };
        order.sort_unstable_by(|a, b| {
            a.time_ns
                .cmp(&b.time_ns)
                .then_with(|| table.slot_entry(*a).id.cmp(&table.slot_entry(*b).id))
        });
        table.order = order;
        table
    }

    /// The keys of the snapshot catalog: sealed under the full key in an encrypted
    /// repository; derived from the repository id in a plaintext one, and for the host and
    /// group tags of a command that keeps no catalog (they then never leave the process).
    pub(super) fn catalog_keys(&self) -> Keys<'_> {
        if let Some(k) = self
            .scheme()
            .ok()
            .and_then(|s| s.crypto())
            .and_then(|c| c.cache_keys())
        {
            return k;
        }
        let derive =
            |context| zeroize::Zeroizing::new(blake3::derive_key(context, &self.config.repo_id.0));
        use crate::format::crypto::context::{LOCAL_RECORDS, LOCAL_RECORDS_TAG};
        Keys {
            seal: Box::new(TagSeal::new(derive(LOCAL_RECORDS))),
            tag_key: derive(LOCAL_RECORDS_TAG),
        }
    }
}

impl SnapshotTable<'_> {
    fn slot_entry(&self, slot: Slot) -> &Entry {
        if slot.at & HERE == 0 {
            &self.found.entries[slot.at as usize].1
        } else {
            &self.here[(slot.at & !HERE) as usize].0
        }
    }

    fn entry(&self, i: usize) -> &Entry {
        self.slot_entry(self.order[i])
    }

    /// The sets whose members the table holds: for a revocation's end, which accepts those
    /// that the revoked processes wrote.
    #[must_use]
    pub fn sets(&self) -> &[Arc<SetTable>] {
        &self.sets
    }

    /// The listed snapshots left out because they are void (committed too late by a revoked
    /// writer): a prune deletes their files.
    #[must_use]
    pub fn void(&self) -> &[SnapshotId] {
        &self.void
    }

    /// How many snapshots.
    #[must_use]
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The id of the `i`th snapshot (oldest first).
    #[must_use]
    pub fn id(&self, i: usize) -> SnapshotId {
        self.entry(i).id
    }

    /// The time of the `i`th snapshot.
    #[must_use]
    pub fn time_ns(&self, i: usize) -> i64 {
        self.order[i].time_ns
    }

    /// Whether the `i`th snapshot may be of one of `hosts` (all if empty): its host's tag is
    /// one of theirs. A tag is 64 bits, so the caller checks the record it opens.
    #[must_use]
    pub fn may_be_of(&self, i: usize, hosts: &[u64]) -> bool {
        hosts.is_empty() || hosts.contains(&self.entry(i).host)
    }

    /// The tags of `hosts`, for [`Self::may_be_of`].
    #[must_use]
    pub fn host_tags(&self, hosts: &[String]) -> Vec<u64> {
        hosts.iter().map(|h| self.keys.host_tag(h)).collect()
    }

    /// The tag of the `i`th snapshot's group (host, paths, stdin).
    #[must_use]
    pub fn group(&self, i: usize) -> u64 {
        self.entry(i).group
    }

    /// The tag of the group of `host`, `paths` and `stdin`, to compare with [`Self::group`].
    #[must_use]
    pub fn group_of(
        &self,
        host: &str,
        paths: &[crate::format::bytes::ByteString],
        stdin: bool,
    ) -> u64 {
        self.keys.group_tag(host, paths, stdin)
    }

    /// Opens the record of the `i`th snapshot. A catalog record that fails to open is named
    /// in a warning and read from its file instead.
    ///
    /// # Errors
    /// The snapshot file's errors.
    pub fn record(&self, i: usize) -> Result<Snapshot> {
        let slot = self.order[i];
        if slot.at & HERE != 0 {
            return Ok(self.here[(slot.at & !HERE) as usize].1.clone());
        }
        let (seg, entry) = &self.found.entries[slot.at as usize];
        self.found
            .body(*seg, entry)
            .map_err(|err| err.to_string())
            .and_then(|b| format::open_body(&self.keys, entry, &b).map_err(|err| err.to_string()))
            .or_else(|err| self.read_instead(*seg, &entry.id, &err))
    }

    /// After a catalog record failed to open: the damaged segment is removed (its records
    /// are read from their files by the next listing) and this record read from its file.
    fn read_instead(&self, seg: usize, id: &SnapshotId, err: &str) -> Result<Snapshot> {
        let path = self.found.segment_path(seg);
        let shown = path.map(|p| p.display().to_string()).unwrap_or_default();
        eprintln!(
            "chronofs: warning: snapshot catalog: {shown}: {err}; reading the snapshot file, \
             and removing the segment"
        );
        if let Some(p) = path {
            let _ = std::fs::remove_file(p);
        }
        self.repo.load_snapshot(id)
    }

    /// Every record, oldest first (reading each segment in order, not a read per record),
    /// with the errors of the files that could not be read.
    #[must_use]
    pub fn into_records(self) -> (Vec<(SnapshotId, Snapshot)>, Vec<Error>) {
        let mut out: Vec<Option<(SnapshotId, Snapshot)>> = Vec::new();
        out.resize_with(self.order.len(), || None);
        let unreadable = self.each_record(|i, id, s| out[i] = Some((id, s)));
        (out.into_iter().flatten().collect(), unreadable)
    }

    /// Hands `f` every record with its place in time order (0 the oldest), in the order they
    /// are stored (each segment read in order, not a read per record), so that a caller that
    /// keeps less than the record never holds them all; returns the errors of the files that
    /// could not be read.
    pub fn each_record(mut self, mut f: impl FnMut(usize, SnapshotId, Snapshot)) -> Vec<Error> {
        let mut unreadable = Vec::new();
        // Catalog records by segment and offset, with their places in time order and in the
        // catalog's entries (so that the loop below reads both lists in order).
        let mut pending: Vec<(usize, u64, usize, usize)> = Vec::new();
        // The place in time order of each record read here (void ones have none).
        let mut here_at: Vec<Option<usize>> = vec![None; self.here.len()];
        for (i, slot) in self.order.iter().enumerate() {
            if slot.at & HERE != 0 {
                here_at[(slot.at & !HERE) as usize] = Some(i);
            } else {
                let (seg, entry) = &self.found.entries[slot.at as usize];
                pending.push((*seg, entry.body.0, i, slot.at as usize));
            }
        }
        for ((entry, s), at) in std::mem::take(&mut self.here).into_iter().zip(here_at) {
            if let Some(i) = at {
                f(i, entry.id, s);
            }
        }
        pending.sort_unstable();
        // (segment, reader, its position): bodies in offset order, so the gaps (records not
        // listed) are skipped within the buffer.
        let mut reader: Option<(usize, BufReader<&std::fs::File>, Option<u64>)> = None;
        for &(seg, _, i, at) in &pending {
            let (_, entry) = &self.found.entries[at];
            if reader.as_ref().is_none_or(|(s, _, _)| *s != seg) {
                reader = self
                    .found
                    .file(seg)
                    .map(|f| (seg, BufReader::with_capacity(1 << 20, f), None));
            }
            let opened = reader
                .as_mut()
                .ok_or_else(|| "the segment is gone".to_string())
                .and_then(|(_, r, pos)| {
                    let mut buf = vec![0u8; entry.body.1 as usize];
                    // The file's own position is wherever the table's reading left it: the
                    // first body is sought from the start.
                    let gap = pos
                        .and_then(|p| entry.body.0.checked_sub(p))
                        .and_then(|g| i64::try_from(g).ok());
                    let moved = match gap {
                        Some(g) => r.seek_relative(g),
                        None => r.seek(io::SeekFrom::Start(entry.body.0)).map(|_| ()),
                    };
                    moved
                        .and_then(|()| r.read_exact(&mut buf))
                        .map_err(|e| e.to_string())?;
                    *pos = Some(entry.body.0 + u64::from(entry.body.1));
                    format::open_body(&self.keys, entry, &buf).map_err(|e| e.to_string())
                });
            match opened.or_else(|err| self.read_instead(seg, &entry.id, &err)) {
                Ok(s) => f(i, entry.id, s),
                Err(e) => unreadable.push(e),
            }
        }
        unreadable.append(&mut self.unreadable);
        unreadable
    }
}
