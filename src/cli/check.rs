//! `chronofs check`: verify repository integrity and name what is damaged.
//!
//! `--read-data-subset` is the restore drill that fits in a night: `N/M` reads part N of M
//! (packs split by id), `P%` reads the next of the ceil(100/P) parts each run, remembering
//! which in the local cache directory (`~/.cache/chronofs/REPO-ID/`), so that M runs read
//! the whole repository whatever the schedule.

use std::path::PathBuf;

use anyhow::Result;
use chronofs::error::exit;
use chronofs::format::run::Job;
use chronofs::maintain::check::{self, ReadData};
use chronofs::maintain::runs;
use chronofs::repo::lock::LockKind;

use super::{Context, progress, quote};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also read every pack, decompress every blob and verify its hash.
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Read only a part of the packs: `N/M` (part N of M), or `P%` (the next of 100/P parts,
    /// rotating from run to run, so that the whole repository is read over 100/P runs).
    #[arg(long, value_name = "N/M|P%", value_parser = parse_subset)]
    read_data_subset: Option<Subset>,
    /// Print the findings as one JSON object on stdout (`message_type` `summary`), after a
    /// status object per second while packs are read.
    #[arg(long)]
    json: bool,
}

/// A `--read-data-subset` as given.
#[derive(Clone, Copy, Debug)]
pub enum Subset {
    /// Part `n` of `of`.
    Part(u64, u64),
    /// The next of `of` parts.
    Rotating(u64),
}

fn parse_subset(s: &str) -> Result<Subset, String> {
    let bad = || format!("{s:?}: use N/M (part N of M, 1 <= N <= M) or P% (0 < P <= 100)");
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(bad());
        }
        return Ok(Subset::Rotating((100.0 / p).ceil() as u64));
    }
    let (n, m) = s.split_once('/').ok_or_else(bad)?;
    let (n, m): (u64, u64) = (
        n.trim().parse().map_err(|_| bad())?,
        m.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || m == 0 || n > m {
        return Err(bad());
    }
    Ok(Subset::Part(n, m))
}

/// Where the rotation of `P%` subsets is remembered for repository `id`.
fn rotation_file(id: &str) -> Option<PathBuf> {
    Some(
        chronofs::repo::cache::base_dir()?
            .join(id)
            .join("read-data-subset"),
    )
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    // The index is loaded by check itself so damaged index files are reported, not fatal.
    let repo = ctx.open_unindexed()?;
    // A shared lock: a concurrent prune would make data look missing.
    let _lock = ctx.lock(&repo, LockKind::Shared, "check")?;
    let rotation = rotation_file(&repo.config().repo_id.to_hex());
    let read = match a.read_data_subset {
        None if a.read_data => ReadData::All,
        None => ReadData::No,
        Some(Subset::Part(n, of)) => ReadData::Part { n, of },
        Some(Subset::Rotating(of)) => {
            let done: u64 = rotation
                .as_ref()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            ReadData::Part {
                n: done % of + 1,
                of,
            }
        }
    };
    let started = chronofs::repo::now_ns();
    // A bar while packs are read (structure alone is quick).
    let counters = std::sync::Arc::new(chronofs::progress::Progress::default());
    let mode = match read {
        ReadData::No => progress::Mode::Off,
        _ => progress::Mode::choose(a.json, ctx.quiet),
    };
    let report = progress::showing(mode, progress::Task::Check, &counters, || {
        check::check_observed(&repo, read, &counters)
    });
    let job = match read {
        ReadData::No => Job::Check,
        ReadData::All => Job::CheckReadData,
        ReadData::Part { .. } => Job::CheckReadDataSubset,
    };
    let (ok, outcome) = match &report {
        Ok(r) if r.is_ok() => (
            true,
            format!("{} snapshots, {} packs, no errors", r.snapshots, r.packs),
        ),
        Ok(r) => (
            false,
            format!(
                "{} errors, first: {}",
                r.errors.len(),
                r.errors.first().map_or("", String::as_str)
            ),
        ),
        Err(e) => (false, e.to_string()),
    };
    if !repo.backup_only()
        && let Err(e) = runs::record(&repo, job, started, ok, &outcome)
    {
        eprintln!("chronofs: warning: cannot record the check for `status`: {e}");
    }
    let report = report?;
    if let (Some(Subset::Rotating(_)), Some(file), ReadData::Part { n, .. }) =
        (a.read_data_subset, &rotation, read)
    {
        let saved = file
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| std::fs::write(file, format!("{n}\n")));
        if let Err(e) = saved {
            eprintln!(
                "chronofs: warning: cannot remember the next subset in {}: {e}",
                quote::path(file)
            );
        }
    }
    let code = if report.is_ok() {
        exit::OK
    } else {
        exit::DAMAGED
    };
    if a.json {
        let v = serde_json::json!({
            "message_type": "summary",
            "ok": report.is_ok(),
            "read": match read {
                ReadData::No => serde_json::Value::Null,
                ReadData::All => serde_json::json!("all"),
                ReadData::Part { n, of } => serde_json::json!({"part": n, "of": of}),
            },
            "report": report,
        });
        outln!("{v}")?;
        return Ok(code);
    }
    for h in &report.harmless {
        if !ctx.quiet {
            outln!("harmless: {}", quote::text(h))?;
        }
    }
    for e in &report.errors {
        outln!("error: {}", quote::text(e))?;
    }
    for f in &report.damaged_files {
        outln!("damaged: {}", quote::text(f))?;
    }
    if !ctx.quiet {
        let read_what = match read {
            ReadData::No => String::new(),
            ReadData::All => format!(", read {} blobs", report.blobs_read),
            ReadData::Part { n, of } => format!(
                ", read part {n}/{of}: {} packs, {} blobs",
                report.packs_read, report.blobs_read
            ),
        };
        outln!(
            "checked {} snapshots, {} packs{read_what}: {}",
            report.snapshots,
            report.packs,
            if report.is_ok() {
                "no errors".to_string()
            } else {
                format!("{} errors", report.errors.len())
            }
        )?;
    }
    Ok(code)
}
