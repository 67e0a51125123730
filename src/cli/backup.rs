//! `chronofs backup`: back up paths, standard input, or a command's output.

use std::io::{self, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use chronofs::error::exit;
use chronofs::ingest::consistent::{ConsistentOptions, Method};
use chronofs::ingest::{self, BackupOptions, BackupOutcome, ParentChoice};
use chronofs::repo::Repository;
use chronofs::repo::lock::LockKind;
use chronofs::snapshot;

use super::{Context, hooks, progress, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files and directories to back up (with --stdin-from-command: the command and its arguments).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Exclude entries matching GLOB (a pattern with `/` matches the absolute path, one without
    /// matches names at any depth). Repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Read exclude patterns from FILE, one per line. Repeatable.
    #[arg(long, value_name = "FILE")]
    exclude_file: Vec<PathBuf>,
    /// Do not cross file system boundaries (mount points are kept as empty directories).
    #[arg(short = 'x', long)]
    one_file_system: bool,
    /// Back up block devices met inside the given directories as their content (a file of the
    /// device's size) instead of as device nodes. Block devices named as PATH, or through a
    /// symlink such as /dev/vg/root, are always backed up as their content.
    #[arg(long)]
    read_devices: bool,
    /// Make the sources hold still while they are read: `btrfs-snapshot` reads a read-only
    /// snapshot of each source's btrfs subvolume (deleted after); `freeze` freezes the file
    /// system mounted from each block device source while the device is read. The method is
    /// recorded in the snapshot.
    #[arg(long, value_name = "METHOD", conflicts_with_all = ["stdin", "stdin_from_command"])]
    consistent: Option<ConsistentMethod>,
    /// Longest time --consistent freeze keeps a file system frozen (writers wait meanwhile);
    /// past it the file system is thawed and no snapshot is written.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 120,
        requires = "consistent"
    )]
    freeze_timeout: u64,
    /// Add a tag to the snapshot. Repeatable.
    #[arg(long, value_name = "TAG")]
    tag: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Compare against this snapshot instead of the newest one of the same host and paths.
    #[arg(long, value_name = "SNAP")]
    parent: Option<String>,
    /// Re-read every file, even those unchanged since the parent snapshot.
    #[arg(long)]
    force: bool,
    /// Back up standard input as one file (needs --stdin-name).
    #[arg(long, conflicts_with = "stdin_from_command")]
    stdin: bool,
    /// Run PATH... as a command and back up its output; no snapshot is written if it fails.
    #[arg(long)]
    stdin_from_command: bool,
    /// File name for --stdin / --stdin-from-command content.
    #[arg(long, value_name = "NAME", default_value = "stdin")]
    stdin_name: String,
    /// Print progress (a status object per second) and the summary as JSON lines on stdout,
    /// and warnings as JSON objects on stderr.
    #[arg(long)]
    json: bool,
    /// Files read at once (more helps on disks that serve many requests in parallel; half of
    /// them, at least two, may be files of 1 MiB or more, each read in a buffer of twice the
    /// largest chunk: 8 MiB by default).
    #[arg(long, value_name = "N", default_value_t = chronofs::ingest::pipeline::Threads::default().readers)]
    read_concurrency: usize,
    /// Do not show the progress line (it is shown only when stderr is a terminal).
    #[arg(long)]
    no_progress: bool,
    /// Record this time as the snapshot's time instead of now (importing old backups): RFC 3339
    /// (2026-03-01T10:00:00Z), a dated name (2026-03-01T100000Z), or a local time
    /// (2026-03-01 10:00:00).
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// Run this shell command before the backup (freeze a file system, take an LVM or btrfs
    /// snapshot); if it fails, nothing is backed up.
    #[arg(long, value_name = "CMD")]
    pre_exec: Option<String>,
    /// Run this shell command after the backup, whether it worked or not; it finds the
    /// outcome in CHRONOFS_BACKUP_STATUS (success, partial or failed),
    /// CHRONOFS_BACKUP_EXIT_CODE, CHRONOFS_SNAPSHOT_ID and CHRONOFS_BACKUP_ERROR.
    #[arg(long, value_name = "CMD")]
    post_exec: Option<String>,
}

/// `--consistent` methods.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ConsistentMethod {
    /// A read-only btrfs snapshot of each source's subvolume, read in its place.
    BtrfsSnapshot,
    /// The file system on each block device source frozen while the device is read.
    Freeze,
}

/// Reads a child's stdout and fails at EOF if the child exited unsuccessfully, so a failed
/// producer never yields a snapshot.
struct ChildReader {
    child: Child,
    stdout: ChildStdout,
}

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let status = self.child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!("the command failed ({status})")));
            }
        }
        Ok(n)
    }
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let common = vec![
        ("CHRONOFS_REPO", ctx.repo_path()?.to_string()),
        (
            "CHRONOFS_BACKUP_PATHS",
            a.paths
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ];
    let result = match &a.pre_exec {
        Some(cmd) => hooks::run("pre-exec", cmd, &common).and_then(|()| backup(ctx, a)),
        None => backup(ctx, a),
    };
    let Some(post) = &a.post_exec else {
        return result.map(|(code, _)| code);
    };
    let outcome = match &result {
        Ok((code, id)) => hooks::Outcome {
            status: if *code == exit::PARTIAL {
                "partial"
            } else {
                "success"
            },
            exit_code: *code,
            snapshot: Some(id.to_hex()),
            error: None,
        },
        Err(e) => hooks::Outcome {
            status: "failed",
            exit_code: e
                .chain()
                .find_map(|c| c.downcast_ref::<chronofs::Error>())
                .map_or(exit::FATAL, chronofs::Error::exit_code),
            snapshot: None,
            error: Some(format!("{e:#}")),
        },
    };
    let posted = hooks::run("post-exec", post, &hooks::post_env(&common, &outcome));
    match (result, posted) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => {
            Err(e.context("the snapshot was written, but the post-exec hook failed"))
        }
        (Ok((code, _)), Ok(())) => Ok(code),
    }
}

/// The backup itself: its exit code and the snapshot written.
fn backup(ctx: &Context, a: &Args) -> Result<(u8, chronofs::format::id::SnapshotId)> {
    // Chunk buffers pass between threads; without this, per-thread arenas keep ~30 MiB more.
    chronofs::sys::limit_malloc_retention(256 << 10);
    let time_ns = a.time.as_deref().map(snapshot::parse_time).transpose()?;
    if a.consistent.is_some() {
        // Before any thread starts (the lock's refresher is the first).
        release_on_signal()?;
    }
    let (repo, lock) = ctx.open_locked(LockKind::Shared, "backup")?;
    let lock = Arc::new(lock);
    let parent = match &a.parent {
        Some(spec) => ParentChoice::Id(super::resolve_snapshot(&repo, spec)?.id),
        None => ParentChoice::Auto,
    };
    let consistent = a
        .consistent
        .map(|m| consistent_options(ctx, m, a.freeze_timeout));
    let mut options = BackupOptions {
        consistent,
        excludes: a.exclude.clone(),
        exclude_files: a.exclude_file.clone(),
        one_file_system: a.one_file_system,
        read_devices: a.read_devices,
        tags: a.tag.clone(),
        host: a.host.clone(),
        parent,
        force: a.force,
        time_ns,
        threads: chronofs::ingest::pipeline::Threads {
            readers: a.read_concurrency.max(1),
            ..chronofs::ingest::pipeline::Threads::default()
        },
        lock: Some(Arc::clone(&lock)),
        ..BackupOptions::default()
    };
    let mode = progress::Mode::choose(a.json, ctx.quiet || a.no_progress);
    // A first backup's totals come from a scan beside it, for the percentage and the ETA.
    options.scan_ahead = mode != progress::Mode::Off;
    let outcome = progress::showing(mode, progress::Task::Backup, &options.progress, || {
        run_backup(&repo, ctx, a, &options, mode)
    })?;
    report(ctx, a, &outcome, repo.storage().traffic())?;
    let code = if outcome.snapshot.summary.errors > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    };
    Ok((code, outcome.id))
}

fn run_backup(
    repo: &Repository,
    ctx: &Context,
    a: &Args,
    options: &BackupOptions,
    mode: progress::Mode,
) -> Result<BackupOutcome> {
    let outcome = if a.stdin {
        if !a.paths.is_empty() {
            bail!(chronofs::Error::InvalidInput(
                "--stdin takes no paths".into()
            ));
        }
        ingest::backup_stream(repo, &a.stdin_name, &mut io::stdin().lock(), options)?
    } else if a.stdin_from_command {
        let Some((prog, args)) = a.paths.split_first() else {
            bail!(chronofs::Error::InvalidInput(
                "--stdin-from-command needs a command".into()
            ));
        };
        let mut child = Command::new(prog)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", prog.display()))?;
        let stdout = child.stdout.take().context("no stdout from the command")?;
        let mut reader = ChildReader { child, stdout };
        ingest::backup_stream(repo, &a.stdin_name, &mut reader, options)?
    } else {
        if a.paths.is_empty() {
            bail!(chronofs::Error::InvalidInput(
                "nothing to back up: give one or more paths, or --stdin".into()
            ));
        }
        let reporter = ui::StderrReporter {
            quiet: ctx.quiet,
            clear_line: mode == progress::Mode::Terminal,
            json: mode == progress::Mode::Json,
        };
        ingest::backup(repo, &a.paths, options, &reporter)?
    };
    Ok(outcome)
}

fn report(
    ctx: &Context,
    a: &Args,
    o: &BackupOutcome,
    traffic: Option<chronofs::storage::Traffic>,
) -> Result<()> {
    let s = &o.snapshot.summary;
    let name = snapshot::dated_name(o.snapshot.time_ns);
    if a.json {
        let v = serde_json::json!({
            "message_type": "summary",
            "snapshot_id": o.id,
            "name": name,
            "parent": o.snapshot.parent,
            "summary": s,
            "consistency": o.snapshot.consistency,
            "peak_rss_bytes": chronofs::sys::peak_rss_bytes(),
            "storage_traffic": traffic,
        });
        outln!("{v}")?;
    } else if !ctx.quiet {
        outln!("snapshot {} saved ({name})", o.id.short())?;
        outln!(
            "files: {} new, {} changed, {} unchanged; {} dirs, {} other",
            s.files_new,
            s.files_changed,
            s.files_unchanged,
            s.dirs,
            s.others
        )?;
        let rate = s.bytes_read as f64 / (s.duration_ns.max(1) as f64 / 1e9);
        outln!(
            "read {} of {} at {}/s, added {} ({} uncompressed) in {}",
            ui::size(s.bytes_read),
            ui::size(s.total_bytes),
            ui::size(rate as u64),
            ui::size(s.bytes_added),
            ui::size(s.bytes_new_raw),
            ui::secs(s.duration_ns)
        )?;
        outln!(
            "compared with {}; peak memory {}",
            o.snapshot.parent.map_or_else(
                || "no parent snapshot (every file read)".to_string(),
                |p| format!("parent snapshot {}", p.short())
            ),
            ui::size(chronofs::sys::peak_rss_bytes())
        )?;
        if let Some(t) = traffic {
            outln!("object storage: {}", t.summary())?;
        }
        if let Some(c) = &o.snapshot.consistency {
            outln!(
                "consistent: {}, writes held {}: {}",
                c.method,
                ui::secs(c.held_ns),
                c.subjects.join(", ")
            )?;
        }
    }
    if s.errors > 0 {
        eprintln!(
            "chronofs: warning: {} source entries could not be read; the snapshot lacks them (exit code 3)",
            s.errors
        );
    }
    Ok(())
}

/// What `--consistent` needs: the method, the timeout, and where this backup writes (the
/// repository and the cache, which must not be frozen).
fn consistent_options(ctx: &Context, m: ConsistentMethod, timeout: u64) -> ConsistentOptions {
    let mut writes_to: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(loc) = ctx.repo_path()
        && let Some(p) = loc.local()
    {
        writes_to.push(p.to_path_buf());
    }
    if let Some(Some(cache)) = super::CACHE_ROOT.get() {
        writes_to.push(cache.clone());
    }
    ConsistentOptions {
        method: match m {
            ConsistentMethod::BtrfsSnapshot => Method::BtrfsSnapshot,
            ConsistentMethod::Freeze => Method::Freeze,
        },
        timeout: std::time::Duration::from_secs(timeout),
        writes_to,
    }
}

/// SIGINT, SIGTERM and SIGHUP give back what `--consistent` took (thaw, delete the btrfs
/// snapshot) before the process ends: they are blocked in every thread (this runs before the
/// pipeline starts any) and one thread waits for them.
fn release_on_signal() -> Result<()> {
    const SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    chronofs::sys::block_signals(&SIGNALS).context("setting up signal handling")?;
    std::thread::Builder::new()
        .name("chronofs-signals".into())
        .spawn(|| {
            if let Ok(sig) = chronofs::sys::wait_for_signal(&SIGNALS) {
                for failure in chronofs::ingest::consistent::release_all() {
                    eprintln!("chronofs: error: {failure}");
                }
                eprintln!(
                    "chronofs: stopped by signal {sig}: what --consistent held is released; no snapshot written"
                );
                std::process::exit(128 + sig);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}
