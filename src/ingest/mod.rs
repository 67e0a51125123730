//! The writer pipeline: a backup run from source paths (or a stream) to a committed snapshot.
//!
//! The work is spread over threads by [`pipeline`]; the walk itself is in [`walk`].
//! Order of durability: all packs, then the index file naming them (both inside
//! [`BlobWriter::finish`](crate::repo::writer::BlobWriter::finish), which the pipeline's
//! packer calls when every blob is in), then the snapshot file. A crash before the snapshot
//! file exists leaves only unreferenced packs behind.

pub mod consistent;
pub mod content;
pub mod exclude;
mod files;
mod links;
pub mod meta;
mod pending;
pub mod pipeline;
mod scan;
mod sink;
pub mod walk;
pub mod zeros;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::format::bytes::ByteString;
use crate::format::id::SnapshotId;
use crate::format::snapshot::{Consistency, Contents, Snapshot, Summary};
use crate::repo::writer::WriteStats;
use crate::repo::{Repository, now_ns};
use crate::snapshot::filter::Filter;

use self::exclude::Excludes;
use self::pipeline::Threads;
use self::walk::{SourceSpec, Walker, absolute_source};
use crate::progress::Progress;

/// Receives what a backup has to tell the user.
pub trait Reporter: Sync {
    /// A source entry could not be read completely; it was skipped or is incomplete.
    fn warning(&self, path: &Path, message: &str);
    /// Something worth saying that is not a problem.
    fn note(&self, _path: &Path, _message: &str) {}
}

/// A reporter that discards everything (tests, library callers).
pub struct Silent;
impl Reporter for Silent {
    fn warning(&self, _path: &Path, _message: &str) {}
}

/// Which snapshot to compare against for change detection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot with the same host and source paths.
    #[default]
    Auto,
    /// No parent: every file is read.
    None,
    /// This snapshot.
    Id(SnapshotId),
}

/// What to back up and how.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Glob patterns to exclude.
    pub excludes: Vec<String>,
    /// Files with more exclude patterns.
    pub exclude_files: Vec<PathBuf>,
    /// Do not descend into other file systems.
    pub one_file_system: bool,
    /// Back up block devices met in the walk as their content, not as device nodes (those
    /// named as sources always are).
    pub read_devices: bool,
    /// Make the sources hold still while they are read (`--consistent`).
    pub consistent: Option<consistent::ConsistentOptions>,
    /// Tags to record.
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Parent selection.
    pub parent: ParentChoice,
    /// Re-read every file even if unchanged.
    pub force: bool,
    /// Snapshot time in ns since the epoch (default: now).
    pub time_ns: Option<i64>,
    /// Threads of each kind (default: two readers, a compressor per core).
    pub threads: Threads,
    /// Live counters, for a progress display on another thread.
    pub progress: Arc<Progress>,
    /// Without a parent snapshot to tell the totals, count the sources' files and bytes on
    /// a thread beside the backup (only stats; for a display's percentage and ETA).
    pub scan_ahead: bool,
    /// The writer's lock: the snapshot is committed under it, so that a prune running beside
    /// can tell a late commit of a revoked writer ([`crate::repo::commit`]). Without one
    /// (tests, a repository nobody prunes concurrently) the snapshot is simply written.
    pub lock: Option<Arc<crate::repo::lock::RepoLock>>,
}

/// The result of a backup run.
#[derive(Debug)]
pub struct BackupOutcome {
    /// The new snapshot's id.
    pub id: SnapshotId,
    /// The snapshot as written.
    pub snapshot: Snapshot,
}

/// Backs up `paths` into `repo` and commits a snapshot. The caller holds a shared
/// [`RepoLock`](crate::repo::lock::RepoLock) and loaded the index under it (as the CLI does).
///
/// # Errors
/// Fatal errors only: a missing source path, a bad pattern, a repository write failure.
/// Unreadable source entries are reported through `reporter` and counted in the summary.
pub fn backup(
    repo: &Repository,
    paths: &[PathBuf],
    options: &BackupOptions,
    reporter: &dyn Reporter,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    if paths.is_empty() {
        return Err(Error::InvalidInput("no source paths given".into()));
    }
    let mut abs: Vec<PathBuf> = paths
        .iter()
        .map(|p| absolute_source(p))
        .collect::<Result<_>>()?;
    abs.sort();
    abs.dedup();
    let excludes = Excludes::new(&options.excludes, &options.exclude_files)?;
    let taken = match &options.consistent {
        Some(c) => Some(consistent::take(&abs, c, reporter)?),
        None => None,
    };
    let mut spec = SourceSpec::default();
    abs.iter().for_each(|p| spec.add(p));
    let source_paths: Vec<ByteString> = abs.iter().map(|p| ByteString::from(p.as_path())).collect();
    let host = options.host.clone().unwrap_or_else(crate::sys::hostname);
    let parent = select_parent(repo, &options.parent, &host, &source_paths, false)?;
    let parent_root = match &parent {
        Some((_, s)) => {
            let p = &s.summary;
            let files = p.files_new + p.files_changed + p.files_unchanged;
            options.progress.expect(files, p.total_bytes);
            match repo.read_tree(&s.root) {
                Ok(t) => Some(t),
                // A backup-only host whose cache lost the tree reads every file again.
                Err(Error::BackupOnly(_)) => None,
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    if spec.whole {
        // `/` itself is a source: every entry of `/` (or of its snapshot), whole.
        let root = taken
            .as_ref()
            .and_then(|t| t.read_from(Path::new("/")))
            .unwrap_or_else(|| PathBuf::from("/"));
        let rd = std::fs::read_dir(&root).map_err(|e| Error::path_io("listing", &root, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::path_io("listing", &root, e))?;
            if taken
                .as_ref()
                .is_some_and(|t| t.skip.contains(&Path::new("/").join(e.file_name())))
            {
                continue;
            }
            spec.children.insert(
                e.file_name(),
                SourceSpec {
                    whole: true,
                    ..SourceSpec::default()
                },
            );
        }
    }
    if let Some(t) = &taken {
        read_sources_from(&mut spec, Path::new("/"), t);
    }
    let progress = &*options.progress;
    let skip = taken.as_ref().map(|t| t.skip.clone()).unwrap_or_default();
    let backup_done = std::sync::atomic::AtomicBool::new(false);
    let run = || {
        pipeline::run(repo, options.threads, progress, |lanes| {
            let mut taken = taken;
            let mut walker = Walker::new(repo, lanes, &excludes, reporter, progress);
            walker.one_file_system = options.one_file_system;
            walker.read_devices = options.read_devices;
            walker.skip = skip;
            walker.force = options.force;
            if let Some(t) = taken.as_mut().filter(|t| t.reads_btrfs_snapshots()) {
                walker.live_mounts = t.live_mounts.clone();
                walker.snapshot_nested = Some(Box::new(|live| t.snapshot_nested(live, reporter)));
            }
            let walked = walker.walk_root(&spec, parent_root.as_ref());
            let summary = std::mem::take(&mut walker.summary);
            let contents = std::mem::take(&mut walker.contents);
            // It borrows `taken`, which gives back what was taken, on success or failure.
            drop(walker);
            let root = walked?;
            // Every source is read: let go of it before the last pack is written.
            let consistency = taken.map(consistent::Taken::finish).transpose()?;
            Ok((root, summary, contents, consistency))
        })
    };
    let ran = if options.scan_ahead && parent.is_none() {
        std::thread::scope(|s| {
            s.spawn(|| {
                let sources = if spec.whole {
                    vec![PathBuf::from("/")]
                } else {
                    abs.clone()
                };
                scan::scan(
                    &sources,
                    &excludes,
                    options.one_file_system,
                    progress,
                    &backup_done,
                );
            });
            let ran = run();
            backup_done.store(true, std::sync::atomic::Ordering::Relaxed);
            ran
        })
    } else {
        run()
    };
    let ((root, summary, contents, consistency), stats) =
        ran.map_err(|e| revoked_instead(options, e))?;
    commit(
        repo,
        root,
        summary,
        contents,
        stats,
        source_paths,
        host,
        options,
        parent.map(|p| p.0),
        false,
        consistency,
        started,
    )
}

/// Points every source taken whole at the place `taken` reads it from, if any.
fn read_sources_from(spec: &mut SourceSpec, path: &Path, taken: &consistent::Taken) {
    for (name, child) in &mut spec.children {
        let p = path.join(name);
        if child.whole {
            child.read_from = taken.read_from(&p);
        } else {
            read_sources_from(child, &p, taken);
        }
    }
}

/// Backs up a stream (e.g. a database dump on stdin) as one file named `name`.
///
/// # Errors
/// Repository failures, or [`Error::SourceFailed`] if reading the stream fails; no snapshot is
/// written then.
pub fn backup_stream(
    repo: &Repository,
    name: &str,
    source: &mut dyn Read,
    options: &BackupOptions,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    crate::format::tree::check_name(name.as_bytes()).map_err(|_| {
        Error::InvalidInput(format!("--stdin-name {name:?} must be a plain file name"))
    })?;
    let excludes = Excludes::new(&[], &[])?;
    let progress = &*options.progress;
    let ((root, summary, contents), stats) =
        pipeline::run(repo, options.threads, progress, |lanes| {
            let mut walker = Walker::new(repo, lanes, &excludes, &Silent, progress);
            let (root, _) = walker.stream_tree(name, source)?;
            Ok((root, walker.summary, walker.contents))
        })
        .map_err(|e| revoked_instead(options, e))?;
    let host = options.host.clone().unwrap_or_else(crate::sys::hostname);
    commit(
        repo,
        root,
        summary,
        contents,
        stats,
        vec![ByteString::from(name)],
        host,
        options,
        None,
        true,
        None,
        started,
    )
}

/// A write that failed because a prune revoked this writer (and removed its temporary files)
/// reports the revocation, the cause, rather than the missing file.
fn revoked_instead(options: &BackupOptions, e: Error) -> Error {
    match &options.lock {
        Some(lock) if !matches!(e, Error::SourceFailed(_)) => lock.cause_of(e),
        _ => e,
    }
}

/// Writes the snapshot file, once everything it references is durable and indexed.
#[allow(clippy::too_many_arguments)]
fn commit(
    repo: &Repository,
    root: crate::format::id::TreeId,
    mut summary: Summary,
    contents: Contents,
    stats: WriteStats,
    paths: Vec<ByteString>,
    hostname: String,
    options: &BackupOptions,
    parent: Option<SnapshotId>,
    stdin: bool,
    consistency: Option<Consistency>,
    started: Instant,
) -> Result<BackupOutcome> {
    summary.bytes_added = stats.stored_bytes;
    summary.bytes_new_raw = stats.raw_bytes;
    summary.duration_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let uid = crate::sys::euid();
    let snapshot = Snapshot {
        time_ns: options.time_ns.unwrap_or_else(now_ns),
        hostname,
        username: crate::sys::user_name(uid).unwrap_or_else(|| uid.to_string()),
        paths,
        tags: options.tags.clone(),
        root,
        parent,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        stdin,
        summary,
        contents: Some(contents),
        commit: None,
        consistency,
    };
    let mut snapshot = snapshot;
    let id = match &options.lock {
        Some(lock) => crate::repo::commit::commit_snapshot(repo, lock, &mut snapshot)?,
        None => repo.save_snapshot(&snapshot)?,
    };
    Ok(BackupOutcome { id, snapshot })
}

/// Finds the parent snapshot per `choice`.
fn select_parent(
    repo: &Repository,
    choice: &ParentChoice,
    host: &str,
    paths: &[ByteString],
    stdin: bool,
) -> Result<Option<(SnapshotId, Snapshot)>> {
    match choice {
        ParentChoice::None => Ok(None),
        ParentChoice::Id(id) => Ok(Some((*id, repo.load_snapshot(id)?))),
        ParentChoice::Auto => {
            let same = Filter {
                hosts: vec![host.to_owned()],
                paths: paths.to_vec(),
                tags: Vec::new(),
            };
            repo.newest_where(|s| same.matches(s) && s.stdin == stdin, host, paths, stdin)
        }
    }
}
