//! Integrity check: structure (every referenced blob is indexed, every indexed pack exists and
//! its trailer agrees with the index, every claim a tree makes agrees with what it points at:
//! see `trees.rs`) and, with `read_data`, every blob's bytes. Damage is named down to the
//! snapshot and file path it affects. Temp files and unindexed packs left by interrupted
//! writers are reported as harmless.

mod trees;

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::error::Result;
use crate::format::id::{BlobId, PackId};
use crate::format::pack::PackedBlob;

use crate::progress::Progress;
use crate::repo::index::BlobLocation;
use crate::repo::{Repository, layout, pack};
use crate::storage::TEMP_PREFIX;

/// Findings of a check.
#[derive(Debug, Default, serde::Serialize)]
pub struct CheckReport {
    /// Damage: anything here means some data may not be restorable.
    pub errors: Vec<String>,
    /// Leftovers of interrupted writers; safe to ignore.
    pub harmless: Vec<String>,
    /// `snapshot-name:/path` of every file affected by a damaged or missing blob.
    pub damaged_files: BTreeSet<String>,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs checked.
    pub packs: usize,
    /// Packs read whole.
    pub packs_read: usize,
    /// Blobs whose bytes were read and verified.
    pub blobs_read: u64,
}

impl CheckReport {
    /// Whether the repository is free of damage.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Which packs `check` reads whole (every other pack's trailer is still checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadData {
    /// None: structure only.
    No,
    /// Every pack.
    All,
    /// Part `n` (1-based) of `of` parts. Packs are split into parts by their id, so a part is
    /// the same set of packs from one run to the next (but for packs written or pruned
    /// meanwhile), and the parts 1 to `of` together are every pack.
    Part {
        /// Which part.
        n: u64,
        /// Of how many.
        of: u64,
    },
}

impl ReadData {
    /// Whether pack `id` is read.
    #[must_use]
    pub fn reads(self, id: &PackId) -> bool {
        match self {
            ReadData::No => false,
            ReadData::All => true,
            ReadData::Part { n, of } => {
                let mut head = [0u8; 8];
                head.copy_from_slice(&id.0.0[..8]);
                u64::from_le_bytes(head) % of.max(1) == n.saturating_sub(1)
            }
        }
    }
}

/// Checks `repo`; `read_data` also reads and re-hashes every blob.
///
/// # Errors
/// Only when a directory cannot be listed; damage is reported in the [`CheckReport`].
pub fn check(repo: &Repository, read_data: bool) -> Result<CheckReport> {
    let read = if read_data {
        ReadData::All
    } else {
        ReadData::No
    };
    check_with(repo, read)
}

/// Checks `repo`, reading whole the packs `read` names.
///
/// # Errors
/// Only when a directory cannot be listed; damage is reported in the [`CheckReport`].
pub fn check_with(repo: &Repository, read: ReadData) -> Result<CheckReport> {
    check_observed(repo, read, &Progress::default())
}

/// [`check_with`], counting the packs it reads (and their bytes) in `progress`.
///
/// # Errors
/// As [`check_with`].
pub fn check_observed(
    repo: &Repository,
    read: ReadData,
    progress: &Progress,
) -> Result<CheckReport> {
    repo.require_full_key("checking the repository")?;
    // Check walks every blob and pack: every index file in memory, not the local index.
    repo.prefer_repository();
    let mut report = CheckReport::default();
    // Snapshots first, then the index: a backup committing meanwhile wrote its index files
    // before its snapshot, so the index names everything the snapshots listed reference.
    let crate::snapshot::Listing {
        snapshots: snaps,
        unreadable,
        ..
    } = crate::snapshot::list(repo)?;
    for p in repo.load_index()? {
        report.errors.push(p.error.to_string());
    }
    let fences = crate::repo::fence::Fences::load(repo)?;
    report
        .errors
        .extend(fences.unreadable.iter().map(ToString::to_string));
    let mut bad_blobs: HashSet<BlobId> = HashSet::new();
    check_packs(repo, read, progress, &mut report, &mut bad_blobs)?;
    find_leftovers(repo, &mut report)?;

    report
        .errors
        .extend(unreadable.iter().map(ToString::to_string));
    report.snapshots = snaps.len();
    trees::check(repo, &snaps, &bad_blobs, &mut report);
    Ok(report)
}

fn check_packs(
    repo: &Repository,
    read: ReadData,
    progress: &Progress,
    report: &mut CheckReport,
    bad: &mut HashSet<BlobId>,
) -> Result<()> {
    let mut by_pack: HashMap<PackId, Vec<(BlobId, BlobLocation)>> = HashMap::new();
    for (id, loc) in repo.index().iter() {
        by_pack.entry(loc.pack).or_default().push((id, loc));
    }
    let packs: Vec<(PackId, u64)> = repo.index().packs().to_vec();
    let scheme = repo.scheme()?;
    report.packs = packs.len();
    let to_read = packs.iter().filter(|(p, _)| read.reads(p));
    progress.expect(
        to_read.clone().count() as u64,
        to_read.map(|(_, l)| l).sum(),
    );
    for (pack_id, len) in packs {
        let path = layout::pack_path(&pack_id);
        let indexed = by_pack.remove(&pack_id).unwrap_or_default();
        let trailer = if read.reads(&pack_id) {
            report.packs_read += 1;
            pack::scan(repo.storage(), &path, &pack_id, scheme).map(|scan| {
                if !scan.hash_ok {
                    report.errors.push(format!(
                        "pack {path}: contents do not match the file name's hash"
                    ));
                }
                report.blobs_read += scan.blobs.len() as u64;
                for (id, msg) in scan.damaged {
                    report.errors.push(format!("pack {path}: {msg}"));
                    bad.insert(id);
                }
                (scan.len, scan.blobs)
            })
        } else {
            pack::read_trailer(repo.storage(), &path, scheme).map(|(len, _, blobs)| (len, blobs))
        };
        if read.reads(&pack_id) {
            progress.file_done(len);
        }
        match trailer {
            // A condemned pack that a prune deleted after this check loaded the index: no
            // snapshot listed here uses it (docs/FORMAT.md, "Prune beside writers").
            Err(e) if is_gone(&e) && repo.index().condemned_at(&pack_id).is_some() => {
                report.harmless.push(format!(
                    "pack {path}: condemned, and deleted by a prune while this check ran"
                ));
            }
            Err(e) => {
                report.errors.push(format!("pack {path}: {e}"));
                bad.extend(indexed.iter().map(|(id, _)| *id));
            }
            Ok((actual_len, blobs)) => {
                if actual_len != len {
                    report
                        .errors
                        .push(format!("pack {path}: {actual_len} bytes, index says {len}"));
                }
                let listed: HashMap<BlobId, &PackedBlob> =
                    blobs.iter().map(|b| (b.id, b)).collect();
                for (id, loc) in &indexed {
                    let agrees = listed.get(id).is_some_and(|b| {
                        b.offset == loc.offset
                            && b.stored_len == loc.stored_len
                            && b.raw_len == loc.raw_len
                            && b.compression == loc.compression
                    });
                    if !agrees {
                        report.errors.push(format!(
                            "pack {path}: trailer disagrees with the index about blob {}",
                            id.short()
                        ));
                        bad.insert(*id);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether `e` says a file does not exist.
fn is_gone(e: &crate::Error) -> bool {
    match e {
        crate::Error::MissingPack { .. } => true,
        crate::Error::RepoIo { cause, .. } => cause.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

fn find_leftovers(repo: &Repository, report: &mut CheckReport) -> Result<()> {
    let index = repo.index();
    let mut dirs: Vec<String> = layout::pack_dirs().collect();
    dirs.extend([
        layout::DATA_DIR.to_string(),
        layout::INDEX_DIR.to_string(),
        layout::SNAPSHOT_DIR.to_string(),
        crate::storage::TEMP_DIR.to_string(),
        String::new(),
    ]);
    for dir in dirs {
        let names = repo
            .storage()
            .list(&dir)
            .map_err(|e| crate::Error::repo_io("listing", &dir, e))?;
        for name in names {
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if name.starts_with(TEMP_PREFIX) {
                report.harmless.push(format!(
                    "{path}: temporary file left by an interrupted write"
                ));
            } else if dir.starts_with(layout::DATA_DIR) {
                match name.parse::<PackId>() {
                    Ok(id) if index.has_pack(&id) => {}
                    Ok(id) if index.condemned_at(&id).is_some() => report.harmless.push(format!(
                        "{path}: pack not in any index, condemned by a prune"
                    )),
                    Ok(_) => report.harmless.push(format!(
                        "{path}: pack not in any index (written by a backup still running, or \
                         left by an interrupted one)"
                    )),
                    Err(_) => report.harmless.push(format!("{path}: stray file")),
                }
            }
        }
    }
    // Sets that another listed set replaces (an interrupted replacement), and void sets.
    let listed = crate::maintain::prune::gather::listed(repo)?;
    for set in listed.sets.standing.iter().chain(&listed.sets.replaced) {
        for old in set
            .supersedes
            .iter()
            .filter(|o| listed.files.binary_search(o).is_ok())
        {
            report.harmless.push(format!(
                "{}: snapshot set replaced by set {} (an interrupted replacement; readers take \
                 the new one, and the next prune deletes it)",
                layout::snapshot_path(old),
                set.set.short()
            ));
        }
    }
    for set in &listed.sets.standing {
        for m in set
            .members
            .iter()
            .filter(|m| listed.files.binary_search(m).is_ok())
        {
            report.harmless.push(format!(
                "{}: snapshot file also held by snapshot set {} (an interrupted gathering; \
                 it counts once, and the next prune deletes the file)",
                layout::snapshot_path(m),
                set.set.short()
            ));
        }
    }
    for set in &listed.sets.void {
        report.harmless.push(format!(
            "{}: snapshot set written too late by a revoked prune or forget (void: readers \
             ignore it, and the next prune deletes it)",
            layout::snapshot_path(&set.set)
        ));
    }
    Ok(())
}
