//! Command-line interface: clap definitions and one module per command. `anyhow` is used here
//! (and only here) to add context to library errors.

/// `println!` that returns the write's error instead of panicking, so that output into a
/// closed pipe (`chronofs cat snapshot latest | head`) ends the command quietly (see main).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

mod append_only;
mod backup;
mod cat;
mod check;
mod copy;
mod diff;
mod find;
mod forget;
mod generate;
mod hooks;
mod init;
mod job;
mod key;
mod ls;
mod mount;
mod password;
mod progress;
mod prune;
pub mod quote;
mod restore;
mod select;
mod snapshots;
mod status;
mod ui;
mod umount;
mod unlock;
mod verify;
mod versions;

use anyhow::Result;
use clap::{Parser, Subcommand};

use chronofs::repo::Repository;
use chronofs::repo::lock::{LockKind, RepoLock};
use chronofs::storage::location::Location;

/// chronofs: deduplicated, crash-safe backups you can mount and browse by date.
#[derive(Parser, Debug)]
#[command(
    name = "chronofs",
    version,
    about,
    long_about = "chronofs keeps backups in a repository of deduplicated, compressed chunks. Every \
                  snapshot restores on its own and costs only what changed; `chronofs mount` shows \
                  every snapshot as a dated directory.",
    after_long_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an
    /// S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_DEFAULT_REGION or ~/.aws/credentials).
    #[arg(
        short = 'r',
        long = "repo",
        env = "CHRONOFS_REPO",
        global = true,
        value_name = "REPO"
    )]
    pub repo: Option<Location>,

    /// Print only errors and warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// If the repository is locked by another process, keep trying this long (e.g. `30s`,
    /// `10m`, `1h`) before giving up.
    #[arg(long, global = true, value_name = "DURATION", value_parser = ui::parse_wait, default_value = "0s")]
    pub retry_lock: std::time::Duration,

    /// Keep this host's local index of every repository here, and the index and snapshot
    /// files of object-storage repositories (default ~/.cache/chronofs, or
    /// $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read).
    #[arg(long, global = true, env = "CHRONOFS_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// Do not cache anything on local disk: every index file is loaded into memory (48 bytes
    /// a blob) and those of an object-storage repository downloaded again.
    #[arg(long, global = true)]
    pub no_cache: bool,

    #[command(flatten)]
    pub password: password::Args,

    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, for `--help` and the man page (the README has the same table).
const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   fatal error (I/O failure, missing source path, failed stdin producer, restore problems)
  2   command-line usage error, or a bad pattern or parameter
  3   backup finished, but some source files could not be read
  10  no repository at the given path
  11  repository data is damaged
  12  the repository is locked by another process
  13  the named snapshot or path does not exist
  14  refused to protect data (init on a non-empty directory, restore onto existing files \
      without --overwrite, forget or prune on an append-only repository)
  15  disk full
  16  mounting or unmounting failed
  17  no key opens the repository (wrong passphrase, none given, missing key files)
  18  the operation needs a full key (the repository was opened with a backup-only key)
  19  the repository's object storage could not be reached or refused the request
  20  a prune revoked this backup or copy (it was stopped longer than a lock's grace period); \
      nothing was committed
`chronofs status` answers as monitoring tools expect instead: 0 healthy, 1 late (or the last
prune or check failed), 2 unreadable.

Environment: CHRONOFS_REPO names the repository when --repo is not given; CHRONOFS_PASSWORD
holds the passphrase of an encrypted repository (or use --password-file, --password-command,
or answer the prompt). For an s3: repository, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_DEFAULT_REGION (or the profile AWS_PROFILE of ~/.aws/credentials) give the credentials;
CHRONOFS_S3_RETRIES (default 8), CHRONOFS_S3_TIMEOUT (stall timeout in seconds, default 60),
CHRONOFS_S3_CONNECTIONS (default 8) and CHRONOFS_S3_ADDRESSING (path or virtual) tune it.
See also: chronofs-job(5), and docs/FORMAT.md for the repository format.";

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new, empty repository.
    Init(init::Args),
    /// Back up files and directories (or standard input) as a new snapshot.
    Backup(backup::Args),
    /// List snapshots.
    Snapshots(snapshots::Args),
    /// List the files in a snapshot.
    Ls(ls::Args),
    /// Show what changed between two snapshots.
    Diff(diff::Args),
    /// Show the versions of one path across snapshots.
    Versions(versions::Args),
    /// Find paths matching a pattern across snapshots.
    Find(find::Args),
    /// Restore a snapshot, or a path inside one, to a directory.
    Restore(restore::Args),
    /// Verify the repository's integrity.
    Check(check::Args),
    /// Print a repository object as JSON (for debugging).
    Cat(cat::Args),
    /// Mount the repository read-only: every snapshot a dated directory.
    Mount(mount::Args),
    /// Unmount a mounted repository.
    Umount(umount::Args),
    /// Remove snapshots by a retention policy (--keep-daily 7 ...) or by name.
    Forget(forget::Args),
    /// Delete data no snapshot references, reclaiming space (runs beside backups).
    #[command(after_long_help = prune::RULES)]
    Prune(prune::Args),
    /// Copy snapshots to another repository (only the data it lacks).
    Copy(copy::Args),
    /// Revoke and remove stale locks left by processes that are gone or stopped.
    Unlock(unlock::Args),
    /// Show or set append-only mode (forget and prune refuse while it is on).
    AppendOnly(append_only::Args),
    /// Is the newest backup of every host recent enough, and did the last prune and checks
    /// succeed? (exit 0 yes, 1 no, 2 unreadable)
    Status(status::Args),
    /// Restore drill: restore a snapshot to a scratch directory and compare it with the snapshot.
    Verify(verify::Args),
    /// Run a backup job described by /etc/chronofs/NAME.conf (see chronofs-job(5)).
    Job(job::Args),
    /// Manage the passphrases (key files) of an encrypted repository.
    Key(key::Args),
    /// Write the man pages or the shell completions (for packaging).
    #[command(hide = true)]
    Generate(generate::Args),
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<u8> {
    let cache = if cli.no_cache {
        None
    } else {
        cli.cache_dir
            .clone()
            .or_else(chronofs::storage::disk_cache::default_root)
    };
    let _ = CACHE_ROOT.set(cache);
    let ctx = Context {
        repo: cli.repo,
        quiet: cli.quiet,
        retry_lock: cli.retry_lock,
        password: cli.password,
    };
    match cli.command {
        Command::Init(a) => init::run(&ctx, &a),
        Command::Backup(a) => backup::run(&ctx, &a),
        Command::Snapshots(a) => snapshots::run(&ctx, &a),
        Command::Ls(a) => ls::run(&ctx, &a),
        Command::Diff(a) => diff::run(&ctx, &a),
        Command::Versions(a) => versions::run(&ctx, &a),
        Command::Find(a) => find::run(&ctx, &a),
        Command::Restore(a) => restore::run(&ctx, &a),
        Command::Check(a) => check::run(&ctx, &a),
        Command::Cat(a) => cat::run(&ctx, &a),
        Command::Mount(a) => mount::run(&ctx, &a),
        Command::Umount(a) => umount::run(&ctx, &a),
        Command::Forget(a) => forget::run(&ctx, &a),
        Command::Prune(a) => prune::run(&ctx, &a),
        Command::Copy(a) => copy::run(&ctx, &a),
        Command::Unlock(a) => unlock::run(&ctx, &a),
        Command::AppendOnly(a) => append_only::run(&ctx, &a),
        Command::Status(a) => status::run(&ctx, &a),
        Command::Verify(a) => verify::run(&ctx, &a),
        Command::Generate(a) => generate::run(&a),
        Command::Job(a) => job::run(&ctx, &a),
        Command::Key(a) => key::run(&ctx, &a),
    }
}

/// Where remote repositories keep their local cache (`None`: no cache), set once by [`run`].
static CACHE_ROOT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();

/// The options that give a child chronofs (a background mount) this process's cache:
/// `--cache-dir DIR` or `--no-cache`.
fn cache_args() -> Vec<std::ffi::OsString> {
    match CACHE_ROOT.get() {
        Some(Some(root)) => vec![
            "--cache-dir".into(),
            std::path::absolute(root)
                .unwrap_or_else(|_| root.clone())
                .into_os_string(),
        ],
        Some(None) => vec!["--no-cache".into()],
        None => Vec::new(),
    }
}

/// Opens the repository at `path` without loading its index, unlocking it with the
/// passphrase from `source` if it is encrypted; warns once if others can read it.
fn open_at(path: &Location, source: &password::Source) -> Result<Repository> {
    open_with(path, |_| source.get())
}

/// As [`open_at`], with the passphrase from `pass` (asked only for an encrypted repository).
fn open_with(
    path: &Location,
    pass: impl FnOnce(&Repository) -> Result<password::Passphrase>,
) -> Result<Repository> {
    let mut repo = Repository::open_unindexed_at(path)?;
    if let Some(Some(root)) = CACHE_ROOT.get()
        && let Err(e) = repo.attach_disk_cache(root)
    {
        eprintln!("chronofs: warning: no local cache: {e}");
    }
    if let Some(w) = repo.privacy_warning() {
        eprintln!("chronofs: warning: {w}");
    }
    if repo.encrypted() {
        let p = pass(&repo)?;
        repo.unlock(&p)?;
    }
    Ok(repo)
}

/// Resolves a snapshot name the user gave (`latest`, a dated name, an id prefix); warns when
/// `latest` may be wrong because some snapshot files cannot be read.
fn resolve_snapshot(repo: &Repository, spec: &str) -> Result<chronofs::snapshot::Listed> {
    let table = repo.snapshot_table()?;
    if let Some(w) = chronofs::snapshot::latest_warning(spec, &table.unreadable) {
        eprintln!("chronofs: warning: {w}");
    }
    warn_unreadable(&table.unreadable);
    Ok(chronofs::snapshot::resolve_in(&table, spec)?)
}

/// One warning line per snapshot file that cannot be read.
fn warn_unreadable(errors: &[chronofs::Error]) {
    for e in errors {
        eprintln!("chronofs: warning: {}", quote::text(&e.to_string()));
    }
}

/// A snapshot as JSON: its record, with what its tree holds (`null` if not recorded), which
/// the file stores beside the record rather than in it.
fn snapshot_json(s: &chronofs::format::snapshot::Snapshot) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(s)?;
    if let Some(fields) = v.as_object_mut() {
        fields.insert("contents".into(), serde_json::to_value(s.contents)?);
        if let Some(c) = &s.consistency {
            fields.insert("consistency".into(), serde_json::to_value(c)?);
        }
    }
    Ok(v)
}

/// Global options every command sees.
pub struct Context {
    repo: Option<Location>,
    quiet: bool,
    retry_lock: std::time::Duration,
    password: password::Args,
}

impl Context {
    /// The repository path from `--repo` or `CHRONOFS_REPO`.
    fn repo_path(&self) -> Result<&Location> {
        self.repo.as_ref().ok_or_else(|| {
            anyhow::Error::new(chronofs::Error::InvalidInput(
                "no repository given: use --repo DIR or set CHRONOFS_REPO".into(),
            ))
        })
    }

    /// Opens the repository with its index.
    fn open(&self) -> Result<Repository> {
        let repo = self.open_unindexed()?;
        repo.load_index_strict()?;
        Ok(repo)
    }

    /// Opens (and unlocks) the repository without loading its index; warns once if others
    /// can read it.
    fn open_unindexed(&self) -> Result<Repository> {
        let path = self.repo_path()?;
        open_at(path, &self.password_source(path))
    }

    /// Where the passphrase of the repository at `path` comes from.
    fn password_source(&self, path: &Location) -> password::Source {
        self.password.source(path)
    }

    /// Opens the repository, locks it, and only then loads its index: a writer must
    /// deduplicate against the index as it is under the lock (a prune that ran just before
    /// may have deleted packs an older index names).
    fn open_locked(&self, kind: LockKind, purpose: &str) -> Result<(Repository, RepoLock)> {
        let repo = self.open_unindexed()?;
        let lock = self.lock(&repo, kind, purpose)?;
        repo.load_index_strict()?;
        lock.set_basis(repo.index().epoch())?;
        Ok((repo, lock))
    }

    /// Locks `repo` for `purpose`, waiting up to `--retry-lock`; stale locks of other
    /// processes are reported and ignored.
    fn lock(&self, repo: &Repository, kind: LockKind, purpose: &str) -> Result<RepoLock> {
        let lock = RepoLock::acquire(repo, kind, purpose, self.retry_lock)?;
        for stale in &lock.ignored_stale {
            eprintln!(
                "chronofs: warning: ignoring {} (remove it with `chronofs unlock`)",
                quote::text(stale)
            );
        }
        Ok(lock)
    }
}

#[cfg(test)]
mod tests {
    /// Clap's own checks of the whole command line (unique argument names, valid defaults):
    /// a flag added to a shared group that collides with a command's own would otherwise
    /// only panic when that command is run.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
