//! The backup job file, `/etc/chronofs/NAME.conf` (TOML; man page chronofs-job(5)): what one
//! scheduled job backs up, where to, how long it keeps snapshots, its hooks, its schedule, its
//! restore drill, its monitoring and its mount point. Unknown keys are errors, so a typo never
//! silently drops a setting.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Deserialize;

/// One job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Job {
    /// The repository.
    pub repository: PathBuf,
    /// What to back up (absolute paths), unless `[stdin]` is given.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Exclude patterns, as `backup --exclude`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Files of exclude patterns.
    #[serde(default)]
    pub exclude_file: Vec<PathBuf>,
    /// Stay on the file system of each path.
    #[serde(default)]
    pub one_file_system: bool,
    /// Tags for every snapshot.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Back up a command's output (a database dump) instead of paths.
    pub stdin: Option<Stdin>,
    /// Commands around the backup.
    #[serde(default)]
    pub hooks: Hooks,
    /// What to keep after each backup (`forget`, then `prune`).
    pub retention: Option<Retention>,
    /// When the systemd timers run.
    #[serde(default)]
    pub schedule: Schedule,
    /// The restore drill of `chronofs job verify`.
    #[serde(default)]
    pub verify: Verify,
    /// Monitoring after each run.
    pub monitor: Option<Monitor>,
    /// Where `chronofs job mount` mounts the repository.
    pub mount: Option<Mount>,
}

/// A command whose output is backed up as one file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Stdin {
    /// The command and its arguments (no shell).
    pub command: Vec<String>,
    /// The file name the output is stored under.
    pub name: String,
}

/// Shell commands run before and after the backup (see `backup --pre-exec`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Hooks {
    /// Before the backup; if it fails, nothing is backed up.
    pub pre: Option<String>,
    /// After the backup, whatever happened.
    pub post: Option<String>,
}

/// A count for a `keep-*` rule: a number or `"unlimited"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Count {
    /// So many.
    Number(u32),
    /// `"unlimited"`.
    Word(String),
}

impl Count {
    fn arg(&self) -> String {
        match self {
            Count::Number(n) => n.to_string(),
            Count::Word(w) => w.clone(),
        }
    }
}

/// The retention policy: `forget`'s rules for this job's snapshots.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Retention {
    pub keep_last: Option<Count>,
    pub keep_hourly: Option<Count>,
    pub keep_daily: Option<Count>,
    pub keep_weekly: Option<Count>,
    pub keep_monthly: Option<Count>,
    pub keep_yearly: Option<Count>,
    pub keep_within: Option<String>,
    #[serde(default)]
    pub keep_tag: Vec<String>,
    /// Prune right after forgetting (default: true).
    #[serde(default = "yes")]
    pub prune: bool,
    /// `prune --max-unused`.
    pub max_unused: Option<String>,
}

fn yes() -> bool {
    true
}

impl Retention {
    /// The `forget` options of this policy.
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let counts = [
            ("--keep-last", &self.keep_last),
            ("--keep-hourly", &self.keep_hourly),
            ("--keep-daily", &self.keep_daily),
            ("--keep-weekly", &self.keep_weekly),
            ("--keep-monthly", &self.keep_monthly),
            ("--keep-yearly", &self.keep_yearly),
        ];
        for (flag, count) in counts {
            if let Some(c) = count {
                out.extend([flag.to_string(), c.arg()]);
            }
        }
        if let Some(w) = &self.keep_within {
            out.extend(["--keep-within".to_string(), w.clone()]);
        }
        for t in &self.keep_tag {
            out.extend(["--keep-tag".to_string(), t.clone()]);
        }
        if self.prune {
            out.push("--prune".into());
            if let Some(m) = &self.max_unused {
                out.extend(["--max-unused".to_string(), m.clone()]);
            }
        }
        out
    }
}

/// systemd calendar expressions (`OnCalendar=`) of the job's timers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Schedule {
    /// The backup (default: daily).
    #[serde(default = "daily")]
    pub backup: String,
    /// The restore drill (default: weekly).
    #[serde(default = "weekly")]
    pub verify: String,
    /// `RandomizedDelaySec=` of both (default: 30m).
    #[serde(default = "half_hour")]
    pub randomized_delay: String,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            backup: daily(),
            verify: weekly(),
            randomized_delay: half_hour(),
        }
    }
}

fn daily() -> String {
    "daily".into()
}
fn weekly() -> String {
    "weekly".into()
}
fn half_hour() -> String {
    "30m".into()
}

/// The restore drill.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Verify {
    /// `check --read-data-subset` (default: 5%, so the whole repository is read in 20 drills).
    #[serde(default = "five_percent")]
    pub read_data_subset: String,
    /// Also restore the newest snapshot into a scratch directory and compare it (default: true).
    #[serde(default = "yes")]
    pub restore: bool,
    /// Where that restore goes (default: the temp directory).
    pub scratch: Option<PathBuf>,
}

impl Default for Verify {
    fn default() -> Self {
        Verify {
            read_data_subset: five_percent(),
            restore: true,
            scratch: None,
        }
    }
}

fn five_percent() -> String {
    "5%".into()
}

/// Monitoring after each backup.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Monitor {
    /// `status --max-age` (default: 26h).
    #[serde(default = "day_and_two_hours")]
    pub max_age: String,
    /// Where node_exporter's textfile collector finds the metrics.
    pub prometheus_file: Option<PathBuf>,
}

fn day_and_two_hours() -> String {
    "26h".into()
}

/// The mount of `chronofs job mount` (and `chronofs-mount@NAME.service`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mount {
    /// The mount point.
    pub path: PathBuf,
    /// Let other users in (their access is still checked against the stored modes).
    #[serde(default)]
    pub allow_other: bool,
    /// `mount --cache-size`.
    pub cache_size: Option<String>,
}

/// The directory of job files: `CHRONOFS_CONFIG_DIR`, else `/etc/chronofs`.
pub fn config_dir() -> PathBuf {
    std::env::var_os("CHRONOFS_CONFIG_DIR")
        .map_or_else(|| PathBuf::from("/etc/chronofs"), PathBuf::from)
}

/// Reads and checks job `name` from `dir`.
///
/// # Errors
/// A missing or malformed file, naming it.
pub fn load(dir: &Path, name: &str) -> Result<Job> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail!(chronofs::Error::InvalidInput(format!(
            "{name:?} is not a job name (a file name in {} without .conf)",
            dir.display()
        )));
    }
    let file = dir.join(format!("{name}.conf"));
    let text = std::fs::read_to_string(&file)
        .map_err(|e| chronofs::Error::path_io("reading job file", &file, e))?;
    let job: Job = toml::from_str(&text).map_err(|e| {
        chronofs::Error::InvalidInput(format!(
            "job file {}: {}",
            file.display(),
            e.to_string().trim().replace('\n', " ")
        ))
    })?;
    if job.paths.is_empty() == job.stdin.is_none() {
        bail!(chronofs::Error::InvalidInput(format!(
            "job file {}: give either `paths` or a `[stdin]` command",
            file.display()
        )));
    }
    if let Some(r) = &job.retention {
        let keeps = [
            &r.keep_last,
            &r.keep_hourly,
            &r.keep_daily,
            &r.keep_weekly,
            &r.keep_monthly,
            &r.keep_yearly,
        ];
        if keeps.iter().all(|k| k.is_none()) && r.keep_within.is_none() && r.keep_tag.is_empty() {
            bail!(chronofs::Error::InvalidInput(format!(
                "job file {}: [retention] keeps nothing; give keep-daily, keep-last, ...",
                file.display()
            )));
        }
    }
    Ok(job)
}
