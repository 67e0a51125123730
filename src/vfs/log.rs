//! The mount's log: problems the kernel will only see as an errno, and what the mount did on
//! its own (replacing its connection, trimming inodes), one dated line each on standard error
//! (the file `--log` names, for a mount in the background).

/// Logs one line.
pub fn log(msg: &str) {
    eprintln!(
        "chronofs mount: {}: {msg}",
        crate::snapshot::rfc3339(crate::repo::now_ns())
    );
}
