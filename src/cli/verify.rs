//! `chronofs verify`: a restore drill. Restores a snapshot into a scratch directory, compares
//! every entry with what the snapshot records, reports the throughput, and removes the scratch
//! directory (unless `--keep`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chronofs::error::exit;
use chronofs::restore::verify;
use chronofs::snapshot;

use super::{Context, quote, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `SNAP` or `SNAP:PATH` (SNAP: `latest`, a dated name, or an id prefix; PATH absolute).
    #[arg(value_name = "SNAP[:PATH]", default_value = "latest")]
    spec: String,
    /// Where to restore (a new directory is made inside it; default: the temp directory).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Leave the restored copy in place.
    #[arg(long)]
    keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let (snap_spec, path) = snapshot::split_spec(&a.spec);
    let snap = super::resolve_snapshot(&repo, snap_spec)?;
    let base = a.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix("chronofs-verify-")
        .tempdir_in(&base)
        .with_context(|| format!("making a scratch directory in {}", base.display()))?;
    let reporter = ui::StderrReporter {
        quiet: ctx.quiet,
        clear_line: false,
        json: false,
    };
    let report = verify::verify(
        &repo,
        &snap.snapshot,
        path.map(Path::new),
        scratch.path(),
        &reporter,
    );
    let kept = a.keep.then(|| scratch.keep());
    let report = report?;
    let secs = report.duration_ns as f64 / 1e9;
    let rate = report.bytes as f64 / secs.max(1e-9) / f64::from(1 << 20);
    if a.json {
        let v = serde_json::json!({
            "snapshot": snap.name, "report": report, "mib_per_second": rate,
            "kept": kept,
        });
        outln!("{v}")?;
    } else {
        for d in &report.differences {
            outln!("differs: {}", quote::text(d))?;
        }
        if !ctx.quiet || !report.is_ok() {
            outln!(
                "verified {}: {} files, {} dirs, {} other, {} in {} ({rate:.1} MiB/s): {}",
                snap.name,
                report.files,
                report.dirs,
                report.others,
                ui::size(report.bytes),
                ui::secs(report.duration_ns),
                if report.is_ok() {
                    "identical to the snapshot".to_string()
                } else {
                    format!(
                        "{} differences, {} entries not restored",
                        report.differences.len(),
                        report.not_restored
                    )
                }
            )?;
        }
        if let Some(k) = &kept {
            outln!("restored copy kept in {}", quote::path(k))?;
        }
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
