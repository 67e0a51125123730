//! The read side, independent of FUSE: listing snapshots under their dated names, resolving
//! what the user typed (`latest`, an id prefix, a dated name) and paths inside a snapshot.
//!
//! A dated name is the snapshot time in UTC, ISO 8601 basic format without colons
//! (`2026-11-22T072100Z`): it sorts chronologically and is safe for rsync, scp and SMB. When
//! several snapshots fall in the same second, the earliest keeps the plain name and the others
//! get `-<first 8 hex digits of the id>`.

pub mod diff;
pub mod expand;
pub mod filter;
pub mod history;
pub mod point_in_time;

use std::path::{Component, Path};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::format::snapshot_listing::SetTable;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repo::{Repository, SnapshotTable};

/// A snapshot with its id and dated name.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The id.
    pub id: SnapshotId,
    /// The dated name (unique within the repository).
    pub name: String,
    /// The snapshot record.
    pub snapshot: Snapshot,
}

pub use crate::format::snapshot::{dated_name, rfc3339};

/// Parses a snapshot time given by the user: RFC 3339 with an offset
/// (`2026-03-01T10:00:00Z`, `2026-03-01T11:00:00+01:00`), a dated name (`2026-03-01T100000Z`),
/// or a civil time without offset (`2026-03-01 10:00:00`, `2026-03-01T10:00`), which is read in
/// the local time zone (`TZ`). Returns ns since the epoch.
///
/// # Errors
/// [`Error::InvalidInput`] saying which forms are accepted.
pub fn parse_time(s: &str) -> Result<i64> {
    let s = s.trim();
    let parsed = s
        .parse::<jiff::Timestamp>()
        .ok()
        .or_else(|| jiff::Timestamp::strptime("%Y-%m-%dT%H%M%SZ", s).ok())
        .or_else(|| jiff::Timestamp::strptime("%Y-%m-%dT%H%M%S%.fZ", s).ok())
        .or_else(|| {
            let civil: jiff::civil::DateTime = s.replacen(' ', "T", 1).parse().ok()?;
            civil
                .to_zoned(jiff::tz::TimeZone::system())
                .ok()
                .map(|z| z.timestamp())
        });
    let t = parsed.ok_or_else(|| {
        Error::InvalidInput(format!(
            "cannot read the time {s:?}: use RFC 3339 (2026-03-01T10:00:00Z), a dated name \
             (2026-03-01T100000Z) or a local time (2026-03-01 10:00:00)"
        ))
    })?;
    i64::try_from(t.as_nanosecond())
        .map_err(|_| Error::InvalidInput(format!("the time {s:?} is out of range")))
}

/// Gives sorted snapshots their unique dated names.
#[must_use]
pub fn name_all(sorted: Vec<(SnapshotId, Snapshot)>) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::with_capacity(sorted.len());
    for (id, snapshot) in sorted {
        let suffixed = out
            .last()
            .is_some_and(|prev| shares_dated_name(prev.snapshot.time_ns, snapshot.time_ns));
        let name = unique_name(&id, snapshot.time_ns, suffixed);
        out.push(Listed { id, name, snapshot });
    }
    out
}

/// True if a snapshot taken at `time_ns`, following one taken at `prev_ns` in time order,
/// falls in the same second and so gets its id appended to its dated name.
#[must_use]
pub fn shares_dated_name(prev_ns: i64, time_ns: i64) -> bool {
    const NS: i64 = 1_000_000_000;
    prev_ns.div_euclid(NS) == time_ns.div_euclid(NS)
}

/// The dated name of snapshot `id`, with its short id appended if `suffixed` (see
/// [`shares_dated_name`]).
#[must_use]
pub fn unique_name(id: &SnapshotId, time_ns: i64, suffixed: bool) -> String {
    let base = dated_name(time_ns);
    if suffixed {
        format!("{base}-{}", id.short())
    } else {
        base
    }
}

/// A warning when `spec` is `latest` but some snapshot files (`unreadable`) cannot be read: a
/// newer snapshot may be among them.
#[must_use]
pub fn latest_warning(spec: &str, unreadable: &[Error]) -> Option<String> {
    (spec == "latest" && !unreadable.is_empty()).then(|| {
        format!(
            "{} snapshot file(s) cannot be read (run `chronofs check`); `latest` is the \
             newest readable snapshot",
            unreadable.len()
        )
    })
}

/// The snapshots of a repository: the readable ones, oldest first and named, and the errors
/// of the snapshot files that cannot be read.
#[derive(Debug, Default)]
pub struct Listing {
    /// Readable snapshots, oldest first.
    pub snapshots: Vec<Listed>,
    /// Why each unreadable snapshot file cannot be read.
    pub unreadable: Vec<Error>,
    /// The snapshot sets whose members the listing took (all of them: a filter does not
    /// narrow these), for a revocation's end.
    pub sets: Vec<Arc<SetTable>>,
}

impl Listing {
    /// Resolves `spec` as [`resolve`] does. When nothing matches and some snapshot files
    /// cannot be read, the snapshot may be one of them: that is damage, not absence.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Corrupt`] when unreadable files may hold the answer.
    pub fn resolve(&self, spec: &str) -> Result<&Listed> {
        resolve(&self.snapshots, spec).map_err(|e| self.damage_or(e, spec))
    }

    /// Resolves several specs (as [`Listing::resolve`]); returns the snapshots they name,
    /// each once, oldest first.
    ///
    /// # Errors
    /// As [`Listing::resolve`], for the first spec that fails.
    pub fn resolve_all(&self, specs: &[String]) -> Result<Vec<Listed>> {
        let ids = specs
            .iter()
            .map(|spec| self.resolve(spec).map(|l| l.id))
            .collect::<Result<Vec<SnapshotId>>>()?;
        Ok(self
            .snapshots
            .iter()
            .filter(|l| ids.contains(&l.id))
            .cloned()
            .collect())
    }

    /// A warning when `spec` is `latest` but some snapshot files cannot be read (a newer
    /// snapshot may be among them).
    #[must_use]
    pub fn latest_warning(&self, spec: &str) -> Option<String> {
        latest_warning(spec, &self.unreadable)
    }

    fn damage_or(&self, e: Error, spec: &str) -> Error {
        damage_or(&self.unreadable, e, spec)
    }
}

/// `e`, or when nothing matched `spec` and some snapshot files cannot be read, the damage.
fn damage_or(unreadable: &[Error], e: Error, spec: &str) -> Error {
    match (&e, unreadable.first()) {
        (Error::NotFound(_), Some(first)) => Error::corrupt(
            crate::repo::layout::SNAPSHOT_DIR,
            format!(
                "no readable snapshot matches {spec:?}, and {} snapshot file(s) cannot be \
                 read ({first})",
                unreadable.len()
            ),
        ),
        _ => e,
    }
}

/// Resolves `spec` as [`resolve`] does, against a table, opening only the record it names:
/// `latest` and an id prefix need no record, a dated name only those of its second.
///
/// # Errors
/// As [`Listing::resolve`], or the named snapshot's file errors.
pub fn resolve_in(table: &SnapshotTable<'_>, spec: &str) -> Result<Listed> {
    let n = table.len();
    let dated = |i: usize| dated_name(table.time_ns(i));
    let found = if spec == "latest" {
        n.checked_sub(1)
            .ok_or_else(|| Error::NotFound("the repository has no snapshots".into()))
    } else {
        // Dated names sort as their times do: look among the snapshots of that second (and
        // everywhere, should a time outside four-digit years break the order).
        let by_name = spec.get(..dated_name(0).len()).and_then(|base| {
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if dated(mid).as_str() < base {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            (lo..n)
                .take_while(|&i| dated(i) == base)
                .find(|&i| name_in(table, i) == spec)
                .or_else(|| (0..n).find(|&i| name_in(table, i) == spec))
        });
        match by_name {
            Some(i) => Ok(i),
            None => by_id_prefix(spec, n, |i| table.id(i)),
        }
    };
    let i = found.map_err(|e| damage_or(&table.unreadable, e, spec))?;
    Ok(Listed {
        id: table.id(i),
        name: name_in(table, i),
        snapshot: table.record(i)?,
    })
}

/// The one snapshot (of `n`, ids by `id`) whose id starts with `spec` (at least 4 hex digits).
fn by_id_prefix(spec: &str, n: usize, id: impl Fn(usize) -> SnapshotId) -> Result<usize> {
    let lower = spec.to_ascii_lowercase();
    if lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hits: Vec<usize> = (0..n)
            .filter(|&i| id(i).to_hex().starts_with(&lower))
            .collect();
        match hits.len() {
            1 => return Ok(hits[0]),
            0 => {}
            k => {
                return Err(Error::NotFound(format!(
                    "snapshot id prefix {spec:?} is ambiguous ({k} snapshots match)"
                )));
            }
        }
    }
    Err(Error::NotFound(format!(
        "no snapshot matches {spec:?} (use `latest`, a dated name such as 2026-11-22T072100Z, or an id prefix)"
    )))
}

/// All snapshots of `repo`: the readable ones, oldest first, named; and the errors of the
/// unreadable snapshot files.
///
/// # Errors
/// Failure to list the snapshot directory.
pub fn list(repo: &Repository) -> Result<Listing> {
    let table = repo.snapshot_table()?;
    let sets = table.sets().to_vec();
    let (snaps, unreadable) = table.into_records();
    Ok(Listing {
        snapshots: name_all(snaps),
        unreadable,
        sets,
    })
}

/// The dated name of the `i`th snapshot of `table` (unique in it, as [`name_all`] gives).
#[must_use]
pub fn name_in(table: &SnapshotTable<'_>, i: usize) -> String {
    let suffixed = i > 0 && shares_dated_name(table.time_ns(i - 1), table.time_ns(i));
    unique_name(&table.id(i), table.time_ns(i), suffixed)
}

/// The snapshots `filter` selects, named as in the whole listing. With hosts in the filter,
/// only the records of those hosts are opened.
///
/// # Errors
/// Failure to list the snapshot directory.
pub fn list_where(repo: &Repository, filter: &filter::Filter) -> Result<Listing> {
    if filter.hosts.is_empty() {
        let mut listing = list(repo)?;
        listing.snapshots.retain(|l| filter.matches(&l.snapshot));
        return Ok(listing);
    }
    let table = repo.snapshot_table()?;
    let hosts = table.host_tags(&filter.hosts);
    let mut snapshots = Vec::new();
    let mut unreadable = Vec::new();
    for i in (0..table.len()).filter(|&i| table.may_be_of(i, &hosts)) {
        match table.record(i) {
            Ok(s) if filter.matches(&s) => snapshots.push(Listed {
                id: table.id(i),
                name: name_in(&table, i),
                snapshot: s,
            }),
            Ok(_) => {}
            Err(e) => unreadable.push(e),
        }
    }
    let sets = table.sets().to_vec();
    unreadable.extend(table.unreadable);
    Ok(Listing {
        snapshots,
        unreadable,
        sets,
    })
}

/// Resolves `latest`, a dated name, or a unique id prefix (at least 4 hex digits).
///
/// # Errors
/// [`Error::NotFound`] if nothing or more than one snapshot matches.
pub fn resolve<'a>(listed: &'a [Listed], spec: &str) -> Result<&'a Listed> {
    if spec == "latest" {
        return listed
            .last()
            .ok_or_else(|| Error::NotFound("the repository has no snapshots".into()));
    }
    if let Some(l) = listed.iter().find(|l| l.name == spec) {
        return Ok(l);
    }
    by_id_prefix(spec, listed.len(), |i| listed[i].id).map(|i| &listed[i])
}

/// Splits `SNAP[:PATH]`.
#[must_use]
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((s, p)) => (s, Some(p)),
        None => (spec, None),
    }
}

/// The node at absolute `path` inside a snapshot's root tree; `None` for the root itself.
///
/// # Errors
/// [`Error::NotFound`] if a component is missing or not a directory; read errors.
pub fn find_node(repo: &Repository, root: &Tree, path: &Path) -> Result<Option<Node>> {
    let mut tree = root.clone();
    let mut found: Option<Node> = None;
    for c in path.components() {
        let name = match c {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(n) => n,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "path {} must not contain `..`",
                    path.display()
                )));
            }
        };
        if let Some(n) = &found {
            match &n.kind {
                NodeKind::Dir { subtree } => tree = repo.read_tree(subtree)?,
                _ => {
                    return Err(Error::NotFound(format!(
                        "{} is not a directory in the snapshot",
                        path.display()
                    )));
                }
            }
        }
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name);
        found = Some(tree.get(bytes).cloned().ok_or_else(|| {
            Error::NotFound(format!("{} is not in the snapshot", path.display()))
        })?);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_names() {
        assert_eq!(dated_name(0), "1970-01-01T000000Z");
        assert_eq!(dated_name(1_795_332_060_000_000_000), "2026-11-22T072100Z");
        assert_eq!(dated_name(-1), "1969-12-31T235959Z");
    }

    #[test]
    fn user_times() {
        let t = 1_772_359_200_000_000_000; // 2026-03-01T10:00:00Z
        assert_eq!(parse_time("2026-03-01T10:00:00Z").unwrap(), t);
        assert_eq!(parse_time("2026-03-01T11:00:00+01:00").unwrap(), t);
        assert_eq!(parse_time("2026-03-01T100000Z").unwrap(), t);
        assert_eq!(parse_time(&dated_name(t)).unwrap(), t);
        assert!(parse_time("2026-03-01 10:00:00").is_ok());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-01T10:00:00Z").is_err());
    }
}
