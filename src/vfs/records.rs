//! The snapshot records a mount holds: each snapshot file read once, and its record stored
//! once for as long as it is listed, with its dated name and a directory cookie that lasts.
//!
//! A mount that lives for months sees thousands of snapshots arrive. Each refresh of its view
//! ([`super::view::View`]) shares these records rather than copying them, and changes only what
//! changed: a new record for a new snapshot, a renamed one when a snapshot of the same second
//! arrived before it in time order, none for the rest. The inode table and the view point at
//! the same record, so memory grows with the snapshots shown, not with the refreshes lived
//! through.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::snapshot;

use super::view::{Cookies, SnapEntry, View, dir_name};

/// Every readable snapshot listed, shown or left out, by id.
#[derive(Debug, Default)]
pub struct Records {
    by_id: HashMap<SnapshotId, Arc<SnapEntry>>,
    /// The ids of `by_id`, ascending but for those added since [`Records::sorted_ids`] last
    /// sorted them (at the end: sorting them in is a merge of a short tail). Refreshes
    /// compare the listing with them in one pass instead of a search per snapshot.
    ids: Vec<SnapshotId>,
    /// `ids` has ids added since it was last sorted.
    ids_unsorted: bool,
    /// Host directory names, each held once however many snapshots share it.
    hosts: HashSet<Arc<str>>,
    /// Lists of tags, each held once however many snapshots share it.
    tag_lists: HashSet<Arc<[String]>>,
    /// Cookies of snapshots, hosts and tags.
    pub cookies: Cookies,
}

impl Records {
    /// The record of `id`.
    #[must_use]
    pub fn get(&self, id: &SnapshotId) -> Option<Arc<SnapEntry>> {
        self.by_id.get(id).map(Arc::clone)
    }

    fn sorted_ids(&mut self) -> &[SnapshotId] {
        if self.ids_unsorted {
            // Stable: finds the sorted run and merges the tail into it.
            self.ids.sort();
            self.ids_unsorted = false;
        }
        &self.ids
    }

    /// The snapshots of `listed` (ascending) that have no record: one pass over both.
    pub fn missing_of(&mut self, listed: &[SnapshotId]) -> Vec<SnapshotId> {
        let mut have = self.sorted_ids().iter().peekable();
        listed
            .iter()
            .filter(|id| {
                while have.next_if(|h| h < id).is_some() {}
                have.next_if_eq(id).is_none()
            })
            .copied()
            .collect()
    }

    /// Drops the records of snapshots not in `listed` (ascending), and, with `void`, those it
    /// says are void; returns how many it dropped. One pass over both lists, not a search
    /// per record: a million binary searches took 1.7 s.
    pub fn keep_listed(
        &mut self,
        listed: &[SnapshotId],
        void: Option<&dyn Fn(&SnapEntry) -> bool>,
    ) -> usize {
        let before = self.by_id.len();
        self.sorted_ids();
        let mut rest = listed.iter().peekable();
        let by_id = &mut self.by_id;
        self.ids.retain(|id| {
            while rest.next_if(|l| *l < id).is_some() {}
            let listed = rest.next_if_eq(&id).is_some();
            if !listed {
                by_id.remove(id);
            }
            listed
        });
        if let Some(void) = void {
            self.retain(|e| !void(e));
        }
        self.drop_unused_names();
        before - self.by_id.len()
    }

    /// Drops the records for which `keep` says false.
    pub fn retain(&mut self, mut keep: impl FnMut(&SnapEntry) -> bool) {
        let before = self.by_id.len();
        self.by_id.retain(|_, e| keep(e));
        if self.by_id.len() != before {
            let by_id = &self.by_id;
            self.ids.retain(|id| by_id.contains_key(id));
        }
        self.drop_unused_names();
    }

    /// Forgets the hosts and lists of tags that no record holds any more (the records of
    /// older views count until those views go).
    fn drop_unused_names(&mut self) {
        self.hosts.retain(|h| Arc::strong_count(h) > 1);
        self.tag_lists.retain(|t| Arc::strong_count(t) > 1);
    }

    /// Adds what the mount keeps of a snapshot just read, with a new cookie and its plain
    /// dated name ([`Records::name_after`] appends the id where another snapshot shares the
    /// second), unless `id` has a record already (it keeps its cookie); returns whether it
    /// added one.
    pub fn insert(&mut self, id: SnapshotId, snapshot: &Snapshot) -> bool {
        if self.by_id.contains_key(&id) {
            return false;
        }
        let host_dir = shared(&mut self.hosts, dir_name(&snapshot.hostname).as_str());
        let tags = shared(&mut self.tag_lists, snapshot.tags.as_slice());
        let entry = SnapEntry::of(id, snapshot, self.cookies.fresh(), host_dir, tags);
        self.by_id.insert(id, Arc::new(entry));
        self.ids.push(id);
        self.ids_unsorted = true;
        true
    }

    /// Every record, oldest first (by time, then id).
    #[must_use]
    pub fn sorted(&self) -> Vec<Arc<SnapEntry>> {
        // Sorted by the time held beside each record (the id breaks ties): comparing through
        // the records themselves cost half a second a million.
        let mut all: Vec<(i64, Arc<SnapEntry>)> = self
            .by_id
            .values()
            .map(|e| (e.time_ns(), Arc::clone(e)))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        all.into_iter().map(|(_, e)| e).collect()
    }

    /// `old` with `new` (records that `old` does not show) put in their places in time order
    /// and named as [`Records::name_after`] names the whole list; `None` when that would rename a
    /// snapshot `old` shows (a new one came before it in its second), which takes a view
    /// built anew.
    pub fn insert_into(&mut self, old: &View, mut new: Vec<Arc<SnapEntry>>) -> Option<View> {
        new.sort_unstable_by_key(|e| (e.time_ns, e.id));
        let mut merged = Vec::with_capacity(old.snaps.len() + new.len());
        // The places of the new ones in `merged`, ascending.
        let mut at = Vec::with_capacity(new.len());
        let mut rest = old.snaps.as_slice();
        for e in new {
            let before = rest.partition_point(|o| (o.time_ns, o.id) < (e.time_ns, e.id));
            merged.extend_from_slice(&rest[..before]);
            rest = &rest[before..];
            at.push(merged.len());
            merged.push(e);
        }
        merged.extend_from_slice(rest);
        for (k, &p) in at.iter().enumerate() {
            let prev = p.checked_sub(1).map(|i| merged[i].time_ns);
            self.name_after(prev, &mut merged[p..=p]);
            let next_is_old = at.get(k + 1) != Some(&(p + 1));
            if let Some(next) = merged.get(p + 1).filter(|_| next_is_old)
                && next.suffixed != snapshot::shares_dated_name(merged[p].time_ns, next.time_ns)
            {
                return None;
            }
        }
        Some(old.with_inserted(merged, &at, &mut self.cookies))
    }

    /// [`Records::name_after`] for a whole list.
    #[cfg(test)]
    pub fn name(&mut self, shown: &mut [Arc<SnapEntry>]) {
        self.name_after(None, shown);
    }

    /// Gives `shown` (oldest first, shown after a snapshot of time `prev`; `None`: the first
    /// shown) their unique names as [`snapshot::name_all`] does: a record whose name changes
    /// is replaced (here and in `shown`) by a renamed copy that keeps its cookie; the others
    /// are left as they are.
    pub fn name_after(&mut self, mut prev: Option<i64>, shown: &mut [Arc<SnapEntry>]) {
        for entry in shown.iter_mut() {
            let time = entry.time_ns();
            let suffixed = prev.is_some_and(|p| snapshot::shares_dated_name(p, time));
            prev = Some(time);
            if entry.suffixed == suffixed {
                continue;
            }
            let id = entry.id;
            let renamed =
                Arc::new(entry.renamed(snapshot::unique_name(&id, time, suffixed), suffixed));
            self.by_id.insert(id, Arc::clone(&renamed));
            *entry = renamed;
        }
    }
}

/// The copy of `value` held in `set`, made and put there if it holds none.
fn shared<T: ?Sized + Eq + std::hash::Hash>(set: &mut HashSet<Arc<T>>, value: &T) -> Arc<T>
where
    Arc<T>: for<'a> From<&'a T>,
{
    if let Some(held) = set.get(value) {
        return Arc::clone(held);
    }
    let made: Arc<T> = Arc::from(value);
    set.insert(Arc::clone(&made));
    made
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
        r.insert(a.0, &a.1);
        r.insert(b.0, &b.1);
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
        r.insert(cid, &c);
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
        r.insert(did, &d);
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
        r.retain(|e| e.id != did);
        let mut sixth = r.sorted();
        r.name(&mut sixth);
        assert_eq!(sixth[0].name(), first[0].name());
        assert_eq!(sixth[0].cookie, first[0].cookie);
    }

    #[test]
    fn records_not_listed_or_void_are_dropped_and_so_are_names_no_record_holds() {
        let mut r = Records::default();
        let snaps: Vec<_> = (0..6)
            .map(|i| snap(1_800_000_000 + i, if i < 3 { "a" } else { "b" }, &["t"]))
            .collect();
        for (id, s) in &snaps {
            assert!(r.insert(*id, s));
        }
        // Met again (in a file and in a set): the record, and its cookie, stay as they were.
        let first = r.get(&snaps[0].0).unwrap();
        assert!(!r.insert(snaps[0].0, &snaps[0].1));
        assert!(Arc::ptr_eq(&r.get(&snaps[0].0).unwrap(), &first));
        drop(first);
        assert_eq!(r.sorted().len(), snaps.len());
        assert_eq!(r.hosts.len(), 2, "one copy of each host name");
        assert_eq!(r.tag_lists.len(), 1, "one copy of each list of tags");
        // Listed: all but the first two; of those, the fourth is void.
        let mut listed: Vec<SnapshotId> = snaps[2..].iter().map(|(id, _)| *id).collect();
        listed.sort_unstable();
        let void_id = snaps[3].0;
        let void = |e: &SnapEntry| e.id == void_id;
        r.keep_listed(&listed, Some(&void));
        let mut kept: Vec<SnapshotId> = r.sorted().iter().map(|e| e.id).collect();
        kept.sort_unstable();
        let mut want: Vec<SnapshotId> = [2, 4, 5].iter().map(|&i| snaps[i].0).collect();
        want.sort_unstable();
        assert_eq!(kept, want);
        // What a refresh would still have to read: the listed snapshots without a record,
        // found however the ids were added (here, before and after the last sort).
        let mut more: Vec<SnapshotId> = snaps.iter().map(|(id, _)| *id).collect();
        more.sort_unstable();
        let mut want_missing: Vec<SnapshotId> = [0, 1, 3].iter().map(|&i| snaps[i].0).collect();
        want_missing.sort_unstable();
        assert_eq!(r.missing_of(&more), want_missing);
        // A record the listing does not name is passed over, wherever it falls.
        for &k in &[2, 4, 5] {
            let fewer: Vec<SnapshotId> = more
                .iter()
                .copied()
                .filter(|id| *id != snaps[k].0)
                .collect();
            assert_eq!(r.missing_of(&fewer), want_missing, "without {k}");
        }
        let (late_id, late) = snap(1_900_000_000, "c", &[]);
        r.insert(late_id, &late);
        more.push(late_id);
        more.sort_unstable();
        assert_eq!(
            r.missing_of(&more),
            want_missing,
            "a record added since the last sort"
        );
        r.retain(|e| e.id != late_id);
        assert_eq!(r.missing_of(&more).len(), want_missing.len() + 1);
        // Without a void test, only what is not listed goes.
        r.keep_listed(&listed[..1], None);
        assert_eq!(r.sorted().len(), usize::from(want.contains(&listed[0])));
        // No record of host "a" is left once the third snapshot goes: its name goes too.
        r.retain(|e| e.id != snaps[2].0);
        assert!(r.hosts.iter().all(|h| &**h != "a"), "{:?}", r.hosts);
        r.retain(|_| false);
        assert!(r.hosts.is_empty() && r.tag_lists.is_empty());
    }
}
