//! `at/` and `hosts/HOST/at/`: point-in-time paths. Listing shows every snapshot (of that
//! host) by its dated name; looking up any time a user types (`2026-11-21T1200Z`,
//! `2026-11-21`, `2026-11-21T12:00:00+07:00`, `1h`, `2d`) gives a symlink to the newest
//! snapshot taken at or before it, so `MNT/at/2d/etc/fstab` is the file as it was two days
//! ago. A time before the first snapshot, or text that is no time, is ENOENT. Ages move with
//! the clock, so these links are short-lived in the kernel's cache (like `latest`).

use std::sync::Arc;

use crate::snapshot::point_in_time::parse_point;

use super::view::SnapEntry;

/// Nanoseconds since the epoch, now.
fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The snapshot `name` means among `members` (oldest first): the newest at or before that time.
pub fn resolve<'a>(
    members: impl Iterator<Item = &'a Arc<SnapEntry>>,
    name: &str,
) -> Option<&'a Arc<SnapEntry>> {
    let t = parse_point(name, now_ns())?;
    members.take_while(|s| s.time_ns() <= t).last()
}

/// Where a link in an `at/` directory points: the dated directory beside `at/`.
#[must_use]
pub fn link_target(snap: &SnapEntry) -> String {
    format!("../{}", snap.name())
}
