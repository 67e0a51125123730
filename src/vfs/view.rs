//! The mount's top level as data: which dated directories, `latest`, `hosts/`, `tags/` and
//! `ids/` entries exist for a given list of snapshots (`at/` and `versions/` are always there).
//!
//! The root changes while mounted (backups land, snapshots are forgotten), so every entry gets a
//! directory cookie that never changes for as long as the mount lives ([`Cookies`]):
//! `seekdir(telldir())` on the root resumes at the right entry even across a refresh. Snapshot
//! contents never change and need no such care.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::snapshot::Listed;

/// Directory cookies of the fixed root entries; dynamic cookies start at [`FIRST_DYNAMIC`].
pub const COOKIE_DOT: u64 = 1;
/// `..`
pub const COOKIE_DOTDOT: u64 = 2;
/// `latest`
pub const COOKIE_LATEST: u64 = 3;
/// `hosts`
pub const COOKIE_HOSTS: u64 = 4;
/// `tags`
pub const COOKIE_TAGS: u64 = 5;
/// `ids`
pub const COOKIE_IDS: u64 = 6;
/// `at`
pub const COOKIE_AT: u64 = 7;
/// `versions`
pub const COOKIE_VERSIONS: u64 = 8;
/// First cookie handed out for snapshots, hosts and tags.
pub const FIRST_DYNAMIC: u64 = 16;

/// Cookies handed out so far: a host or tag keeps its cookie for the life of the mount, and a
/// snapshot's is stored in its record ([`super::records::Records`]).
#[derive(Debug)]
pub struct Cookies {
    next: u64,
    groups: HashMap<(GroupKind, String), u64>,
}

/// Which kind of group a cookie is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum GroupKind {
    Host,
    Tag,
}

impl Default for Cookies {
    fn default() -> Self {
        Cookies {
            next: FIRST_DYNAMIC,
            groups: HashMap::new(),
        }
    }
}

impl Cookies {
    /// A cookie never handed out before.
    pub fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    fn group(&mut self, kind: GroupKind, name: &str) -> u64 {
        if let Some(&c) = self.groups.get(&(kind, name.to_string())) {
            return c;
        }
        let c = self.fresh();
        self.groups.insert((kind, name.to_string()), c);
        c
    }
}

/// One snapshot as the mount shows it.
#[derive(Debug)]
pub struct SnapEntry {
    /// Snapshot id, name and record.
    pub listed: Listed,
    /// Its cookie in the root and in `hosts/H`, `tags/T` and `ids`.
    pub cookie: u64,
    /// Its directory name under `hosts/` (sanitised host name).
    pub host_dir: String,
    /// Its name has its short id appended (another snapshot shown shares its second).
    pub suffixed: bool,
}

impl SnapEntry {
    /// Snapshot time in nanoseconds.
    #[must_use]
    pub fn time_ns(&self) -> i64 {
        self.listed.snapshot.time_ns
    }

    /// The dated name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.listed.name
    }

    /// The short id shown under `ids/`.
    #[must_use]
    pub fn short_id(&self) -> String {
        self.listed.id.short()
    }
}

/// A group of snapshots under `hosts/H` or `tags/T`.
#[derive(Debug, Default)]
pub struct Group {
    /// Cookie of the group's directory in `hosts/` or `tags/`.
    pub cookie: u64,
    /// Indices into [`View::snaps`], oldest first.
    pub members: Vec<usize>,
}

/// Everything above the snapshot contents, for one state of the repository. It points at the
/// mount's records rather than copying them: building a view allocates a few vectors, not a
/// record per snapshot.
#[derive(Debug, Default)]
pub struct View {
    /// Snapshots, oldest first.
    pub snaps: Vec<Arc<SnapEntry>>,
    /// Indices into `snaps`, by name.
    by_name: Vec<usize>,
    /// Indices into `snaps`, by id.
    by_id: Vec<usize>,
    /// Indices into `snaps`, by directory cookie: a listing of the root resumes with a
    /// binary search instead of sorting every snapshot again for each page the kernel asks
    /// (100,000 snapshots took 2 s to list).
    by_cookie: Vec<usize>,
    /// `hosts/` directories by (sanitised) name.
    pub hosts: BTreeMap<String, Group>,
    /// `tags/` directories by (sanitised) name.
    pub tags: BTreeMap<String, Group>,
    /// There are snapshots, and each is known to hold no extended attributes.
    pub without_xattrs: bool,
    /// There are snapshots, and each is known to hold no POSIX ACL.
    pub without_acls: bool,
}

/// Makes a host or tag usable as one directory name: no `/` or NUL, not empty, `.` or `..`.
#[must_use]
pub fn dir_name(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    match s.as_str() {
        "" => "_".into(),
        "." | ".." => format!("_{s}"),
        _ => s,
    }
}

impl View {
    /// Builds the view of `snaps` (oldest first, uniquely named), reusing `cookies` for the
    /// host and tag directories.
    #[must_use]
    pub fn build(snaps: Vec<Arc<SnapEntry>>, cookies: &mut Cookies) -> View {
        let mut view = View::default();
        for (i, s) in snaps.iter().enumerate() {
            view.hosts
                .entry(s.host_dir.clone())
                .or_insert_with(|| Group {
                    cookie: cookies.group(GroupKind::Host, &s.host_dir),
                    members: Vec::new(),
                })
                .members
                .push(i);
            for tag in &s.listed.snapshot.tags {
                let t = dir_name(tag);
                let group = view.tags.entry(t).or_insert_with_key(|t| Group {
                    cookie: cookies.group(GroupKind::Tag, t),
                    members: Vec::new(),
                });
                if group.members.last() != Some(&i) {
                    group.members.push(i);
                }
            }
        }
        view.by_name = (0..snaps.len()).collect();
        view.by_name
            .sort_unstable_by(|&a, &b| snaps[a].name().cmp(snaps[b].name()));
        view.by_id = (0..snaps.len()).collect();
        view.by_id.sort_unstable_by_key(|&i| snaps[i].listed.id);
        view.by_cookie = (0..snaps.len()).collect();
        view.by_cookie.sort_unstable_by_key(|&i| snaps[i].cookie);
        let all = |f: fn(&Snapshot) -> bool| {
            !snaps.is_empty() && snaps.iter().all(|s| f(&s.listed.snapshot))
        };
        view.without_xattrs = all(Snapshot::known_without_xattrs);
        view.without_acls = all(Snapshot::known_without_acls);
        view.snaps = snaps;
        view
    }

    /// The snapshots whose cookies come after `offset`, in cookie order.
    pub fn snaps_after(&self, offset: u64) -> impl Iterator<Item = &Arc<SnapEntry>> {
        let start = self
            .by_cookie
            .partition_point(|&i| self.snaps[i].cookie <= offset);
        self.by_cookie[start..].iter().map(|&i| &self.snaps[i])
    }

    /// The snapshot with dated name `name`.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&Arc<SnapEntry>> {
        let pos = self
            .by_name
            .binary_search_by(|&i| self.snaps[i].name().cmp(name))
            .ok()?;
        Some(&self.snaps[self.by_name[pos]])
    }

    /// The snapshot named under `ids/`: its short id or its full hex id.
    #[must_use]
    pub fn by_id(&self, name: &str) -> Option<&Arc<SnapEntry>> {
        let snap = |pos: usize| &self.snaps[self.by_id[pos]];
        if let Ok(id) = name.parse::<SnapshotId>() {
            let pos = self
                .by_id
                .binary_search_by_key(&id, |&i| self.snaps[i].listed.id)
                .ok()?;
            return Some(snap(pos));
        }
        let short = name.as_bytes();
        if short.len() != SHORT_ID_LEN {
            return None;
        }
        let pos = self
            .by_id
            .partition_point(|&i| self.snaps[i].listed.id.0.cmp_hex_prefix(short).is_lt());
        (pos < self.by_id.len() && snap(pos).listed.id.0.cmp_hex_prefix(short).is_eq())
            .then(|| snap(pos))
    }

    /// The newest snapshot.
    #[must_use]
    pub fn latest(&self) -> Option<&Arc<SnapEntry>> {
        self.snaps.last()
    }

    /// The newest time of any snapshot (0 if none), used as the root's mtime.
    #[must_use]
    pub fn newest_ns(&self) -> i64 {
        self.latest().map_or(0, |s| s.time_ns())
    }

    /// The members of a group, as snapshots.
    pub fn members<'a>(&'a self, g: &'a Group) -> impl Iterator<Item = &'a Arc<SnapEntry>> + 'a {
        g.members.iter().map(|&i| &self.snaps[i])
    }

    /// Ids of all snapshots, to tell whether a refresh changed anything.
    #[must_use]
    pub fn ids(&self) -> Vec<SnapshotId> {
        self.snaps.iter().map(|s| s.listed.id).collect()
    }
}

/// Hex digits of a short id ([`SnapshotId::short`]).
const SHORT_ID_LEN: usize = 8;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::bytes::ByteString;
    use crate::format::id::{Id, TreeId};
    use crate::format::snapshot::Summary;
    use crate::vfs::records::Records;

    pub(crate) fn snap(time_s: i64, host: &str, tags: &[&str]) -> (SnapshotId, Snapshot) {
        let s = Snapshot {
            time_ns: time_s * 1_000_000_000,
            hostname: host.into(),
            username: "u".into(),
            paths: vec![ByteString::from(b"/x".to_vec())],
            tags: tags.iter().map(|t| (*t).to_string()).collect(),
            root: TreeId(Id::hash(b"t")),
            parent: None,
            program_version: "t".into(),
            stdin: false,
            summary: Summary::default(),
            contents: None,
            commit: None,
            consistency: None,
        };
        let id = Id::hash(&[&time_s.to_le_bytes()[..], host.as_bytes()].concat());
        (SnapshotId(id), s)
    }

    /// The view a mount holding `records` shows of `snaps`, as a refresh builds it.
    pub(crate) fn view_of(records: &mut Records, snaps: &[(SnapshotId, Snapshot)]) -> View {
        records.retain(|id, _| snaps.iter().any(|(i, _)| i == id));
        for (id, s) in snaps {
            if !records.contains(id) {
                records.insert(*id, s.clone());
            }
        }
        let mut shown = records.sorted();
        records.name(&mut shown);
        View::build(shown, &mut records.cookies)
    }

    #[test]
    fn groups_names_and_stable_cookies() {
        let mut records = Records::default();
        let a = vec![
            snap(1_800_000_000, "alpha", &["daily"]),
            snap(1_800_000_000, "beta/x", &["daily", "daily"]),
            snap(1_800_000_100, "..", &[]),
        ];
        let v1 = view_of(&mut records, &a);
        assert_eq!(v1.snaps.len(), 3);
        assert!(v1.by_name("2027-01-15T080000Z").is_some());
        let second = v1.snaps[1].name().to_string();
        assert!(second.starts_with("2027-01-15T080000Z-"), "{second}");
        assert_eq!(
            v1.by_name(&second).unwrap().listed.id,
            v1.snaps[1].listed.id
        );
        assert!(
            v1.by_name("2027-01-15T080000").is_none(),
            "a prefix names nothing"
        );
        assert_eq!(
            v1.hosts.keys().collect::<Vec<_>>(),
            vec!["_..", "alpha", "beta_x"]
        );
        assert_eq!(v1.tags["daily"].members, vec![0, 1]);
        for s in &v1.snaps {
            assert_eq!(v1.by_id(&s.short_id()).unwrap().name(), s.name());
            assert_eq!(v1.by_id(&s.listed.id.to_hex()).unwrap().name(), s.name());
            assert!(
                v1.by_id(&s.short_id()[..7]).is_none(),
                "7 digits name nothing"
            );
            assert!(v1.by_id(&s.short_id().to_uppercase()).is_none());
        }

        // Forget the first snapshot, add a new one: survivors keep their cookies.
        let mut b = a[1..].to_vec();
        b.push(snap(1_800_000_200, "alpha", &[]));
        let v2 = view_of(&mut records, &b);
        assert_eq!(v2.snaps[0].cookie, v1.snaps[1].cookie);
        assert_eq!(v2.snaps[1].cookie, v1.snaps[2].cookie);
        assert!(v2.snaps[2].cookie > v1.snaps[2].cookie);
        assert_eq!(v2.hosts["alpha"].cookie, v1.hosts["alpha"].cookie);
        assert_eq!(v2.newest_ns(), 1_800_000_200 * 1_000_000_000);
        // The survivor of the same second lost its suffix: it now has the plain name.
        assert_eq!(v2.snaps[0].name(), "2027-01-15T080000Z");
        assert!(v2.by_name(&second).is_none());
    }

    #[test]
    fn listing_by_pages_resumes_after_the_last_cookie_whatever_the_times() {
        let mut records = Records::default();
        let mut snaps: Vec<_> = (0..50).map(|i| snap(1_800_000_000 + i, "h", &[])).collect();
        view_of(&mut records, &snaps);
        // Snapshots that land later but are older (a host whose clock lags, a copy): their
        // cookies are the newest, their places in time order the first.
        snaps.extend((0..20).map(|i| snap(1_700_000_000 + i, "late", &[])));
        let v = view_of(&mut records, &snaps);
        assert!(v.snaps[0].cookie > v.snaps[69].cookie);
        let mut seen = Vec::new();
        let mut offset = 0;
        // Bounded: a resumption that repeats an entry would list forever.
        for _ in 0..20 {
            let page: Vec<_> = v.snaps_after(offset).take(7).collect();
            let Some(last) = page.last() else { break };
            offset = last.cookie;
            seen.extend(page.iter().map(|s| (s.cookie, s.listed.id)));
        }
        assert_eq!(seen.len(), 70, "each snapshot once");
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in cookie order");
        let mut ids: Vec<_> = seen.iter().map(|(_, id)| *id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 70);
    }

    #[test]
    fn every_snapshot_is_found_by_name_and_id_among_many() {
        let many: Vec<_> = (0..300)
            .map(|i: i64| {
                let (_, s) = snap(1_800_000_000 + i / 3, "h", &[]);
                (SnapshotId(Id::hash(&i.to_be_bytes())), s)
            })
            .collect();
        let v = view_of(&mut Records::default(), &many);
        assert_eq!(v.snaps.len(), 300);
        for s in &v.snaps {
            assert!(Arc::ptr_eq(v.by_name(s.name()).unwrap(), s), "{}", s.name());
            assert!(Arc::ptr_eq(v.by_id(&s.short_id()).unwrap(), s));
            assert!(Arc::ptr_eq(v.by_id(&s.listed.id.to_hex()).unwrap(), s));
        }
    }
}
