//! Where each kind of file lives in a repository (relative paths used with `Storage`).
//!
//! ```text
//! config                 repository config (written last by init)
//! data/XX/<pack id>      pack files, fanned out by the first two hex digits of the id
//! index/<index id>       index files
//! snapshots/<snap id>    snapshot files
//! locks/                 lock files
//! keys/                  key files (encrypted repositories)
//! fences/                fences: writers a prune revoked (created when first needed)
//! maintenance/           run records of prunes and checks (created when first needed)
//! tmp/                   files being written (renamed into place when complete)
//! ```

use crate::format::id::{IndexId, PackId, SnapshotId};

/// The config file.
pub const CONFIG: &str = "config";
/// Directory of pack subdirectories.
pub const DATA_DIR: &str = "data";
/// Directory of index files.
pub const INDEX_DIR: &str = "index";
/// Directory of snapshot files.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// Directory of lock files.
pub const LOCK_DIR: &str = "locks";
/// Directory of key files (encrypted repositories only).
pub const KEY_DIR: &str = "keys";
pub const FENCE_DIR: &str = "fences";
pub const RUN_DIR: &str = "maintenance";

/// Path of a pack file.
#[must_use]
pub fn pack_path(id: &PackId) -> String {
    let hex = id.to_hex();
    format!("{DATA_DIR}/{}/{hex}", &hex[..2])
}

/// The 256 pack subdirectories, `data/00` … `data/ff`.
pub fn pack_dirs() -> impl Iterator<Item = String> {
    (0..=255u8).map(|b| format!("{DATA_DIR}/{b:02x}"))
}

/// Path of an index file.
#[must_use]
pub fn index_path(id: &IndexId) -> String {
    format!("{INDEX_DIR}/{}", id.to_hex())
}

/// Path of a snapshot file.
#[must_use]
pub fn snapshot_path(id: &SnapshotId) -> String {
    format!("{SNAPSHOT_DIR}/{}", id.to_hex())
}
