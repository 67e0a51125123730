//! `chronofs prune`: delete data no snapshot references, beside running backups.

use std::sync::Arc;

use anyhow::Result;
use chronofs::maintain::prune::{self, PruneOptions, PruneReport};
use chronofs::progress::Progress;
use chronofs::repo::lock::LockKind;

use super::{Context, progress, ui};

/// How prune runs beside backups, for `--help` and the man page.
pub const RULES: &str = "\
Prune runs beside backups, copies, checks and mounts, on a directory or on object storage; only
another forget or prune excludes it. Unused packs are first condemned: still readable, no longer
deduplicated against. A condemned pack is deleted once every backup that was running when it was
condemned has finished (such a backup may reuse it; the snapshot it commits brings it back); until
then it waits for a later prune (packs_waiting, writers_waited_for in --json). A backup whose lock
was not refreshed for 30 minutes (stopped, suspended, cut off) is revoked: it cannot commit, and
fails with exit code 20 when it wakes. Once 1,000 or more snapshot files are older than 30 minutes,
prune gathers them into snapshot sets (a few files for many snapshots, so that listing stays fast;
ids, names and contents do not change). Every prune leaves a record that `chronofs status` reports.
The protocol and its guarantees: docs/FORMAT.md, \"Prune beside writers\" and \"Snapshot sets\".";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Unused data to tolerate in partly used packs before repacking them: a share of the
    /// repository (10%), a size (500M, 2G), or `unlimited` (never repack).
    #[arg(long, value_name = "LIMIT", default_value = "10%")]
    max_unused: String,
    /// Only report what would be deleted and repacked.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let options = PruneOptions {
        max_unused: a.max_unused.parse()?,
        dry_run: a.dry_run,
        ..PruneOptions::default()
    };
    // No index yet: prune loads it itself, under the lock.
    let repo = ctx.open_unindexed()?;
    if !a.dry_run {
        chronofs::maintain::ensure_mutable(&repo, "prune")?;
    }
    let kind = if a.dry_run {
        LockKind::Shared
    } else {
        LockKind::Maintenance
    };
    let lock = ctx.lock(&repo, kind, "prune")?;
    // A bar on a terminal; --json keeps stdout for the report alone.
    let show = progress::Mode::choose(false, ctx.quiet || a.json);
    let report = run_recorded(&repo, &lock, &options, show)?;
    print_report(ctx, a.json, &report)?;
    Ok(0)
}

/// Prunes, and leaves a run record of how it ended (not for a dry run), which `status`
/// reports.
pub fn run_recorded(
    repo: &chronofs::repo::Repository,
    lock: &chronofs::repo::lock::RepoLock,
    options: &PruneOptions,
    show: progress::Mode,
) -> Result<PruneReport> {
    let started = chronofs::repo::now_ns();
    let counters = Arc::new(Progress::default());
    let result = progress::showing(show, progress::Task::Prune, &counters, || {
        prune::prune_observed(repo, lock, options, &counters)
    });
    if !options.dry_run {
        let (ok, outcome) = match &result {
            Ok(r) => (
                true,
                format!(
                    "{} packs deleted, {} condemned, {} waiting, {} reclaimed",
                    r.packs_deleted + r.unindexed_packs_deleted,
                    r.packs_condemned,
                    r.packs_waiting,
                    ui::size(r.bytes_reclaimed)
                ),
            ),
            Err(e) => (false, e.to_string()),
        };
        let job = chronofs::format::run::Job::Prune;
        if let Err(e) = chronofs::maintain::runs::record(repo, job, started, ok, &outcome) {
            eprintln!("chronofs: warning: cannot record the prune for `status`: {e}");
        }
    }
    Ok(result?)
}

/// Prints a prune report (also used by `forget --prune`).
pub fn print_report(ctx: &Context, json: bool, r: &PruneReport) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(r)?)?;
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    let would = if r.dry_run { "would be " } else { "" };
    outln!(
        "{} snapshots use {} blobs; {} blobs are unused",
        r.snapshots,
        r.blobs_used,
        r.blobs_unused
    )?;
    outln!(
        "packs: {} before; {} unused {would}deleted, {} {would}repacked into {} new, {} unindexed leftovers {would}deleted",
        r.packs_before,
        r.packs_deleted,
        r.packs_repacked,
        if r.dry_run {
            "?".to_string()
        } else {
            r.packs_written.to_string()
        },
        r.unindexed_packs_deleted
    )?;
    if r.packs_condemned + r.packs_recovered > 0 {
        outln!(
            "{} packs {would}condemned (no longer deduplicated against), {} condemned packs in use again",
            r.packs_condemned,
            r.packs_recovered
        )?;
    }
    if r.packs_waiting > 0 {
        outln!(
            "{} condemned packs ({}) wait for {} running writer(s), for a later prune:",
            r.packs_waiting,
            ui::size(r.bytes_waiting),
            r.writers_waited_for.len()
        )?;
        for w in &r.writers_waited_for {
            outln!("  {}", super::quote::text(w))?;
        }
    }
    for w in &r.writers_revoked {
        outln!(
            "revoked {} (stopped or cut off past the grace period; it cannot commit)",
            super::quote::text(w)
        )?;
    }
    if r.snapshots_gathered + r.snapshot_sets_replaced > 0 {
        outln!(
            "{} snapshot files gathered into {} snapshot sets; {} sets replaced",
            r.snapshots_gathered,
            r.snapshot_sets_written,
            r.snapshot_sets_replaced
        )?;
    }
    outln!(
        "{} {}reclaimed ({} -> {}); {} unused left in partly used packs; {} copied by repacking",
        ui::size(r.bytes_reclaimed),
        would,
        ui::size(r.bytes_before),
        ui::size(r.bytes_after),
        ui::size(r.unused_bytes_kept),
        ui::size(r.bytes_repacked)
    )?;
    if !r.dry_run {
        outln!("done in {}", ui::secs(r.duration_ns))?;
    }
    Ok(())
}
