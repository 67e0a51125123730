//! Run records of maintenance (docs/FORMAT.md, "Run records"): each prune and check leaves
//! one in `maintenance/`, and `status` reports, per kind of run, the last one and the last
//! success, so that an alert can fire when maintenance stops running or keeps failing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::run::{Job, MAX_RUN_LEN, Run};
use crate::repo::{Repository, layout, now_ns};

/// Records kept per kind of run; older ones are deleted by the writer of a new one.
const KEEP: usize = 20;

/// Records that `job`, started at `started_ns`, ended with `ok` and `outcome`. Best effort:
/// a failure to record is returned, and the caller only warns about it.
///
/// # Errors
/// Write failures.
pub fn record(repo: &Repository, job: Job, started_ns: i64, ok: bool, outcome: &str) -> Result<()> {
    let run = Run {
        job,
        hostname: crate::sys::hostname(),
        started_ns,
        finished_ns: now_ns(),
        ok,
        outcome: outcome.chars().take(1000).collect(),
    };
    let bytes = run
        .encode(repo.scheme()?.payload())
        .map_err(|e| Error::corrupt("<new run record>", e.to_string()))?;
    repo.storage()
        .create_dir(layout::RUN_DIR)
        .map_err(|e| Error::repo_io("creating", layout::RUN_DIR, e))?;
    let file = format!("{}/{}", layout::RUN_DIR, Id::hash(&bytes).to_hex());
    repo.storage()
        .write(&file, &bytes)
        .map_err(|e| Error::repo_io("writing", &file, e))?;
    if !repo.config().append_only {
        let mut same: Vec<(String, Run)> = load(repo)?
            .into_iter()
            .filter(|(_, r)| r.job == job)
            .collect();
        same.sort_by_key(|(_, r)| std::cmp::Reverse(r.finished_ns));
        for (old, _) in same.into_iter().skip(KEEP) {
            repo.remove_if_present(&old)?;
        }
    }
    Ok(())
}

/// Every readable run record, with its file.
fn load(repo: &Repository) -> Result<Vec<(String, Run)>> {
    let mut out = Vec::new();
    for name in repo.list_ids(layout::RUN_DIR)? {
        let file = format!("{}/{name}", layout::RUN_DIR);
        let Ok(bytes) = repo.storage().read(&file, MAX_RUN_LEN as u64) else {
            continue;
        };
        if Id::hash(&bytes).to_hex() != name {
            continue;
        }
        if let Ok(r) = Run::decode(&bytes, repo.scheme()?.payload()) {
            out.push((file, r));
        }
    }
    Ok(out)
}

/// What `status` says of one kind of run.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JobStatus {
    /// The command (`prune`, `check --read-data`, …).
    pub job: String,
    /// The last run: when it ended, where, whether it succeeded, and how.
    pub last_finished_ns: i64,
    /// Its host.
    pub last_host: String,
    /// Whether it succeeded.
    pub last_ok: bool,
    /// What it did, or why it failed.
    pub last_outcome: String,
    /// When the last successful run ended, if any did.
    pub last_success_ns: Option<i64>,
}

/// Per kind of run that has a record, the last run and the last success.
///
/// # Errors
/// Listing failures.
pub fn latest(repo: &Repository) -> Result<Vec<JobStatus>> {
    let mut by_job: BTreeMap<Job, Vec<Run>> = BTreeMap::new();
    for (_, r) in load(repo)? {
        by_job.entry(r.job).or_default().push(r);
    }
    Ok(by_job
        .into_iter()
        .filter_map(|(job, runs)| {
            let last = runs.iter().max_by_key(|r| r.finished_ns)?;
            Some(JobStatus {
                job: job.name().to_string(),
                last_finished_ns: last.finished_ns,
                last_host: last.hostname.clone(),
                last_ok: last.ok,
                last_outcome: last.outcome.clone(),
                last_success_ns: runs.iter().filter(|r| r.ok).map(|r| r.finished_ns).max(),
            })
        })
        .collect())
}
