//! What the mount tells the kernel about extended attributes and POSIX ACLs when the
//! snapshots hold none, so that the kernel and `ls` stop asking about every file.
//!
//! `ls -l` asks for every file's ACL (`system.posix_acl_access`), and `cp -a` or `rsync -X`
//! list every file's extended attributes. Each question the kernel forwards is a round trip
//! to this process, which costs far more than the `stat` the kernel already answered from
//! its cache: on a million files, most of the time of `ls -lR` went there. Every backup
//! records whether its tree holds extended attributes and ACLs at all ([`Contents`]), so a
//! mount can know without walking a tree. Two switches follow from that, each only when every
//! snapshot in the mount is known to hold none:
//!
//! - **No ACLs**: POSIX ACL support is not negotiated with the kernel when the mount starts.
//!   The kernel then checks permissions by the stored modes alone (exactly what ACL-free
//!   files call for), and a query for an ACL is answered "not supported", after which `ls`
//!   stops asking for the rest of that file system (GNU `ls` remembers it per device).
//!   Other extended attributes (file capabilities, `user.*`) are answered as stored.
//! - **No extended attributes at all**: the first query is answered "not implemented"
//!   (`ENOSYS`); the kernel then answers every later `getxattr` and `listxattr` itself.
//!
//! Both are for good: the kernel does not ask again on this connection. A snapshot that
//! arrives later holding what the connection said there is none of (or written before
//! chronofs recorded it) would show without it, and its ACLs would not be enforced, so it is
//! left out of this connection's view, and the mount replaces the connection with a new one
//! that shows it (`crate::fuse`, mounted beneath the old one). Only root can do that; other
//! users' mounts keep full handling, as `--keep-xattrs` does.
//!
//! [`Contents`]: crate::format::snapshot::Contents

use std::collections::HashSet;

use crate::format::id::SnapshotId;

use super::view::View;

/// The switches, held by the mount's state.
#[derive(Debug, Default)]
pub struct XattrQueries {
    /// Never switch anything off (`--keep-xattrs`).
    keep: bool,
    /// ACL support was not negotiated with the kernel.
    acls_off: bool,
    /// The kernel has been told there are no extended attributes; it will not ask again.
    xattrs_off: bool,
    /// Snapshots left out since a switch went off (each is reported once).
    left_out: HashSet<SnapshotId>,
}

/// The answer to one extended-attribute query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Look it up in the snapshot.
    Stored,
    /// "Not implemented": the first such answer makes the kernel stop asking.
    NotImplemented {
        /// True for the first time, which is worth a line in the log.
        first: bool,
    },
    /// "Not supported" (an ACL, when ACL support was not negotiated).
    NotSupported,
}

impl XattrQueries {
    /// Switches that are on; `keep` forbids turning them off.
    #[must_use]
    pub fn new(keep: bool) -> Self {
        XattrQueries {
            keep,
            ..XattrQueries::default()
        }
    }

    /// Decides, from the first view and before the kernel connects, whether to leave ACL
    /// support out of the connection; returns true if so.
    pub fn decide_acls(&mut self, view: &View) -> bool {
        self.acls_off = !self.keep && view.without_acls;
        self.acls_off
    }

    /// True if ACL support is left out of the connection.
    #[must_use]
    pub fn acls_off(&self) -> bool {
        self.acls_off
    }

    /// How to answer a query for attribute `name` (`None`: a listing), given the snapshots
    /// `view` shows now. The first time no snapshot holds any extended attribute, the
    /// extended-attribute switch goes off for good.
    pub fn answer(&mut self, view: &View, name: Option<&[u8]>) -> Answer {
        if self.xattrs_off {
            return Answer::NotImplemented { first: false };
        }
        if !self.keep && view.without_xattrs {
            self.xattrs_off = true;
            return Answer::NotImplemented { first: true };
        }
        match name {
            Some(n) if self.acls_off && crate::format::snapshot::is_acl(n) => Answer::NotSupported,
            _ => Answer::Stored,
        }
    }

    /// Removes from `snapshots` those the mount can no longer show faithfully (`record` gives
    /// each one's id, time, and whether it is known to hold no extended attributes and no
    /// ACL); returns the ids and times of those not reported before.
    pub fn admit<T>(
        &mut self,
        snapshots: &mut Vec<T>,
        record: impl Fn(&T) -> (SnapshotId, i64, bool, bool),
    ) -> Vec<(SnapshotId, i64)> {
        let mut newly = Vec::new();
        snapshots.retain(|item| {
            let (id, time_ns, without_xattrs, without_acls) = record(item);
            let fits = (!self.xattrs_off || without_xattrs) && (!self.acls_off || without_acls);
            if !fits && self.left_out.insert(id) {
                newly.push((id, time_ns));
            }
            fits
        });
        newly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::{Contents, Snapshot};
    use crate::vfs::records::Records;

    /// Snapshot `n` with `Some((entries with xattrs, entries with ACLs))`, or unknown contents.
    fn snap(n: u8, holds: Option<(u64, u64)>) -> (SnapshotId, Snapshot) {
        let (id, mut s) = crate::vfs::view::tests::snap(i64::from(n), "h", &[]);
        s.contents = holds.map(|(x, a)| Contents {
            xattr_entries: x,
            acl_entries: a,
        });
        (id, s)
    }

    /// What `admit` asks of a snapshot.
    fn facts((id, s): &(SnapshotId, Snapshot)) -> (SnapshotId, i64, bool, bool) {
        (
            *id,
            s.time_ns,
            s.known_without_xattrs(),
            s.known_without_acls(),
        )
    }

    fn view(snaps: &[(SnapshotId, Snapshot)]) -> View {
        crate::vfs::view::tests::view_of(&mut Records::default(), snaps)
    }

    fn seconds(left: &[(SnapshotId, i64)]) -> Vec<i64> {
        left.iter().map(|(_, t)| t / 1_000_000_000).collect()
    }

    const ACL: Option<&[u8]> = Some(b"system.posix_acl_access");
    const CAP: Option<&[u8]> = Some(b"security.capability");

    #[test]
    fn xattrs_go_off_once_when_no_snapshot_holds_any_and_then_leave_out_those_that_do() {
        let mut q = XattrQueries::new(false);
        assert!(!q.decide_acls(&view(&[])), "an empty mount decides nothing");
        assert_eq!(q.answer(&view(&[]), None), Answer::Stored);
        let unknown = [snap(1, Some((0, 0))), snap(2, None)];
        assert_eq!(q.answer(&view(&unknown), ACL), Answer::Stored);
        let mut listed = vec![snap(1, Some((0, 0))), snap(2, Some((0, 0)))];
        assert!(
            q.admit(&mut listed, facts).is_empty(),
            "nothing is left out while on"
        );
        assert_eq!(
            q.answer(&view(&listed), CAP),
            Answer::NotImplemented { first: true }
        );
        let holding = [snap(3, Some((1, 0)))];
        assert_eq!(
            q.answer(&view(&holding), None),
            Answer::NotImplemented { first: false }
        );

        let mut listed = vec![snap(1, Some((0, 0))), snap(3, Some((2, 0))), snap(4, None)];
        assert_eq!(seconds(&q.admit(&mut listed, facts)), [3, 4]);
        assert_eq!(listed.len(), 1);
        let mut again = vec![snap(3, Some((2, 0)))];
        assert!(
            q.admit(&mut again, facts).is_empty(),
            "each is reported once"
        );
        assert!(again.is_empty());
    }

    #[test]
    fn acls_go_off_at_the_start_and_other_xattrs_are_still_answered() {
        let mut q = XattrQueries::new(false);
        let first = [snap(1, Some((5, 0))), snap(2, Some((1, 0)))];
        assert!(q.decide_acls(&view(&first)));
        assert!(q.acls_off());
        assert_eq!(q.answer(&view(&first), ACL), Answer::NotSupported);
        assert_eq!(q.answer(&view(&first), CAP), Answer::Stored);
        assert_eq!(q.answer(&view(&first), None), Answer::Stored);
        let mut listed = vec![snap(1, Some((5, 0))), snap(3, Some((2, 1))), snap(4, None)];
        assert_eq!(seconds(&q.admit(&mut listed, facts)), [3, 4]);
        assert_eq!(listed.len(), 1);

        let mut q = XattrQueries::new(false);
        assert!(!q.decide_acls(&view(&[snap(1, Some((1, 1)))])));
        assert!(!q.decide_acls(&view(&[snap(1, None)])));
        let mut listed = vec![snap(2, Some((1, 1)))];
        assert!(q.admit(&mut listed, facts).is_empty());
        assert_eq!(q.answer(&view(&listed), ACL), Answer::Stored);
    }

    #[test]
    fn keep_never_switches_anything_off() {
        let mut q = XattrQueries::new(true);
        let none = [snap(1, Some((0, 0)))];
        assert!(!q.decide_acls(&view(&none)));
        assert_eq!(q.answer(&view(&none), ACL), Answer::Stored);
        let mut listed = vec![snap(2, Some((5, 5))), snap(3, None)];
        assert!(q.admit(&mut listed, facts).is_empty());
        assert_eq!(listed.len(), 2);
    }
}
