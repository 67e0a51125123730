//! The crate's error type and the exit-code policy.
//!
//! Policy: library modules return [`Error`]; every variant that concerns a file names it (a
//! repository-relative path such as `index/ab12…` or a source path), so a one-line message says
//! *what* and *where*. `anyhow` is used only at the CLI edge, where context is added. Each variant
//! maps to a distinct process exit code ([`Error::exit_code`]), documented in the README.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository directory or its config file does not exist.
    #[error("no chronofs repository at {path}: {reason}")]
    NoRepository {
        /// Where we looked.
        path: PathBuf,
        /// Why it is not a repository.
        reason: String,
    },
    /// `init` on a directory that already holds a repository or other files.
    #[error("cannot initialise a repository at {path}: {reason}")]
    InitRefused {
        /// The directory given to `init`.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A repository file failed a structural or checksum test.
    #[error("repository file {file} is damaged: {reason}")]
    Corrupt {
        /// Repository-relative path of the damaged file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob referenced by a tree or snapshot is not in the index.
    #[error("blob {id} is not in the repository index (repository incomplete or damaged)")]
    MissingBlob {
        /// Hex id of the blob.
        id: String,
    },
    /// A pack the index names is not there (deleted by hand, lost, or pruned by another
    /// process since the index was loaded).
    #[error("pack {file} is missing, but the index lists it (repository incomplete or damaged)")]
    MissingPack {
        /// Repository-relative path of the pack.
        file: String,
    },
    /// A repository file written by a newer chronofs (or using a feature we lack).
    #[error("repository file {file} uses {what}, which this chronofs ({version}) does not support")]
    Unsupported {
        /// Repository-relative path.
        file: String,
        /// The unsupported feature or version.
        what: String,
        /// Our program version.
        version: &'static str,
    },
    /// I/O on a repository file failed.
    #[error("{op} repository file {file}: {cause}")]
    RepoIo {
        /// What we were doing ("reading", "writing", ...).
        op: &'static str,
        /// Repository-relative path.
        file: String,
        /// The OS error (in the message, not chained, so it prints once).
        cause: io::Error,
    },
    /// I/O on a path outside the repository (source tree, restore target) failed.
    #[error("{op} {}: {cause}", path.display())]
    PathIo {
        /// What we were doing.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error (in the message, not chained, so it prints once).
        cause: io::Error,
    },
    /// No snapshot, path or object matches what the user named.
    #[error("{0}")]
    NotFound(String),
    /// The user's request is invalid (bad pattern, bad parameter, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// Restore refused to write an entry (hostile name, existing file, ...).
    #[error("{0}")]
    Refused(String),
    /// A process whose output was being backed up failed.
    #[error("{0}")]
    SourceFailed(String),
    /// Mounting or unmounting failed (mount point missing, busy, stale, FUSE unavailable).
    #[error("{0}")]
    Mount(String),
    /// A backup's writing threads stopped early; the error that stopped them is reported
    /// instead of this one whenever it is known.
    #[error("the backup pipeline stopped")]
    PipelineStopped,
    /// Another process holds a conflicting repository lock (or ours was lost).
    #[error("{0}")]
    Locked(String),
    /// A prune revoked this writer (it was silent longer than a lock's grace period, e.g.
    /// stopped or suspended): what it wrote is not committed.
    #[error("{0}")]
    Revoked(String),
    /// No key opens the repository: wrong passphrase, no passphrase given, missing or
    /// damaged key files.
    #[error("{0}")]
    Key(String),
    /// The operation needs a full key, and the repository was opened with a backup-only key.
    #[error("{0} needs a full key: this backup-only key can add snapshots but read nothing")]
    BackupOnly(String),
    /// A worker thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(String),
}

/// Process exit codes, one per kind of failure (documented in README.md and the man page).
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// A fatal error not covered by a more specific code.
    pub const FATAL: u8 = 1;
    /// Command-line usage error (clap's convention).
    pub const USAGE: u8 = 2;
    /// Backup finished and wrote a snapshot, but some source files could not be read.
    pub const PARTIAL: u8 = 3;
    /// The repository does not exist or is not a chronofs repository.
    pub const NO_REPOSITORY: u8 = 10;
    /// Repository data is damaged (check found problems, or a read hit corrupt data).
    pub const DAMAGED: u8 = 11;
    /// Another process holds a conflicting lock on the repository.
    pub const LOCKED: u8 = 12;
    /// The named snapshot, path or object does not exist.
    pub const NOT_FOUND: u8 = 13;
    /// The operation was refused to protect data (restore would overwrite, hostile names...).
    pub const REFUSED: u8 = 14;
    /// The disk (repository or restore target) is full.
    pub const NO_SPACE: u8 = 15;
    /// Mounting or unmounting failed.
    pub const MOUNT: u8 = 16;
    /// No key opens the repository (wrong passphrase, no passphrase, missing key files).
    pub const KEY: u8 = 17;
    /// The operation needs a full key; the repository was opened with a backup-only key.
    pub const BACKUP_ONLY: u8 = 18;
    /// The repository's remote storage could not be reached or refused the request (network,
    /// server errors after retries, access denied, missing bucket, wrong region).
    pub const STORAGE: u8 = 19;
    /// A prune revoked this writer while it was stopped or cut off for longer than a lock's
    /// grace period; no snapshot was committed (run the command again).
    pub const REVOKED: u8 = 20;
}

/// The cause inside an [`io::Error`] from a remote store that could not be reached or refused
/// a request; it gives such failures their own exit code ([`exit::STORAGE`]).
#[derive(Debug)]
pub struct StorageUnavailable(pub String);

impl std::fmt::Display for StorageUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StorageUnavailable {}

/// Whether `e` is a remote store's failure (see [`StorageUnavailable`]).
#[must_use]
pub fn is_storage_unavailable(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<StorageUnavailable>())
}

impl Error {
    /// The exit code for this error (see [`exit`]).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NoRepository { .. } => exit::NO_REPOSITORY,
            Error::Corrupt { .. } | Error::MissingBlob { .. } | Error::MissingPack { .. } => {
                exit::DAMAGED
            }
            Error::NotFound(_) => exit::NOT_FOUND,
            Error::InvalidInput(_) => exit::USAGE,
            Error::Refused(_) | Error::InitRefused { .. } => exit::REFUSED,
            Error::Mount(_) => exit::MOUNT,
            Error::Locked(_) => exit::LOCKED,
            Error::Revoked(_) => exit::REVOKED,
            Error::Key(_) => exit::KEY,
            Error::BackupOnly(_) => exit::BACKUP_ONLY,
            Error::RepoIo { cause, .. } | Error::PathIo { cause, .. } if is_no_space(cause) => {
                exit::NO_SPACE
            }
            Error::RepoIo { cause, .. } if is_storage_unavailable(cause) => exit::STORAGE,
            _ => exit::FATAL,
        }
    }

    /// Shorthand for a [`Error::Corrupt`] naming `file`.
    pub fn corrupt(file: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for a [`Error::PathIo`].
    pub fn path_io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::PathIo {
            op,
            path: path.into(),
            cause: source,
        }
    }

    /// Shorthand for a [`Error::RepoIo`]; a repository file that is not a regular file or is
    /// larger than its kind allows is damage ([`Error::Corrupt`]), not an I/O failure.
    pub fn repo_io(op: &'static str, file: impl Into<String>, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::FileTooLarge => Error::Corrupt {
                file: file.into(),
                reason: source.to_string(),
            },
            _ => Error::RepoIo {
                op,
                file: file.into(),
                cause: source,
            },
        }
    }

    /// Whether this error means the data read was damaged (as opposed to unavailable).
    #[must_use]
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. } | Error::MissingBlob { .. } | Error::MissingPack { .. }
        )
    }
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}
