//! `chronofs copy`: copy snapshots to another repository.

use std::io::IsTerminal as _;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use chronofs::maintain::copy::{self, CopyObserver};
use chronofs::progress::Progress;
use chronofs::repo::lock::LockKind;
use chronofs::snapshot::{self, Listed};
use chronofs::storage::location::Location;

use super::{Context, password, progress, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshots to copy (default: all): dated names, id prefixes or `latest`.
    #[arg(value_name = "SNAP")]
    snapshots: Vec<String>,
    /// Of those, only the ones these select.
    #[command(flatten)]
    select: super::select::SelectArgs,
    /// Source repository (default: --repo).
    #[arg(long, value_name = "REPO")]
    from: Option<Location>,
    /// Destination repository, a directory or an s3: location (created first with
    /// `chronofs init`).
    #[arg(long, value_name = "REPO")]
    to: Location,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Read the destination's passphrase from FILE (also CHRONOFS_TO_PASSWORD_FILE; or set
    /// CHRONOFS_TO_PASSWORD). Without any, the source's passphrase is used (or, for a
    /// plaintext source, the usual --password-* options and CHRONOFS_PASSWORD).
    #[arg(long, value_name = "FILE", env = "CHRONOFS_TO_PASSWORD_FILE")]
    to_password_file: Option<std::path::PathBuf>,
    /// Run CMD (with `sh -c`) for the destination's passphrase.
    #[arg(long, value_name = "CMD", env = "CHRONOFS_TO_PASSWORD_COMMAND")]
    to_password_command: Option<String>,
}

struct Printer {
    quiet: bool,
}

impl CopyObserver for Printer {
    fn snapshot(&self, s: &Listed, present: bool) {
        if !self.quiet {
            // A closed pipe shows in the summary line, which is written with `?`.
            let _ = outln!(
                "{} {} ({})",
                if present { "present" } else { "copying" },
                s.name,
                s.id.short()
            );
        }
    }
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let from_path = match &a.from {
        Some(p) => p,
        None => ctx.repo_path()?,
    };
    let mut source_pass = None;
    let from = super::open_with(from_path, |_| {
        let p = ctx.password_source(from_path).get()?;
        source_pass = Some(p.clone());
        Ok(p)
    })
    .with_context(|| format!("source {}", from_path.display()))?;
    let to_source = password::Source {
        file: a.to_password_file.clone(),
        command: a.to_password_command.clone(),
        env: "CHRONOFS_TO_PASSWORD",
        label: a.to.to_string(),
    };
    let to = super::open_with(&a.to, |_| match source_pass.take() {
        _ if to_source.given() => to_source.get(),
        Some(p) => Ok(p),
        // The source is not encrypted: the destination's passphrase comes from the usual
        // sources (CHRONOFS_PASSWORD, --password-file, ...).
        None => ctx.password_source(&a.to).get(),
    })
    .with_context(|| format!("destination {}", a.to.display()))?;
    if from.config().repo_id == to.config().repo_id {
        anyhow::bail!(chronofs::Error::InvalidInput(
            "--from and --to are the same repository".into()
        ));
    }
    // Lock, then load the indexes: the destination's is what the copy deduplicates against.
    let _from_lock = ctx.lock(&from, LockKind::Shared, "copy (source)")?;
    let to_lock = ctx.lock(&to, LockKind::Shared, "copy (destination)")?;
    from.load_index_strict()
        .with_context(|| format!("source {}", from_path.display()))?;
    to.load_index_strict()
        .with_context(|| format!("destination {}", a.to.display()))?;
    to_lock.set_basis(to.index().epoch())?;
    let listing = snapshot::list(&from)?;
    let unreadable = listing.unreadable.len();
    for e in &listing.unreadable {
        eprintln!(
            "chronofs: warning: {} (not copied)",
            super::quote::text(&e.to_string())
        );
    }
    let mut chosen: Vec<Listed> = if a.snapshots.is_empty() {
        listing.snapshots
    } else {
        listing.resolve_all(&a.snapshots)?
    };
    let filter = a.select.filter();
    chosen.retain(|l| filter.matches(&l.snapshot));
    // A bar on a terminal (--json keeps stdout for the report); a line per snapshot on
    // stdout unless the bar is drawn on the same terminal.
    let show = progress::Mode::choose(false, ctx.quiet || a.json);
    let printer = Printer {
        quiet: ctx.quiet
            || a.json
            || (show == progress::Mode::Terminal && std::io::stdout().is_terminal()),
    };
    let counters = Arc::new(Progress::default());
    let report = progress::showing(show, progress::Task::Copy, &counters, || {
        copy::copy(&from, &to, &chosen, &printer, Some(&to_lock), &counters)
    })?;
    if a.json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else if !ctx.quiet {
        outln!(
            "copied {} snapshot(s) ({} already there): {} blobs, {} in {} verified packs, in {}",
            report.snapshots_copied,
            report.snapshots_present,
            report.blobs_copied,
            ui::size(report.bytes_copied),
            report.packs_verified,
            ui::secs(report.duration_ns)
        )?;
    }
    Ok(if unreadable == 0 {
        0
    } else {
        chronofs::error::exit::DAMAGED
    })
}
