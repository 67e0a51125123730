//! What a prune does, decided without I/O: from what each pack holds and what the snapshots
//! use, which packs stay, which are condemned, repacked, recovered or dropped from the index,
//! and which condemned packs may be deleted given the writers that run (docs/FORMAT.md,
//! "Prune beside writers").

use std::collections::HashMap;

use crate::format::id::PackId;

use super::MaxUnused;

/// One indexed pack, as the survey found it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PackUse {
    /// The pack.
    pub id: PackId,
    /// Its length in bytes.
    pub len: u64,
    /// Whether its file exists.
    pub present: bool,
    /// The epoch at which it was condemned, if it is.
    pub condemned: Option<u64>,
    /// Bytes of blobs the snapshots use.
    pub used_bytes: u64,
    /// Bytes of blobs no snapshot uses.
    pub unused_bytes: u64,
    /// How many of its blobs the snapshots use.
    pub used_blobs: u64,
}

/// A pack file that no index file names (written by a backup still running, or left by one
/// that died), with its condemnation, if any.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unindexed {
    /// The pack.
    pub id: PackId,
    /// Its length in bytes.
    pub len: u64,
    /// The epoch at which it was condemned, if it is.
    pub condemned: Option<u64>,
}

/// What becomes of an indexed pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Live, and stays live.
    Keep,
    /// Live and unused: condemned at the new epoch.
    Condemn,
    /// Condemned, and unused still: stays condemned at its epoch.
    StayCondemned,
    /// Condemned, but a snapshot uses it (committed after it was condemned): live again.
    Recover,
    /// Partly used: its used blobs are copied into new packs, and it is condemned.
    Repack,
    /// Its file is missing and no snapshot uses it: dropped from the index.
    Drop,
}

/// The first phase of a prune: the new index and prune state.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The fate of each indexed pack, in the survey's order.
    pub fates: Vec<Fate>,
    /// The prune epoch after this phase.
    pub epoch: u64,
    /// Every condemned pack after this phase (indexed or not), with its epoch.
    pub condemned: HashMap<PackId, u64>,
    /// Whether the index must be rewritten (something changed).
    pub rewrite: bool,
    /// Bytes of used blobs to copy by repacking.
    pub bytes_repacked: u64,
    /// Unused bytes left in live packs.
    pub unused_bytes_kept: u64,
}

impl Plan {
    /// How many packs have fate `f`.
    #[must_use]
    pub fn count(&self, f: Fate) -> usize {
        self.fates.iter().filter(|x| **x == f).count()
    }
}

/// A pack the index names whose file is missing, while a snapshot uses it: damage, which a
/// prune must not paper over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingUsedPack(pub PackId);

/// Plans the first phase. `epoch` is the repository's prune epoch; packs condemned now get
/// `epoch + 1`. Partly used live packs are repacked, most wasteful first, until the unused
/// bytes left in live packs are within `max_unused`.
///
/// # Errors
/// [`MissingUsedPack`] if a snapshot uses a pack whose file is missing.
pub fn plan(
    epoch: u64,
    packs: &[PackUse],
    unindexed: &[Unindexed],
    max_unused: MaxUnused,
) -> Result<Plan, MissingUsedPack> {
    let new_epoch = epoch + 1;
    let mut fates = Vec::with_capacity(packs.len());
    for p in packs {
        let used = p.used_blobs > 0;
        if !p.present {
            if used {
                return Err(MissingUsedPack(p.id));
            }
            fates.push(Fate::Drop);
            continue;
        }
        fates.push(match (p.condemned, used) {
            (None, true) => Fate::Keep,
            (None, false) => Fate::Condemn,
            (Some(_), true) => Fate::Recover,
            (Some(_), false) => Fate::StayCondemned,
        });
    }
    let live = |f: Fate| matches!(f, Fate::Keep | Fate::Recover);
    let used_total: u64 = packs
        .iter()
        .zip(&fates)
        .filter(|(_, f)| live(**f))
        .map(|(p, _)| p.used_bytes)
        .sum();
    let mut unused_kept: u64 = packs
        .iter()
        .zip(&fates)
        .filter(|(_, f)| live(**f))
        .map(|(p, _)| p.unused_bytes)
        .sum();
    let limit = max_unused.limit(used_total);
    let mut partly: Vec<usize> = (0..packs.len())
        .filter(|&n| live(fates[n]) && packs[n].unused_bytes > 0)
        .collect();
    // Most wasteful first: the highest share of unused bytes.
    partly.sort_by(|&a, &b| {
        let share = |n: usize| packs[n].unused_bytes as f64 / packs[n].len.max(1) as f64;
        share(b).total_cmp(&share(a))
    });
    let mut bytes_repacked = 0;
    for n in partly {
        if unused_kept <= limit {
            break;
        }
        fates[n] = Fate::Repack;
        unused_kept -= packs[n].unused_bytes;
        bytes_repacked += packs[n].used_bytes;
    }
    let mut condemned = HashMap::new();
    let mut newly = false;
    for (p, f) in packs.iter().zip(&fates) {
        match (f, p.condemned) {
            (Fate::StayCondemned, Some(e)) => {
                condemned.insert(p.id, e);
            }
            (Fate::Condemn | Fate::Repack, _) => {
                condemned.insert(p.id, new_epoch);
                newly = true;
            }
            _ => {}
        }
    }
    for u in unindexed {
        let e = u.condemned.unwrap_or_else(|| {
            newly = true;
            new_epoch
        });
        condemned.insert(u.id, e);
    }
    let rewrite = newly
        || fates
            .iter()
            .any(|f| matches!(f, Fate::Recover | Fate::Repack | Fate::Drop));
    Ok(Plan {
        fates,
        epoch: if newly { new_epoch } else { epoch },
        condemned,
        rewrite,
        bytes_repacked,
        unused_bytes_kept: unused_kept,
    })
}

/// The condemned packs that may be deleted now: those condemned at an epoch no running writer
/// predates. `oldest_basis` is the lowest basis among the writers that hold a live lock
/// (`None` when none runs); a writer whose basis is lower than a pack's epoch loaded its index
/// before the pack was condemned and may have deduplicated against it.
#[must_use]
pub fn deletable(condemned: &HashMap<PackId, u64>, oldest_basis: Option<u64>) -> Vec<PackId> {
    let mut out: Vec<PackId> = condemned
        .iter()
        .filter(|(_, e)| oldest_basis.is_none_or(|b| **e <= b))
        .map(|(p, _)| *p)
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::Id;

    fn pack(name: &str, condemned: Option<u64>, used: u64, unused: u64) -> PackUse {
        PackUse {
            id: PackId(Id::hash(name.as_bytes())),
            len: used + unused + 100,
            present: true,
            condemned,
            used_bytes: used,
            unused_bytes: unused,
            used_blobs: u64::from(used > 0),
        }
    }

    #[test]
    fn unused_packs_are_condemned_not_deleted_and_used_ones_recovered() {
        let packs = [
            pack("live", None, 10, 0),
            pack("unused", None, 0, 10),
            pack("old-condemned", Some(3), 0, 10),
            pack("needed-again", Some(3), 10, 0),
        ];
        let orphan = Unindexed {
            id: PackId(Id::hash(b"orphan")),
            len: 5,
            condemned: None,
        };
        let p = plan(4, &packs, &[orphan], MaxUnused::Unlimited).unwrap();
        assert_eq!(
            p.fates,
            [
                Fate::Keep,
                Fate::Condemn,
                Fate::StayCondemned,
                Fate::Recover
            ]
        );
        assert_eq!(p.epoch, 5);
        assert_eq!(p.condemned.len(), 3);
        assert_eq!(p.condemned[&packs[1].id], 5);
        assert_eq!(
            p.condemned[&packs[2].id], 3,
            "an old condemnation keeps its epoch"
        );
        assert_eq!(p.condemned[&orphan.id], 5);
        assert!(!p.condemned.contains_key(&packs[3].id));
        assert!(p.rewrite);
    }

    #[test]
    fn nothing_new_keeps_the_epoch_and_the_index() {
        let packs = [pack("live", None, 10, 0), pack("c", Some(2), 0, 1)];
        let p = plan(2, &packs, &[], MaxUnused::Unlimited).unwrap();
        assert_eq!((p.epoch, p.rewrite), (2, false));
    }

    #[test]
    fn partly_used_packs_are_repacked_until_within_the_limit() {
        let packs = [
            pack("a", None, 90, 10),
            pack("b", None, 50, 50),
            pack("c", None, 100, 0),
        ];
        let p = plan(0, &packs, &[], MaxUnused::Bytes(10)).unwrap();
        assert_eq!(p.fates, [Fate::Keep, Fate::Repack, Fate::Keep]);
        assert_eq!((p.bytes_repacked, p.unused_bytes_kept), (50, 10));
        assert_eq!(p.condemned[&packs[1].id], 1, "the original is condemned");
        let all = plan(0, &packs, &[], MaxUnused::Bytes(0)).unwrap();
        assert_eq!(all.count(Fate::Repack), 2);
    }

    #[test]
    fn a_missing_pack_is_dropped_if_unused_and_refused_if_used() {
        let mut gone = pack("gone", None, 0, 10);
        gone.present = false;
        let p = plan(0, &[gone], &[], MaxUnused::Unlimited).unwrap();
        assert_eq!(p.fates, [Fate::Drop]);
        assert!(p.condemned.is_empty() && p.rewrite);
        let mut needed = pack("needed", None, 10, 0);
        needed.present = false;
        assert_eq!(
            plan(0, &[needed], &[], MaxUnused::Unlimited),
            Err(MissingUsedPack(needed.id))
        );
    }

    #[test]
    fn only_packs_no_running_writer_predates_may_go() {
        let (a, b, c) = (
            PackId(Id::hash(b"a")),
            PackId(Id::hash(b"b")),
            PackId(Id::hash(b"c")),
        );
        let condemned = HashMap::from([(a, 2), (b, 3), (c, 4)]);
        assert_eq!(deletable(&condemned, None).len(), 3, "no writer runs");
        // A writer with basis 3 saw condemnations up to epoch 3, not epoch 4.
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(deletable(&condemned, Some(3)), want);
        assert!(deletable(&condemned, Some(0)).is_empty());
    }
}
