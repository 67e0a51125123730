//! Points in time as users type them, for `at/TIME` in the mount: every form of
//! [`super::parse_time`], plus the short forms a path invites: `2026-11-21T1200Z` (minutes
//! only), `2026-11-21` (the end of that day, local time), and ages (`90s`, `30m`, `1h`, `2d`,
//! `1w` ago). [`newest_at`] picks the snapshot a point in time means.

use super::{Listed, parse_time};

/// Nanoseconds in one unit of an age suffix.
fn unit_ns(unit: char) -> Option<i64> {
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    Some(secs * 1_000_000_000)
}

/// The point in time `text` names, in ns since the epoch, with `now_ns` for ages; `None` if
/// it is no time at all.
#[must_use]
pub fn parse_point(text: &str, now_ns: i64) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    // An age: digits and one unit.
    if let Some(unit) = text.chars().last()
        && let Some(ns) = unit_ns(unit)
        && let Some(digits) = text.get(..text.len() - 1)
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = digits.parse::<i64>()
    {
        return now_ns.checked_sub(n.checked_mul(ns)?);
    }
    // A date alone: the end of that day in the local time zone.
    if text.len() == 10
        && let Ok(date) = text.parse::<jiff::civil::Date>()
    {
        let start = date
            .tomorrow()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::system())
            .ok()?
            .timestamp();
        return i64::try_from(start.as_nanosecond()).ok().map(|t| t - 1);
    }
    if let Ok(t) = parse_time(text) {
        return Some(t);
    }
    // Minutes without seconds, UTC: 2026-11-21T1200Z.
    let t = jiff::Timestamp::strptime("%Y-%m-%dT%H%MZ", text).ok()?;
    i64::try_from(t.as_nanosecond()).ok()
}

/// The newest of `snapshots` (oldest first) taken at or before `t`.
#[must_use]
pub fn newest_at(snapshots: &[Listed], t: i64) -> Option<&Listed> {
    let n = snapshots.partition_point(|l| l.snapshot.time_ns <= t);
    n.checked_sub(1).map(|i| &snapshots[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_users_type() {
        let now = 1_795_000_000_000_000_000;
        let h = 3_600_000_000_000;
        assert_eq!(parse_point("1h", now), Some(now - h));
        assert_eq!(parse_point("2d", now), Some(now - 48 * h));
        assert_eq!(parse_point("1w", now), Some(now - 168 * h));
        let noon = parse_point("2026-11-21T12:00:00Z", now).unwrap();
        assert_eq!(parse_point("2026-11-21T1200Z", now), Some(noon));
        assert_eq!(parse_point("2026-11-21T120000Z", now), Some(noon));
        assert_eq!(parse_point("2026-11-21T19:00:00+07:00", now), Some(noon));
        let day_end = parse_point("2026-11-21", now).unwrap();
        assert!(
            day_end > noon && day_end < noon + 24 * h,
            "the end of the day"
        );
        for bad in [
            "",
            "x",
            "h",
            "1y",
            "-",
            "-1h",
            "+1h",
            "2026-13-01",
            "99999999999999999999d",
            "12:00",
        ] {
            assert_eq!(parse_point(bad, now), None, "{bad}");
        }
    }
}
