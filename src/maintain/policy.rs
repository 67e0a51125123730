//! Retention policy: which snapshots of one group `forget` keeps, and why.
//!
//! The rules are restic's documented `forget` policy, so habits carry over:
//! - snapshots are considered newest first;
//! - `last N` keeps the N newest; `hourly/daily/weekly/monthly/yearly N` keep, for each of the
//!   last N hours/days/ISO weeks/months/years *that have snapshots*, the newest snapshot in it;
//!   while a rule still has count left, the oldest snapshot is kept too (so the history kept is
//!   as long as possible); a count of [`UNLIMITED`] never runs out;
//! - `within D` keeps every snapshot newer than the newest snapshot (not in the future) minus
//!   D, a calendar span like `1y6m2d3h`; `within-hourly/daily/… D` keep the newest snapshot of
//!   each hour/day/… within D;
//! - `tags` keeps every snapshot that has all tags of one of the lists;
//! - a snapshot is removed only if no rule keeps it.
//!
//! One difference from restic: calendar buckets are computed in one time zone given by the
//! caller (`forget` uses the local zone, `TZ`), because snapshots record UTC times; restic
//! uses the zone each snapshot was taken in.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

use crate::error::{Error, Result};

/// A count that never runs out.
pub const UNLIMITED: u32 = u32::MAX;

/// A calendar span such as `1y6m2d3h` (years, months, days, hours).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CalendarSpan {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
}

impl std::str::FromStr for CalendarSpan {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidInput(format!(
                "{s:?} is not a duration like 30d, 6m (months), 1y6m or 12h"
            ))
        };
        let mut span = CalendarSpan::default();
        let mut digits = String::new();
        let mut any = false;
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: u32 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            let field = match c {
                'y' => &mut span.years,
                'm' => &mut span.months,
                'd' => &mut span.days,
                'h' => &mut span.hours,
                _ => return Err(bad()),
            };
            *field = field.saturating_add(n);
            any = true;
        }
        if !digits.is_empty() || !any {
            return Err(bad());
        }
        Ok(span)
    }
}

impl fmt::Display for CalendarSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl CalendarSpan {
    /// `t` minus this span, in calendar terms in `t`'s time zone.
    fn before(&self, t: &Zoned) -> Option<Timestamp> {
        let span = Span::new()
            .try_years(i64::from(self.years))
            .and_then(|s| s.try_months(i64::from(self.months)))
            .and_then(|s| s.try_days(i64::from(self.days)))
            .and_then(|s| s.try_hours(i64::from(self.hours)))
            .ok()?;
        t.checked_sub(span).ok().map(|z| z.timestamp())
    }
}

/// What to keep. All-zero/empty keeps nothing; `forget` refuses an empty policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the newest N.
    pub last: u32,
    /// Keep the newest of each of the last N hours.
    pub hourly: u32,
    /// … days.
    pub daily: u32,
    /// … ISO weeks.
    pub weekly: u32,
    /// … months.
    pub monthly: u32,
    /// … years.
    pub yearly: u32,
    /// Keep everything newer than the newest snapshot minus this.
    pub within: Option<CalendarSpan>,
    /// Keep the newest of each hour within this span.
    pub within_hourly: Option<CalendarSpan>,
    /// … day.
    pub within_daily: Option<CalendarSpan>,
    /// … ISO week.
    pub within_weekly: Option<CalendarSpan>,
    /// … month.
    pub within_monthly: Option<CalendarSpan>,
    /// … year.
    pub within_yearly: Option<CalendarSpan>,
    /// Keep snapshots that have every tag of one of these lists.
    pub tags: Vec<Vec<String>>,
}

impl Policy {
    /// Whether no rule is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// Calendar bucket kinds.
#[derive(Clone, Copy)]
enum Bucket {
    Each,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    /// A number that is equal for two times exactly when they fall in the same bucket.
    fn of(self, t: &Zoned, position: usize) -> i64 {
        let (y, m, d, h) = (
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
        );
        match self {
            Bucket::Each => position as i64,
            Bucket::Hour => ((y * 100 + m) * 100 + d) * 100 + h,
            Bucket::Day => (y * 100 + m) * 100 + d,
            Bucket::Week => {
                let w = t.date().iso_week_date();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Bucket::Month => y * 100 + m,
            Bucket::Year => y,
        }
    }
}

/// One snapshot as the policy sees it.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// Snapshot time, ns since the epoch.
    pub time_ns: i64,
    /// Its tags.
    pub tags: &'a [String],
}

/// The verdict for one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Whether it is kept.
    pub keep: bool,
    /// The rules that keep it (empty when removed).
    pub reasons: Vec<String>,
}

/// Applies `policy` to one group of snapshots, bucketing calendar rules in `tz`; `now_ns`
/// bounds the "newest snapshot" of the `within` rules (future snapshots are ignored there).
/// Returns one verdict per candidate, in the candidates' order.
#[must_use]
pub fn apply(
    policy: &Policy,
    candidates: &[Candidate<'_>],
    tz: &TimeZone,
    now_ns: i64,
) -> Vec<Verdict> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // Newest first; equal times keep their given order reversed (newest-listed first).
    order.reverse();
    order.sort_by(|&a, &b| candidates[b].time_ns.cmp(&candidates[a].time_ns));
    let zoned = |ns: i64| {
        Timestamp::from_nanosecond(i128::from(ns))
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned(tz.clone())
    };
    let latest = candidates
        .iter()
        .map(|c| c.time_ns)
        .filter(|&t| t < now_ns)
        .max()
        .map(zoned);
    let cutoff = |span: &Option<CalendarSpan>| -> Option<i128> {
        let span = span.as_ref()?;
        let latest = latest.as_ref()?;
        Some(
            span.before(latest)
                .map_or(i128::MIN, Timestamp::as_nanosecond),
        )
    };

    let mut counted = [
        (policy.last, Bucket::Each, "last snapshot", None::<i64>),
        (policy.hourly, Bucket::Hour, "hourly snapshot", None),
        (policy.daily, Bucket::Day, "daily snapshot", None),
        (policy.weekly, Bucket::Week, "weekly snapshot", None),
        (policy.monthly, Bucket::Month, "monthly snapshot", None),
        (policy.yearly, Bucket::Year, "yearly snapshot", None),
    ];
    let mut within = [
        (
            &policy.within_hourly,
            Bucket::Hour,
            "hourly within",
            None::<i64>,
        ),
        (&policy.within_daily, Bucket::Day, "daily within", None),
        (&policy.within_weekly, Bucket::Week, "weekly within", None),
        (
            &policy.within_monthly,
            Bucket::Month,
            "monthly within",
            None,
        ),
        (&policy.within_yearly, Bucket::Year, "yearly within", None),
    ]
    .map(|(span, bucket, name, last)| {
        (
            cutoff(span).map(|c| (c, span.unwrap_or_default())),
            bucket,
            name,
            last,
        )
    });
    let within_all = cutoff(&policy.within);

    let mut verdicts = vec![Verdict::default(); candidates.len()];
    for (position, &i) in order.iter().enumerate() {
        let c = &candidates[i];
        let t = zoned(c.time_ns);
        let mut reasons = Vec::new();
        for list in &policy.tags {
            if !list.is_empty() && list.iter().all(|tag| c.tags.contains(tag)) {
                reasons.push(format!("has tags {}", list.join(",")));
            }
        }
        if let (Some(cut), Some(span)) = (within_all, policy.within)
            && i128::from(c.time_ns) > cut
        {
            reasons.push(format!("within {span}"));
        }
        let oldest = position + 1 == order.len();
        for (count, bucket, name, last) in &mut counted {
            if *count == 0 {
                continue;
            }
            let value = bucket.of(&t, position);
            if Some(value) != *last || oldest {
                *last = Some(value);
                if *count != UNLIMITED {
                    *count -= 1;
                }
                reasons.push((*name).to_string());
            }
        }
        for (cut, bucket, name, last) in &mut within {
            let Some((cut, span)) = cut else { continue };
            if i128::from(c.time_ns) > *cut {
                let value = bucket.of(&t, position);
                if Some(value) != *last {
                    *last = Some(value);
                    reasons.push(format!("{name} {span}"));
                }
            }
        }
        verdicts[i] = Verdict {
            keep: !reasons.is_empty(),
            reasons,
        };
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        crate::snapshot::parse_time(s).unwrap()
    }

    /// Applies `policy` to snapshots at `times` (UTC, any order) in zone `tz`; returns the
    /// kept times.
    fn kept(policy: &Policy, times: &[&str], tags: &[&[&str]], tz: &str) -> Vec<String> {
        let tz = if tz == "UTC" {
            TimeZone::UTC
        } else {
            TimeZone::get(tz).unwrap()
        };
        let tag_lists: Vec<Vec<String>> = (0..times.len())
            .map(|i| {
                tags.get(i)
                    .map(|t| t.iter().map(ToString::to_string).collect())
                    .unwrap_or_default()
            })
            .collect();
        let candidates: Vec<Candidate<'_>> = times
            .iter()
            .zip(&tag_lists)
            .map(|(t, tags)| Candidate {
                time_ns: ns(t),
                tags,
            })
            .collect();
        let now = ns("2030-01-01T00:00:00Z");
        let verdicts = apply(policy, &candidates, &tz, now);
        let mut out: Vec<String> = times
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.keep)
            .map(|(t, _)| (*t).to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn spans_parse_like_restic() {
        let s: CalendarSpan = "1y6m2d3h".parse().unwrap();
        assert_eq!((s.years, s.months, s.days, s.hours), (1, 6, 2, 3));
        assert_eq!(s.to_string(), "1y6m2d3h");
        assert_eq!("30d".parse::<CalendarSpan>().unwrap().days, 30);
        for bad in ["", "30", "d", "3w", "-1d", "1.5d"] {
            assert!(bad.parse::<CalendarSpan>().is_err(), "{bad}");
        }
    }

    #[test]
    fn daily_keeps_newest_of_each_day_and_the_oldest_while_counts_last() {
        let times = [
            "2026-03-01T10:00:00Z",
            "2026-03-01T22:00:00Z",
            "2026-03-02T09:00:00Z",
            "2026-03-03T23:30:00Z",
        ];
        let p2 = Policy {
            daily: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&p2, &times, &[], "UTC"),
            ["2026-03-02T09:00:00Z", "2026-03-03T23:30:00Z"]
        );
        // Counts left at the oldest snapshot: it is kept too (restic's rule).
        let p5 = Policy {
            daily: 5,
            ..Policy::default()
        };
        assert_eq!(kept(&p5, &times, &[], "UTC"), times);
        let all = Policy {
            daily: UNLIMITED,
            ..Policy::default()
        };
        assert_eq!(kept(&all, &times, &[], "UTC"), times);
    }

    #[test]
    fn days_follow_the_time_zone() {
        let times = [
            "2026-03-01T10:00:00Z", // Tokyo: 03-01 19:00
            "2026-03-01T20:00:00Z", // Tokyo: 03-02 05:00
            "2026-03-02T01:00:00Z", // Tokyo: 03-02 10:00
            "2026-03-02T03:00:00Z", // Tokyo: 03-02 12:00
        ];
        let p = Policy {
            daily: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&p, &times, &[], "UTC"),
            [
                "2026-03-01T10:00:00Z",
                "2026-03-01T20:00:00Z",
                "2026-03-02T03:00:00Z"
            ]
        );
        assert_eq!(
            kept(&p, &times, &[], "Asia/Tokyo"),
            ["2026-03-01T10:00:00Z", "2026-03-02T03:00:00Z"]
        );
    }

    #[test]
    fn weeks_are_iso_weeks_across_the_year_boundary() {
        // 2026 has 53 ISO weeks: 2026-12-28 .. 2027-01-03 is 2026-W53.
        let times = [
            "2026-12-21T12:00:00Z", // W52
            "2026-12-28T12:00:00Z", // W53
            "2027-01-01T12:00:00Z", // W53
            "2027-01-03T12:00:00Z", // W53 (Sunday)
            "2027-01-04T12:00:00Z", // 2027-W01 (Monday)
        ];
        let weekly = Policy {
            weekly: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&weekly, &times, &[], "UTC"),
            ["2027-01-03T12:00:00Z", "2027-01-04T12:00:00Z"]
        );
        let weekly3 = Policy {
            weekly: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&weekly3, &times, &[], "UTC"),
            [
                "2026-12-21T12:00:00Z",
                "2027-01-03T12:00:00Z",
                "2027-01-04T12:00:00Z"
            ]
        );
        // Years are calendar years: 2027's newest, then 2026's newest.
        let yearly = Policy {
            yearly: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&yearly, &times, &[], "UTC"),
            ["2026-12-28T12:00:00Z", "2027-01-04T12:00:00Z"]
        );
        // In Honolulu (UTC-10), at 2027-01-01T05:00Z it is still 2026.
        let new_year = [
            "2026-12-30T12:00:00Z",
            "2027-01-01T05:00:00Z",
            "2027-01-02T12:00:00Z",
        ];
        let yearly1 = Policy {
            yearly: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&yearly1, &new_year, &[], "UTC"),
            ["2026-12-30T12:00:00Z", "2027-01-02T12:00:00Z"]
        );
        assert_eq!(
            kept(&yearly1, &new_year, &[], "Pacific/Honolulu"),
            ["2027-01-01T05:00:00Z", "2027-01-02T12:00:00Z"]
        );
    }

    #[test]
    fn months_follow_the_time_zone() {
        let times = [
            "2026-01-15T12:00:00Z",
            "2026-01-31T23:00:00Z", // Paris: 2026-02-01 00:00
            "2026-02-01T00:30:00Z",
            "2026-02-28T12:00:00Z",
            "2026-03-01T00:00:00Z",
        ];
        let p = Policy {
            monthly: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&p, &times, &[], "UTC"),
            [
                "2026-01-31T23:00:00Z",
                "2026-02-28T12:00:00Z",
                "2026-03-01T00:00:00Z"
            ]
        );
        assert_eq!(
            kept(&p, &times, &[], "Europe/Paris"),
            [
                "2026-01-15T12:00:00Z",
                "2026-02-28T12:00:00Z",
                "2026-03-01T00:00:00Z"
            ]
        );
    }

    #[test]
    fn hourly_last_within_and_tags() {
        let times = [
            "2026-03-01T10:05:00Z",
            "2026-03-01T10:59:00Z",
            "2026-03-01T11:01:00Z",
            "2026-03-01T13:00:00Z",
        ];
        let hourly = Policy {
            hourly: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&hourly, &times, &[], "UTC"),
            ["2026-03-01T11:01:00Z", "2026-03-01T13:00:00Z"]
        );
        let days: Vec<String> = (1..=10)
            .map(|d| format!("2026-05-{d:02}T12:00:00Z"))
            .collect();
        let days: Vec<&str> = days.iter().map(String::as_str).collect();
        // Strictly newer than the newest minus 3 days: the 8th, 9th and 10th.
        let within = Policy {
            within: Some("3d".parse().unwrap()),
            ..Policy::default()
        };
        assert_eq!(kept(&within, &days, &[], "UTC"), days[7..]);
        let last = Policy {
            last: 2,
            ..Policy::default()
        };
        assert_eq!(kept(&last, &days, &[], "UTC"), days[8..]);
        let tags: Vec<&[&str]> = vec![&[], &["keep", "x"], &["keep"]];
        let tagged = Policy {
            tags: vec![vec!["keep".into(), "x".into()]],
            ..Policy::default()
        };
        assert_eq!(kept(&tagged, &days, &tags, "UTC"), [days[1]]);
        let within_daily = Policy {
            within_daily: Some("2d".parse().unwrap()),
            ..Policy::default()
        };
        assert_eq!(kept(&within_daily, &days, &[], "UTC"), days[8..]);
    }

    #[test]
    fn within_ignores_snapshots_in_the_future_and_months_are_calendar_months() {
        let times = [
            "2026-01-31T12:00:00Z",
            "2026-02-28T11:00:00Z",
            "2026-03-31T12:00:00Z",
            "2031-01-01T00:00:00Z", // after "now" in the test
        ];
        // The newest is 2026-03-31; minus one month is 2026-02-28T12:00 (clamped).
        let p = Policy {
            within: Some("1m".parse().unwrap()),
            ..Policy::default()
        };
        assert_eq!(
            kept(&p, &times, &[], "UTC"),
            ["2026-03-31T12:00:00Z", "2031-01-01T00:00:00Z"]
        );
    }

    #[test]
    fn reasons_name_every_rule() {
        let tags = vec!["a".to_string()];
        let c = [Candidate {
            time_ns: 0,
            tags: &tags,
        }];
        let p = Policy {
            last: 1,
            daily: 1,
            tags: vec![vec!["a".into()]],
            ..Policy::default()
        };
        let v = apply(&p, &c, &TimeZone::UTC, 1);
        assert_eq!(
            v[0].reasons,
            ["has tags a", "last snapshot", "daily snapshot"]
        );
        assert!(
            apply(&Policy::default(), &c, &TimeZone::UTC, 1)[0]
                .reasons
                .is_empty()
        );
    }
}
