//! Repository maintenance: retention (`forget`), garbage collection (`prune`), off-site
//! copies (`copy`), checks, status and the records of maintenance runs. Everything here that
//! deletes takes the maintenance lock (beside running backups) and refuses on an append-only
//! repository.

pub mod check;
pub mod copy;
pub mod forget;
pub mod policy;
pub mod prune;
pub mod runs;
pub mod status;
mod usage;

use crate::error::{Error, Result};
use crate::repo::Repository;

/// Refuses `what` on an append-only repository.
///
/// # Errors
/// [`Error::Refused`] with a message that says how append-only mode is turned off.
pub fn ensure_mutable(repo: &Repository, what: &str) -> Result<()> {
    if repo.config().append_only {
        return Err(Error::Refused(format!(
            "repository {} is append-only: {what} would delete data, so it is refused (whoever \
             administers the repository can run `chronofs append-only off` first)",
            repo.location().display()
        )));
    }
    Ok(())
}
