//! `prune`: delete the data no snapshot references, while backups run beside it.
//!
//! The protocol is specified in docs/FORMAT.md, "Prune beside writers"; in short:
//! 1. Writers whose lock went stale are revoked (a fence), so that nothing waits for them.
//! 2. The snapshots are listed, then the index loaded, and every blob the snapshots use is
//!    marked (`usage.rs`); a prune refuses if a snapshot or index file is
//!    unreadable, or a used pack is missing, since the unmarked data would then be deleted.
//! 3. [`plan`] decides: unused packs are **condemned** (still readable, no longer deduplicated
//!    against), condemned packs a snapshot uses again are recovered, partly used packs are
//!    repacked (the originals condemned). New packs are durable, then the new index with the
//!    prune state (the last file supersedes the files replaced: those that change, and small
//!    ones, merged; `rewrite.rs`), then the replaced index files go.
//! 4. Condemned packs are deleted only when no running writer loaded its index before they were
//!    condemned ([`plan::deletable`]), after a second look at the snapshots committed
//!    meanwhile. The others wait for a later prune.
//!
//! Every fence, index file and delete is preceded by a check that the maintenance lock is
//! still ours.
//! Memory: the index, one bit per blob, the ids of the used trees, and one index file's worth
//! of entries while writing.

mod execute;
pub mod gather;
pub mod plan;
mod rewrite;
mod survey;

pub use execute::{prune, prune_observed};

use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

/// How much unused data may stay in partly used packs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// At most this share of the repository after pruning, in percent.
    Percent(f64),
    /// At most this many bytes.
    Bytes(u64),
    /// Never repack.
    Unlimited,
}

impl Default for MaxUnused {
    fn default() -> Self {
        MaxUnused::Percent(10.0)
    }
}

impl FromStr for MaxUnused {
    type Err = Error;

    /// `10%`, `0`, `500M`, `2G`, `64k` (powers of 1024) or `unlimited`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidInput(format!(
                "--max-unused {s:?}: use a percentage (10%), a size (500M, 2G) or `unlimited`"
            ))
        };
        let s = s.trim();
        if s == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(bad());
            }
            return Ok(if p >= 100.0 {
                MaxUnused::Unlimited
            } else {
                MaxUnused::Percent(p)
            });
        }
        let (num, shift) = match s.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let shift = match c.to_ascii_lowercase() {
                    'b' => 0,
                    'k' => 10,
                    'm' => 20,
                    'g' => 30,
                    't' => 40,
                    _ => return Err(bad()),
                };
                (&s[..i], shift)
            }
            _ => (s, 0),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        Ok(MaxUnused::Bytes(n.checked_shl(shift).ok_or_else(bad)?))
    }
}

impl MaxUnused {
    /// The unused bytes allowed when `used` bytes remain.
    pub(crate) fn limit(self, used: u64) -> u64 {
        match self {
            MaxUnused::Unlimited => u64::MAX,
            MaxUnused::Bytes(b) => b,
            MaxUnused::Percent(p) => (used as f64 * p / (100.0 - p)) as u64,
        }
    }
}

/// Prune settings.
#[derive(Clone, Copy, Debug)]
pub struct PruneOptions {
    /// Unused data tolerated in partly used packs.
    pub max_unused: MaxUnused,
    /// Only report what would be done.
    pub dry_run: bool,
    /// Gather settled snapshot files into sets once there are at least this many
    /// ([`gather::threshold`]).
    pub gather_at: usize,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::default(),
            dry_run: false,
            gather_at: gather::threshold(),
        }
    }
}

/// What a prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Snapshots whose data was kept.
    pub snapshots: usize,
    /// Blobs in use / not in use.
    pub blobs_used: u64,
    /// Blobs no snapshot references.
    pub blobs_unused: u64,
    /// Indexed packs before pruning.
    pub packs_before: usize,
    /// Packs condemned by this prune (unused, or repacked).
    pub packs_condemned: usize,
    /// Condemned packs that a snapshot committed since uses: live again.
    pub packs_recovered: usize,
    /// Condemned packs left for a later prune, because writers that may use them still run.
    pub packs_waiting: usize,
    /// Their bytes.
    pub bytes_waiting: u64,
    /// The writers that run and hold them back.
    pub writers_waited_for: Vec<String>,
    /// Writers revoked because their lock went stale (stopped, suspended, cut off).
    pub writers_revoked: Vec<String>,
    /// Indexed packs deleted (condemned, unused, and no running writer predates them).
    pub packs_deleted: usize,
    /// Partly used packs rewritten.
    pub packs_repacked: usize,
    /// New packs written by repacking.
    pub packs_written: usize,
    /// Packs no index names (left by interrupted backups or prunes), deleted.
    pub unindexed_packs_deleted: usize,
    /// Temporary files of interrupted writes, deleted.
    pub temp_files_deleted: usize,
    /// Index files replaced.
    pub index_files_replaced: usize,
    /// Bytes of pack files before.
    pub bytes_before: u64,
    /// Bytes of pack files after.
    pub bytes_after: u64,
    /// Bytes freed.
    pub bytes_reclaimed: u64,
    /// Bytes of used blobs copied by repacking.
    pub bytes_repacked: u64,
    /// Void snapshot files (committed too late by revoked writers) deleted.
    pub void_snapshots_deleted: usize,
    /// Snapshot files gathered into snapshot sets.
    pub snapshots_gathered: usize,
    /// Snapshot sets written by gathering.
    pub snapshot_sets_written: usize,
    /// Snapshot sets replaced (merged into new ones, or left by an interrupted replacement).
    pub snapshot_sets_replaced: usize,
    /// Unused bytes left in partly used packs.
    pub unused_bytes_kept: u64,
    /// Wall-clock time.
    pub duration_ns: u64,
}

/// The error a prune gives instead of running on a repository it cannot read whole.
fn refuse_damage(e: &Error) -> Error {
    Error::corrupt(
        "<repository>",
        format!(
            "{e}; prune refuses to run, since it would delete data this file may need (run \
             `chronofs check`)"
        ),
    )
}
