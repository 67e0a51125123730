//! `chronofs restore`: write a snapshot or a subtree back to disk.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use chronofs::error::exit;
use chronofs::restore::image::ImageOptions;
use chronofs::restore::{self, RestoreOptions};
use chronofs::snapshot;

use super::{Context, progress, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `SNAP` or `SNAP:PATH` (SNAP: `latest`, a dated name, or an id prefix; PATH absolute).
    #[arg(value_name = "SNAP[:PATH]")]
    spec: String,
    /// Directory to restore into (created if missing). Sources appear under it by their
    /// absolute path; with SNAP:PATH, PATH's contents go directly into it. A block device or
    /// an existing regular file instead: SNAP:PATH names a file (a disk image) that is
    /// written onto it whole and read back to verify (needs --overwrite).
    #[arg(short, long, value_name = "DIR|DEVICE")]
    target: PathBuf,
    /// Replace entries that already exist in the target (for a device or file target: write
    /// over it).
    #[arg(long)]
    overwrite: bool,
    /// Image restore onto a device that reads as zeros already (new, or discarded): leave
    /// the image's holes unwritten instead of zeroing them.
    #[arg(long)]
    sparse: bool,
    /// Restore even if the data looks larger than the target's free space (for file systems
    /// that compress or deduplicate).
    #[arg(long)]
    no_space_check: bool,
    /// Show no progress bar (it is shown only when stderr is a terminal), and with --json
    /// no status objects.
    #[arg(long)]
    no_progress: bool,
    /// Print progress (a status object per second and one at the end) and the summary as
    /// JSON lines on stdout, and warnings as JSON objects on stderr.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let (snap_spec, path) = snapshot::split_spec(&a.spec);
    let snap = super::resolve_snapshot(&repo, snap_spec)?;
    if restore::image::is_image_target(&a.target) {
        return image(ctx, &repo, a, &snap, path);
    }
    if a.sparse {
        bail!(chronofs::Error::InvalidInput(
            "--sparse applies to an image restored onto a block device or file".into()
        ));
    }
    let reporter = ui::StderrReporter {
        quiet: ctx.quiet,
        clear_line: false,
        json: a.json,
    };
    let options = RestoreOptions {
        overwrite: a.overwrite,
        skip_space_check: a.no_space_check,
        ..RestoreOptions::default()
    };
    let stats = progress::showing(
        mode(ctx, a),
        progress::Task::Restore,
        &options.progress,
        || {
            restore::restore(
                &repo,
                &snap.snapshot,
                path.map(Path::new),
                &a.target,
                &options,
                &reporter,
            )
        },
    )?;
    if a.json {
        summary(&snap, &a.target, &stats, repo.storage().traffic())?;
    } else if !ctx.quiet {
        outln!(
            "restored {} files, {} dirs, {} other ({}) from {} to {}",
            stats.files,
            stats.dirs,
            stats.others,
            ui::size(stats.bytes),
            snap.name,
            a.target.display()
        )?;
        if let Some(t) = repo.storage().traffic() {
            outln!("object storage: {}", t.summary())?;
        }
    }
    if stats.damaged > 0 {
        eprintln!(
            "chronofs: error: {} entries not restored: repository data is damaged (run `chronofs check --read-data`)",
            stats.damaged
        );
        return Ok(exit::DAMAGED);
    }
    if stats.failed > 0 {
        eprintln!(
            "chronofs: error: {} entries could not be restored",
            stats.failed
        );
        return Ok(exit::FATAL);
    }
    if stats.refused > 0 {
        eprintln!(
            "chronofs: error: {} entries not restored: they exist in the target (use --overwrite)",
            stats.refused
        );
        return Ok(exit::REFUSED);
    }
    Ok(exit::OK)
}

/// How a restore shows its progress: JSON lines with `--json`, else a bar on a terminal;
/// neither with `--no-progress`, and no bar with `--quiet`.
fn mode(ctx: &Context, a: &Args) -> progress::Mode {
    progress::Mode::choose(
        a.json && !a.no_progress,
        ctx.quiet || a.no_progress || a.json,
    )
}

/// The `--json` summary line: what was restored (`stats`, the image's or the tree's) from
/// which snapshot, to where.
fn summary(
    snap: &chronofs::snapshot::Listed,
    target: &Path,
    stats: &impl serde::Serialize,
    traffic: Option<chronofs::storage::Traffic>,
) -> Result<()> {
    let v = serde_json::json!({
        "message_type": "summary",
        "snapshot_id": snap.id,
        "name": snap.name,
        "target": target.to_string_lossy(),
        "summary": stats,
        "storage_traffic": traffic,
    });
    outln!("{v}")?;
    Ok(())
}

/// Writes one file of the snapshot (a disk image) onto a block device or an existing file.
fn image(
    ctx: &Context,
    repo: &chronofs::repo::Repository,
    a: &Args,
    snap: &chronofs::snapshot::Listed,
    path: Option<&str>,
) -> Result<u8> {
    let Some(path) = path else {
        bail!(chronofs::Error::InvalidInput(format!(
            "{} is a device or file: name the image to write onto it as SNAP:PATH",
            a.target.display()
        )));
    };
    let options = ImageOptions {
        overwrite: a.overwrite,
        sparse: a.sparse,
        ..ImageOptions::default()
    };
    let s = progress::showing(
        mode(ctx, a),
        progress::Task::Restore,
        &options.progress,
        || {
            restore::image::restore_image(
                repo,
                &snap.snapshot,
                Path::new(path),
                &a.target,
                &options,
            )
        },
    )
    .with_context(|| {
        format!(
            "restoring {path} of {} onto {}",
            snap.name,
            a.target.display()
        )
    })?;
    if a.json {
        summary(snap, &a.target, &s, repo.storage().traffic())?;
    } else if !ctx.quiet {
        let secs = s.duration_ns.max(1) as f64 / 1e9;
        outln!(
            "restored {path} ({}) from {} onto {} in {} ({}/s): {} data, {} of holes {}; read back and verified {}",
            ui::size(s.size),
            snap.name,
            a.target.display(),
            ui::secs(s.duration_ns),
            ui::size((s.size as f64 / secs) as u64),
            ui::size(s.data_bytes),
            ui::size(s.zeroed_bytes + s.skipped_bytes),
            if s.zeroed_bytes > 0 {
                "zeroed"
            } else {
                "left unwritten"
            },
            ui::size(s.verified_bytes),
        )?;
        if s.target_size > s.size {
            outln!(
                "the image fills the first {} of the device's {}; the rest is as it was",
                ui::size(s.size),
                ui::size(s.target_size)
            )?;
        }
    }
    Ok(exit::OK)
}
