//! The mount's top level as data: which dated directories, `latest`, `hosts/`, `tags/` and
//! `ids/` entries exist for a given list of snapshots (`at/` and `versions/` are always there).
//!
//! The root changes while mounted (backups land, snapshots are forgotten), so every entry gets a
//! directory cookie that never changes for as long as the mount lives ([`Cookies`]):
//! `seekdir(telldir())` on the root resumes at the right entry even across a refresh. Snapshot
//! contents never change and need no such care.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::format::id::{SnapshotId, TreeId, WriterId};
use crate::format::snapshot::Snapshot;

use super::attr::DirFacts;

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

/// One snapshot as the mount shows it: what its directories need of the record, not the
/// record itself (about 200 bytes; the records of a million snapshots would hold over a
/// gigabyte for as long as the mount lives).
#[derive(Clone, Debug)]
pub struct SnapEntry {
    /// Its id.
    pub id: SnapshotId,
    /// Snapshot time in nanoseconds.
    pub time_ns: i64,
    /// Its root tree.
    pub root: TreeId,
    /// Its dated name (unique among those shown).
    name: Box<str>,
    /// Its cookie in the root and in `hosts/H`, `tags/T` and `ids`.
    pub cookie: u64,
    /// Its directory name under `hosts/` (sanitised host name), shared with the other
    /// snapshots of its host.
    pub host_dir: Arc<str>,
    /// Its tags as recorded, shared with the other snapshots that have the same ones.
    pub tags: Arc<[String]>,
    /// The writer that committed it, for the fences (`None`: it names none).
    pub writer: Option<WriterId>,
    /// Its root directory's link count and size when the record's source paths give them
    /// (the first components of its source paths); otherwise the root tree is read.
    pub root_facts: Option<DirFacts>,
    /// It is known to hold no extended attributes.
    pub without_xattrs: bool,
    /// It is known to hold no POSIX ACL.
    pub without_acls: bool,
    /// Its name has its short id appended (another snapshot shown shares its second).
    pub suffixed: bool,
}

impl SnapEntry {
    /// What the mount keeps of `snapshot`, named plainly by its time; `host_dir` and `tags`
    /// are the shared copies of its host's directory name and its tags.
    #[must_use]
    pub fn of(
        id: SnapshotId,
        snapshot: &Snapshot,
        cookie: u64,
        host_dir: Arc<str>,
        tags: Arc<[String]>,
    ) -> SnapEntry {
        SnapEntry {
            id,
            time_ns: snapshot.time_ns,
            root: snapshot.root,
            name: crate::snapshot::dated_name(snapshot.time_ns).into(),
            cookie,
            host_dir,
            tags,
            writer: snapshot.commit.map(|c| c.writer),
            root_facts: root_facts(snapshot),
            without_xattrs: snapshot.known_without_xattrs(),
            without_acls: snapshot.known_without_acls(),
            suffixed: false,
        }
    }

    /// The same snapshot named `name` (`suffixed`: with its short id appended).
    #[must_use]
    pub fn renamed(&self, name: String, suffixed: bool) -> SnapEntry {
        SnapEntry {
            name: name.into(),
            suffixed,
            ..self.clone()
        }
    }

    /// Snapshot time in nanoseconds.
    #[must_use]
    pub fn time_ns(&self) -> i64 {
        self.time_ns
    }

    /// The dated name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The short id shown under `ids/`.
    #[must_use]
    pub fn short_id(&self) -> String {
        self.id.short()
    }
}

/// `nlink` and entry count of a snapshot's root directory from the snapshot record alone:
/// its entries are the first components of the source paths (all directories), or the stdin
/// file. Listing the top level of a mount of 1,000 snapshots then reads no tree (and does
/// not wait for the index). `None` when a source path is `/` itself.
fn root_facts(snap: &Snapshot) -> Option<DirFacts> {
    if snap.stdin {
        return Some(DirFacts {
            nlink: 2,
            entries: 1,
        });
    }
    let mut firsts = std::collections::BTreeSet::new();
    for p in &snap.paths {
        let first = p.as_path().components().find_map(|c| match c {
            std::path::Component::Normal(n) => Some(n),
            _ => None,
        })?;
        firsts.insert(first);
    }
    Some(DirFacts {
        nlink: u32::try_from(firsts.len() + 2).unwrap_or(u32::MAX),
        entries: firsts.len() as u64,
    })
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

/// Puts snapshot `i` into the group `name` of `groups` (in order, once), or makes the group.
fn join(
    groups: &mut BTreeMap<String, Group>,
    (kind, name): (GroupKind, &str),
    i: usize,
    cookies: &mut Cookies,
) {
    match groups.get_mut(name) {
        Some(g) => {
            let p = g.members.partition_point(|&j| j < i);
            if g.members.get(p) != Some(&i) {
                g.members.insert(p, i);
            }
        }
        None => {
            let cookie = cookies.group(kind, name);
            let members = vec![i];
            groups.insert(name.to_string(), Group { cookie, members });
        }
    }
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
        // Members gathered by the host name and the list of tags each record shares with
        // others of its host (one copy each in `Records`), then by name: a map lookup by name
        // for each of a million records cost half a second.
        let mut hosts: HashMap<usize, (&Arc<str>, Vec<usize>)> = HashMap::new();
        let mut tag_lists: HashMap<usize, (&Arc<[String]>, Vec<usize>)> = HashMap::new();
        for (i, s) in snaps.iter().enumerate() {
            let at = Arc::as_ptr(&s.host_dir).cast::<u8>() as usize;
            hosts
                .entry(at)
                .or_insert((&s.host_dir, Vec::new()))
                .1
                .push(i);
            if !s.tags.is_empty() {
                let at = Arc::as_ptr(&s.tags).cast::<u8>() as usize;
                tag_lists
                    .entry(at)
                    .or_insert((&s.tags, Vec::new()))
                    .1
                    .push(i);
            }
        }
        // In the order of their first members, so that cookies go out as they always did.
        let mut hosts: Vec<_> = hosts.into_values().collect();
        hosts.sort_unstable_by_key(|(_, members)| members[0]);
        for (name, members) in hosts {
            match view.hosts.get_mut(&**name) {
                Some(g) => g.members.extend(members),
                None => {
                    let cookie = cookies.group(GroupKind::Host, name);
                    view.hosts
                        .insert(name.to_string(), Group { cookie, members });
                }
            }
        }
        let mut tag_lists: Vec<_> = tag_lists.into_values().collect();
        tag_lists.sort_unstable_by_key(|(_, members)| members[0]);
        for (list, members) in tag_lists {
            let mut names: Vec<String> = list.iter().map(|t| dir_name(t)).collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                match view.tags.get_mut(&name) {
                    Some(g) => g.members.extend(&members),
                    None => {
                        let cookie = cookies.group(GroupKind::Tag, &name);
                        let members = members.clone();
                        view.tags.insert(name, Group { cookie, members });
                    }
                }
            }
        }
        // A group gathered from more than one copy of a name, or from several lists of tags,
        // is put back in order (oldest first).
        for g in view.hosts.values_mut().chain(view.tags.values_mut()) {
            g.members.sort_unstable();
        }
        // Each index is sorted by a key copied out of the records: comparing through them
        // (a pointer to the record, and one to its name) cost over a second a million.
        // Dated names sort as their seconds do, a plain name before the suffixed ones of its
        // second, and those by id: sorted by that key, checked in one pass, and sorted by the
        // names themselves should a name not follow the rule (a year past 9999).
        view.by_name = (0..snaps.len()).collect();
        view.by_name.sort_by_cached_key(|&i| {
            let s = &snaps[i];
            (s.time_ns.div_euclid(1_000_000_000), s.suffixed, s.id)
        });
        if !view
            .by_name
            .windows(2)
            .all(|w| snaps[w[0]].name() < snaps[w[1]].name())
        {
            view.by_name
                .sort_unstable_by(|&a, &b| snaps[a].name().cmp(snaps[b].name()));
        }
        view.by_id = (0..snaps.len()).collect();
        view.by_id.sort_by_cached_key(|&i| snaps[i].id);
        view.by_cookie = (0..snaps.len()).collect();
        view.by_cookie.sort_by_cached_key(|&i| snaps[i].cookie);
        let all = |f: fn(&SnapEntry) -> bool| !snaps.is_empty() && snaps.iter().all(|s| f(s));
        view.without_xattrs = all(|s| s.without_xattrs);
        view.without_acls = all(|s| s.without_acls);
        view.snaps = snaps;
        view
    }

    /// The view [`View::build`] would give of `snaps` (oldest first, uniquely named): these
    /// snapshots, in the same order and with the same names, with new ones at the places
    /// `at` (ascending). Made by copying this view's indexes and inserting into them,
    /// without sorting a million entries again.
    #[must_use]
    pub fn with_inserted(
        &self,
        snaps: Vec<Arc<SnapEntry>>,
        at: &[usize],
        cookies: &mut Cookies,
    ) -> View {
        // An old index's new one: past every new snapshot placed before it.
        let placed: Vec<usize> = at.iter().enumerate().map(|(k, &p)| p - k).collect();
        let moved = |i: &usize| i + placed.partition_point(|&p| p <= *i);
        let remap = |v: &Vec<usize>| -> Vec<usize> { v.iter().map(moved).collect() };
        let groups = |g: &BTreeMap<String, Group>| -> BTreeMap<String, Group> {
            g.iter()
                .map(|(name, g)| {
                    let members = remap(&g.members);
                    (
                        name.clone(),
                        Group {
                            cookie: g.cookie,
                            members,
                        },
                    )
                })
                .collect()
        };
        let mut view = View {
            by_name: remap(&self.by_name),
            by_id: remap(&self.by_id),
            by_cookie: remap(&self.by_cookie),
            hosts: groups(&self.hosts),
            tags: groups(&self.tags),
            without_xattrs: self.without_xattrs || self.snaps.is_empty(),
            without_acls: self.without_acls || self.snaps.is_empty(),
            snaps,
        };
        let snaps = &view.snaps;
        for &i in at {
            let s = &snaps[i];
            let p = view
                .by_name
                .partition_point(|&j| snaps[j].name() < s.name());
            view.by_name.insert(p, i);
            let p = view.by_id.partition_point(|&j| snaps[j].id < s.id);
            view.by_id.insert(p, i);
            let p = view
                .by_cookie
                .partition_point(|&j| snaps[j].cookie < s.cookie);
            view.by_cookie.insert(p, i);
            join(&mut view.hosts, (GroupKind::Host, &s.host_dir), i, cookies);
            for tag in s.tags.iter() {
                join(&mut view.tags, (GroupKind::Tag, &dir_name(tag)), i, cookies);
            }
            view.without_xattrs &= s.without_xattrs;
            view.without_acls &= s.without_acls;
        }
        view.without_xattrs &= !view.snaps.is_empty();
        view.without_acls &= !view.snaps.is_empty();
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
                .binary_search_by_key(&id, |&i| self.snaps[i].id)
                .ok()?;
            return Some(snap(pos));
        }
        let short = name.as_bytes();
        if short.len() != SHORT_ID_LEN {
            return None;
        }
        let pos = self
            .by_id
            .partition_point(|&i| self.snaps[i].id.0.cmp_hex_prefix(short).is_lt());
        (pos < self.by_id.len() && snap(pos).id.0.cmp_hex_prefix(short).is_eq()).then(|| snap(pos))
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

    /// Which of these snapshots (by their places in `snaps`) `other` does not show under the
    /// same name: one pass over both views' names in order, not a search per snapshot.
    #[must_use]
    pub fn names_missing_from(&self, other: &View) -> Vec<bool> {
        let mut gone = vec![false; self.snaps.len()];
        let mut theirs = other
            .by_name
            .iter()
            .map(|&i| other.snaps[i].name())
            .peekable();
        for &i in &self.by_name {
            let name = self.snaps[i].name();
            while theirs.next_if(|t| *t < name).is_some() {}
            gone[i] = theirs.next_if(|t| *t == name).is_none();
        }
        gone
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
        records.retain(|e| snaps.iter().any(|(i, _)| *i == e.id));
        for (id, s) in snaps {
            records.insert(*id, s);
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
        assert_eq!(v1.by_name(&second).unwrap().id, v1.snaps[1].id);
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
            assert_eq!(v1.by_id(&s.id.to_hex()).unwrap().name(), s.name());
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
            seen.extend(page.iter().map(|s| (s.cookie, s.id)));
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
            assert!(Arc::ptr_eq(v.by_id(&s.id.to_hex()).unwrap(), s));
        }
    }

    /// A record with the given copies of its host name and tags.
    fn entry_with(time_s: i64, host: &Arc<str>, tags: &Arc<[String]>) -> Arc<SnapEntry> {
        let (id, s) = snap(time_s, host, &[]);
        Arc::new(SnapEntry::of(id, &s, 0, Arc::clone(host), Arc::clone(tags)))
    }

    fn entry(time_s: i64, host: &str) -> Arc<SnapEntry> {
        entry_with(time_s, &host.into(), &Arc::from(Vec::<String>::new()))
    }

    #[test]
    fn groups_gather_members_from_every_copy_of_a_name_in_time_order() {
        // Two copies of the host name "h" (a name dropped and taken in again while an older
        // view held the first), the first copy's members on both sides of the second's; and
        // lists of tags that overlap or repeat a tag, shared the same way.
        let (h1, h2, g): (Arc<str>, Arc<str>, Arc<str>) = ("h".into(), "h".into(), "g".into());
        let list =
            |tags: &[&str]| -> Arc<[String]> { tags.iter().map(|t| t.to_string()).collect() };
        let (ab, b, bb, ax, none) = (
            list(&["a", "b"]),
            list(&["b"]),
            list(&["b", "b"]),
            list(&["a/x"]),
            list(&[]),
        );
        let snaps = vec![
            entry_with(1, &h1, &ab),
            entry_with(2, &g, &b),
            entry_with(3, &h2, &bb),
            entry_with(4, &h1, &ab),
            entry_with(5, &g, &ax),
            entry_with(6, &h2, &none),
        ];
        let mut cookies = Cookies::default();
        let v = View::build(snaps, &mut cookies);
        assert_eq!(v.hosts["h"].members, vec![0, 2, 3, 5]);
        assert_eq!(v.hosts["g"].members, vec![1, 4]);
        assert_eq!(v.tags["a"].members, vec![0, 3]);
        assert_eq!(
            v.tags["b"].members,
            vec![0, 1, 2, 3],
            "once each, oldest first"
        );
        assert_eq!(v.tags["a_x"].members, vec![4]);
        assert_eq!(v.tags.len(), 3);
        // Cookies go out in the order of first members: hosts, then tags.
        assert!(v.hosts["h"].cookie < v.hosts["g"].cookie);
        assert!(v.tags["a"].cookie < v.tags["a_x"].cookie);
        assert!(v.tags["a"].cookie > v.hosts["g"].cookie);
    }

    #[test]
    fn names_that_do_not_sort_as_their_times_are_still_found() {
        // Names out of time order (what a year past 9999 would give): the index falls back
        // to sorting the names themselves.
        let a = Arc::new(entry(1, "h").renamed("z-first".into(), false));
        let b = Arc::new(entry(2, "h").renamed("a-second".into(), false));
        let c = Arc::new(entry(3, "h").renamed("m-third".into(), false));
        let v = View::build(vec![a, b, c], &mut Cookies::default());
        for name in ["z-first", "a-second", "m-third"] {
            assert_eq!(v.by_name(name).map(|s| s.name()), Some(name));
        }
        assert!(v.by_name("b").is_none());
    }

    /// Everything a view shows, in every index's order, for comparing two views.
    type Shown = (
        Vec<(SnapshotId, String, u64)>,
        Vec<String>,
        Vec<SnapshotId>,
        Vec<u64>,
        Vec<(String, u64, Vec<usize>)>,
        Vec<(String, u64, Vec<usize>)>,
        (bool, bool),
    );

    fn shown(v: &View) -> Shown {
        let groups = |g: &BTreeMap<String, Group>| {
            g.iter()
                .map(|(n, g)| (n.clone(), g.cookie, g.members.clone()))
                .collect()
        };
        (
            v.snaps
                .iter()
                .map(|s| (s.id, s.name().to_string(), s.cookie))
                .collect(),
            v.by_name
                .iter()
                .map(|&i| v.snaps[i].name().to_string())
                .collect(),
            v.by_id.iter().map(|&i| v.snaps[i].id).collect(),
            v.by_cookie.iter().map(|&i| v.snaps[i].cookie).collect(),
            groups(&v.hosts),
            groups(&v.tags),
            (v.without_xattrs, v.without_acls),
        )
    }

    #[test]
    fn a_view_with_snapshots_inserted_is_the_view_built_of_them_all() {
        use crate::format::snapshot::Contents;
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let (mut inserted, mut refused) = (0, 0);
        for round in 0..200 {
            let count = 2 + next(40);
            let mut time_ns = 1_800_000_000_000_000_000_i64;
            let all: Vec<(SnapshotId, Snapshot)> = (0..count)
                .map(|k| {
                    // Several snapshots of a second now and then: suffixed names.
                    time_ns +=
                        [1, 300_000_000, 1_000_000_000, 86_400_000_000_000][next(4) as usize];
                    let host = ["a", "b", "c/d"][next(3) as usize];
                    let tags: &[&str] =
                        [&[][..], &["x"], &["x", "y"], &["y", "y"], &["x/z"]][next(5) as usize];
                    let (_, mut s) = snap(0, host, tags);
                    s.time_ns = time_ns;
                    s.contents = (next(4) > 0).then(|| Contents {
                        xattr_entries: u64::from(next(5) == 0),
                        acl_entries: u64::from(next(5) == 0),
                    });
                    (
                        SnapshotId(Id::hash(&[round, k].map(u64::to_le_bytes).concat())),
                        s,
                    )
                })
                .collect();
            // Shown first: a random part of them (the oldest among them), in half the rounds
            // the oldest ones (new ones then only come after, as while hosts back up).
            let appending = round % 2 == 0;
            let first = 1 + next(count - 1);
            let mut shown_first = Vec::new();
            let mut new = Vec::new();
            for (k, s) in (0..).zip(all) {
                let old = if appending {
                    k < first
                } else {
                    k == 0 || next(3) > 0
                };
                if old { &mut shown_first } else { &mut new }.push(s);
            }
            let mut records = Records::default();
            let old = view_of(&mut records, &shown_first);
            let new: Vec<Arc<SnapEntry>> = new
                .iter()
                .map(|(id, s)| {
                    records.insert(*id, s);
                    records.get(id).unwrap()
                })
                .collect();
            let result = records.insert_into(&old, new);
            let mut every = records.sorted();
            records.name(&mut every);
            let built = View::build(every, &mut records.cookies);
            match result {
                Some(v) => {
                    inserted += 1;
                    assert_eq!(shown(&v), shown(&built), "round {round}");
                }
                None => {
                    // Refused only when the whole list names a snapshot shown otherwise.
                    refused += 1;
                    assert!(!appending, "round {round}: appending never renames");
                    assert!(
                        old.snaps
                            .iter()
                            .any(|o| built.by_id(&o.id.to_hex()).unwrap().name() != o.name()),
                        "round {round}: refused, yet no name shown changes"
                    );
                }
            }
        }
        assert!(
            inserted > 100 && refused > 5,
            "{inserted} inserted, {refused} refused"
        );
    }
}
