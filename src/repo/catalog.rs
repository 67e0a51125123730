//! The snapshot catalog: the snapshot records a client has read, kept in its cache directory
//! (`<cache>/<repo id>/catalog/`) as segments ([`crate::format::snapshot_catalog`]), so that
//! a command that lists snapshots reads the repository's snapshot files it has not seen yet
//! and a few local files, instead of every snapshot file.
//!
//! The repository stays the authority on which snapshots exist: a command lists
//! `snapshots/` and takes from the catalog only the records of listed ids; a record of a
//! forgotten snapshot is passed over and dropped at the next rewrite. Segments are written
//! whole under a temporary name and renamed; new records go into a new segment, and a command
//! that listed the whole directory rewrites the catalog into one segment when there are many
//! segments, more dead records than live ones, or damage. Several processes may do this at
//! once: segments are never changed in place, a record is right for its id whichever segment
//! holds it, and a segment deleted under a reader only costs it the reading of those files.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufReader, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::format::snapshot_catalog::{self as format, LocalSeal};

/// Segments beyond which a whole listing rewrites the catalog into one.
const MAX_SEGMENTS: usize = 8;
/// Dead records below which a catalog is not rewritten for their sake alone.
const MIN_DEAD: usize = 256;
/// Age after which a temporary file left by a crash is removed.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Prefix of segment names.
const SEGMENT: &str = "seg-";
/// Prefix of temporary files.
const TEMP: &str = ".tmp-";

/// The catalog directory of one repository.
#[derive(Debug)]
pub(crate) struct Catalog {
    dir: PathBuf,
}

/// What [`Catalog::read`] found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The records of the wanted ids the catalog holds, each once.
    pub records: Vec<(SnapshotId, Snapshot)>,
    /// Their ids.
    pub ids: HashSet<SnapshotId>,
    /// The segments read.
    segments: Vec<PathBuf>,
    /// Records not wanted (of forgotten snapshots), and second copies.
    dead: usize,
    /// Why a segment could not be read whole.
    damage: Vec<String>,
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

    /// Reads every segment, keeping the records of the ids in `wanted`. A segment that
    /// cannot be read, or stops at a record that does not open, is reported in the result
    /// (its readable records are kept): the caller reads those snapshot files again.
    pub fn read(&self, seal: &dyn LocalSeal, wanted: &HashSet<SnapshotId>) -> Found {
        let mut found = Found {
            ids: HashSet::with_capacity(wanted.len()),
            records: Vec::with_capacity(wanted.len()),
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
                    found.segments.push(path);
                    continue;
                }
            };
            let mut r = BufReader::with_capacity(1 << 20, file);
            match format::read(&mut r, seal, &mut |id| wanted.contains(id)) {
                Ok(read) => {
                    found.dead += read.skipped;
                    for (id, s) in read.records {
                        if found.ids.insert(id) {
                            found.records.push((id, s));
                        } else {
                            found.dead += 1;
                        }
                    }
                    if let Some(e) = read.damage {
                        found.damage.push(format!("{}: {e}", path.display()));
                    }
                }
                Err(e) => found.damage.push(format!("{}: {e}", path.display())),
            }
            found.segments.push(path);
        }
        found
    }

    /// Adds `new` records. When `found` came from a listing of the whole snapshot directory
    /// (`whole`), the catalog is rewritten into one segment if it has grown many segments,
    /// more dead records than live, or damage.
    ///
    /// # Errors
    /// I/O errors writing the segment (the catalog is as it was).
    pub fn update(
        &self,
        seal: &dyn LocalSeal,
        found: &Found,
        new: &[(SnapshotId, Snapshot)],
        whole: bool,
    ) -> io::Result<()> {
        let rewrite = whole
            && (!found.damage.is_empty()
                || found.segments.len() >= MAX_SEGMENTS
                || found.dead > found.records.len().max(MIN_DEAD));
        if rewrite {
            let all = found.records.iter().chain(new).map(|(i, s)| (i, s));
            self.write_segment(seal, all)?;
            for old in &found.segments {
                match fs::remove_file(old) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            self.remove_stale_temps();
        } else if !new.is_empty() {
            self.write_segment(seal, new.iter().map(|(i, s)| (i, s)))?;
        }
        Ok(())
    }

    /// Why segments could not be read whole, if any could not.
    pub fn damage(found: &Found) -> &[String] {
        &found.damage
    }

    fn write_segment<'a>(
        &self,
        seal: &dyn LocalSeal,
        records: impl Iterator<Item = (&'a SnapshotId, &'a Snapshot)>,
    ) -> io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP)
            .tempfile_in(&self.dir)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
        {
            let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            w.write_all(&format::header(seal))?;
            for (id, s) in records {
                w.write_all(&format::record(seal, id, s).map_err(io::Error::other)?)?;
            }
            w.flush()?;
        }
        tmp.as_file().sync_data()?;
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
    use crate::format::snapshot_catalog::TagSeal;
    use zeroize::Zeroizing;

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

    #[test]
    fn grows_by_segments_and_rewrites_into_one() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path().join("catalog")).unwrap();
        let seal = TagSeal::new(Zeroizing::new([1; 32]));
        let mut live = HashSet::new();
        for b in 0..MAX_SEGMENTS as u8 {
            live.insert(id(b));
            let found = c.read(&seal, &live);
            assert_eq!(found.records.len(), usize::from(b), "round {b}");
            c.update(&seal, &found, &[(id(b), snap(i64::from(b)))], true)
                .unwrap();
        }
        assert_eq!(segments(&c), MAX_SEGMENTS);
        // Many segments: the next whole update writes one, with every live record.
        let found = c.read(&seal, &live);
        assert_eq!(found.records.len(), MAX_SEGMENTS);
        c.update(&seal, &found, &[], true).unwrap();
        assert_eq!(segments(&c), 1);
        let found = c.read(&seal, &live);
        assert_eq!(found.records.len(), MAX_SEGMENTS);
        assert!(found.records.contains(&(id(3), snap(3))));
        // A partial listing never rewrites (it cannot tell dead records from unlisted ones).
        let one: HashSet<_> = [id(0)].into();
        let found = c.read(&seal, &one);
        assert_eq!(found.dead, MAX_SEGMENTS - 1);
        c.update(&seal, &found, &[(id(99), snap(99))], false)
            .unwrap();
        assert_eq!(segments(&c), 2);
    }

    #[test]
    fn damage_keeps_the_good_records_and_a_whole_update_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(dir.path().join("catalog")).unwrap();
        let seal = TagSeal::new(Zeroizing::new([1; 32]));
        let live: HashSet<_> = [id(1), id(2)].into();
        let new = [(id(1), snap(1)), (id(2), snap(2))];
        c.update(&seal, &Found::default(), &new, false).unwrap();
        let seg = fs::read_dir(c.dir())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = fs::read(&seg).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&seg, &bytes).unwrap();
        let found = c.read(&seal, &live);
        assert_eq!(found.records.len(), 1);
        assert_eq!(Catalog::damage(&found).len(), 1);
        c.update(&seal, &found, &[(id(2), snap(2))], true).unwrap();
        assert!(!seg.exists());
        let found = c.read(&seal, &live);
        assert!(Catalog::damage(&found).is_empty());
        assert_eq!(found.records.len(), 2);
    }
}
