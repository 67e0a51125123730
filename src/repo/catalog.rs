//! The snapshot catalog: the snapshot records a client has read, kept in its cache directory
//! (`<cache>/<repo id>/catalog/`) as segments ([`crate::format::snapshot_catalog`]), so that
//! a command that lists snapshots reads the repository's snapshot files it has not seen yet
//! and the small tables of a few local files, and opens only the records it needs.
//!
//! The repository stays the authority on which snapshots exist: a command lists
//! `snapshots/` and takes from the catalog only the entries of listed ids; an entry of a
//! forgotten snapshot is passed over and dropped at the next full rewrite. Segments are
//! written whole under a temporary name and renamed, never changed. New records go into a new
//! segment; past [`MAX_SEGMENTS`] the small segments are merged into one (bodies copied as
//! sealed), and a command that listed the whole directory rewrites everything into one segment
//! when more entries are dead than live, or a segment is damaged. Several processes may do this
//! at once: an entry is right for its id whichever segment holds it, and a segment deleted
//! under a reader stays readable through its open file.

use std::fs;
use std::io::{self, BufReader, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::format::snapshot_catalog::{self as format, Body, Entry, Keys};
use crate::format::snapshot_listing as listing;

/// Segments beyond which the smaller ones are merged.
const MAX_SEGMENTS: usize = 8;
/// Dead entries below which a catalog is not rewritten for their sake alone.
const MIN_DEAD: usize = 256;
/// Age after which a temporary file left by a crash is removed.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Prefix of segment names.
const SEGMENT: &str = "seg-";
/// Prefix of temporary files.
const TEMP: &str = ".tmp-";
/// Name of the saved listing of `snapshots/` ([`crate::format::snapshot_listing`]).
const LISTING: &str = "listing";

/// The catalog directory of one repository.
#[derive(Debug)]
pub(crate) struct Catalog {
    dir: PathBuf,
}

/// One segment, open.
#[derive(Debug)]
pub(crate) struct Segment {
    path: PathBuf,
    file: fs::File,
    /// Entries it holds, live or not.
    entries: usize,
}

/// What [`Catalog::read`] found: the entries of the wanted ids, each once, and where their
/// bodies are.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// (segment number, entry).
    pub entries: Vec<(usize, Entry)>,
    /// Which of the wanted ids (by position) the catalog holds.
    pub have: Vec<bool>,
    segments: Vec<Segment>,
    /// Entries not wanted (of forgotten snapshots), and second copies.
    dead: usize,
    /// Why segments could not be read.
    pub damage: Vec<String>,
}

impl Found {
    /// Nothing found: every one of `wanted` ids is to be read from its file.
    pub fn none(wanted: usize) -> Found {
        Found {
            have: vec![false; wanted],
            ..Found::default()
        }
    }

    /// The sealed body of `entry`, from segment `seg`.
    ///
    /// # Errors
    /// I/O errors, naming the segment.
    pub fn body(&self, seg: usize, entry: &Entry) -> io::Result<Vec<u8>> {
        let s = self
            .segments
            .get(seg)
            .ok_or_else(|| io::Error::other("no such segment"))?;
        let mut buf = vec![0u8; entry.body.1 as usize];
        s.file
            .read_exact_at(&mut buf, entry.body.0)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", s.path.display())))?;
        Ok(buf)
    }

    /// The open file of segment `seg`.
    pub fn file(&self, seg: usize) -> Option<&fs::File> {
        self.segments.get(seg).map(|s| &s.file)
    }

    /// The path of segment `seg`, for messages.
    pub fn segment_path(&self, seg: usize) -> Option<&Path> {
        self.segments.get(seg).map(|s| s.path.as_path())
    }
}

impl Catalog {
    /// The catalog in `dir` (created, private).
    ///
    /// # Errors
    /// The directory cannot be made.
    pub fn open(dir: PathBuf) -> io::Result<Catalog> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(Catalog { dir })
    }

    /// Where it is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads every segment's table, keeping the entries of the ids in `wanted` (sorted). A
    /// segment whose table cannot be read is reported in the result, and its records are read
    /// from their files again.
    pub fn read(&self, keys: &Keys<'_>, wanted: &[SnapshotId]) -> Found {
        let mut found = Found {
            have: vec![false; wanted.len()],
            entries: Vec::with_capacity(wanted.len()),
            ..Found::default()
        };
        let names = match fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(SEGMENT))
                .map(|e| e.path())
                .collect::<Vec<_>>(),
            Err(e) => {
                found.damage.push(format!("{}: {e}", self.dir.display()));
                return found;
            }
        };
        for path in names {
            let file = match fs::File::open(&path) {
                Ok(f) => f,
                // Rewritten away by another process since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    found.damage.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            // Segments are sorted by id, as `wanted` is: one pass matches them (an entry out
            // of order is looked up instead).
            let seg = found.segments.len();
            let (mut cursor, mut last) = (0usize, None);
            let have = &mut found.have;
            // Positions this segment claims: given back if its table turns out bad, so that
            // those snapshots are read from their files.
            let mut marked = Vec::new();
            // Kept straight into the found entries (a segment's entries gathered apart first
            // doubled the memory of a million), and taken out again if its table is bad.
            let before = found.entries.len();
            let entries = &mut found.entries;
            let mut keep = |e: Entry| {
                let pos = if last.is_some_and(|l| e.id < l) {
                    wanted.binary_search(&e.id).ok()
                } else {
                    last = Some(e.id);
                    while cursor < wanted.len() && wanted[cursor] < e.id {
                        cursor += 1;
                    }
                    (cursor < wanted.len() && wanted[cursor] == e.id).then_some(cursor)
                };
                match pos {
                    Some(p) if !have[p] => {
                        have[p] = true;
                        marked.push(p);
                        entries.push((seg, e));
                        true
                    }
                    _ => false,
                }
            };
            let read = file.metadata().and_then(|m| {
                let mut r = BufReader::with_capacity(1 << 20, &file);
                format::read_table(&mut r, keys, m.len(), &mut keep)
            });
            let (kept, passed) = match read {
                Ok(t) => t,
                Err(e) => {
                    found.entries.truncate(before);
                    for p in marked {
                        found.have[p] = false;
                    }
                    found.damage.push(format!("{}: {e}", path.display()));
                    // Deleted at the next rewrite: kept in the list with no entries.
                    found.segments.push(Segment {
                        path,
                        file,
                        entries: 0,
                    });
                    continue;
                }
            };
            found.dead += passed;
            let entries = kept + passed;
            found.segments.push(Segment {
                path,
                file,
                entries,
            });
        }
        found
    }

    /// Adds `new` records, and merges or rewrites segments as the module says. `whole`: `found`
    /// came from a listing of the whole snapshot directory, so entries it did not keep are
    /// dead (a partial listing only adds and merges).
    ///
    /// # Errors
    /// I/O errors writing a segment (the catalog is as it was).
    pub fn update(
        &self,
        keys: &Keys<'_>,
        found: &Found,
        new: &[(SnapshotId, Snapshot)],
        whole: bool,
    ) -> io::Result<()> {
        let rewrite_all =
            whole && (!found.damage.is_empty() || found.dead > found.entries.len().max(MIN_DEAD));
        if rewrite_all {
            let all: Vec<usize> = (0..found.segments.len()).collect();
            return self.merge(keys, found, &all, new);
        }
        if found.segments.len() + 1 > MAX_SEGMENTS {
            // Keep the largest; merge the others (and what is new) into one.
            let largest = (0..found.segments.len()).max_by_key(|&i| found.segments[i].entries);
            let others: Vec<usize> = (0..found.segments.len())
                .filter(|&i| Some(i) != largest)
                .collect();
            return self.merge(keys, found, &others, new);
        }
        if !new.is_empty() {
            let bytes = format::encode(keys, new.iter().map(|(i, s)| (*i, Body::Record(s))))
                .map_err(io::Error::other)?;
            self.write_segment(&bytes)?;
        }
        Ok(())
    }

    /// Writes one segment of the found entries of segments `merged` and of `new`, then deletes
    /// those segments.
    fn merge(
        &self,
        keys: &Keys<'_>,
        found: &Found,
        merged: &[usize],
        new: &[(SnapshotId, Snapshot)],
    ) -> io::Result<()> {
        let mut bodies = Vec::new();
        for (seg, e) in &found.entries {
            if merged.contains(seg) {
                bodies.push((*e, found.body(*seg, e)?));
            }
        }
        let records = bodies
            .iter()
            .map(|(e, b)| (e.id, Body::Sealed(*e, b)))
            .chain(new.iter().map(|(i, s)| (*i, Body::Record(s))));
        let records: Vec<_> = records.collect();
        let bytes = format::encode(keys, records.into_iter()).map_err(io::Error::other)?;
        self.write_segment(&bytes)?;
        for &i in merged {
            match fs::remove_file(&found.segments[i].path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.remove_stale_temps();
        Ok(())
    }

    /// The ids of the saved listing of `snapshots/` if it was taken under `token`; `None`
    /// if there is none or the directory changed since.
    ///
    /// # Errors
    /// Why the saved listing cannot be used (unreadable, damaged, altered).
    pub fn saved_listing(
        &self,
        keys: &Keys<'_>,
        token: &[u8; listing::TOKEN_LEN],
    ) -> Result<Option<Vec<SnapshotId>>, String> {
        let path = self.dir.join(LISTING);
        let bytes = match super::cache::read_bounded(&path, listing::max_len()) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        match listing::decode(keys, &bytes) {
            Ok((saved, ids)) => Ok((saved == *token).then_some(ids)),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Saves `ids` (sorted), the listing of `snapshots/` taken after the directory gave
    /// `token`. Not synced: a listing lost or cut by a crash fails its tag and the directory
    /// is listed again.
    ///
    /// # Errors
    /// I/O errors (the previous listing stays).
    pub fn save_listing(
        &self,
        keys: &Keys<'_>,
        token: &[u8; listing::TOKEN_LEN],
        ids: &[SnapshotId],
    ) -> io::Result<()> {
        let bytes = listing::encode(keys, token, ids).map_err(io::Error::other)?;
        self.write_temp(&bytes, false)?
            .persist(self.dir.join(LISTING))
            .map_err(|e| e.error)?;
        Ok(())
    }

    /// A private temporary file in the catalog holding `bytes`, synced if `sync`.
    fn write_temp(&self, bytes: &[u8], sync: bool) -> io::Result<tempfile::NamedTempFile> {
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP)
            .tempfile_in(&self.dir)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
        tmp.as_file_mut().write_all(bytes)?;
        if sync {
            tmp.as_file().sync_data()?;
        }
        Ok(tmp)
    }

    fn write_segment(&self, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.write_temp(bytes, true)?;
        let mut name = [0u8; 8];
        crate::crypto::random(&mut name).map_err(io::Error::other)?;
        let name: String = name.iter().map(|b| format!("{b:02x}")).collect();
        tmp.persist_noclobber(self.dir.join(format!("{SEGMENT}{name}")))
            .map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes temporary files a crashed process left (an hour old: none is being written).
    fn remove_stale_temps(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for e in rd.filter_map(|e| e.ok()) {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if old && e.file_name().to_string_lossy().starts_with(TEMP) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::{Id, TreeId};
    use crate::format::snapshot::Summary;
    use crate::format::snapshot_catalog::open_body;
    use crate::format::snapshot_catalog::test_support::keys;
    use std::collections::HashSet;

    fn snap(t: i64) -> Snapshot {
        Snapshot {
            time_ns: t,
            hostname: "h".into(),
            username: "u".into(),
            paths: vec![b"/d".to_vec().into()],
            tags: vec![],
            root: TreeId(Id([7; 32])),
            parent: None,
            program_version: "test".into(),
            stdin: false,
            summary: Summary::default(),
            contents: None,
            commit: None,
            consistency: None,
        }
    }

    fn id(b: u8) -> SnapshotId {
        SnapshotId(Id([b; 32]))
    }

    fn segments(c: &Catalog) -> usize {
        fs::read_dir(c.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(SEGMENT)
            })
            .count()
    }

    fn sorted(live: &HashSet<SnapshotId>) -> Vec<SnapshotId> {
        let mut v: Vec<_> = live.iter().copied().collect();
        v.sort();
        v
    }

    fn records(c: &Catalog, k: &Keys<'_>, live: &HashSet<SnapshotId>) -> Vec<(SnapshotId, i64)> {
        let found = c.read(k, &sorted(live));
        let mut v: Vec<_> = found
            .entries
            .iter()
            .map(|(seg, e)| {
                let s = open_body(k, e, &found.body(*seg, e).unwrap()).unwrap();
                (e.id, s.time_ns)
            })
            .collect();
        v.sort();
        v
    }

    fn idn(n: u32) -> SnapshotId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_le_bytes());
        SnapshotId(Id(b))
    }

    fn add(c: &Catalog, k: &Keys<'_>, live: &mut HashSet<SnapshotId>, ns: std::ops::Range<u32>) {
        let new: Vec<_> = ns.map(|n| (idn(n), snap(i64::from(n)))).collect();
        live.extend(new.iter().map(|(i, _)| *i));
        let found = c.read(k, &sorted(live));
        c.update(k, &found, &new, true).unwrap();
    }

    #[test]
    fn grows_by_segments_merges_the_small_ones_and_drops_the_dead() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path().join("catalog")).unwrap();
        let k = keys(1);
        let mut live = HashSet::new();
        // A large first segment, then one record at a time.
        add(&c, &k, &mut live, 1000..1020);
        for n in 0..MAX_SEGMENTS as u32 {
            add(&c, &k, &mut live, n..n + 1);
            assert!(segments(&c) <= MAX_SEGMENTS);
        }
        // The large one was kept, the small ones merged.
        assert_eq!(segments(&c), 2);
        let got = records(&c, &k, &live);
        assert_eq!(got.len(), live.len());
        assert!(got.contains(&(idn(3), 3)) && got.contains(&(idn(1010), 1010)));
        add(&c, &k, &mut live, 2000..2400);
        assert_eq!(segments(&c), 3);
        // Most forgotten: a whole listing rewrites into one segment of the living.
        let few: HashSet<_> = [idn(1), idn(1005)].into();
        let found = c.read(&k, &sorted(&few));
        assert_eq!(found.dead, live.len() - 2);
        c.update(&k, &found, &[], true).unwrap();
        assert_eq!(segments(&c), 1);
        assert_eq!(records(&c, &k, &live), vec![(idn(1), 1), (idn(1005), 1005)]);
        // A partial listing never drops anything.
        let found = c.read(&k, &[idn(1)]);
        assert_eq!(found.dead, 1);
        c.update(&k, &found, &[(idn(7), snap(7))], false).unwrap();
        assert_eq!(records(&c, &k, &live).len(), 3);
    }

    #[test]
    fn a_damaged_segment_is_reported_and_a_whole_update_rewrites_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path().join("catalog")).unwrap();
        let k = keys(1);
        let live: HashSet<_> = [id(1), id(2)].into();
        c.update(&k, &Found::default(), &[(id(1), snap(1))], false)
            .unwrap();
        c.update(&k, &Found::default(), &[(id(2), snap(2))], false)
            .unwrap();
        let seg = fs::read_dir(c.dir())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = fs::read(&seg).unwrap();
        bytes[20] ^= 1;
        fs::write(&seg, &bytes).unwrap();
        let found = c.read(&k, &sorted(&live));
        assert_eq!(found.entries.len(), 1);
        assert_eq!(found.damage.len(), 1);
        // The damaged segment's ids are left to be read from their files.
        assert_eq!(found.have.iter().filter(|h| **h).count(), 1);
        let lost = if found.entries[0].1.id == id(1) {
            id(2)
        } else {
            id(1)
        };
        let time = i64::from(lost.0.0[0]);
        c.update(&k, &found, &[(lost, snap(time))], true).unwrap();
        assert!(!seg.exists());
        let found = c.read(&k, &sorted(&live));
        assert!(found.damage.is_empty());
        assert_eq!(records(&c, &k, &live), vec![(id(1), 1), (id(2), 2)]);
    }
}
