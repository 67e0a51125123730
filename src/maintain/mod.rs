//! Repository maintenance: retention (`forget`), garbage collection (`prune`) and off-site
//! copies (`copy`). Everything here that deletes takes the exclusive lock and refuses on an
//! append-only repository.

pub mod check;
pub mod copy;
pub mod forget;
pub mod policy;
pub mod prune;
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
