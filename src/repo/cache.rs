//! The local cache of a host that backs up with a backup-only key.
//!
//! Such a key cannot open the snapshots and trees in the repository, its own included, so the
//! host keeps what change detection needs next time beside it, outside the repository: the
//! snapshot records it wrote and the tree blobs they reference, under
//! `$XDG_CACHE_HOME/chronofs/<repo id>/backup-only/` (or `~/.cache/...`), directories 0700 and
//! files 0600. Only the newest snapshot of each host and set of paths, and the trees it
//! reaches, are kept. Nothing here is trusted: a tree is used only if its bytes hash (keyed) to
//! its id, and a snapshot record only if it decodes; a missing or damaged entry means the next
//! backup reads the files again, never a wrong backup.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::format::codec::Plain;
use crate::format::id::{Id, SnapshotId, TreeId};
use crate::format::pack::MAX_BLOB_LEN;
use crate::format::snapshot::{MAX_SNAPSHOT_LEN, Snapshot};
use crate::format::tree::{NodeKind, Tree};

/// `$XDG_CACHE_HOME/chronofs`, or `~/.cache/chronofs`.
#[must_use]
pub fn base_dir() -> Option<PathBuf> {
    crate::storage::disk_cache::default_root()
}

/// What makes snapshots one group: host, source paths, and whether they came from stdin.
type GroupKey = (String, Vec<Vec<u8>>, bool);

/// The backup-only cache of one repository.
#[derive(Debug)]
pub struct LocalCache {
    dir: PathBuf,
}

fn private_dir(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

/// Reads a regular file of at most `limit` bytes (a cache file, which anyone with the
/// cache directory may have replaced).
pub(crate) fn read_bounded(p: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let f = fs::File::open(p)?;
    let m = f.metadata()?;
    if !m.is_file() || m.len() > limit {
        return Err(io::Error::other("not a cache entry"));
    }
    let mut buf = Vec::with_capacity(usize::try_from(m.len()).unwrap_or(0));
    io::Read::read_to_end(&mut io::Read::take(f, limit), &mut buf)?;
    Ok(buf)
}

impl LocalCache {
    /// The cache of repository `repo_id` (created, private).
    ///
    /// # Errors
    /// No home directory, or the directories cannot be made.
    pub fn open(repo_id: &Id) -> io::Result<LocalCache> {
        let base = base_dir().ok_or_else(|| io::Error::other("no HOME or XDG_CACHE_HOME"))?;
        let dir = base.join(repo_id.to_hex()).join("backup-only");
        for sub in ["trees", "snapshots"] {
            private_dir(&dir.join(sub))?;
        }
        Ok(LocalCache { dir })
    }

    /// Where the cache is.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn tree_path(&self, id: &TreeId) -> PathBuf {
        self.dir.join("trees").join(id.to_hex())
    }

    /// Writes `bytes` to `path` atomically, private.
    fn put(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if path.exists() {
            return Ok(());
        }
        let parent = path.parent().unwrap_or(&self.dir);
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
        tmp.write_all(bytes)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Keeps a tree blob's bytes.
    ///
    /// # Errors
    /// I/O errors (the caller may ignore them: the cache only saves reading).
    pub fn put_tree(&self, id: &TreeId, raw: &[u8]) -> io::Result<()> {
        self.put(&self.tree_path(id), raw)
    }

    /// A tree blob's bytes, as stored (the caller checks them against the id).
    ///
    /// # Errors
    /// Not cached, or unreadable.
    pub fn tree(&self, id: &TreeId) -> io::Result<Vec<u8>> {
        read_bounded(&self.tree_path(id), u64::from(MAX_BLOB_LEN))
    }

    /// Keeps the record of a snapshot this host wrote.
    ///
    /// # Errors
    /// I/O errors.
    pub fn put_snapshot(&self, id: &SnapshotId, s: &Snapshot) -> io::Result<()> {
        let bytes = s.encode(&Plain).map_err(io::Error::other)?;
        self.put(&self.dir.join("snapshots").join(id.to_hex()), &bytes)
    }

    /// The snapshots this host wrote that are still cached, oldest first.
    #[must_use]
    pub fn snapshots(&self) -> Vec<(SnapshotId, Snapshot)> {
        let Ok(rd) = fs::read_dir(self.dir.join("snapshots")) else {
            return Vec::new();
        };
        let mut out: Vec<(SnapshotId, Snapshot)> = rd
            .filter_map(|e| {
                let e = e.ok()?;
                let id: SnapshotId = e.file_name().to_str()?.parse().ok()?;
                let bytes = read_bounded(&e.path(), MAX_SNAPSHOT_LEN as u64).ok()?;
                Some((id, Snapshot::decode(&bytes, &Plain).ok()?))
            })
            .collect();
        out.sort_by_key(|(id, s)| (s.time_ns, *id));
        out
    }

    /// Keeps only the newest snapshot of each host, set of paths and kind, and the trees they
    /// reach; returns how many files were removed.
    ///
    /// # Errors
    /// I/O errors listing or removing.
    pub fn retain_newest(&self) -> io::Result<usize> {
        let mut newest: HashMap<GroupKey, (SnapshotId, Snapshot)> = HashMap::new();
        for (id, s) in self.snapshots() {
            let key = (
                s.hostname.clone(),
                s.paths.iter().map(|p| p.as_bytes().to_vec()).collect(),
                s.stdin,
            );
            newest.insert(key, (id, s));
        }
        let keep_snaps: HashSet<String> = newest.values().map(|(id, _)| id.to_hex()).collect();
        let mut keep_trees: HashSet<TreeId> = HashSet::new();
        let mut stack: Vec<TreeId> = newest.values().map(|(_, s)| s.root).collect();
        while let Some(id) = stack.pop() {
            if !keep_trees.insert(id) {
                continue;
            }
            let Ok(tree) = self
                .tree(&id)
                .and_then(|b| Tree::decode(&b).map_err(io::Error::other))
            else {
                continue;
            };
            for n in &tree.entries {
                if let NodeKind::Dir { subtree } = n.kind {
                    stack.push(subtree);
                }
            }
        }
        let keep_trees: HashSet<String> = keep_trees.iter().map(TreeId::to_hex).collect();
        let mut removed = 0;
        for (sub, keep) in [("snapshots", &keep_snaps), ("trees", &keep_trees)] {
            for e in fs::read_dir(self.dir.join(sub))? {
                let e = e?;
                let name = e.file_name().to_string_lossy().to_string();
                if !keep.contains(&name) {
                    fs::remove_file(e.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
