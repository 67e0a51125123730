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

/// Cookies handed out so far: the same key keeps its cookie for the life of the mount.
#[derive(Debug)]
pub struct Cookies {
    next: u64,
    map: HashMap<String, u64>,
}

impl Default for Cookies {
    fn default() -> Self {
        Cookies {
            next: FIRST_DYNAMIC,
            map: HashMap::new(),
        }
    }
}

impl Cookies {
    fn get(&mut self, key: String) -> u64 {
        let next = &mut self.next;
        *self.map.entry(key).or_insert_with(|| {
            *next += 1;
            *next - 1
        })
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
}

impl SnapEntry {
    /// Snapshot time in nanoseconds.
    #[must_use]
    pub fn time_ns(&self) -> i64 {
        self.listed.snapshot.time_ns
    }

    /// The dated directory name.
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

/// Everything above the snapshot contents, for one state of the repository.
#[derive(Debug, Default)]
pub struct View {
    /// Snapshots, oldest first.
    pub snaps: Vec<Arc<SnapEntry>>,
    by_name: HashMap<String, usize>,
    by_short_id: HashMap<String, usize>,
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
    /// Builds the view of `listed` (oldest first, uniquely named), reusing `cookies`.
    #[must_use]
    pub fn build(listed: Vec<Listed>, cookies: &mut Cookies) -> View {
        let mut view = View::default();
        for (i, l) in listed.into_iter().enumerate() {
            let host_dir = dir_name(&l.snapshot.hostname);
            let cookie = cookies.get(format!("s:{}", l.id.to_hex()));
            view.hosts
                .entry(host_dir.clone())
                .or_insert_with(|| Group {
                    cookie: cookies.get(format!("h:{host_dir}")),
                    members: Vec::new(),
                })
                .members
                .push(i);
            for tag in &l.snapshot.tags {
                let t = dir_name(tag);
                let group = view.tags.entry(t.clone()).or_insert_with(|| Group {
                    cookie: cookies.get(format!("t:{t}")),
                    members: Vec::new(),
                });
                if group.members.last() != Some(&i) {
                    group.members.push(i);
                }
            }
            view.by_name.insert(l.name.clone(), i);
            view.by_short_id.insert(l.id.short(), i);
            view.snaps.push(Arc::new(SnapEntry {
                listed: l,
                cookie,
                host_dir,
            }));
        }
        let all = |f: fn(&Snapshot) -> bool| {
            !view.snaps.is_empty() && view.snaps.iter().all(|s| f(&s.listed.snapshot))
        };
        view.without_xattrs = all(Snapshot::known_without_xattrs);
        view.without_acls = all(Snapshot::known_without_acls);
        view
    }

    /// The snapshot with dated name `name`.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&Arc<SnapEntry>> {
        self.by_name.get(name).map(|&i| &self.snaps[i])
    }

    /// The snapshot named under `ids/`: its short id or its full hex id.
    #[must_use]
    pub fn by_id(&self, name: &str) -> Option<&Arc<SnapEntry>> {
        if let Some(&i) = self.by_short_id.get(name) {
            return Some(&self.snaps[i]);
        }
        let id: SnapshotId = name.parse().ok()?;
        self.snaps.iter().find(|s| s.listed.id == id)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::bytes::ByteString;
    use crate::format::id::{Id, TreeId};
    use crate::format::snapshot::Summary;

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
        };
        (SnapshotId(Id::hash(&time_s.to_le_bytes())), s)
    }

    #[test]
    fn groups_names_and_stable_cookies() {
        let mut cookies = Cookies::default();
        let a = vec![
            snap(1_800_000_000, "alpha", &["daily"]),
            snap(1_800_000_000, "beta/x", &["daily", "daily"]),
            snap(1_800_000_100, "..", &[]),
        ];
        let v1 = View::build(crate::snapshot::name_all(a.clone()), &mut cookies);
        assert_eq!(v1.snaps.len(), 3);
        assert!(v1.by_name("2027-01-15T080000Z").is_some());
        let second = v1.snaps[1].name().to_string();
        assert!(second.starts_with("2027-01-15T080000Z-"), "{second}");
        assert_eq!(
            v1.hosts.keys().collect::<Vec<_>>(),
            vec!["_..", "alpha", "beta_x"]
        );
        assert_eq!(v1.tags["daily"].members, vec![0, 1]);
        let short = v1.snaps[2].short_id();
        assert_eq!(v1.by_id(&short).unwrap().name(), v1.snaps[2].name());
        let full = v1.snaps[2].listed.id.to_hex();
        assert_eq!(v1.by_id(&full).unwrap().name(), v1.snaps[2].name());

        // Forget the first snapshot, add a new one: survivors keep their cookies.
        let mut b = a[1..].to_vec();
        b.push(snap(1_800_000_200, "alpha", &[]));
        let v2 = View::build(crate::snapshot::name_all(b), &mut cookies);
        assert_eq!(v2.snaps[0].cookie, v1.snaps[1].cookie);
        assert_eq!(v2.snaps[1].cookie, v1.snaps[2].cookie);
        assert!(v2.snaps[2].cookie > v1.snaps[2].cookie);
        assert_eq!(v2.hosts["alpha"].cookie, v1.hosts["alpha"].cookie);
        assert_eq!(v2.newest_ns(), 1_800_000_200 * 1_000_000_000);
    }
}
