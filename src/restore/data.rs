//! File data for the restore, written in pack order.
//!
//! The walk creates each regular file empty (and closes it) and queues it here with its
//! pieces. A [`Batch`] of queued files is then written pack by pack: every chunk the batch needs is located,
//! the chunks are sorted by pack and offset, neighbours are merged into spans (one request
//! each, up to the reader's span limit, gaps up to its gap limit read through), and worker
//! threads read the spans, verify each blob and write it to every file offset that wants it.
//! So each stored byte is fetched about once, whatever order the backup put chunks in, and a
//! chunk shared by many files is read once per batch. This is what makes a restore from
//! object storage cost about the bytes it restores.
//!
//! A chunk that is not where the index says (a prune that ran since it was loaded), or whose
//! span cannot be read, is read again on its own through [`Repository::read_chunk`], which
//! reloads the index; what still fails marks its files damaged, and the restorer removes
//! them. The index entry's length must match the piece's, as in `read_chunk`.
//!
//! Files are not held open while queued: a worker opens a file by name in its (open) parent
//! directory when it writes to it, without following symlinks, and checks that it is still
//! the inode the walk created. So a batch is bounded by memory (files, pieces), and by open
//! descriptors only through the directories it holds.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::dirfd::DirFd;
use crate::error::{Error, Result};
use crate::format::id::{BlobId, ChunkId};
use crate::format::tree::{Node, Piece};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::repo::index::BlobLocation;

/// Longest span read in one request from a local repository.
pub const MAX_SPAN: u64 = 16 << 20;

/// Longest span read in one request from object storage: a whole pack of the default size
/// (32 MiB) and a little more, so a pack costs one request.
pub const REMOTE_SPAN: u64 = 36 << 20;

/// Most pieces queued in one batch (about 48 bytes each).
const MAX_PIECES: usize = 1 << 20;

/// Most files queued in one batch from local storage (a few hundred bytes each). Batches
/// are written on a thread of their own while the walk creates the next batch's files, so a
/// batch is kept small enough for the two to overlap: creating 16k files takes a fraction of
/// a second.
pub const MAX_FILES: usize = 16_384;

/// Most data queued in one batch from local storage: 256 MiB takes about a second to write,
/// while the walk queues the next.
pub const MAX_BYTES: u64 = 256 << 20;

/// The same from object storage, where a batch reads each pack it needs in one request:
/// chunks of one pack in several batches cost a request (and the gaps read through) in
/// each, more than the overlap gains. Batches are as large as memory allows (a few hundred
/// bytes a file).
pub const REMOTE_MAX_FILES: usize = 100_000;
/// See [`REMOTE_MAX_FILES`].
pub const REMOTE_MAX_BYTES: u64 = u64::MAX;

/// How the data is read.
#[derive(Clone, Copy, Debug)]
pub struct Reads {
    /// Threads reading and writing spans.
    pub workers: usize,
    /// Unneeded bytes between two chunks of a pack read through rather than split into two
    /// requests.
    pub max_gap: u64,
    /// Longest span read in one request (memory: one span per worker).
    pub max_span: u64,
    /// Directories held open by queued files at once.
    pub max_dirs: usize,
    /// Most files in one batch.
    pub max_files: usize,
    /// Most bytes of data in one batch.
    pub max_bytes: u64,
}

/// A queued file: where it is, and what it becomes once its data is written.
pub struct Queued {
    /// Its directory, open.
    pub dir: Arc<DirFd>,
    /// Its name there.
    pub name: OsString,
    /// Its path, for messages.
    pub path: PathBuf,
    /// Its entry (size and metadata).
    pub node: Node,
    /// What the data is written to.
    place: Place,
    /// Its last data piece ends at its size: writing the data sizes it.
    sized_by_data: bool,
}

/// What a queued file's data is written to.
enum Place {
    /// The inode the walk created (device, inode number), opened again by name for writing.
    Created((u64, u64)),
    /// A device or file opened (and sized) by the caller: an image restore.
    Image(Arc<File>),
}

impl Queued {
    /// Queues `file`, just created as `name` in `dir`.
    ///
    /// # Errors
    /// `fstat` failing on it.
    pub fn new(
        dir: &Arc<DirFd>,
        name: OsString,
        path: PathBuf,
        node: Node,
        file: &File,
    ) -> io::Result<Queued> {
        let m = file.metadata()?;
        Ok(Queued {
            dir: Arc::clone(dir),
            name,
            path,
            node,
            place: Place::Created((m.dev(), m.ino())),
            sized_by_data: false,
        })
    }

    /// Queues an image restore: `node`'s data goes into `target`, `name` in `dir`, which the
    /// caller opened (and sized) and holds open until the batch is written.
    pub fn image(
        dir: &Arc<DirFd>,
        name: OsString,
        path: PathBuf,
        node: Node,
        target: Arc<File>,
    ) -> Queued {
        Queued {
            dir: Arc::clone(dir),
            name,
            path,
            node,
            place: Place::Image(target),
            sized_by_data: false,
        }
    }

    /// Opens the file for writing again: by name, without following a symlink, and only if
    /// it is still the inode the walk created (an image's target: another descriptor of it).
    fn open(&self) -> io::Result<File> {
        let created = match &self.place {
            Place::Image(f) => return f.try_clone(),
            Place::Created(created) => *created,
        };
        let f = self.dir.open_file_for_writing(&self.name)?;
        let m = f.metadata()?;
        if (m.dev(), m.ino()) != created {
            return Err(io::Error::other(
                "was replaced by another file while the restore ran",
            ));
        }
        Ok(f)
    }

    /// Gives the file its size once its data is written (the tail may be a hole; a file
    /// whose data ends at its size has it already: the walk created it empty); an image's
    /// target was sized by the caller (a device cannot be).
    fn size(&self) -> io::Result<()> {
        match self.place {
            Place::Image(_) => Ok(()),
            Place::Created(_) if self.sized_by_data => Ok(()),
            Place::Created(_) => self.open()?.set_len(self.node.size),
        }
    }
}

/// One piece of data to write: chunk `id` of `len` bytes at offset `at` of file `file`.
struct Job {
    file: usize,
    at: u64,
    id: ChunkId,
    len: u32,
}

/// A chunk to read from a pack, and the jobs it serves.
struct Wanted {
    loc: BlobLocation,
    id: BlobId,
    jobs: Vec<usize>,
}

/// Neighbouring wanted chunks of one pack, read in one request.
struct Span {
    start: u64,
    end: u64,
    wanted: std::ops::Range<usize>,
}

/// Files waiting for their data.
pub struct Batch {
    reads: Reads,
    queued: Vec<Queued>,
    jobs: Vec<Job>,
    /// Source inodes of queued files that may be hardlinked.
    inodes: HashSet<(u64, u64)>,
    /// Directories the queued files hold open, by address.
    dirs: HashSet<usize>,
    /// Bytes of data queued.
    bytes: u64,
}

/// A queued file, with the outcome of writing its data.
pub struct Written {
    /// The file.
    pub queued: Queued,
    /// The first error its data met, if any.
    pub outcome: Result<()>,
}

impl Batch {
    /// An empty batch.
    pub fn new(reads: Reads) -> Self {
        Batch {
            reads,
            queued: Vec::new(),
            jobs: Vec::new(),
            inodes: HashSet::new(),
            dirs: HashSet::new(),
            bytes: 0,
        }
    }

    /// Queues a file (created empty) to receive `content`.
    ///
    /// # Errors
    /// Pieces whose offsets overflow (a crafted tree); nothing is queued then.
    pub fn push(&mut self, mut queued: Queued, content: &[Piece]) -> Result<()> {
        let index = self.queued.len();
        let mut at = 0u64;
        let mut jobs = Vec::new();
        for piece in content {
            let len = match piece {
                Piece::Data { id, len } => {
                    jobs.push(Job {
                        file: index,
                        at,
                        id: *id,
                        len: *len,
                    });
                    u64::from(*len)
                }
                Piece::Hole { len } => *len,
            };
            at = at.checked_add(len).ok_or_else(|| {
                Error::corrupt(
                    queued.path.display().to_string(),
                    "file pieces add up to more than 2^64 bytes",
                )
            })?;
        }
        queued.sized_by_data = jobs
            .last()
            .is_some_and(|j| j.at + u64::from(j.len) == queued.node.size);
        self.bytes += jobs.iter().map(|j| u64::from(j.len)).sum::<u64>();
        self.jobs.append(&mut jobs);
        if queued.node.may_be_hardlinked() {
            self.inodes.insert((queued.node.dev, queued.node.ino));
        }
        self.dirs.insert(Arc::as_ptr(&queued.dir) as usize);
        self.queued.push(queued);
        Ok(())
    }

    /// Whether a queued file is source inode `key`.
    pub fn holds(&self, key: (u64, u64)) -> bool {
        self.inodes.contains(&key)
    }

    /// The queued files as a batch of their own, leaving this one empty (same reads), and
    /// the source inodes of its files that may be hardlinked (what [`Self::holds`] asked).
    pub fn take(&mut self) -> (Batch, HashSet<(u64, u64)>) {
        let mut full = std::mem::replace(self, Batch::new(self.reads));
        let inodes = std::mem::take(&mut full.inodes);
        (full, inodes)
    }

    /// Whether it is time to write the batch.
    pub fn is_full(&self) -> bool {
        self.queued.len() >= self.reads.max_files
            || self.bytes >= self.reads.max_bytes
            || self.jobs.len() >= MAX_PIECES
            || self.dirs.len() >= self.reads.max_dirs
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Writes the data of every queued file, sizes it (the tail may be a hole) and empties
    /// the batch: each file comes back with the first error its data met.
    pub fn write(&mut self, repo: &Repository, progress: &Progress) -> Vec<Written> {
        let jobs = std::mem::take(&mut self.jobs);
        let queued = std::mem::take(&mut self.queued);
        self.inodes.clear();
        self.dirs.clear();
        self.bytes = 0;
        let outcome: Vec<Mutex<Option<Error>>> = queued.iter().map(|_| Mutex::new(None)).collect();
        let (wanted, alone) = locate(repo, &jobs);
        let spans = spans(&wanted, self.reads.max_gap, self.reads.max_span);
        let writer = Writer {
            repo,
            jobs: &jobs,
            files: &queued,
            outcome: &outcome,
            progress,
        };
        let next = AtomicUsize::new(0);
        let workers = self.reads.workers.clamp(1, spans.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut open = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(span) = spans.get(i) else { break };
                        writer.span(span, &wanted, &mut open);
                    }
                });
            }
        });
        let mut open = None;
        for job in alone {
            writer.alone(job, &mut open);
        }
        drop(open);
        queued
            .into_iter()
            .zip(outcome)
            .map(|(q, o)| {
                let outcome = match o
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                {
                    Some(e) => Err(e),
                    None => q.size().map_err(|e| Error::path_io("sizing", &q.path, e)),
                };
                Written { queued: q, outcome }
            })
            .collect()
    }
}

/// The file a worker last wrote to, kept open for its next chunk.
type Open = Option<(usize, File)>;

/// Finds where each job's chunk is: wanted chunks sorted by pack and offset (one entry per
/// stored blob, however many jobs want it), and the jobs whose chunk the index does not
/// place as the piece says (left to [`Repository::read_chunk`] and its reload).
fn locate(repo: &Repository, jobs: &[Job]) -> (Vec<Wanted>, Vec<usize>) {
    let mut found: Vec<(BlobLocation, BlobId, usize)> = Vec::with_capacity(jobs.len());
    let mut alone = Vec::new();
    {
        let index = repo.index();
        for (i, job) in jobs.iter().enumerate() {
            let id = BlobId::from(job.id);
            match index.lookup(&id) {
                Some(loc) if loc.raw_len == job.len => found.push((loc, id, i)),
                _ => alone.push(i),
            }
        }
    }
    found.sort_by_key(|(loc, _, _)| (loc.pack, loc.offset));
    let mut wanted: Vec<Wanted> = Vec::new();
    for (loc, id, job) in found {
        match wanted.last_mut() {
            Some(w) if w.loc.pack == loc.pack && w.loc.offset == loc.offset && w.id == id => {
                w.jobs.push(job);
            }
            _ => wanted.push(Wanted {
                loc,
                id,
                jobs: vec![job],
            }),
        }
    }
    (wanted, alone)
}

/// Groups sorted wanted chunks into spans: same pack, gaps of at most `max_gap`, at most
/// `max_span` bytes (a single larger chunk is a span of its own).
fn spans(wanted: &[Wanted], max_gap: u64, max_span: u64) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        let start = u64::from(w.loc.offset);
        let end = start + u64::from(w.loc.stored_len);
        if let Some(last) = spans.last_mut() {
            let same_pack = wanted[last.wanted.start].loc.pack == w.loc.pack;
            if same_pack
                && start >= last.start
                && start <= last.end + max_gap
                && end.max(last.end) - last.start <= max_span
            {
                last.end = last.end.max(end);
                last.wanted.end = i + 1;
                continue;
            }
        }
        spans.push(Span {
            start,
            end,
            wanted: i..i + 1,
        });
    }
    spans
}

/// What the workers share.
struct Writer<'a> {
    repo: &'a Repository,
    jobs: &'a [Job],
    files: &'a [Queued],
    outcome: &'a [Mutex<Option<Error>>],
    progress: &'a Progress,
}

impl Writer<'_> {
    /// Reads one span and writes each of its chunks where it is wanted; if the span cannot be
    /// read, each of its chunks is read on its own.
    fn span(&self, span: &Span, wanted: &[Wanted], open: &mut Open) {
        let chunks = &wanted[span.wanted.clone()];
        if chunks
            .iter()
            .flat_map(|w| &w.jobs)
            .all(|&j| self.failed(self.jobs[j].file))
        {
            return;
        }
        let len = usize::try_from(span.end - span.start).unwrap_or(usize::MAX);
        let bytes = match self
            .repo
            .read_pack_span(&chunks[0].loc.pack, span.start, len)
        {
            Ok(b) => b,
            Err(_) => {
                for j in chunks.iter().flat_map(|w| &w.jobs) {
                    self.alone(*j, open);
                }
                return;
            }
        };
        for w in chunks {
            let from = usize::try_from(u64::from(w.loc.offset) - span.start).unwrap_or(0);
            let to = from + w.loc.stored_len as usize;
            let stored = bytes.get(from..to).map(<[u8]>::to_vec).unwrap_or_default();
            match self.repo.unpack_blob(&w.id, &w.loc, stored) {
                Ok(data) => {
                    for &j in &w.jobs {
                        self.put(j, &data, open);
                    }
                }
                Err(e) => {
                    for &j in &w.jobs {
                        self.set_failed(self.jobs[j].file, copy_error(&e));
                    }
                }
            }
        }
    }

    /// Reads job `j`'s chunk by itself (reloading the index if it seems outdated) and writes
    /// it.
    fn alone(&self, j: usize, open: &mut Open) {
        let job = &self.jobs[j];
        if self.failed(job.file) {
            return;
        }
        match self.repo.read_chunk(&job.id, job.len) {
            Ok(data) => self.put(j, &data, open),
            Err(e) => self.set_failed(job.file, e),
        }
    }

    /// Writes `data` where job `j` wants it, through the worker's open file.
    fn put(&self, j: usize, data: &[u8], open: &mut Open) {
        let job = &self.jobs[j];
        if self.failed(job.file) {
            return;
        }
        let target = &self.files[job.file];
        if open.as_ref().is_none_or(|(i, _)| *i != job.file) {
            *open = None;
            match target.open() {
                Ok(f) => *open = Some((job.file, f)),
                Err(e) => {
                    return self.set_failed(job.file, Error::path_io("opening", &target.path, e));
                }
            }
        }
        if let Some((_, f)) = open {
            match f.write_all_at(data, job.at) {
                Ok(()) => self.progress.add_bytes(data.len() as u64),
                Err(e) => self.set_failed(job.file, Error::path_io("writing", &target.path, e)),
            }
        }
    }

    fn failed(&self, file: usize) -> bool {
        self.outcome[file].lock().map_or(true, |o| o.is_some())
    }

    fn set_failed(&self, file: usize, e: Error) {
        if let Ok(mut o) = self.outcome[file].lock()
            && o.is_none()
        {
            *o = Some(e);
        }
    }
}

/// A copy of `e` for each file a damaged chunk belongs to (the restorer reports and counts
/// each, as damage when it is damage).
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Corrupt { file, reason } => Error::corrupt(file.clone(), reason.clone()),
        Error::MissingPack { file } => Error::MissingPack { file: file.clone() },
        Error::MissingBlob { id } => Error::MissingBlob { id: id.clone() },
        // Opening a blob fails otherwise only for want of a (full) key.
        other => Error::Key(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::{Id, PackId};
    use crate::format::pack::BlobKind;
    use crate::format::pack::Compression;

    fn wanted(pack: u8, offset: u32, stored_len: u32) -> Wanted {
        Wanted {
            loc: BlobLocation {
                pack: PackId(Id([pack; 32])),
                kind: BlobKind::Data,
                offset,
                stored_len,
                raw_len: stored_len,
                compression: Compression::None,
                session: crate::repo::index::sessions::NO_SESSION,
            },
            id: BlobId(Id([0; 32])),
            jobs: vec![0],
        }
    }

    fn shape(spans: &[Span]) -> Vec<(u64, u64, usize, usize)> {
        spans
            .iter()
            .map(|s| (s.start, s.end, s.wanted.start, s.wanted.end))
            .collect()
    }

    #[test]
    fn neighbours_merge_within_the_gap_and_packs_never_mix() {
        let w = [
            wanted(1, 0, 100),
            wanted(1, 100, 50),
            wanted(1, 400, 10),
            wanted(2, 410, 10),
        ];
        assert_eq!(
            shape(&spans(&w, 0, MAX_SPAN)),
            [(0, 150, 0, 2), (400, 410, 2, 3), (410, 420, 3, 4)]
        );
        assert_eq!(
            shape(&spans(&w, 250, MAX_SPAN)),
            [(0, 410, 0, 3), (410, 420, 3, 4)]
        );
    }

    #[test]
    fn spans_stay_under_the_limit_unless_one_chunk_is_larger() {
        let big = u32::try_from(MAX_SPAN).unwrap();
        let w = [
            wanted(1, 0, big / 2),
            wanted(1, big / 2, big / 2),
            wanted(1, big, 1),
            wanted(1, big + 1, big + 5),
        ];
        assert_eq!(
            shape(&spans(&w, 1 << 20, MAX_SPAN)),
            [
                (0, MAX_SPAN, 0, 2),
                (MAX_SPAN, MAX_SPAN + 1, 2, 3),
                (MAX_SPAN + 1, 2 * MAX_SPAN + 6, 3, 4)
            ]
        );
    }
}
