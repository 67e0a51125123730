//! What each kind of directory lists, with cookies that resume a listing where it stopped.
//!
//! A snapshot's directory never changes: entry `i` has cookie `3 + i`. The synthetic
//! directories change as backups land, so their entries carry the lasting cookies of
//! [`super::view::Cookies`] and are sorted by them.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::dirs::{Dir, Item, at_dir_item, group, group_item, link_item, node_item, snap_item};
use super::inodes::{AT, HOSTS, IDS, ROOT, TAGS, VERSIONS, group_ino};
use super::view::{
    COOKIE_AT, COOKIE_DOT, COOKIE_DOTDOT, COOKIE_HOSTS, COOKIE_IDS, COOKIE_LATEST, COOKIE_TAGS,
    COOKIE_VERSIONS, SnapEntry, View,
};
use super::{Errno, Kind, Vfs};

/// Receives each entry (cookie, name, item); returns `true` when it wants no more.
pub(super) type Emit<'a> = dyn FnMut(u64, &OsStr, Item) -> bool + 'a;

impl Vfs {
    /// Calls `emit` for each entry of `dir` (inode `dir_ino`) after cookie `offset`.
    pub(super) fn entries(
        &self,
        dir: &Dir,
        dir_ino: u64,
        offset: u64,
        emit: &mut Emit<'_>,
    ) -> Result<(), Errno> {
        let parent = match dir {
            Dir::Root | Dir::Groups(_) | Dir::Ids | Dir::At { host: None, .. } => ROOT,
            Dir::At { host: Some(h), .. } => group_ino(HOSTS, h).0,
            Dir::Group { parent, .. } | Dir::Tree { parent, .. } => *parent,
            Dir::Versions { path, .. } => super::versions::parent_ino(path),
        };
        let dots = [
            (COOKIE_DOT, ".", Item::Fixed(dir_ino, Kind::Dir)),
            (COOKIE_DOTDOT, "..", Item::Fixed(parent, Kind::Dir)),
        ];
        if let Dir::Tree {
            snap,
            ino,
            id,
            tree,
            ..
        } = dir
        {
            for (cookie, name, item) in dots {
                if cookie > offset && emit(cookie, OsStr::new(name), item) {
                    return Ok(());
                }
            }
            let start = usize::try_from(offset.saturating_sub(COOKIE_DOTDOT)).unwrap_or(usize::MAX);
            for pos in start..tree.entries.len() {
                let name = tree.entries[pos].name.as_os_str();
                if emit(pos as u64 + 3, name, node_item(snap, *ino, *id, tree, pos)) {
                    return Ok(());
                }
            }
            return Ok(());
        }
        let mut rows: Vec<(u64, Row<'_>)> = dots
            .into_iter()
            .map(|(c, n, i)| (c, Row::Made(n.as_bytes().to_vec(), i)))
            .collect();
        let view = self.state.view();
        // Directories of every snapshot: the few fixed rows, then the snapshots from the
        // first one after `offset` (their cookies are above every fixed one).
        let every = match dir {
            Dir::Root => Some(SnapRow::Dir),
            Dir::Ids => Some(SnapRow::Id),
            Dir::At { ino, host: None } => Some(SnapRow::At(*ino)),
            _ => None,
        };
        if let Some(how) = every {
            if matches!(dir, Dir::Root) {
                root_fixed_rows(&view, &mut rows);
            }
            rows.sort_by_key(|(c, _)| *c);
            let snaps = view
                .snaps_after(offset)
                .map(|s| (s.cookie, Row::Snap(s, how)));
            for (cookie, row) in rows.into_iter().filter(|(c, _)| *c > offset).chain(snaps) {
                let (name, item) = row.make();
                if emit(cookie, OsStr::from_bytes(&name), item) {
                    return Ok(());
                }
            }
            return Ok(());
        }
        match dir {
            Dir::Versions { ino, path } => {
                let mut items = Vec::new();
                self.versions_entries(*ino, path, &mut items);
                rows.extend(items.into_iter().map(|(c, n, i)| (c, Row::Made(n, i))));
            }
            _ => synthetic_rows(&view, dir, &mut rows),
        }
        // Only the entries listed in this call are made into names and items: a listing of
        // thousands of snapshots takes several calls, each allocating for its own page.
        rows.sort_by_key(|(c, _)| *c);
        let first = rows.partition_point(|(c, _)| *c <= offset);
        for (cookie, row) in rows.drain(first..) {
            let (name, item) = row.make();
            if emit(cookie, OsStr::from_bytes(&name), item) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// An entry of a synthetic directory, made into a name and an [`Item`] only when listed.
enum Row<'v> {
    /// Made already (the dots, the fixed entries, `versions/`).
    Made(Vec<u8>, Item),
    /// Group directory `name` in `hosts/` or `tags/` (`parent`).
    Group(u64, &'v str),
    /// A snapshot, as the entry of a directory.
    Snap(&'v Arc<SnapEntry>, SnapRow),
}

/// How a directory shows a snapshot.
#[derive(Clone, Copy)]
enum SnapRow {
    /// Its dated directory (the top level).
    Dir,
    /// A link named by its short id to the dated directory (`ids/`).
    Id,
    /// A link to the dated directory beside `at/` (`at/` or `hosts/H/at/`, inode given).
    At(u64),
    /// A link to the dated directory two levels up (`hosts/H/`, `tags/T/`, inode given).
    Member(u64),
    /// `latest` in a group directory (inode given).
    GroupLatest(u64),
}

impl Row<'_> {
    fn make(self) -> (Vec<u8>, Item) {
        match self {
            Row::Made(name, item) => (name, item),
            Row::Group(parent, name) => (name.as_bytes().to_vec(), group_item(parent, name)),
            Row::Snap(s, how) => {
                let (name, item) = match how {
                    SnapRow::Dir => (s.name().to_string(), snap_item(s)),
                    SnapRow::Id => {
                        let id = s.short_id();
                        let item = link_item(IDS, &id, format!("../{}", s.name()), s.time_ns());
                        (id, item)
                    }
                    SnapRow::At(ino) => {
                        let target = super::at::link_target(s);
                        (
                            s.name().to_string(),
                            link_item(ino, s.name(), target, s.time_ns()),
                        )
                    }
                    SnapRow::Member(ino) => {
                        let target = format!("../../{}", s.name());
                        (
                            s.name().to_string(),
                            link_item(ino, s.name(), target, s.time_ns()),
                        )
                    }
                    SnapRow::GroupLatest(ino) => {
                        let target = format!("../../{}", s.name());
                        (
                            "latest".to_string(),
                            link_item(ino, "latest", target, s.time_ns()),
                        )
                    }
                };
                (name.into_bytes(), item)
            }
        }
    }
}

/// The entries of the top level, `hosts/`, `tags/`, a group, `ids/` and `at/`, by cookie.
/// The root's entries other than the dots and the snapshots.
fn root_fixed_rows<'v>(view: &'v View, rows: &mut Vec<(u64, Row<'v>)>) {
    let made = |name: &str, item: Item| Row::Made(name.as_bytes().to_vec(), item);
    if let Some(l) = view.latest() {
        let link = link_item(ROOT, "latest", l.name().into(), l.time_ns());
        rows.push((COOKIE_LATEST, made("latest", link)));
    }
    for (cookie, name, ino) in [
        (COOKIE_HOSTS, "hosts", HOSTS),
        (COOKIE_TAGS, "tags", TAGS),
        (COOKIE_IDS, "ids", IDS),
        (COOKIE_AT, "at", AT),
        (COOKIE_VERSIONS, "versions", VERSIONS),
    ] {
        rows.push((cookie, made(name, Item::Fixed(ino, Kind::Dir))));
    }
}

fn synthetic_rows<'v>(view: &'v View, dir: &Dir, rows: &mut Vec<(u64, Row<'v>)>) {
    let made = |name: &str, item: Item| Row::Made(name.as_bytes().to_vec(), item);
    match dir {
        Dir::Groups(p) => {
            let groups = if *p == HOSTS { &view.hosts } else { &view.tags };
            rows.extend(
                groups
                    .iter()
                    .map(|(name, g)| (g.cookie, Row::Group(*p, name))),
            );
        }
        Dir::At { ino, host: Some(h) } => {
            if let Some(g) = view.hosts.get(h) {
                let at = SnapRow::At(*ino);
                rows.extend(view.members(g).map(|s| (s.cookie, Row::Snap(s, at))));
            }
        }
        Dir::Group { parent, ino, name } => {
            if *parent == HOSTS {
                rows.push((COOKIE_AT, made("at", at_dir_item(name))));
            }
            if let Some(g) = group(view, *parent, name) {
                if let Some(l) = view.members(g).last() {
                    rows.push((COOKIE_LATEST, Row::Snap(l, SnapRow::GroupLatest(*ino))));
                }
                let member = SnapRow::Member(*ino);
                rows.extend(view.members(g).map(|s| (s.cookie, Row::Snap(s, member))));
            }
        }
        // Listed by `Vfs::entries` itself.
        Dir::Root
        | Dir::Ids
        | Dir::At { host: None, .. }
        | Dir::Tree { .. }
        | Dir::Versions { .. } => {}
    }
}
