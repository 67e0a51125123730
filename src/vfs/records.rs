//! The snapshot records a mount holds: each snapshot file read once, and its record stored
//! once for as long as it is listed, with its dated name and a directory cookie that lasts.
//!
//! A mount that lives for months sees thousands of snapshots arrive. Each refresh of its view
//! ([`super::view::View`]) shares these records rather than copying them, and changes only what
//! changed: a new record for a new snapshot, a renamed one when a snapshot of the same second
//! arrived before it in time order, none for the rest. The inode table and the view point at
//! the same record, so memory grows with the snapshots shown, not with the refreshes lived
//! through.

use std::collections::HashMap;
use std::sync::Arc;

use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::snapshot::{self, Listed};

use super::view::{Cookies, SnapEntry, dir_name};

/// Every readable snapshot listed, shown or left out, by id.
#[derive(Debug, Default)]
pub struct Records {
    by_id: HashMap<SnapshotId, Arc<SnapEntry>>,
    /// Cookies of snapshots, hosts and tags.
    pub cookies: Cookies,
}

impl Records {
    /// True if `id` has a record.
    #[must_use]
    pub fn contains(&self, id: &SnapshotId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Drops the records for which `keep` says false.
    pub fn retain(&mut self, mut keep: impl FnMut(&SnapshotId, &Snapshot) -> bool) {
        self.by_id.retain(|id, e| keep(id, &e.listed.snapshot));
    }

    /// Adds the record of a snapshot just read, with a new cookie and its plain dated name
    /// ([`Records::name`] appends the id where another snapshot shares the second).
    pub fn insert(&mut self, id: SnapshotId, snapshot: Snapshot) {
        let entry = SnapEntry {
            cookie: self.cookies.fresh(),
            host_dir: dir_name(&snapshot.hostname),
            suffixed: false,
            listed: Listed {
                id,
                name: snapshot::dated_name(snapshot.time_ns),
                snapshot,
            },
        };
        self.by_id.insert(id, Arc::new(entry));
    }

    /// Every record, oldest first (by time, then id).
    #[must_use]
    pub fn sorted(&self) -> Vec<Arc<SnapEntry>> {
        let mut all: Vec<Arc<SnapEntry>> = self.by_id.values().map(Arc::clone).collect();
        all.sort_unstable_by_key(|e| (e.time_ns(), e.listed.id));
        all
    }

    /// Gives `shown` (oldest first) their unique names as [`snapshot::name_all`] does: a record
    /// whose name changes is replaced (here and in `shown`) by a renamed copy that keeps its
    /// cookie; the others are left as they are.
    pub fn name(&mut self, shown: &mut [Arc<SnapEntry>]) {
        let mut prev: Option<i64> = None;
        for entry in shown.iter_mut() {
            let time = entry.time_ns();
            let suffixed = prev.is_some_and(|p| snapshot::shares_dated_name(p, time));
            prev = Some(time);
            if entry.suffixed == suffixed {
                continue;
            }
            let id = entry.listed.id;
            let renamed = Arc::new(SnapEntry {
                listed: Listed {
                    id,
                    name: snapshot::unique_name(&id, time, suffixed),
                    snapshot: entry.listed.snapshot.clone(),
                },
                cookie: entry.cookie,
                host_dir: entry.host_dir.clone(),
                suffixed,
            });
            self.by_id.insert(id, Arc::clone(&renamed));
            *entry = renamed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::view::tests::snap;

    fn names(shown: &[Arc<SnapEntry>]) -> Vec<String> {
        shown.iter().map(|e| e.name().to_string()).collect()
    }

    #[test]
    fn records_are_shared_across_refreshes_and_named_as_the_cli_names_them() {
        let mut r = Records::default();
        let mut a = snap(1_800_000_000, "h", &[]);
        a.1.time_ns += 500_000_000;
        let b = snap(1_800_000_100, "h", &[]);
        r.insert(a.0, a.1.clone());
        r.insert(b.0, b.1.clone());
        let mut first = r.sorted();
        r.name(&mut first);
        let mut second = r.sorted();
        r.name(&mut second);
        assert!(
            first.iter().zip(&second).all(|(x, y)| Arc::ptr_eq(x, y)),
            "an unchanged refresh shares every record"
        );

        // A snapshot of the same second as `a`, but later: only it is named with its id.
        let (cid, mut c) = snap(1, "h", &[]);
        c.time_ns = a.1.time_ns + 5;
        r.insert(cid, c.clone());
        let mut third = r.sorted();
        r.name(&mut third);
        assert!(Arc::ptr_eq(&third[0], &first[0]));
        assert!(Arc::ptr_eq(&third[2], &first[1]));
        let cli = snapshot::name_all(vec![a.clone(), (cid, c.clone()), b.clone()]);
        assert_eq!(
            names(&third),
            cli.iter().map(|l| l.name.clone()).collect::<Vec<_>>()
        );

        // One of the same second but earlier: `a` is renamed and keeps its cookie.
        let (did, mut d) = snap(2, "h", &[]);
        d.time_ns = a.1.time_ns - 1;
        r.insert(did, d.clone());
        let mut fourth = r.sorted();
        r.name(&mut fourth);
        let cli = snapshot::name_all(vec![(did, d), a, (cid, c), b]);
        assert_eq!(
            names(&fourth),
            cli.iter().map(|l| l.name.clone()).collect::<Vec<_>>()
        );
        assert_eq!(fourth[1].cookie, first[0].cookie);
        assert!(!Arc::ptr_eq(&fourth[1], &first[0]));
        let mut fifth = r.sorted();
        r.name(&mut fifth);
        assert!(
            Arc::ptr_eq(&fifth[1], &fourth[1]),
            "the renamed record is kept"
        );

        // Left out of what is shown (as the extended-attribute rule may): the names of the
        // others follow what is shown, as the CLI's would for that list.
        r.retain(|id, _| *id != did);
        let mut sixth = r.sorted();
        r.name(&mut sixth);
        assert_eq!(sixth[0].name(), first[0].name());
        assert_eq!(sixth[0].cookie, first[0].cookie);
    }
}
