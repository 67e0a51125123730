//! chronofs: a versioned backup filesystem.

// Nothing read from disk, the user or the kernel is unwrapped: errors are returned. (Tests may.)
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
pub mod chunking;
pub mod crypto;
pub mod dirfd;
pub mod error;
pub mod format;
pub mod fuse;
pub mod ingest;
pub mod maintain;
pub mod mountinfo;
pub mod progress;
pub mod repo;
pub mod restore;
pub mod snapshot;
pub mod storage;
pub mod sys;
pub mod vfs;
pub use error::{Error, Result};
