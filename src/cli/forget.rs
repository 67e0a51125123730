//! `chronofs forget`: remove snapshots by a retention policy (or by name), optionally followed
//! by `prune`.

use std::io::Write as _;

use anyhow::{Result, bail};
use chronofs::maintain::forget::{self, Group, GroupBy};
use chronofs::maintain::policy::{CalendarSpan, Policy};
use chronofs::maintain::{ensure_mutable, prune};
use chronofs::repo::lock::LockKind;
use chronofs::repo::now_ns;
use chronofs::snapshot::{self, Listed};

use super::{Context, prune as prune_cmd, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshots to forget (instead of a policy): dated names, id prefixes or `latest`.
    #[arg(value_name = "SNAP")]
    snapshots: Vec<String>,
    /// Keep the N newest snapshots (`unlimited` keeps all).
    #[arg(short = 'l', long, value_name = "N", value_parser = ui::parse_count, default_value = "0")]
    keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(short = 'H', long, value_name = "N", value_parser = ui::parse_count, default_value = "0")]
    keep_hourly: u32,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[arg(short = 'd', long, value_name = "N", value_parser = ui::parse_count, default_value = "0")]
    keep_daily: u32,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(short = 'w', long, value_name = "N", value_parser = ui::parse_count, default_value = "0")]
    keep_weekly: u32,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(short = 'm', long, value_name = "N", value_parser = ui::parse_count, default_value = "0")]
    keep_monthly: u32,
    /// Keep the newest snapshot of each of the last N years that have one.
    #[arg(short = 'y', long, value_name = "N", value_parser = ui::parse_count, default_value = "0")]
    keep_yearly: u32,
    /// Keep every snapshot newer than the newest one minus DURATION (e.g. 30d, 6m, 1y2m, 12h;
    /// m is months).
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<String>,
    /// Keep the newest snapshot of each hour within DURATION of the newest snapshot.
    #[arg(long, value_name = "DURATION")]
    keep_within_hourly: Option<String>,
    /// Keep the newest snapshot of each day within DURATION.
    #[arg(long, value_name = "DURATION")]
    keep_within_daily: Option<String>,
    /// Keep the newest snapshot of each week within DURATION.
    #[arg(long, value_name = "DURATION")]
    keep_within_weekly: Option<String>,
    /// Keep the newest snapshot of each month within DURATION.
    #[arg(long, value_name = "DURATION")]
    keep_within_monthly: Option<String>,
    /// Keep the newest snapshot of each year within DURATION.
    #[arg(long, value_name = "DURATION")]
    keep_within_yearly: Option<String>,
    /// Keep snapshots that have all of these tags (comma-separated). Repeatable.
    #[arg(long, value_name = "TAG[,TAG...]")]
    keep_tag: Vec<String>,
    #[command(flatten)]
    select: super::select::SelectArgs,
    /// Apply the policy separately to each group of snapshots sharing these fields: a
    /// comma-separated subset of host, paths, tags; "" for one group.
    #[arg(long, value_name = "FIELDS", default_value = "host,paths")]
    group_by: String,
    /// Only show what would be kept and removed, and why.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Run prune afterwards (under the same lock) to reclaim the space.
    #[arg(long)]
    prune: bool,
    /// With --prune: see `chronofs prune --max-unused`.
    #[arg(long, value_name = "LIMIT", default_value = "10%")]
    max_unused: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn span(s: Option<&String>) -> Result<Option<CalendarSpan>> {
    Ok(s.map(|s| s.parse()).transpose()?)
}

impl Args {
    fn policy(&self) -> Result<Policy> {
        Ok(Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: span(self.keep_within.as_ref())?,
            within_hourly: span(self.keep_within_hourly.as_ref())?,
            within_daily: span(self.keep_within_daily.as_ref())?,
            within_weekly: span(self.keep_within_weekly.as_ref())?,
            within_monthly: span(self.keep_within_monthly.as_ref())?,
            within_yearly: span(self.keep_within_yearly.as_ref())?,
            tags: super::select::tag_lists(&self.keep_tag),
        })
    }
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let policy = a.policy()?;
    let group_by: GroupBy = a.group_by.parse()?;
    let max_unused: prune::MaxUnused = a.max_unused.parse()?;
    if a.snapshots.is_empty() == policy.is_empty() {
        bail!(chronofs::Error::InvalidInput(if policy.is_empty() {
            "forget needs a policy (--keep-last, --keep-daily, --keep-within, ...) or the \
             snapshots to remove; nothing was removed"
                .into()
        } else {
            "give either snapshots to forget or a --keep-* policy, not both".into()
        }));
    }
    // Snapshots only; with --prune, prune loads the index itself, under the lock.
    let repo = ctx.open_unindexed()?;
    if !a.dry_run {
        ensure_mutable(&repo, "forget")?;
    }
    let lock = if a.dry_run {
        None
    } else {
        Some(ctx.lock(&repo, LockKind::Maintenance, "forget")?)
    };
    // A maintenance process stopped past the grace period must not resume beside this one.
    let revocation = match &lock {
        Some(l) => forget::revoke_stale_maintenance(&repo, l)?,
        None => None,
    };
    let listing = snapshot::list(&repo)?;
    if let (Some(r), Some(l)) = (revocation, &lock) {
        l.ensure_held()?;
        r.finish(
            &repo,
            listing.snapshots.iter().map(|s| (&s.id, &s.snapshot)),
            &listing.sets,
        )?;
    }
    for e in &listing.unreadable {
        let e = super::quote::text(&e.to_string());
        eprintln!("chronofs: warning: {e} (this snapshot is left alone)");
    }
    let groups: Vec<Group> = if a.snapshots.is_empty() {
        let filter = a.select.filter();
        let considered: Vec<Listed> = listing
            .snapshots
            .into_iter()
            .filter(|l| filter.matches(&l.snapshot))
            .collect();
        let tz = jiff::tz::TimeZone::system();
        if !a.json && !ctx.quiet {
            outln!(
                "calendar rules use time zone {}",
                tz.iana_name().unwrap_or("of TZ")
            )?;
        }
        forget::plan(considered, &policy, group_by, &tz, now_ns())
    } else {
        vec![Group {
            key: forget::GroupKey::default(),
            snapshots: listing
                .resolve_all(&a.snapshots)?
                .into_iter()
                .map(|listed| forget::Planned {
                    listed,
                    verdict: chronofs::maintain::policy::Verdict::default(),
                })
                .collect(),
        }]
    };
    print_plan(ctx, a, &groups)?;
    let doomed: Vec<_> = groups
        .iter()
        .flat_map(|g| &g.snapshots)
        .filter(|p| !p.verdict.keep)
        .map(|p| p.listed.id)
        .collect();
    let Some(lock) = lock else {
        return Ok(0);
    };
    forget::remove(&repo, &lock, &doomed)?;
    if !a.json && !ctx.quiet {
        outln!("removed {} snapshot(s)", doomed.len())?;
    }
    if a.prune {
        let options = prune::PruneOptions {
            max_unused,
            dry_run: false,
            ..prune::PruneOptions::default()
        };
        let show = super::progress::Mode::choose(false, ctx.quiet || a.json);
        let report = super::prune::run_recorded(&repo, &lock, &options, show)?;
        prune_cmd::print_report(ctx, a.json, &report)?;
    }
    Ok(0)
}

fn print_plan(ctx: &Context, a: &Args, groups: &[Group]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<serde_json::Value> = groups
            .iter()
            .map(|g| {
                serde_json::json!({
                    "group": g.key,
                    "snapshots": g.snapshots.iter().map(|p| serde_json::json!({
                        "id": p.listed.id,
                        "name": p.listed.name,
                        "time": snapshot::rfc3339(p.listed.snapshot.time_ns),
                        "action": if p.verdict.keep { "keep" } else { "remove" },
                        "reasons": p.verdict.reasons,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    for g in groups {
        writeln!(out, "{}:", super::quote::text(&g.key.to_string()))?;
        for p in g.snapshots.iter().rev() {
            writeln!(
                out,
                "  {:<6}  {:<28}  {}  {}",
                if p.verdict.keep { "keep" } else { "remove" },
                p.listed.name,
                p.listed.id.short(),
                p.verdict.reasons.join(", ")
            )?;
        }
        let kept = g.snapshots.iter().filter(|p| p.verdict.keep).count();
        writeln!(
            out,
            "  {kept} kept, {} {}",
            g.snapshots.len() - kept,
            if a.dry_run {
                "would be removed"
            } else {
                "to remove"
            }
        )?;
    }
    Ok(())
}
