//! Writing local index runs: one from a batch of index files (sorted in memory, a batch at a
//! time), or one from several runs (a streaming merge that drops the entries of index files
//! no longer in force). A run is written to a temp file, fsynced, and renamed into place.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::format::crypto::SessionKey;
use crate::format::id::IndexId;
use crate::format::index::Index as IndexRecord;
use crate::format::index_run::{
    self as fmt, ENTRY_LEN, FENCE_LEN, MAGIC, NO_SESSION, PACK_LEN, PACK_MASK, PAGE_BODY, RunEntry,
    RunHeader, RunPack, RunSource, TREE_BIT, ZSTD_BIT,
};
use crate::format::pack::{BlobKind, Compression};

use super::run::{Run, RunDamage};

/// A run's file name for its id.
#[must_use]
pub fn run_name(run: &[u8; 16]) -> String {
    let hex: String = run.iter().map(|b| format!("{b:02x}")).collect();
    format!("run-{hex}")
}

/// Why a run could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Writing the file failed.
    #[error("writing local index run {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: io::Error,
    },
    /// An input run is damaged.
    #[error(transparent)]
    Damage(#[from] RunDamage),
}

/// Streams pages into a temp file: entries, then packs, then sessions, then the fence and
/// the header.
struct RunWriter {
    out: BufWriter<tempfile::NamedTempFile>,
    tmp: PathBuf,
    dir: PathBuf,
    key: zeroize::Zeroizing<[u8; 32]>,
    run: [u8; 16],
    page: u64,
    body: Vec<u8>,
    /// Length of a session record (0: a plaintext repository).
    session_len: usize,
    record: usize,
    fence: Vec<u64>,
    counts: [u64; 3],
    section: usize,
    last: Option<[u8; 32]>,
}

impl RunWriter {
    fn new(dir: &Path, key: &[u8; 32], session_len: usize) -> Result<RunWriter, BuildError> {
        let mut run = [0u8; 16];
        getrandom::fill(&mut run).map_err(|e| BuildError::Io {
            path: dir.to_path_buf(),
            cause: io::Error::other(e.to_string()),
        })?;
        // A temp file (private, removed if the run is not finished) renamed into place.
        let file = tempfile::Builder::new()
            .prefix("tmp-")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|cause| BuildError::Io {
                path: dir.to_path_buf(),
                cause,
            })?;
        let tmp = file.path().to_path_buf();
        Ok(RunWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            tmp,
            dir: dir.to_path_buf(),
            key: zeroize::Zeroizing::new(*key),
            run,
            page: 0,
            body: Vec::with_capacity(PAGE_BODY),
            session_len,
            record: ENTRY_LEN,
            fence: Vec::new(),
            counts: [0; 3],
            section: 0,
            last: None,
        })
    }

    fn io(&self, cause: io::Error) -> BuildError {
        BuildError::Io {
            path: self.tmp.clone(),
            cause,
        }
    }

    /// Pads and tags the current page, if it holds anything.
    fn flush_page(&mut self) -> Result<(), BuildError> {
        if self.body.is_empty() {
            return Ok(());
        }
        self.body.resize(PAGE_BODY, 0);
        let tag = fmt::page_tag(&self.key, &self.run, self.page, &self.body);
        self.out.write_all(&self.body).map_err(|e| self.io(e))?;
        self.out.write_all(&tag).map_err(|e| self.io(e))?;
        self.body.clear();
        self.page += 1;
        Ok(())
    }

    fn push(&mut self, record: &[u8]) -> Result<(), BuildError> {
        if self.body.len() + self.record > PAGE_BODY {
            self.flush_page()?;
        }
        self.body.extend_from_slice(record);
        Ok(())
    }

    /// Moves on to `section` (0 entries, 1 packs, 2 sessions, 3 fence), each starting on a
    /// new page.
    fn enter(&mut self, section: usize) -> Result<(), BuildError> {
        while self.section < section {
            self.flush_page()?;
            self.section += 1;
            self.record = match self.section {
                1 => PACK_LEN,
                2 => self.session_len.max(1),
                _ => FENCE_LEN,
            };
        }
        Ok(())
    }

    fn entry(&mut self, e: &RunEntry) -> Result<(), BuildError> {
        debug_assert_eq!(self.section, 0);
        if self.last.is_some_and(|l| l > e.id) {
            return Err(self.io(io::Error::other("entries out of order")));
        }
        self.last = Some(e.id);
        if self.body.is_empty() || self.body.len() + ENTRY_LEN > PAGE_BODY {
            self.fence.push(e.prefix());
        }
        self.counts[0] += 1;
        self.push(&e.to_bytes())
    }

    fn pack(&mut self, p: &RunPack) -> Result<(), BuildError> {
        self.enter(1)?;
        self.counts[1] += 1;
        self.push(&p.to_bytes())
    }

    fn session(&mut self, s: &[u8]) -> Result<(), BuildError> {
        self.enter(2)?;
        if s.len() != self.session_len {
            return Err(self.io(io::Error::other("a session key of the wrong length")));
        }
        self.counts[2] += 1;
        self.push(s)
    }

    /// Writes the fence and the header, makes the file durable and renames it into place.
    fn finish(
        mut self,
        sources: Vec<RunSource>,
        tree_packs: Vec<(crate::format::id::PackId, u64, u32)>,
    ) -> Result<String, BuildError> {
        self.enter(3)?;
        for f in std::mem::take(&mut self.fence) {
            self.push(&f.to_le_bytes())?;
        }
        self.flush_page()?;
        let header = RunHeader {
            run: self.run,
            sources,
            entries: self.counts[0],
            packs: self.counts[1],
            sessions: self.counts[2],
            tree_packs,
        };
        let bytes = header
            .encode()
            .map_err(|e| self.io(io::Error::other(e.to_string())))?;
        let tag = fmt::header_tag(&self.key, &bytes);
        let len = bytes.len() as u64;
        for part in [&bytes[..], &tag, &len.to_le_bytes(), MAGIC] {
            self.out.write_all(part).map_err(|e| self.io(e))?;
        }
        let file = self.out.into_inner().map_err(|e| BuildError::Io {
            path: self.tmp.clone(),
            cause: e.into_error(),
        })?;
        file.as_file().sync_all().map_err(|cause| BuildError::Io {
            path: self.tmp.clone(),
            cause,
        })?;
        let name = run_name(&self.run);
        let target = self.dir.join(&name);
        file.persist(&target).map_err(|e| BuildError::Io {
            path: target.clone(),
            cause: e.error,
        })?;
        Ok(name)
    }
}

/// Writes a run from index files (one batch, held in memory); returns its file name.
///
/// # Errors
/// [`BuildError`] on I/O errors.
pub fn from_records(
    dir: &Path,
    key: &[u8; 32],
    records: &[(IndexId, IndexRecord)],
    session_len: usize,
) -> Result<String, BuildError> {
    let mut packs: Vec<RunPack> = Vec::new();
    let mut sessions: Vec<&SessionKey> = Vec::new();
    let mut session_numbers: HashMap<&SessionKey, u32> = HashMap::new();
    let mut entries: Vec<RunEntry> = Vec::new();
    let mut sources = Vec::with_capacity(records.len());
    let mut tree_packs = Vec::new();
    for (source, (id, record)) in records.iter().enumerate() {
        let source = u32::try_from(source).unwrap_or(u32::MAX);
        let (mut blobs, mut bytes) = (0u64, 0u64);
        for p in &record.packs {
            let session = match record.sessions.get(p.session as usize) {
                Some(s) if session_len > 0 => *session_numbers.entry(s).or_insert_with(|| {
                    sessions.push(s);
                    u32::try_from(sessions.len() - 1).unwrap_or(NO_SESSION)
                }),
                _ => NO_SESSION,
            };
            let number = u32::try_from(packs.len()).unwrap_or(PACK_MASK);
            packs.push(RunPack {
                id: p.id,
                len: p.len,
                source,
                session,
            });
            if p.blobs.iter().any(|b| b.kind == BlobKind::Tree) {
                tree_packs.push((p.id, p.len, source));
            }
            bytes += p.len;
            blobs += p.blobs.len() as u64;
            entries.extend(p.blobs.iter().map(|b| RunEntry {
                id: b.id.0.0,
                pack: number
                    | if b.kind == BlobKind::Tree {
                        TREE_BIT
                    } else {
                        0
                    }
                    | if b.compression == Compression::Zstd {
                        ZSTD_BIT
                    } else {
                        0
                    },
                offset: b.offset,
                stored_len: b.stored_len,
                raw_len: b.raw_len,
            }));
        }
        sources.push(RunSource {
            id: *id,
            blobs,
            bytes,
            supersedes: record.supersedes.clone(),
            prune: record.prune.clone(),
        });
    }
    if packs.len() as u64 > fmt::MAX_PACKS {
        return Err(BuildError::Io {
            path: dir.to_path_buf(),
            cause: io::Error::other("too many packs for one run"),
        });
    }
    entries.sort_unstable_by_key(|e| (e.id, e.pack & PACK_MASK));
    let mut w = RunWriter::new(dir, key, session_len)?;
    for e in &entries {
        w.entry(e)?;
    }
    drop(entries);
    for p in &packs {
        w.pack(p)?;
    }
    for s in sessions {
        w.session(fmt::session_bytes(s))?;
    }
    w.finish(sources, tree_packs)
}

/// A run's place in a merge: its next entries.
struct Cursor<'a> {
    run: &'a Run,
    page: u64,
    entries: std::vec::IntoIter<RunEntry>,
}

impl Cursor<'_> {
    fn next(&mut self) -> Result<Option<RunEntry>, RunDamage> {
        loop {
            if let Some(e) = self.entries.next() {
                return Ok(Some(e));
            }
            if self.page >= self.run.entry_pages() {
                return Ok(None);
            }
            self.entries = self.run.entry_page(self.page)?.into_iter();
            self.page += 1;
        }
    }
}

/// Merges `runs` into one, keeping only the sources `live(run, source)` says are in force;
/// returns the new run's file name, or `None` if nothing is left.
///
/// # Errors
/// [`BuildError`] on I/O errors or a damaged input.
pub fn merge(
    dir: &Path,
    key: &[u8; 32],
    runs: &[&Run],
    live: &dyn Fn(usize, u32) -> bool,
    session_len: usize,
) -> Result<Option<String>, BuildError> {
    // New numbers for the sources, packs and sessions kept.
    let mut sources = Vec::new();
    let mut source_map: Vec<Vec<Option<u32>>> = Vec::with_capacity(runs.len());
    for (r, run) in runs.iter().enumerate() {
        let mut map = Vec::new();
        for (s, src) in run.header().sources.iter().enumerate() {
            let s = u32::try_from(s).unwrap_or(u32::MAX);
            map.push(live(r, s).then(|| {
                sources.push(src.clone());
                u32::try_from(sources.len() - 1).unwrap_or(u32::MAX)
            }));
        }
        source_map.push(map);
    }
    if sources.is_empty() {
        return Ok(None);
    }
    let mut session_base = Vec::with_capacity(runs.len());
    let mut sessions = 0u64;
    for run in runs {
        session_base.push(u32::try_from(sessions).unwrap_or(u32::MAX));
        sessions += run.header().sessions;
    }
    let mut pack_map: Vec<Vec<u32>> = Vec::with_capacity(runs.len());
    let mut kept = 0u32;
    for (r, run) in runs.iter().enumerate() {
        let mut map = Vec::new();
        for p in run.packs() {
            let p = p?;
            if source_map[r][p.source as usize].is_some() {
                map.push(kept);
                kept += 1;
            } else {
                map.push(u32::MAX);
            }
        }
        pack_map.push(map);
    }
    let mut w = RunWriter::new(dir, key, session_len)?;
    let mut cursors: Vec<Cursor> = runs
        .iter()
        .map(|run| Cursor {
            run,
            page: 0,
            entries: Vec::new().into_iter(),
        })
        .collect();
    let mut heap = BinaryHeap::new();
    for (r, c) in cursors.iter_mut().enumerate() {
        if let Some(e) = c.next()? {
            heap.push(Reverse((e.id, r, e.to_bytes())));
        }
    }
    while let Some(Reverse((_, r, bytes))) = heap.pop() {
        let mut e = RunEntry::from_bytes(&bytes);
        let number = pack_map[r]
            .get((e.pack & PACK_MASK) as usize)
            .copied()
            .ok_or_else(|| RunDamage {
                path: runs[r].path().to_path_buf(),
                reason: "an entry names a pack out of range".into(),
            })?;
        if number != u32::MAX {
            e.pack = (e.pack & !PACK_MASK) | number;
            w.entry(&e)?;
        }
        if let Some(next) = cursors[r].next()? {
            heap.push(Reverse((next.id, r, next.to_bytes())));
        }
    }
    for (r, run) in runs.iter().enumerate() {
        for p in run.packs() {
            let mut p = p?;
            if let Some(s) = source_map[r][p.source as usize] {
                p.source = s;
                if p.session != NO_SESSION {
                    p.session += session_base[r];
                }
                w.pack(&p)?;
            }
        }
    }
    for run in runs {
        for s in 0..u32::try_from(run.header().sessions).unwrap_or(u32::MAX) {
            w.session(&run.session(s)?.0)?;
        }
    }
    let tree_packs = runs
        .iter()
        .enumerate()
        .flat_map(|(r, run)| {
            let map = &source_map[r];
            run.header()
                .tree_packs
                .iter()
                .filter_map(move |&(id, len, s)| map[s as usize].map(|s| (id, len, s)))
        })
        .collect();
    w.finish(sources, tree_packs).map(Some)
}
