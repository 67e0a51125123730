//! The mount's state on one connection to the kernel, used by every request thread: the
//! current [`View`] of the snapshots and its refresher (new snapshots, invalidations, the inode
//! limit), what the connection told the kernel about extended attributes, and the inode table.
//! The chunk and tree caches and the files being read are [`Readers`].

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::id::{SnapshotId, TreeId};
use crate::format::tree::Tree;
use crate::repo::Repository;
use crate::snapshot;
use crate::storage::ListToken;

use super::attr::Owner;
use super::inodes::{EntryPlace, ROOT, Table};
use super::read_order::ReadOrders;
use super::readers::Readers;
use super::records::Records;
use super::view::{SnapEntry, View};
use super::xattr_queries::{Answer, XattrQueries};

/// Handler-triggered refreshes happen at most this often.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);
/// Refreshes wait this many times as long as the last listing of the snapshots took.
const LISTING_SHARE: u32 = 20;
/// Even when the storage says the snapshot files are as they were, they are listed again
/// after this long.
const RELIST_ANYWAY: Duration = Duration::from_secs(300);
/// [`State::since_trim`] when the next lookup past the limit is to trim at once.
const TRIM_AT_ONCE: usize = usize::MAX / 2;

/// Most new snapshots a refresh puts into the view as it is; more build it anew (each costs
/// a pass over the view's indexes).
const MAX_INSERTED: usize = 64;

/// The lowest inode limit honoured: below it, trimming would fight the kernel over the
/// entries of one directory listing.
const MIN_INODES: usize = 256;

/// Settings of one mount.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Bytes of decompressed chunks kept in memory.
    pub cache_bytes: usize,
    /// Bytes of decoded directory trees kept in memory (besides those the kernel holds).
    pub tree_cache_bytes: usize,
    /// Threads decompressing ahead of sequential readers.
    pub prefetch_threads: usize,
    /// Keep answering extended-attribute queries even when no snapshot holds any (see
    /// [`XattrQueries`]).
    pub keep_xattrs: bool,
    /// Inodes the kernel may hold before it is asked to drop the least recently used.
    pub max_inodes: usize,
}

/// A cache entry the kernel should drop because the view changed.
#[derive(Debug)]
pub enum Inval {
    /// Name `1` in directory `0`.
    Entry(u64, Vec<u8>),
    /// Attributes (and cached content) of an inode.
    Inode(u64),
}

/// Everything the request handlers share.
pub struct State {
    repo: Arc<Repository>,
    view: RwLock<Arc<View>>,
    /// The record of every readable snapshot listed, shown or left out.
    records: Mutex<Records>,
    /// The snapshot files listed last time, readable or not, and what that listing cost.
    listed: Mutex<Listed>,
    /// Taken before `view` by whoever takes both, so that the view never gains a snapshot
    /// with extended attributes after the kernel was told there are none.
    xattr_queries: Mutex<XattrQueries>,
    last_refresh: Mutex<Instant>,
    pending: Mutex<Vec<Inval>>,
    wake: Condvar,
    /// Inodes the kernel knows.
    pub table: Table,
    /// Most inodes the kernel is let hold ([`Settings::max_inodes`]).
    max_inodes: usize,
    /// The refresher has been told to ask the kernel to drop inodes.
    trimming: AtomicBool,
    /// Lookups past the limit since the last trim. The next trim waits for a tenth of the limit
    /// of them (what the kernel keeps, it keeps; scanning the table again at every lookup cost
    /// a core), or for the refresher's next round: the kernel forgets what it was asked to
    /// drop later, so a trim counted from the table's size alone could leave the table over
    /// its limit for good once the lookups stop.
    since_trim: AtomicUsize,
    /// The chunk and tree caches and the files being read.
    pub readers: Arc<Readers>,
    /// In which order each directory's files are being read (for prefetching).
    pub read_orders: ReadOrders,
    /// Owner of the synthetic entries.
    pub owner: Owner,
    notifier: OnceLock<Box<dyn Invalidate>>,
    /// Called once when a new snapshot is left out because of what this connection told the
    /// kernel (see [`XattrQueries`]): the mount replaces its connection with a new one.
    on_hidden: OnceLock<Box<dyn Fn() + Send + Sync>>,
    hidden_reported: AtomicBool,
}

/// The last listing of the snapshot files the view was built from.
#[derive(Default)]
struct Listed {
    /// The blake3 of the files' ids, sorted (the ids themselves were 32 MB at a million).
    digest: Option<blake3::Hash>,
    /// The storage's token for them, if it gives one: while it stays the same, the files do.
    token: Option<ListToken>,
    /// When the files were last listed.
    at: Option<Instant>,
    /// How long that listing took.
    cost: Duration,
    /// How long the last refresh that built a view took, listing included.
    rebuild: Duration,
}

impl Listed {
    /// Whether a refresh may skip listing: the directory says nothing changed, and the last
    /// listing is recent enough (a listing now and then also covers a file system whose
    /// times lie).
    fn unchanged(&self, token: Option<&ListToken>) -> bool {
        token.is_some()
            && token == self.token.as_ref()
            && self.at.is_some_and(|at| at.elapsed() < RELIST_ANYWAY)
    }

    /// The least time between two refreshes: [`MIN_REFRESH_GAP`], or more where listing or
    /// building a view is costly (a million snapshot files on object storage, a view of a
    /// million snapshots while hosts keep adding to them), so that refreshing takes at most
    /// 1/[`LISTING_SHARE`] of the time.
    fn gap(&self) -> Duration {
        MIN_REFRESH_GAP.max(self.cost.max(self.rebuild) * LISTING_SHARE)
    }
}

/// Tells the kernel to drop a cached entry or inode (the FUSE session's notifier).
pub trait Invalidate: Send + Sync {
    /// Drops `inval` from the kernel's caches.
    ///
    /// # Errors
    /// `NotFound` if the kernel had nothing cached; anything else means the session is gone.
    fn invalidate(&self, inval: &Inval) -> io::Result<()>;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use super::log::log;

impl State {
    /// Serves `repo` (opened, and unlocked if encrypted): loads its index and lists its
    /// snapshots; reading the tree packs ahead goes on in the background. `warn` hears of
    /// snapshot files that cannot be read (they are left out of the mount).
    ///
    /// # Errors
    /// A damaged index file (every read would fail), a backup-only key, an unreadable
    /// snapshot directory, or snapshot files none of which can be read.
    pub fn open(
        repo: Arc<Repository>,
        settings: &Settings,
        warn: &mut dyn FnMut(&str),
    ) -> Result<Arc<State>> {
        repo.require_full_key("mounting")?;
        repo.load_index_strict()?;
        let state = Arc::new(State {
            readers: Readers::new(
                Arc::clone(&repo),
                settings.cache_bytes,
                settings.tree_cache_bytes,
            ),
            repo,
            view: RwLock::new(Arc::new(View::default())),
            records: Mutex::new(Records::default()),
            listed: Mutex::new(Listed::default()),
            xattr_queries: Mutex::new(XattrQueries::new(settings.keep_xattrs)),
            last_refresh: Mutex::new(Instant::now()),
            pending: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            table: Table::default(),
            read_orders: ReadOrders::default(),
            max_inodes: settings.max_inodes.max(MIN_INODES),
            trimming: AtomicBool::new(false),
            since_trim: AtomicUsize::new(TRIM_AT_ONCE),
            owner: Owner {
                uid: crate::sys::euid(),
                gid: crate::sys::egid(),
            },
            notifier: OnceLock::new(),
            on_hidden: OnceLock::new(),
            hidden_reported: AtomicBool::new(false),
        });
        let unreadable = state.reload_view(false)?;
        lock(&state.xattr_queries).decide_acls(&state.view());
        for e in &unreadable {
            warn(&format!("left out of the mount: {e}"));
        }
        if let Some(first) = unreadable.first()
            && state.view().snaps.is_empty()
        {
            return Err(Error::corrupt(
                crate::repo::layout::SNAPSHOT_DIR,
                format!(
                    "none of the {} snapshot files can be read (the first: {first}); run \
                     `chronofs check`",
                    unreadable.len()
                ),
            ));
        }
        state.readers.start(settings.prefetch_threads)?;
        Ok(state)
    }

    /// What to do when a new snapshot has to be left out of this connection (once).
    pub fn set_on_hidden(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_hidden.set(f);
    }

    /// Gives the state the channel for cache invalidations, once the session exists.
    pub fn set_notifier(&self, n: Box<dyn Invalidate>) {
        let _ = self.notifier.set(n);
    }

    /// The repository.
    #[must_use]
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The current view of the snapshots.
    #[must_use]
    pub fn view(&self) -> Arc<View> {
        Arc::clone(
            &self
                .view
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The least time between two refreshes now (see [`State::refresh_soon`]): longer where
    /// listing the snapshots or building the view costs more.
    #[must_use]
    pub fn refresh_gap(&self) -> Duration {
        lock(&self.listed).gap()
    }

    /// Re-reads the snapshot list if it changed, at most once per [`State::refresh_gap`].
    /// Requests may call this; the kernel is told about vanished entries by the refresher
    /// thread.
    pub fn refresh_soon(&self) {
        {
            let gap = lock(&self.listed).gap();
            let mut last = lock(&self.last_refresh);
            if last.elapsed() < gap {
                return;
            }
            *last = Instant::now();
        }
        match self.reload_view(true) {
            Ok(unreadable) => unreadable
                .iter()
                .for_each(|e| log(&format!("skipping snapshot: {e}"))),
            Err(e) => log(&format!("refreshing the snapshot list: {e}")),
        }
    }

    /// Rebuilds the view if the set of snapshot files changed; returns why newly listed
    /// snapshot files that could not be read were left out. New snapshots become visible only
    /// after the index files written before them are loaded.
    fn reload_view(&self, notify: bool) -> Result<Vec<Error>> {
        // Taken before the listing: a change after it makes the next token differ.
        let token = self.repo.snapshot_list_token()?;
        if lock(&self.listed).unchanged(token.as_ref()) {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        // The first listing may come from the catalog's saved one while the directory is
        // unchanged; later ones list (saving a listing at every change of a busy directory
        // would write it over and over). Sorted either way.
        let first = lock(&self.listed).at.is_none();
        let ids = self.repo.snapshot_ids_under(token.filter(|_| first))?;
        let listed_at = Instant::now();
        let digest = {
            let mut h = blake3::Hasher::new();
            ids.iter().for_each(|id| {
                h.update(&id.0.0);
            });
            h.finalize()
        };
        let record = |listed: &mut Listed, rebuild: Option<Duration>| {
            *listed = Listed {
                digest: Some(digest),
                token,
                at: Some(listed_at),
                cost: listed_at - started,
                rebuild: rebuild.unwrap_or(listed.rebuild),
            };
        };
        // Unreadable files are not in the view: compare with the last listing, so that they
        // are not read (and reported) again every time. The listing is recorded once the view
        // was built from it: a refresh that failed half-way (the fences unreadable while the
        // object store is down) is tried again at the next one.
        {
            let mut listed = lock(&self.listed);
            if listed.digest == Some(digest) {
                record(&mut listed, None);
                return Ok(Vec::new());
            }
        }
        // A snapshot or a set a revoked writer committed too late is left out (docs/FORMAT.md).
        let fences = crate::repo::fence::Fences::load(&self.repo)?;
        // The listing names files: snapshots and sets (docs/FORMAT.md, "Snapshot sets").
        let snapshots = self.repo.expand_listing(&ids, &fences);
        // Held until the new view is in place, and the view it replaces taken under it: two
        // refreshes at once (one slower than the gap between them) build one after the other,
        // each from the view the other left, so that one putting snapshots into a view never
        // starts from a view older than the records.
        let mut records = lock(&self.records);
        let old = self.view();
        let missing = records.missing_of(&snapshots);
        if notify
            && !missing.is_empty()
            && let Ok(Some(problems)) = self.repo.refresh_index()
        {
            problems
                .iter()
                .for_each(|p| log(&format!("skipping {}: {}", p.file, p.error)));
        }
        // The first load (every snapshot missing) is of the whole listing: of its files.
        let whole = missing.len() == snapshots.len();
        // Records are taken in as they are read, each kept as the little the mount needs.
        let mut added = Vec::new();
        let unreadable = self.repo.load_snapshots(
            if whole { &ids } else { &missing },
            whole,
            &fences,
            |id, s| {
                if records.insert(id, &s) {
                    added.push(id);
                }
            },
        );
        // Sets met by the load are expanded now; until then a snapshot stays as it was shown.
        let snapshots = self.repo.expand_listing(&ids, &fences);
        let void = |e: &SnapEntry| fences.voids(&e.id, e.writer.as_ref());
        let dropped = records.keep_listed(
            &snapshots,
            (!fences.is_empty()).then_some(&void as &dyn Fn(&SnapEntry) -> bool),
        );
        let mut queries = lock(&self.xattr_queries);
        let facts = |e: &Arc<SnapEntry>| (e.id, e.time_ns, e.without_xattrs, e.without_acls);
        // What a refresh meets while hosts back up: a few new snapshots, none gone. They are
        // put into the view as it is (its indexes copied, not sorted again); anything else,
        // or new snapshots that would rename one shown, builds the view anew.
        let inserted = (dropped == 0 && !old.snaps.is_empty() && added.len() <= MAX_INSERTED)
            .then(|| {
                let mut new: Vec<Arc<SnapEntry>> =
                    added.iter().filter_map(|id| records.get(id)).collect();
                self.report_hidden(&queries.admit(&mut new, facts));
                records.insert_into(&old, new)
            })
            .flatten();
        let put_in = inserted.is_some();
        let view = Arc::new(inserted.unwrap_or_else(|| {
            let mut shown = records.sorted();
            self.report_hidden(&queries.admit(&mut shown, facts));
            records.name_after(None, &mut shown);
            View::build(shown, &mut records.cookies)
        }));
        if notify {
            let mut pending = lock(&self.pending);
            pending.extend(invalidations(&old, &view, put_in));
        }
        *self
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = view;
        drop(queries);
        drop(records);
        record(&mut lock(&self.listed), notify.then(|| started.elapsed()));
        self.wake.notify_all();
        drop(old);
        crate::sys::release_free_memory();
        Ok(unreadable)
    }

    /// Logs the first of the snapshots just left out because of what this connection told
    /// the kernel about extended attributes (see [`XattrQueries`]), and has the mount replace
    /// its connection (once).
    fn report_hidden(&self, hidden: &[(SnapshotId, i64)]) {
        let Some((id, time_ns)) = hidden.first() else {
            return;
        };
        let replace = self.on_hidden.get();
        log(&format!(
            "snapshot {} ({}) holds extended attributes or ACLs (or was written by a \
             chronofs that did not record whether it does), and this connection told the \
             kernel there are none: {}",
            snapshot::dated_name(*time_ns),
            id.short(),
            if replace.is_some() {
                "replacing the mount with a new connection that shows it"
            } else {
                "it is left out until the next mount (or mount with --keep-xattrs)"
            }
        ));
        if let Some(f) = replace
            && !self.hidden_reported.swap(true, Ordering::AcqRel)
        {
            f();
        }
    }

    /// How to answer a query for extended attribute `name` (`None`: a listing); see
    /// [`XattrQueries`].
    pub fn xattr_answer(&self, name: Option<&[u8]>) -> Answer {
        let answer = lock(&self.xattr_queries).answer(&self.view(), name);
        if answer == (Answer::NotImplemented { first: true }) {
            log("no snapshot holds extended attributes: the kernel is told so, and stops asking");
        }
        answer
    }

    /// True if POSIX ACL support is to be left out of the kernel connection, because no
    /// snapshot holds an ACL (decided when the mount starts).
    pub fn acls_off(&self) -> bool {
        lock(&self.xattr_queries).acls_off()
    }

    /// Called after the kernel looked an inode up: past the limit, the refresher is woken to
    /// ask the kernel to drop the least recently used entries.
    pub fn note_lookup(&self) {
        if self.table.len() <= self.max_inodes {
            // Back under the limit: the next time over it trims at once.
            if self.since_trim.load(Ordering::Relaxed) < TRIM_AT_ONCE {
                self.since_trim.store(TRIM_AT_ONCE, Ordering::Relaxed);
            }
            return;
        }
        let since = self.since_trim.fetch_add(1, Ordering::Relaxed) + 1;
        if since >= self.max_inodes / 10 && !self.trimming.swap(true, Ordering::AcqRel) {
            self.wake.notify_all();
        }
    }

    /// True if the refresher's round is to trim: woken for it, or over the limit with lookups
    /// since the last trim (without them, the last trim already asked for all the kernel can
    /// drop).
    fn trim_due(&self) -> bool {
        self.trimming.load(Ordering::Acquire)
            || (self.table.len() > self.max_inodes && self.since_trim.load(Ordering::Relaxed) > 0)
    }

    /// Most inodes the kernel is let hold before it is asked to drop some.
    #[must_use]
    pub fn max_inodes(&self) -> usize {
        self.max_inodes
    }

    /// The entries the kernel is to drop so that the table comes back to nine tenths of the
    /// limit: the least recently looked up, by name in their parent. The kernel forgets each
    /// once nothing uses it (an open file or a working directory keeps its entry).
    fn trim(&self) -> Vec<Inval> {
        let excess = self.table.len().saturating_sub(self.max_inodes / 10 * 9);
        let places = self.table.least_recent(excess);
        let mut out = Vec::with_capacity(places.len());
        let mut in_trees: Vec<(u64, TreeId, u32)> = Vec::new();
        for p in places {
            match p {
                EntryPlace::Dated(name) => out.push(Inval::Entry(ROOT, name.into_bytes())),
                EntryPlace::InTree(parent, tree, pos) => in_trees.push((parent, tree, pos)),
            }
        }
        in_trees.sort_unstable_by_key(|(_, tree, pos)| (*tree, *pos));
        let mut held: Option<(TreeId, Arc<Tree>)> = None;
        for (parent, id, pos) in in_trees {
            if held.as_ref().is_none_or(|(h, _)| *h != id) {
                match self.readers.tree(&id) {
                    Ok(t) => held = Some((id, t)),
                    Err(_) => continue,
                }
            }
            if let Some(node) = held.as_ref().and_then(|(_, t)| t.entries.get(pos as usize)) {
                out.push(Inval::Entry(parent, node.name.as_bytes().to_vec()));
            }
        }
        log(&format!(
            "{} inodes known, over the limit of {}: asking the kernel to drop {} entries",
            self.table.len(),
            self.max_inodes,
            out.len()
        ));
        out
    }

    /// The refresher thread's loop: poll the snapshot list every `interval`, and pass
    /// invalidations to the kernel. Runs until the state is dropped.
    pub fn run_refresher(weak: &std::sync::Weak<State>, interval: Duration) {
        loop {
            let Some(s) = weak.upgrade() else { return };
            {
                let pending = lock(&s.pending);
                if pending.is_empty() && !s.trimming.load(Ordering::Acquire) {
                    let _ = s
                        .wake
                        .wait_timeout(pending, interval)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            s.refresh_soon();
            let mut pending: Vec<Inval> = std::mem::take(&mut *lock(&s.pending));
            if s.trim_due() {
                s.since_trim.store(0, Ordering::Relaxed);
                pending.extend(s.trim());
                s.trimming.store(false, Ordering::Release);
            }
            if let Some(n) = s.notifier.get() {
                for inv in pending {
                    if let Err(e) = n.invalidate(&inv)
                        && e.kind() != io::ErrorKind::NotFound
                    {
                        // ENOENT: the kernel had nothing cached. Anything else means the
                        // session is gone.
                        return;
                    }
                }
            }
        }
    }
}

/// What the kernel may have cached that a change from `old` to `new` makes wrong (`inserted`:
/// `new` is `old` with snapshots put in, so that no name is gone).
fn invalidations(old: &View, new: &View, inserted: bool) -> Vec<Inval> {
    use super::inodes::{HOSTS, IDS, ROOT, TAGS};
    let mut out = vec![
        Inval::Inode(ROOT),
        Inval::Inode(HOSTS),
        Inval::Inode(TAGS),
        Inval::Inode(IDS),
        Inval::Entry(ROOT, "latest".into()),
    ];
    let gone = if inserted {
        vec![false; old.snaps.len()]
    } else {
        old.names_missing_from(new)
    };
    for (s, _) in old.snaps.iter().zip(&gone).filter(|(_, g)| **g) {
        out.push(Inval::Entry(ROOT, s.name().into()));
        out.push(Inval::Entry(IDS, s.short_id().into()));
    }
    for (parent, groups) in [(HOSTS, &old.hosts), (TAGS, &old.tags)] {
        for name in groups.keys() {
            let ino = super::inodes::group_ino(parent, name).0;
            out.push(Inval::Inode(ino));
            out.push(Inval::Entry(ino, "latest".into()));
            let new_groups = if parent == HOSTS {
                &new.hosts
            } else {
                &new.tags
            };
            if !new_groups.contains_key(name) {
                out.push(Inval::Entry(parent, name.clone().into()));
            }
            if let Some(g) = groups.get(name) {
                for &i in g.members.iter().filter(|&&i| gone[i]) {
                    out.push(Inval::Entry(ino, old.snaps[i].name().into()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::inodes::{HOSTS, IDS, TAGS, group_ino};
    use crate::vfs::view::tests::{snap, view_of};

    #[test]
    fn a_refresh_invalidates_the_names_of_the_snapshots_gone_and_only_those() {
        let mut records = Records::default();
        let snaps = vec![
            snap(1_800_000_000, "a", &["t"]),
            snap(1_800_000_100, "b", &[]),
            snap(1_800_000_200, "a", &["t"]),
            snap(1_800_000_300, "b", &["t"]),
        ];
        let old = view_of(&mut records, &snaps);
        let new = view_of(&mut records, &[snaps[1].clone(), snaps[3].clone()]);
        assert_eq!(old.names_missing_from(&new), vec![true, false, true, false]);
        assert_eq!(new.names_missing_from(&old), vec![false, false]);
        let entries: Vec<(u64, String)> = invalidations(&old, &new, false)
            .into_iter()
            .filter_map(|i| match i {
                Inval::Entry(parent, name) => Some((parent, String::from_utf8(name).ok()?)),
                Inval::Inode(_) => None,
            })
            .filter(|(_, n)| n != "latest")
            .collect();
        let gone = [old.snaps[0].name(), old.snaps[2].name()];
        let host_a = group_ino(HOSTS, "a").0;
        let tag_t = group_ino(TAGS, "t").0;
        let mut want: Vec<(u64, String)> = Vec::new();
        for name in gone {
            want.push((ROOT, name.to_string()));
            want.push((host_a, name.to_string()));
            want.push((tag_t, name.to_string()));
        }
        want.push((HOSTS, "a".to_string()));
        for s in [&old.snaps[0], &old.snaps[2]] {
            want.push((IDS, s.short_id()));
        }
        let mut got = entries;
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
