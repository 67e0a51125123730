//! The threads of a backup and the bounded queues between them:
//!
//! ```text
//! walker ──FileJob──▶ readers (open, read, chunk, hash) ──FileDone──▶ walker
//!    │                   │ new chunks
//!    │ trees             ▼
//!    └──────────▶ compressors (zstd) ──▶ packer (packs, index files)
//! ```
//!
//! The walker (the calling thread) lists directories, compares with the parent snapshot and
//! assembles trees; readers turn whole files into chunk lists; compressors compress new blobs;
//! one packer owns the [`BlobWriter`](crate::repo::writer::BlobWriter) and writes packs and index files in order. Every queue is
//! bounded, so memory depends on the queue sizes and the chunk size, never on the size of the
//! tree or of a file. A chunk is handed to the compressors only once per run: the first thread
//! to claim its id does it.
//!
//! Shutdown: when the walker is done it drops its senders; readers, then compressors, then the
//! packer drain and exit; the packer's [`BlobWriter::finish`](crate::repo::writer::BlobWriter::finish) makes everything durable and
//! indexed. If the packer fails, its queue closes, every sender upstream gets an error, and the
//! packer's error is the one reported.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use crate::chunking::Chunker;
use crate::crypto::Scheme;
use crate::dirfd::DirFd;
use crate::error::{Error, Result};
use crate::format::id::BlobId;
use crate::format::pack::BlobKind;
use crate::format::tree::Piece;
use crate::repo::Repository;
use crate::repo::blob::{self, PreparedBlob};
use crate::repo::writer::WriteStats;

use super::content::{self, ContentError, ContentStats};
use super::sink::{BlobSink, RawBuffers};
use crate::progress::Progress;

/// Files queued for the readers beyond those being read.
const JOB_QUEUE: usize = 256;
/// Raw chunks queued per compressor (each at most the chunker's maximum, 4 MiB by default).
const COMPRESS_QUEUE_PER_THREAD: usize = 2;
/// Compressed blobs queued for the packer.
const PACK_QUEUE: usize = 8;

/// Files of at least this many bytes are large: read with one of the buffers lent for large
/// files (see [`Threads::large_files`]).
const LARGE_FILE: u64 = 1 << 20;

/// How many threads of each kind.
#[derive(Clone, Copy, Debug)]
pub struct Threads {
    /// Threads reading and chunking files.
    pub readers: usize,
    /// Threads compressing new chunks.
    pub compressors: usize,
}

impl Threads {
    /// How many large files are read at once: half the readers, at least two. A file is
    /// chunked in a buffer of twice the largest chunk (8 MiB by default); small files fill
    /// only the start of a reader's own buffer, and large ones are read in buffers lent for
    /// them, so more readers cost memory only for the large files read at once.
    #[must_use]
    pub fn large_files(&self) -> usize {
        (self.readers / 2).max(2)
    }
}

impl Default for Threads {
    /// Four readers (a cold tree of small files waits on the disk for each: more requests in
    /// flight keep it busy), and one compressor per core.
    fn default() -> Self {
        let cores = thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Threads {
            readers: 4,
            compressors: cores,
        }
    }
}

/// The buffers lent to the readers of large files.
struct LargeBuffers {
    free: Mutex<Vec<Vec<u8>>>,
    returned: Condvar,
}

impl LargeBuffers {
    fn new(n: usize) -> Self {
        LargeBuffers {
            free: Mutex::new((0..n).map(|_| Vec::new()).collect()),
            returned: Condvar::new(),
        }
    }

    /// A buffer, waiting for one to be returned if all are lent.
    fn take(&self) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(b) = free.pop() {
                return b;
            }
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn give_back(&self, buf: Vec<u8>) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buf);
        self.returned.notify_one();
    }
}

/// Where a file's chunk list goes once it is known: entry `entry` of pending directory `dir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    pub dir: usize,
    pub entry: usize,
}

/// A file for a reader: entry `name` of the open directory `dir`.
#[derive(Debug)]
pub(super) struct FileJob {
    pub dir: Arc<DirFd>,
    pub name: OsString,
    /// For messages only.
    pub path: PathBuf,
    pub slot: Slot,
    /// The size `stat` reported when the walker listed it.
    pub size: u64,
    /// Whether the parent snapshot had a file of this name (changed vs new).
    pub was_file: bool,
    /// (dev, ino) when other names may share this content.
    pub hardlink: Option<(u64, u64)>,
    /// What the entry is: a regular file, or a block device whose content is read.
    pub source: SourceKind,
}

/// How a reader reads a job's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SourceKind {
    /// A regular file, by its data extents.
    File,
    /// A block device, whole, its zero runs as holes; `follow`: the name may be a symlink to
    /// it (a source named on the command line).
    Device { follow: bool },
}

/// A reader's answer.
#[derive(Debug)]
pub(super) struct FileDone {
    pub job: FileJob,
    pub outcome: std::result::Result<(Vec<Piece>, ContentStats), ContentError>,
}

/// What the walker holds while the pipeline runs.
pub(super) struct Lanes<'a> {
    /// For tree blobs and stream content.
    pub sink: BlobSink<'a>,
    /// Files to read.
    pub jobs: SyncSender<FileJob>,
    /// Files read.
    pub done: Receiver<FileDone>,
    /// Reused by the walker's own chunking (streams).
    pub chunker: Chunker,
}

/// Runs `body` (the walker) with the pipeline's threads behind it, then shuts the pipeline down
/// and makes everything durable. Returns `body`'s value and what was written.
///
/// # Errors
/// The packer's error if it failed (the root cause), else `body`'s.
pub(super) fn run<T>(
    repo: &Repository,
    threads: Threads,
    progress: &Progress,
    body: impl FnOnce(Lanes<'_>) -> Result<T>,
) -> Result<(T, WriteStats)> {
    let claimed = Mutex::new(HashSet::new());
    let stop = AtomicBool::new(false);
    let large = LargeBuffers::new(threads.large_files());
    let raw_buffers = RawBuffers::new();
    let level = repo.config().compression_level;
    let params = repo.chunker_params()?;
    let scheme = repo.scheme()?;
    thread::scope(|s| {
        let (pack_tx, pack_rx) = mpsc::sync_channel::<(BlobKind, Sealed)>(PACK_QUEUE);
        let packer = thread::Builder::new()
            .name("packer".into())
            .spawn_scoped(s, move || pack_loop(repo, &pack_rx))
            .map_err(|e| Error::Thread(e.to_string()))?;

        let compressors = threads.compressors.max(1);
        let (raw_tx, raw_rx) = mpsc::sync_channel(compressors * COMPRESS_QUEUE_PER_THREAD);
        let raw_rx = Arc::new(Mutex::new(raw_rx));
        for i in 0..compressors {
            let (rx, tx) = (Arc::clone(&raw_rx), pack_tx.clone());
            let buffers = &raw_buffers;
            spawn(s, format!("compress-{i}"), move || {
                compress_loop(&rx, &tx, buffers, level, scheme);
            })?;
        }
        drop((raw_rx, pack_tx));

        let sink = BlobSink::new(repo, scheme, &claimed, &raw_buffers, raw_tx);
        let (job_tx, job_rx) = mpsc::sync_channel::<FileJob>(JOB_QUEUE);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<FileDone>();
        let large = &large;
        for i in 0..threads.readers.max(1) {
            let (rx, tx, sink) = (Arc::clone(&job_rx), done_tx.clone(), sink.clone());
            let stop = &stop;
            spawn(s, format!("read-{i}"), move || {
                let mut chunker = Chunker::new(&params);
                while let Some(mut job) = next_job(&rx) {
                    if stop.load(Ordering::Relaxed) {
                        continue; // drain without reading: the backup failed
                    }
                    progress.reading(&job.path);
                    // A device's size is known only once it is open: large.
                    let own = (job.size >= LARGE_FILE || job.source != SourceKind::File)
                        .then(|| chunker.swap_buffer(large.take()));
                    let outcome = read_file(&mut job, &mut chunker, &sink, progress);
                    if let Some(own) = own {
                        large.give_back(chunker.swap_buffer(own));
                    }
                    if tx.send(FileDone { job, outcome }).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            })?;
        }
        drop((job_rx, done_tx));

        let out = body(Lanes {
            sink,
            jobs: job_tx,
            done: done_rx,
            chunker: Chunker::new(&params),
        });
        if out.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // `body` consumed the senders: readers and compressors drain, then the packer finishes.
        let packed = match packer.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match (out, packed) {
            (_, Err(e)) | (Err(e), Ok(_)) => Err(e),
            (Ok(v), Ok(stats)) => Ok((v, stats)),
        }
    })
}

fn spawn<'s, 'e>(
    s: &'s thread::Scope<'s, 'e>,
    name: String,
    f: impl FnOnce() + Send + 's,
) -> Result<()> {
    thread::Builder::new()
        .name(name)
        .spawn_scoped(s, f)
        .map(drop)
        .map_err(|e| Error::Thread(e.to_string()))
}

fn next_job(rx: &Mutex<Receiver<FileJob>>) -> Option<FileJob> {
    rx.lock().ok()?.recv().ok()
}

/// A compressed (and, in an encrypted repository, sealed) blob, or why sealing failed.
type Sealed = std::result::Result<PreparedBlob, crate::format::FormatError>;

fn compress_loop(
    rx: &Mutex<Receiver<(BlobKind, BlobId, Vec<u8>)>>,
    tx: &SyncSender<(BlobKind, Sealed)>,
    buffers: &RawBuffers,
    level: i32,
    scheme: &Scheme,
) {
    loop {
        let Some((kind, id, raw)) = rx.lock().ok().and_then(|r| r.recv().ok()) else {
            return;
        };
        let sealed = blob::compress(scheme, kind, id, &raw, level);
        buffers.give_back(raw);
        if tx.send((kind, sealed)).is_err() {
            return; // the packer failed and reports why
        }
    }
}

fn pack_loop(repo: &Repository, rx: &Receiver<(BlobKind, Sealed)>) -> Result<WriteStats> {
    let mut writer = repo.writer()?;
    for (kind, blob) in rx {
        let blob = blob.map_err(|e| Error::corrupt("<new pack>", e.to_string()))?;
        writer.add_prepared(kind, blob)?;
    }
    writer.finish()
}

/// Reads one file (or device) into chunks. A device's size is known only once it is open:
/// it is set in `job` here, for the walker's check that everything was read.
fn read_file(
    job: &mut FileJob,
    chunker: &mut Chunker,
    sink: &BlobSink<'_>,
    progress: &Progress,
) -> std::result::Result<(Vec<Piece>, ContentStats), ContentError> {
    let mut stats = ContentStats::default();
    let pieces = match job.source {
        SourceKind::File => {
            let mut file = job.dir.open_file(&job.name)?;
            content::store_file(&mut file, chunker, sink, &mut stats, progress)?
        }
        SourceKind::Device { follow } => {
            let mut file = job.dir.open_device(&job.name, follow)?;
            job.size = file.seek(SeekFrom::End(0))?;
            // A mounted file system writes file data past the device's page cache: pages
            // cached by an earlier read may be stale. Drop them (a frozen file system has
            // flushed everything to the device), and drop what this read cached afterwards.
            crate::sys::drop_cached(&file);
            let pieces =
                content::store_device(&mut file, job.size, chunker, sink, &mut stats, progress);
            crate::sys::drop_cached(&file);
            pieces?
        }
    };
    Ok((pieces, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_waits_for_a_buffer_given_back() {
        let large = LargeBuffers::new(
            Threads {
                readers: 3,
                compressors: 1,
            }
            .large_files(),
        );
        let (a, b) = (large.take(), large.take());
        thread::scope(|s| {
            let waiting = s.spawn(|| large.take());
            thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiting.is_finished(), "a third buffer was lent out of two");
            large.give_back(a);
            drop(waiting.join().unwrap());
        });
        large.give_back(b);
        assert_eq!(large.free.lock().unwrap().len(), 1);
    }

    #[test]
    fn half_the_readers_read_large_files_at_once_and_never_fewer_than_two() {
        let large = |readers| {
            Threads {
                readers,
                compressors: 2,
            }
            .large_files()
        };
        assert_eq!((large(1), large(4), large(5), large(16)), (2, 2, 2, 8));
    }
}
