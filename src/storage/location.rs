//! Where a repository lives: a local directory, or a bucket of an S3-compatible object store
//! named `s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]` (restic's form), and opening its storage.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

use super::Storage;
use super::blocks::BlockCache;
use super::s3::{S3Location, S3Storage};

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

    /// Opens the storage of an object-storage location (credentials from the environment).
    /// Local directories are opened by the repository, which checks them first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for missing credentials or a bad endpoint.
    pub fn open_remote(&self) -> Result<Option<Arc<dyn Storage>>> {
        match self {
            Location::Local(_) => Ok(None),
            Location::S3(s) => Ok(Some(remote_cached(S3Storage::open(s)?))),
        }
    }
}

/// A remote backend behind a block cache of [`REMOTE_BLOCK_CACHE`] bytes.
pub fn remote_cached(remote: S3Storage) -> Arc<dyn Storage> {
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
