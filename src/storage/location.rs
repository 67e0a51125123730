//! Where a repository lives: a local directory, or a bucket of an S3-compatible object store
//! named `s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]` (restic's form), and opening its storage.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

use super::blocks::BlockCache;
use super::s3::{S3Location, S3Storage};
use super::{LocalStorage, Modes, Storage};

/// The scheme prefix of an object-storage location.
pub const S3_PREFIX: &str = "s3:";

/// A repository's location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine.
    Local(PathBuf),
    /// A bucket (and prefix) of an S3-compatible store.
    S3(S3Location),
}

impl Location {
    /// Parses what the user typed: `s3:…` names object storage, anything else a directory.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed `s3:` location.
    pub fn parse(text: &str) -> Result<Location> {
        match text.strip_prefix(S3_PREFIX) {
            Some(rest) => Ok(Location::S3(S3Location::parse(rest)?)),
            None => Ok(Location::Local(PathBuf::from(text))),
        }
    }

    /// The directory of a local repository.
    #[must_use]
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3(_) => None,
        }
    }

    /// Something to print (kept so that call sites read like a path's).
    #[must_use]
    pub fn display(&self) -> &Self {
        self
    }

    /// A [`PathBuf`] that prints as this location, for errors that carry a path.
    #[must_use]
    pub fn as_path_buf(&self) -> PathBuf {
        match self {
            Location::Local(p) => p.clone(),
            Location::S3(s) => PathBuf::from(format!("{S3_PREFIX}{s}")),
        }
    }

    /// Opens the storage of the repository here: a local directory must exist; an object
    /// store is reached with credentials from the environment.
    ///
    /// # Errors
    /// [`Error::NoRepository`] for a missing local directory or a file in its place;
    /// [`Error::InvalidInput`] for missing credentials or a bad endpoint.
    pub fn open(&self) -> Result<Arc<dyn Storage>> {
        let path = match self {
            Location::S3(s) => return Ok(remote_cached(S3Storage::open(s)?)),
            Location::Local(path) => path,
        };
        let no_repo = |reason: &str| Error::NoRepository {
            path: path.clone(),
            reason: reason.into(),
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(Arc::new(LocalStorage::new(path))),
            Ok(_) => Err(no_repo("not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(no_repo("directory does not exist"))
            }
            Err(e) => Err(Error::path_io("opening repository", path, e)),
        }
    }

    /// Makes the storage of a new repository here, which must hold nothing yet: a local
    /// directory (created with `modes` if missing) or a prefix of an existing bucket. `marker`
    /// is the file whose presence means a repository is there already (the refusal says so).
    ///
    /// # Errors
    /// [`Error::InitRefused`] if the place is not empty; I/O errors.
    pub fn create(&self, modes: Modes, marker: &str) -> Result<Arc<dyn Storage>> {
        let refuse = |reason: &str| Error::InitRefused {
            path: self.as_path_buf(),
            reason: reason.into(),
        };
        match self {
            Location::Local(path) => {
                match std::fs::read_dir(path) {
                    Ok(mut rd) => {
                        if path.join(marker).exists() {
                            return Err(refuse("a repository already exists there"));
                        }
                        if rd.next().is_some() {
                            return Err(refuse("the directory is not empty"));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::path_io("reading", path, e)),
                }
                super::make_root(path, modes).map_err(|e| Error::path_io("creating", path, e))?;
                if let Some(parent) = path.parent() {
                    let _ = super::sync_dir(parent);
                }
                Ok(Arc::new(LocalStorage::with_modes(path, modes)))
            }
            Location::S3(s3) => {
                let remote = S3Storage::open(s3)?;
                let empty = remote
                    .is_empty()
                    .map_err(|e| Error::repo_io("listing", self.to_string(), e))?;
                if !empty {
                    return Err(refuse(if remote.len(marker).is_ok() {
                        "a repository already exists there"
                    } else {
                        "objects already exist under that prefix"
                    }));
                }
                Ok(remote_cached(remote))
            }
        }
    }
}

/// A remote backend behind a block cache of [`REMOTE_BLOCK_CACHE`] bytes.
fn remote_cached(remote: S3Storage) -> Arc<dyn Storage> {
    Arc::new(BlockCache::new(remote, REMOTE_BLOCK_CACHE))
}

/// Bytes of pack blocks kept in memory for a remote repository.
pub const REMOTE_BLOCK_CACHE: u64 = 64 << 20;

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3(s) => write!(f, "{S3_PREFIX}{s}"),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::Local(p.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Local(p)
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::Local(p.clone())
    }
}

impl std::str::FromStr for Location {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Location::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        assert_eq!(
            Location::parse("/srv/repo").unwrap(),
            Location::Local("/srv/repo".into())
        );
        let s3 = Location::parse("s3:http://127.0.0.1:3900/bucket/some/prefix").unwrap();
        assert_eq!(
            s3.to_string(),
            "s3:http://127.0.0.1:3900/bucket/some/prefix"
        );
        assert!(s3.local().is_none());
        assert!(Location::parse("s3:ftp://h/b").is_err());
        assert!(Location::parse("s3:http://host").is_err(), "no bucket");
    }
}
