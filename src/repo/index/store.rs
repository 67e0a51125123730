//! The local index's directory in the cache (`<cache>/<repo id>/index/`): the runs, the
//! manifest naming the runs in force, and the lock that keeps two processes of one host from
//! updating them at once (readers of the runs they opened are never disturbed: runs are
//! immutable, and a replaced run is deleted only after the manifest stops naming it).
//!
//! Crash safety: a run is durable (temp file, fsync, rename) before the manifest names it;
//! the manifest is replaced the same way, then the directory is fsynced; runs it does not name
//! are deleted afterwards. A crash leaves at worst unnamed runs and temp files, removed by the
//! next update.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::format::id::IndexId;
use crate::format::index::Index as IndexRecord;
use crate::format::index_run::{self as fmt, TAG};

use super::build::{self, BuildError};
use super::run::{Run, RunDamage};

/// The manifest's magic bytes.
const MANIFEST_MAGIC: &[u8; 8] = b"CFSIMAN1";
/// Most runs a manifest may name.
const MAX_RUNS: usize = 4096;
/// Runs beyond which a sync merges them all.
const MERGE_ABOVE: usize = 12;

/// A local index directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    key: zeroize::Zeroizing<[u8; 32]>,
    session_len: usize,
}

/// Held while the runs are updated (an exclusive `flock` on `lock`).
pub struct Locked {
    _file: File,
}

impl Store {
    /// The store in `dir` (created 0700 if missing), its pages checked with `key`; session
    /// records are `session_len` bytes (0: a plaintext repository).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: &Path, key: &[u8; 32], session_len: usize) -> io::Result<Store> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            key: zeroize::Zeroizing::new(*key),
            session_len,
        })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits for, then holds, the store's update lock.
    ///
    /// # Errors
    /// When the lock file cannot be opened or locked.
    pub fn lock(&self) -> io::Result<Locked> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join("lock"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Locked { _file: file })
    }

    /// Opens the runs the manifest names. A missing or damaged manifest names none; a run
    /// that is missing or fails its checks is left out and reported (its sources are rebuilt).
    #[must_use]
    pub fn open_runs(&self, _held: &Locked) -> (Vec<Run>, Vec<String>) {
        let mut warnings = Vec::new();
        let names = match self.read_manifest() {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                warnings.push(format!(
                    "local index manifest {}: {e}; rebuilding the local index",
                    self.dir.join("manifest").display()
                ));
                Vec::new()
            }
        };
        let mut runs: Vec<Run> = Vec::new();
        let mut covered = std::collections::HashSet::new();
        for name in names {
            match Run::open(&self.dir.join(&name), &self.key, self.session_len) {
                Ok(run) if build::run_name(&run.header().run) != name => warnings.push(format!(
                    "local index run {name}: holds another run; rebuilding it"
                )),
                Ok(run) if run.header().sources.iter().any(|s| !covered.insert(s.id)) => warnings
                    .push(format!(
                        "local index run {name}: repeats an index file; rebuilding it"
                    )),
                Ok(run) => runs.push(run),
                Err(e) => warnings.push(format!("{e}; rebuilding it")),
            }
        }
        (runs, warnings)
    }

    fn read_manifest(&self) -> io::Result<Vec<String>> {
        let path = self.dir.join("manifest");
        let bytes = fs::read(&path)?;
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        if bytes.len() < MANIFEST_MAGIC.len() + TAG || &bytes[..8] != MANIFEST_MAGIC {
            return Err(invalid("not a manifest"));
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG);
        if fmt::header_tag(&self.key, body) != tag {
            return Err(invalid("the manifest fails its check"));
        }
        let names: Vec<String> = postcard::from_bytes(&body[8..])
            .map_err(|e| invalid(&format!("the manifest is malformed: {e}")))?;
        if names.len() > MAX_RUNS || names.iter().any(|n| !is_run_name(n)) {
            return Err(invalid("the manifest names something other than runs"));
        }
        Ok(names)
    }

    /// Writes a run from index files; returns it opened.
    ///
    /// # Errors
    /// [`BuildError`] on I/O errors.
    pub fn build(
        &self,
        _held: &Locked,
        records: &[(IndexId, IndexRecord)],
    ) -> Result<Run, BuildError> {
        let name = build::from_records(&self.dir, &self.key, records, self.session_len)?;
        Ok(Run::open(
            &self.dir.join(name),
            &self.key,
            self.session_len,
        )?)
    }

    /// Merges runs where that keeps lookups fast and the disk small: a run with more dead
    /// entries than live ones is rewritten; runs of similar size are merged (each run at
    /// least twice the size of all smaller ones, so that there are a few dozen at most); more
    /// than `MERGE_ABOVE` are merged into one. `live(run, source)` says which sources are in
    /// force.
    ///
    /// # Errors
    /// [`BuildError`] on I/O errors or a damaged run.
    pub fn settle(
        &self,
        _held: &Locked,
        runs: &mut Vec<Run>,
        live: &dyn Fn(&Run, u32) -> bool,
    ) -> Result<(), BuildError> {
        let size = |run: &Run, only_live: bool| -> u64 {
            run.header()
                .sources
                .iter()
                .enumerate()
                .filter(|(s, _)| !only_live || live(run, *s as u32))
                .map(|(_, s)| s.blobs)
                .sum()
        };
        runs.sort_by_cached_key(|r| std::cmp::Reverse(size(r, true)));
        let sizes: Vec<u64> = runs.iter().map(|r| size(r, true)).collect();
        // The first run from which the rest are merged.
        let mut from = runs.len();
        for i in 0..runs.len() {
            let rest: u64 = sizes[i + 1..].iter().sum();
            let dead = size(&runs[i], false) > 2 * sizes[i];
            if dead || (i + 1 < runs.len() && sizes[i] < 2 * rest) {
                from = i;
                break;
            }
        }
        if runs.len() > MERGE_ABOVE {
            from = 0;
        }
        if from == runs.len() {
            return Ok(());
        }
        let refs: Vec<&Run> = runs[from..].iter().collect();
        let check = |r: usize, s: u32| live(refs[r], s);
        let merged = build::merge(&self.dir, &self.key, &refs, &check, self.session_len)?
            .map(|name| Run::open(&self.dir.join(name), &self.key, self.session_len))
            .transpose()?;
        runs.truncate(from);
        runs.extend(merged);
        Ok(())
    }

    /// Makes `runs` the ones in force (the manifest is replaced durably), then deletes every
    /// other run and temp file. When the manifest already names exactly these runs (a
    /// command that found nothing new), nothing is written.
    ///
    /// # Errors
    /// I/O errors writing the manifest.
    pub fn commit(&self, _held: &Locked, runs: &[Run]) -> io::Result<()> {
        let names: Vec<String> = runs
            .iter()
            .map(|r| build::run_name(&r.header().run))
            .collect();
        if self.read_manifest().is_ok_and(|named| named == names) {
            return Ok(());
        }
        let mut body = MANIFEST_MAGIC.to_vec();
        body.extend(postcard::to_allocvec(&names).map_err(io::Error::other)?);
        let tag = fmt::header_tag(&self.key, &body);
        let tmp = self.dir.join("manifest.tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&body)?;
        f.write_all(&tag)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join("manifest"))?;
        File::open(&self.dir)?.sync_all()?;
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if (is_run_name(&name) && !names.iter().any(|n| *n == name)) || name.starts_with("tmp-")
            {
                let _ = fs::remove_file(self.dir.join(&*name));
            }
        }
        Ok(())
    }

    /// Deletes a run found damaged while in use, so that the next update rebuilds it.
    pub fn discard(damage: &RunDamage) {
        let _ = fs::remove_file(&damage.path);
    }
}

fn is_run_name(name: &str) -> bool {
    name.len() == 36 && name.starts_with("run-") && name[4..].bytes().all(|b| b.is_ascii_hexdigit())
}
