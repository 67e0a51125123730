//! Consistency hooks around a backup: `--pre-exec` runs before it (freeze a file system, take
//! an LVM or btrfs snapshot) and `--post-exec` after it, whether the backup worked or not (to
//! thaw, to remove the snapshot), with the outcome in its environment.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// What the post hook is told, as `CHRONOFS_BACKUP_*` variables.
pub struct Outcome<'a> {
    /// `success`, `partial` (some source files unreadable) or `failed`.
    pub status: &'a str,
    /// The exit code chronofs ends with.
    pub exit_code: u8,
    /// The snapshot written, if any.
    pub snapshot: Option<String>,
    /// Why the backup failed, if it did.
    pub error: Option<String>,
}

/// Runs `command` with `sh -c`, with `env` added to its environment; fails if it cannot be
/// started or exits non-zero.
///
/// # Errors
/// Naming the hook (`what`) and its exit status.
pub fn run(what: &str, command: &str, env: &[(&str, String)]) -> Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .with_context(|| format!("starting the {what} hook `{command}`"))?;
    if !status.success() {
        bail!(chronofs::Error::SourceFailed(format!(
            "the {what} hook `{command}` failed ({status})"
        )));
    }
    Ok(())
}

/// The variables of the post hook for `outcome`, after `common` (repository and paths).
#[must_use]
pub fn post_env(
    common: &[(&'static str, String)],
    outcome: &Outcome<'_>,
) -> Vec<(&'static str, String)> {
    let mut env = common.to_vec();
    env.push(("CHRONOFS_BACKUP_STATUS", outcome.status.to_string()));
    env.push(("CHRONOFS_BACKUP_EXIT_CODE", outcome.exit_code.to_string()));
    env.push((
        "CHRONOFS_SNAPSHOT_ID",
        outcome.snapshot.clone().unwrap_or_default(),
    ));
    env.push((
        "CHRONOFS_BACKUP_ERROR",
        outcome.error.clone().unwrap_or_default(),
    ));
    env
}
