//! What each kind of directory lists, with cookies that resume a listing where it stopped.
//!
//! A snapshot's directory never changes: entry `i` has cookie `3 + i`. The synthetic
//! directories change as backups land, so their entries carry the lasting cookies of
//! [`super::view::Cookies`] and are sorted by them.

use std::ffi::OsStr;
use std::sync::Arc;

use super::dirs::{Dir, Item, at_dir_item, group, group_item, link_item, node_item, snap_item};
use super::inodes::{AT, HOSTS, IDS, ROOT, TAGS, VERSIONS, group_ino};
use super::view::{
    COOKIE_AT, COOKIE_DOT, COOKIE_DOTDOT, COOKIE_HOSTS, COOKIE_IDS, COOKIE_LATEST, COOKIE_TAGS,
    COOKIE_VERSIONS, SnapEntry,
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
        let mut items: Vec<(u64, Vec<u8>, Item)> = dots
            .into_iter()
            .map(|(c, n, i)| (c, n.as_bytes().to_vec(), i))
            .collect();
        match dir {
            Dir::Versions { ino, path } => self.versions_entries(*ino, path, &mut items),
            _ => self.synthetic_entries(dir, &mut items),
        }
        items.sort_by_key(|(c, _, _)| *c);
        for (cookie, name, item) in items {
            if cookie > offset
                && emit(
                    cookie,
                    std::os::unix::ffi::OsStrExt::from_bytes(&name[..]),
                    item,
                )
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The entries of the top level, `hosts/`, `tags/`, a group, `ids/` and `at/`.
    fn synthetic_entries(&self, dir: &Dir, items: &mut Vec<(u64, Vec<u8>, Item)>) {
        let view = self.state.view();
        let mut push = |cookie: u64, name: &str, item: Item| {
            items.push((cookie, name.as_bytes().to_vec(), item));
        };
        match dir {
            Dir::Root => {
                if let Some(l) = view.latest() {
                    let link = link_item(ROOT, "latest", l.name().into(), l.time_ns());
                    push(COOKIE_LATEST, "latest", link);
                }
                push(COOKIE_HOSTS, "hosts", Item::Fixed(HOSTS, Kind::Dir));
                push(COOKIE_TAGS, "tags", Item::Fixed(TAGS, Kind::Dir));
                push(COOKIE_IDS, "ids", Item::Fixed(IDS, Kind::Dir));
                push(COOKIE_AT, "at", Item::Fixed(AT, Kind::Dir));
                push(
                    COOKIE_VERSIONS,
                    "versions",
                    Item::Fixed(VERSIONS, Kind::Dir),
                );
                for s in &view.snaps {
                    push(s.cookie, s.name(), snap_item(s));
                }
            }
            Dir::Groups(p) => {
                let groups = if *p == HOSTS { &view.hosts } else { &view.tags };
                for (name, g) in groups {
                    push(g.cookie, name, group_item(*p, name));
                }
            }
            Dir::Ids => {
                for s in &view.snaps {
                    let id = s.short_id();
                    let item = link_item(IDS, &id, format!("../{}", s.name()), s.time_ns());
                    push(s.cookie, &id, item);
                }
            }
            Dir::At { ino, host } => {
                let members: Vec<&Arc<SnapEntry>> = match host {
                    None => view.snaps.iter().collect(),
                    Some(h) => view
                        .hosts
                        .get(h)
                        .map(|g| view.members(g).collect())
                        .unwrap_or_default(),
                };
                for s in members {
                    let item = link_item(*ino, s.name(), super::at::link_target(s), s.time_ns());
                    push(s.cookie, s.name(), item);
                }
            }
            Dir::Group { parent, ino, name } => {
                if *parent == HOSTS {
                    push(COOKIE_AT, "at", at_dir_item(name));
                }
                if let Some(g) = group(&view, *parent, name) {
                    if let Some(l) = view.members(g).last() {
                        let item =
                            link_item(*ino, "latest", format!("../../{}", l.name()), l.time_ns());
                        push(COOKIE_LATEST, "latest", item);
                    }
                    for s in view.members(g) {
                        let item =
                            link_item(*ino, s.name(), format!("../../{}", s.name()), s.time_ns());
                        push(s.cookie, s.name(), item);
                    }
                }
            }
            Dir::Tree { .. } | Dir::Versions { .. } => {}
        }
    }
}
