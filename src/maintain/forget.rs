//! `forget`: split snapshots into groups (by host, source paths and/or tags), apply a
//! retention [`Policy`] to each group, and delete the snapshot files of the ones not kept.
//! Their data stays until `prune` reclaims it. Deleting a snapshot file is atomic, so a crash
//! leaves every snapshot either listed and complete or gone.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::lock::LockMode;
use crate::repo::Repository;
use crate::repo::fence::{self, Revocation};
use crate::repo::lock::{FoundLock, RepoLock};
use crate::snapshot::Listed;

use super::policy::{self, Candidate, Policy, Verdict};

/// Which snapshot fields make up a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    /// Same host name.
    pub host: bool,
    /// Same source paths.
    pub paths: bool,
    /// Same tags.
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = Error;

    /// `host,paths` (the default), any subset of `host`, `paths`, `tags`, or `""` for one group.
    fn from_str(s: &str) -> Result<Self> {
        let mut g = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" | "path" => g.paths = true,
                "tags" | "tag" => g.tags = true,
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "--group-by {s:?}: use a comma-separated list of host, paths, tags (or \"\")"
                    )));
                }
            }
        }
        Ok(g)
    }
}

/// What the snapshots of one group share.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// Host name, when grouping by host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Source paths, when grouping by paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Tags (sorted), when grouping by tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(p) = &self.paths {
            parts.push(format!("paths {}", p.join(" ")));
        }
        if let Some(t) = &self.tags {
            parts.push(format!("tags [{}]", t.join(",")));
        }
        if parts.is_empty() {
            f.write_str("all snapshots")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// One snapshot and the policy's verdict on it.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The snapshot.
    pub listed: Listed,
    /// Kept or removed, and why.
    pub verdict: Verdict,
}

/// One group, oldest snapshot first.
#[derive(Clone, Debug)]
pub struct Group {
    /// What its snapshots share.
    pub key: GroupKey,
    /// Its snapshots with their verdicts.
    pub snapshots: Vec<Planned>,
}

impl GroupKey {
    /// The key of snapshot `l` when grouping `by`.
    #[must_use]
    pub fn of(l: &Listed, by: GroupBy) -> GroupKey {
        key_of(l, by)
    }
}

fn key_of(l: &Listed, by: GroupBy) -> GroupKey {
    let s = &l.snapshot;
    GroupKey {
        host: by.host.then(|| s.hostname.clone()),
        paths: by.paths.then(|| {
            s.paths
                .iter()
                .map(crate::format::bytes::ByteString::lossy)
                .collect()
        }),
        tags: by.tags.then(|| {
            let mut t = s.tags.clone();
            t.sort();
            t.dedup();
            t
        }),
    }
}

/// Groups `listed` (oldest first) and applies `policy` to each group, bucketing calendar
/// rules in `tz`.
#[must_use]
pub fn plan(
    listed: Vec<Listed>,
    policy: &Policy,
    by: GroupBy,
    tz: &TimeZone,
    now_ns: i64,
) -> Vec<Group> {
    let mut groups: BTreeMap<GroupKey, Vec<Listed>> = BTreeMap::new();
    for l in listed {
        groups.entry(key_of(&l, by)).or_default().push(l);
    }
    groups
        .into_iter()
        .map(|(key, members)| {
            let candidates: Vec<Candidate<'_>> = members
                .iter()
                .map(|l| Candidate {
                    time_ns: l.snapshot.time_ns,
                    tags: &l.snapshot.tags,
                })
                .collect();
            let verdicts = policy::apply(policy, &candidates, tz, now_ns);
            let snapshots = members
                .into_iter()
                .zip(verdicts)
                .map(|(listed, verdict)| Planned { listed, verdict })
                .collect();
            Group { key, snapshots }
        })
        .collect()
}

/// Deletes snapshots: their files, and their places in snapshot sets (a snapshot already gone
/// is not an error). The caller holds the maintenance lock `lock`, has checked that the
/// repository is not append-only, and has listed the snapshots.
///
/// # Errors
/// I/O errors, naming the file; a lost lock.
pub fn remove(repo: &Repository, lock: &RepoLock, ids: &[SnapshotId]) -> Result<()> {
    super::prune::gather::remove(repo, lock, ids)
}

/// Revokes the other maintenance processes whose locks went stale (a `prune` or `forget`
/// stopped past the lock's grace period), so that none of them resumes beside this one and
/// changes the snapshot sets from what it saw before it stopped: writes the begin of a
/// revocation and removes their locks (docs/FORMAT.md, "Prune beside writers"). The caller
/// lists the snapshots next, then ends the revocation with that listing
/// ([`Revocation::finish`]). `prune` revokes every stale lock itself.
///
/// # Errors
/// I/O errors; a lost lock.
pub fn revoke_stale_maintenance(repo: &Repository, lock: &RepoLock) -> Result<Option<Revocation>> {
    let me = lock.writer();
    let locks = crate::repo::lock::list(repo)?;
    let stale: Vec<&FoundLock> = locks
        .iter()
        .filter(|f| {
            f.lock
                .as_ref()
                .is_ok_and(|l| l.writer != me && l.mode == LockMode::Maintenance)
                && f.stale_reason().is_some()
        })
        .collect();
    if stale.is_empty() {
        return Ok(None);
    }
    lock.ensure_held()?;
    fence::revoke(repo, &stale)
}
