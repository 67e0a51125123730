//! `chronofs status`: is every host's newest backup recent enough? For cron, Nagios, a systemd
//! `OnFailure=` or node_exporter's textfile collector. Exit codes follow the monitoring
//! convention, not the table of the other commands: 0 every group within `--max-age`, 1 a
//! group is late (or a snapshot file cannot be read, or the last prune or check of a kind
//! failed), 2 the repository cannot be read.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chronofs::maintain::runs::JobStatus;
use chronofs::maintain::status::{self, Status};
use chronofs::repo::now_ns;
use chronofs::storage::location::Location;

use super::{Context, quote, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How old the newest snapshot of each host and source paths may be: 26h, 2d, 90m, 1h30m.
    #[arg(long, value_name = "AGE", default_value = "26h", value_parser = parse_age)]
    max_age: i64,
    #[command(flatten)]
    select: super::select::SelectArgs,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    /// Also write node_exporter textfile metrics to FILE (replaced atomically; written even
    /// when the repository cannot be read, with chronofs_repository_readable 0).
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
}

/// Exit codes of `status`.
mod code {
    pub const OK: u8 = 0;
    /// A group is late, a snapshot file unreadable, or the last run of a maintenance job
    /// failed.
    pub const LATE: u8 = 1;
    pub const UNREADABLE: u8 = 2;
}

/// An age such as `26h`, `2d`, `90m` (minutes) or `1h30m`, in ns; days are 24 hours.
fn parse_age(s: &str) -> Result<i64, String> {
    let span: jiff::Span = s
        .parse()
        .map_err(|e| format!("{s:?} is not an age like 26h, 2d or 90m: {e}"))?;
    let secs = span
        .total(jiff::SpanTotal::from(jiff::Unit::Second).days_are_24_hours())
        .map_err(|e| format!("{s:?}: {e}"))?;
    if secs <= 0.0 {
        return Err(format!("{s:?}: the age must be positive"));
    }
    Ok((secs * 1e9).min(i64::MAX as f64) as i64)
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let location = ctx.repo_path()?.clone();
    let taken = ctx.open().and_then(|repo| {
        Ok(status::status(
            &repo,
            a.max_age,
            now_ns(),
            &a.select.filter(),
        )?)
    });
    let st = match taken {
        Ok(st) => st,
        Err(e) => {
            if let Some(file) = &a.prometheus {
                write_atomically(file, &unreadable_metrics(&location))?;
            }
            eprintln!("chronofs: error: {}", quote::text(&format!("{e:#}")));
            return Ok(code::UNREADABLE);
        }
    };
    if let Some(file) = &a.prometheus {
        write_atomically(file, &metrics(&location, &st))?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&st)?)?;
    } else if !ctx.quiet || !st.healthy() {
        print_table(&location, &st)?;
    }
    Ok(if st.healthy() { code::OK } else { code::LATE })
}

fn print_table(location: &Location, st: &Status) -> std::io::Result<()> {
    let max_age = ui::secs_human(st.max_age_ns);
    outln!(
        "repository {}: {}, {} snapshot group(s); a group is late when its newest is over {max_age} old",
        quote::text(&location.to_string()),
        ui::size(st.repository_bytes),
        st.groups.len()
    )?;
    outln!(
        "{:<16}  {:<24}  {:<26}  {:>9}  {:>9}  {:>10}  {:>6}  state",
        "host",
        "paths",
        "newest",
        "age",
        "took",
        "added",
        "errors"
    )?;
    for g in &st.groups {
        outln!(
            "{:<16}  {:<24}  {:<26}  {:>9}  {:>9}  {:>10}  {:>6}  {}",
            quote::text(g.key.host.as_deref().unwrap_or("")),
            quote::text(&g.key.paths.clone().unwrap_or_default().join(" ")),
            g.newest,
            ui::secs_human(g.age_ns),
            ui::secs_human(i64::try_from(g.summary.duration_ns).unwrap_or(i64::MAX)),
            ui::size(g.summary.bytes_added),
            g.summary.errors,
            if g.late { "LATE" } else { "ok" }
        )?;
    }
    if st.groups.is_empty() {
        outln!("no snapshots")?;
    }
    for u in &st.unreadable {
        outln!("unreadable: {}", quote::text(u))?;
    }
    for m in &st.maintenance {
        let success = match m.last_success_ns {
            Some(t) if t == m.last_finished_ns => String::new(),
            Some(t) => format!("; last success {}", chronofs::snapshot::rfc3339(t)),
            None => "; never succeeded".to_string(),
        };
        outln!(
            "{}: last {} on {}, {}: {}{success}",
            m.job,
            chronofs::snapshot::rfc3339(m.last_finished_ns),
            quote::text(&m.last_host),
            if m.last_ok { "ok" } else { "FAILED" },
            quote::text(&m.last_outcome)
        )?;
    }
    if st.maintenance.is_empty() {
        outln!("no prune or check recorded")?;
    }
    Ok(())
}

/// A label value escaped for the Prometheus text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
}

/// A per-group metric: name, help text, and how to read it off a group.
type GroupMetric<'a> = (&'a str, &'a str, &'a dyn Fn(&status::GroupStatus) -> f64);

/// node_exporter textfile metrics for `st`.
fn metrics(location: &Location, st: &Status) -> String {
    let repo = label(&location.to_string());
    let mut out = String::new();
    let per_group: [GroupMetric<'_>; 7] = [
        (
            "chronofs_last_snapshot_timestamp_seconds",
            "Time of the newest snapshot of a host and its source paths.",
            &|g| g.newest_time_ns as f64 / 1e9,
        ),
        (
            "chronofs_last_snapshot_age_seconds",
            "Age of the newest snapshot when the status was taken.",
            &|g| g.age_ns as f64 / 1e9,
        ),
        (
            "chronofs_last_snapshot_duration_seconds",
            "How long the backup that wrote the newest snapshot took.",
            &|g| g.summary.duration_ns as f64 / 1e9,
        ),
        (
            "chronofs_last_snapshot_bytes_added",
            "Bytes the newest snapshot added to the repository (compressed).",
            &|g| g.summary.bytes_added as f64,
        ),
        (
            "chronofs_last_snapshot_errors",
            "Source entries the newest snapshot's backup could not read.",
            &|g| g.summary.errors as f64,
        ),
        (
            "chronofs_snapshots",
            "Snapshots of a host and its source paths.",
            &|g| g.snapshots as f64,
        ),
        (
            "chronofs_snapshot_late",
            "1 if the newest snapshot is older than the allowed age.",
            &|g| f64::from(u8::from(g.late)),
        ),
    ];
    for (name, help, value) in per_group {
        header(&mut out, name, help);
        for g in &st.groups {
            let host = label(g.key.host.as_deref().unwrap_or(""));
            let paths = label(&g.key.paths.clone().unwrap_or_default().join(" "));
            out.push_str(&format!(
                "{name}{{repository=\"{repo}\",host=\"{host}\",paths=\"{paths}\"}} {}\n",
                value(g)
            ));
        }
    }
    header(
        &mut out,
        "chronofs_repository_size_bytes",
        "Bytes of the pack files in the repository.",
    );
    out.push_str(&format!(
        "chronofs_repository_size_bytes{{repository=\"{repo}\"}} {}\n",
        st.repository_bytes
    ));
    header(
        &mut out,
        "chronofs_unreadable_snapshot_files",
        "Snapshot files that cannot be read.",
    );
    out.push_str(&format!(
        "chronofs_unreadable_snapshot_files{{repository=\"{repo}\"}} {}\n",
        st.unreadable.len()
    ));
    type JobMetric<'a> = (&'a str, &'a str, &'a dyn Fn(&JobStatus) -> f64);
    let per_job: [JobMetric<'_>; 3] = [
        (
            "chronofs_maintenance_last_run_timestamp_seconds",
            "When the last prune or check of a kind ended.",
            &|m| m.last_finished_ns as f64 / 1e9,
        ),
        (
            "chronofs_maintenance_last_run_success",
            "1 if the last prune or check of a kind succeeded (a check: found no damage).",
            &|m| f64::from(u8::from(m.last_ok)),
        ),
        (
            "chronofs_maintenance_last_success_timestamp_seconds",
            "When the last successful prune or check of a kind ended (0: never).",
            &|m| m.last_success_ns.map_or(0.0, |t| t as f64 / 1e9),
        ),
    ];
    for (name, help, value) in per_job {
        header(&mut out, name, help);
        for m in &st.maintenance {
            out.push_str(&format!(
                "{name}{{repository=\"{repo}\",job=\"{}\"}} {}\n",
                label(&m.job),
                value(m)
            ));
        }
    }
    out.push_str(&readable_metric(&repo, true));
    out
}

fn readable_metric(repo: &str, readable: bool) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "chronofs_repository_readable",
        "1 if the repository could be read when the status was taken.",
    );
    out.push_str(&format!(
        "chronofs_repository_readable{{repository=\"{repo}\"}} {}\n",
        u8::from(readable)
    ));
    out
}

fn unreadable_metrics(location: &Location) -> String {
    readable_metric(&label(&location.to_string()), false)
}

/// Replaces `file` with `text` atomically: a temp file in the same directory (whose name
/// node_exporter ignores), fsynced, renamed over it.
fn write_atomically(file: &Path, text: &str) -> Result<()> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    };
    write()
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            chronofs::Error::path_io("writing metrics to", file, e)
        })
        .with_context(|| "--prometheus")
}
