//! Adds snapshot files to a repository quickly, for benchmarks of what grows with their
//! number (`bench/idle_mount.sh`): copies of the newest snapshot record, one second apart
//! after it, each a real snapshot file (they share the newest one's tree).
//!
//!     cargo run --release --example synthetic-snapshots -- REPO COUNT
//!
//! The repository must be plaintext or unlockable with `CHRONOFS_PASSWORD`.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(repo), Some(count)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: synthetic-snapshots REPO COUNT");
    };
    let count: i64 = count.parse()?;
    let mut repo = chronofs::repo::Repository::open_unindexed(&PathBuf::from(repo))?;
    if let Ok(pass) = std::env::var("CHRONOFS_PASSWORD") {
        repo.unlock(pass.as_bytes())?;
    }
    let (snapshots, _) = repo.snapshots()?;
    let Some((_, newest)) = snapshots.into_iter().max_by_key(|(_, s)| s.time_ns) else {
        anyhow::bail!("the repository has no snapshot to copy");
    };
    for i in 1..=count {
        let mut s = newest.clone();
        s.time_ns += i * 1_000_000_000;
        repo.save_snapshot(&s)?;
    }
    Ok(())
}
