//! RPO monitoring: for each group of snapshots (same host and source paths, as `forget` groups
//! them), how old the newest snapshot is, what its run did, and whether it is within the age
//! the operator allows. Read-only; takes no lock.

use serde::Serialize;

use crate::error::Result;
use crate::format::snapshot::Summary;
use crate::repo::Repository;
use crate::snapshot::Listed;
use crate::snapshot::filter::Filter;

use super::forget::{GroupBy, GroupKey};

/// The state of one group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupStatus {
    /// Host and source paths.
    pub key: GroupKey,
    /// Snapshots in the group.
    pub snapshots: usize,
    /// The newest snapshot's dated name and id.
    pub newest: String,
    /// Its full id.
    pub newest_id: String,
    /// Its time, ns since the epoch.
    pub newest_time_ns: i64,
    /// How old it is, in ns (negative for a snapshot dated in the future).
    pub age_ns: i64,
    /// What its run did.
    pub summary: Summary,
    /// Older than the allowed age.
    pub late: bool,
}

/// The state of a repository.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// Every group, by key.
    pub groups: Vec<GroupStatus>,
    /// Bytes of the pack files the index names.
    pub repository_bytes: u64,
    /// Snapshot files that cannot be read (the newest of a group may be among them).
    pub unreadable: Vec<String>,
    /// The allowed age, ns.
    pub max_age_ns: i64,
    /// When the status was taken, ns since the epoch.
    pub now_ns: i64,
    /// The last prune and checks, from their run records.
    pub maintenance: Vec<super::runs::JobStatus>,
}

impl Status {
    /// Whether every group's newest snapshot is within the allowed age, every snapshot file
    /// could be read, and the last run of each kind of prune and check succeeded (a check:
    /// found no damage).
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.unreadable.is_empty()
            && !self.groups.iter().any(|g| g.late)
            && self.maintenance.iter().all(|m| m.last_ok)
    }
}

/// The status of `repo` (its index loaded) at `now_ns`, each group's newest snapshot allowed
/// to be `max_age_ns` old; only the snapshots `filter` selects.
///
/// # Errors
/// Failure to list the snapshot directory.
pub fn status(repo: &Repository, max_age_ns: i64, now_ns: i64, filter: &Filter) -> Result<Status> {
    let table = repo.snapshot_table()?;
    let hosts = table.host_tags(&filter.hosts);
    // Per group tag (host, paths in any order, stdin): its snapshots (the table is oldest
    // first). Only the newest readable record of each group is opened, unless tags select:
    // then the newest that has them, and every record of the group to count them.
    let mut tagged: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for i in 0..table.len() {
        if table.may_be_of(i, &hosts) {
            tagged.entry(table.group(i)).or_default().push(i);
        }
    }
    let mut unreadable: Vec<String> = table.unreadable.iter().map(ToString::to_string).collect();
    let mut groups: std::collections::BTreeMap<GroupKey, (usize, Listed)> = Default::default();
    for members in tagged.into_values() {
        let mut count = 0;
        let mut found = None;
        for &i in members.iter().rev() {
            let s = match table.record(i) {
                Ok(s) => s,
                Err(e) => {
                    unreadable.push(e.to_string());
                    continue;
                }
            };
            let matches = filter.matches(&s);
            if filter.tags.is_empty() {
                // Host and paths are the group's: every member matches as its newest
                // readable one does.
                if matches {
                    (count, found) = (members.len(), Some((i, s)));
                }
                break;
            }
            if matches {
                count += 1;
                found = found.or(Some((i, s)));
            }
        }
        let Some((i, snapshot)) = found else { continue };
        let newest = Listed {
            id: table.id(i),
            name: crate::snapshot::name_in(&table, i),
            snapshot,
        };
        let key = GroupKey::of(&newest, GroupBy::default());
        match groups.entry(key) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert((count, newest));
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let (n, kept) = o.get_mut();
                *n += count;
                if (newest.snapshot.time_ns, newest.id) > (kept.snapshot.time_ns, kept.id) {
                    *kept = newest;
                }
            }
        }
    }
    let groups = groups
        .into_iter()
        .map(|(key, (snapshots, newest))| {
            let age_ns = now_ns.saturating_sub(newest.snapshot.time_ns);
            GroupStatus {
                key,
                snapshots,
                newest: newest.name,
                newest_id: newest.id.to_hex(),
                newest_time_ns: newest.snapshot.time_ns,
                age_ns,
                summary: newest.snapshot.summary,
                late: age_ns > max_age_ns,
            }
        })
        .collect();
    let repository_bytes = repo.index().pack_bytes();
    Ok(Status {
        groups,
        repository_bytes,
        unreadable,
        max_age_ns,
        now_ns,
        maintenance: super::runs::latest(repo)?,
    })
}
