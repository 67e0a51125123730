//! `chronofs job`: run the backup job described by `/etc/chronofs/NAME.conf` (see
//! [`config`]), as the systemd units in `packaging/systemd/` do: `run` backs up (with the
//! job's hooks), applies its retention and writes its monitoring metrics; `verify` is its
//! restore drill; `mount` keeps its repository mounted; `schedule` writes the timers' calendar
//! from the job file.
//!
//! Each step runs this same binary with the options the job file gives, so a job does exactly
//! what the commands a person would type do.

mod config;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use chronofs::error::exit;

use self::config::Job;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// Where job files are (also CHRONOFS_CONFIG_DIR).
    #[arg(long, value_name = "DIR", global = true)]
    config_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Back up, apply the retention policy, and update the monitoring metrics.
    Run {
        /// The job (NAME for NAME.conf).
        name: String,
    },
    /// The restore drill: check a rotating part of the data, and restore and compare the
    /// newest snapshot.
    Verify {
        /// The job.
        name: String,
    },
    /// Mount the job's repository at its mount point, in the foreground.
    Mount {
        /// The job.
        name: String,
    },
    /// Write the job's schedule as drop-ins of its timers (then `systemctl daemon-reload` and
    /// `systemctl enable --now chronofs-backup@NAME.timer chronofs-verify@NAME.timer`).
    Schedule {
        /// The job.
        name: String,
        /// Where the drop-in directories go.
        #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
        systemd_dir: PathBuf,
    },
    /// Check a job file and print the commands it runs.
    Show {
        /// The job.
        name: String,
    },
}

pub fn run(ctx: &super::Context, a: &Args) -> Result<u8> {
    let dir = a.config_dir.clone().unwrap_or_else(config::config_dir);
    match &a.action {
        Action::Run { name } => run_job(ctx, &config::load(&dir, name)?),
        Action::Verify { name } => verify(ctx, &config::load(&dir, name)?),
        Action::Mount { name } => {
            let job = config::load(&dir, name)?;
            exec_step(ctx, &mount_step(&job, name)?)
        }
        Action::Schedule { name, systemd_dir } => {
            schedule(&config::load(&dir, name)?, name, systemd_dir)
        }
        Action::Show { name } => {
            let job = config::load(&dir, name)?;
            let mut steps = backup_steps(&job);
            steps.extend(verify_steps(&job));
            if job.mount.is_some() {
                steps.push(mount_step(&job, name)?);
            }
            for s in steps {
                outln!("chronofs {}", shell_words(&s))?;
            }
            Ok(exit::OK)
        }
    }
}

/// One run of this binary: its arguments.
type Step = Vec<String>;

fn repo_args(job: &Job) -> Step {
    vec![
        "--repo".into(),
        job.repository.to_string_lossy().into_owned(),
    ]
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The backup, then forget (with prune), then status, as this job does them.
fn backup_steps(job: &Job) -> Vec<Step> {
    let mut backup = repo_args(job);
    backup.push("backup".into());
    for e in &job.exclude {
        backup.extend(["--exclude".into(), e.clone()]);
    }
    for f in &job.exclude_file {
        backup.extend(["--exclude-file".into(), path_str(f)]);
    }
    if job.one_file_system {
        backup.push("--one-file-system".into());
    }
    for t in &job.tags {
        backup.extend(["--tag".into(), t.clone()]);
    }
    let host = job.host.clone().unwrap_or_else(chronofs::sys::hostname);
    backup.extend(["--host".into(), host.clone()]);
    if let Some(cmd) = &job.hooks.pre {
        backup.extend(["--pre-exec".into(), cmd.clone()]);
    }
    if let Some(cmd) = &job.hooks.post {
        backup.extend(["--post-exec".into(), cmd.clone()]);
    }
    let mut paths: Vec<String> = job.paths.iter().map(|p| path_str(p)).collect();
    if let Some(stdin) = &job.stdin {
        backup.extend([
            "--stdin-from-command".into(),
            "--stdin-name".into(),
            stdin.name.clone(),
            "--".into(),
        ]);
        backup.extend(stdin.command.iter().cloned());
        paths = vec![stdin.name.clone()];
    } else {
        backup.extend(paths.iter().cloned());
    }
    let mut steps = vec![backup];
    if let Some(r) = &job.retention {
        let mut forget = repo_args(job);
        forget.extend(["forget".into(), "--host".into(), host.clone()]);
        for p in &paths {
            forget.extend(["--path".into(), p.clone()]);
        }
        forget.extend(r.args());
        steps.push(forget);
    }
    if let Some(m) = &job.monitor {
        let mut status = repo_args(job);
        status.extend([
            "status".into(),
            "--host".into(),
            host,
            "--max-age".into(),
            m.max_age.clone(),
        ]);
        if let Some(f) = &m.prometheus_file {
            status.extend(["--prometheus".into(), path_str(f)]);
        }
        steps.push(status);
    }
    steps
}

fn verify_steps(job: &Job) -> Vec<Step> {
    let mut check = repo_args(job);
    check.extend([
        "check".into(),
        "--read-data-subset".into(),
        job.verify.read_data_subset.clone(),
    ]);
    let mut steps = vec![check];
    if job.verify.restore {
        let mut verify = repo_args(job);
        verify.extend(["verify".into(), "latest".into()]);
        if let Some(s) = &job.verify.scratch {
            verify.extend(["--scratch".into(), path_str(s)]);
        }
        steps.push(verify);
    }
    steps
}

fn mount_step(job: &Job, name: &str) -> Result<Step> {
    let m = job.mount.as_ref().ok_or_else(|| {
        chronofs::Error::InvalidInput(format!("job {name} has no [mount] section"))
    })?;
    let mut step = repo_args(job);
    step.extend(["mount".into(), "--foreground".into(), path_str(&m.path)]);
    if m.allow_other {
        step.push("--allow-other".into());
    }
    if let Some(c) = &m.cache_size {
        step.extend(["--cache-size".into(), c.clone()]);
    }
    Ok(step)
}

/// Runs the backup steps: the backup's exit code is the job's (3, some files unreadable,
/// still wrote a snapshot), unless retention fails after it. A late status is the monitor's
/// business, not a failed run.
fn run_job(ctx: &super::Context, job: &Job) -> Result<u8> {
    let mut steps = backup_steps(job).into_iter();
    let Some(backup) = steps.next() else {
        return Ok(exit::OK);
    };
    let code = run_step(ctx, &backup)?;
    if code != exit::OK && code != exit::PARTIAL {
        return Ok(code);
    }
    for step in steps {
        let c = run_step(ctx, &step)?;
        let is_status = step.get(2).is_some_and(|s| s == "status");
        if c != exit::OK && !is_status {
            return Ok(c);
        }
    }
    Ok(code)
}

fn verify(ctx: &super::Context, job: &Job) -> Result<u8> {
    run_steps(ctx, &verify_steps(job))
}

/// Runs steps in order; the first that fails ends the run with its exit code.
fn run_steps(ctx: &super::Context, steps: &[Step]) -> Result<u8> {
    for step in steps {
        let c = run_step(ctx, step)?;
        if c != exit::OK {
            return Ok(c);
        }
    }
    Ok(exit::OK)
}

/// The command that runs `step`.
fn step_command(ctx: &super::Context, step: &Step) -> Result<Command> {
    let exe = std::env::current_exe().context("finding the chronofs executable")?;
    let mut cmd = Command::new(exe);
    if ctx.quiet {
        cmd.arg("--quiet");
    }
    cmd.args(step);
    Ok(cmd)
}

fn run_step(ctx: &super::Context, step: &Step) -> Result<u8> {
    let status = step_command(ctx, step)?
        .status()
        .with_context(|| format!("running chronofs {}", shell_words(step)))?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit::FATAL))
}

/// Becomes the process that runs `step` (a long-lived mount): signals sent to this process
/// (systemd's SIGTERM, a `kill`) then reach the mount itself, which unmounts and ends.
fn exec_step(ctx: &super::Context, step: &Step) -> Result<u8> {
    use std::os::unix::process::CommandExt;
    let e = step_command(ctx, step)?.exec();
    Err(anyhow::Error::new(e).context(format!("running chronofs {}", shell_words(step))))
}

/// Writes the calendar of the job's timers as systemd drop-ins.
fn schedule(job: &Job, name: &str, systemd_dir: &Path) -> Result<u8> {
    for (unit, calendar) in [
        ("chronofs-backup", &job.schedule.backup),
        ("chronofs-verify", &job.schedule.verify),
    ] {
        let dir = systemd_dir.join(format!("{unit}@{name}.timer.d"));
        std::fs::create_dir_all(&dir).map_err(|e| chronofs::Error::path_io("creating", &dir, e))?;
        let file = dir.join("schedule.conf");
        let text = format!(
            "# Written by `chronofs job schedule {name}` from the job file; edit that instead.\n\
             [Timer]\nOnCalendar=\nOnCalendar={calendar}\nRandomizedDelaySec={}\n",
            job.schedule.randomized_delay
        );
        std::fs::write(&file, text).map_err(|e| chronofs::Error::path_io("writing", &file, e))?;
        outln!("wrote {}", file.display())?;
    }
    outln!(
        "now run: systemctl daemon-reload && systemctl enable --now \
         chronofs-backup@{name}.timer chronofs-verify@{name}.timer"
    )?;
    Ok(exit::OK)
}

/// A step as a shell would quote it (for `show` and messages).
fn shell_words(step: &[String]) -> String {
    step.iter()
        .map(|w| {
            if !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=%@,".contains(&b))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
