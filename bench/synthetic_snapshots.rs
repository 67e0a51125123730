//! Adds snapshot files to a repository quickly, for benchmarks of what grows with their
//! number (`bench/idle_mount.sh`, `bench/fleet.sh`): copies of the newest snapshot record, one
//! second apart after it, each a real snapshot file (they share the newest one's tree). With
//! HOSTS, the copies are spread over that many host names (`host0000`, `host0001`, ...), as if
//! a fleet had written them.
//!
//!     cargo run --release --example synthetic-snapshots -- REPO COUNT [HOSTS]
//!
//! The repository must be plaintext or unlockable with `CHRONOFS_PASSWORD`. The files are
//! written directly when REPO is a local directory (without an fsync each: run
//! `sync` after, which this does not need for a benchmark), through the library otherwise.

use std::os::unix::fs::OpenOptionsExt as _;

use chronofs::format::id::Id;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(repo_path), Some(count)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: synthetic-snapshots REPO COUNT [HOSTS]");
    };
    let count: i64 = count.parse()?;
    let hosts: Option<i64> = args.next().map(|h| h.parse()).transpose()?;
    let location: chronofs::storage::location::Location = repo_path.parse()?;
    let mut repo = chronofs::repo::Repository::open_unindexed_at(&location)?;
    if let Ok(pass) = std::env::var("CHRONOFS_PASSWORD") {
        repo.unlock(pass.as_bytes())?;
    }
    let (snapshots, _) = repo.snapshots()?;
    let Some((_, newest)) = snapshots.into_iter().max_by_key(|(_, s)| s.time_ns) else {
        anyhow::bail!("the repository has no snapshot to copy");
    };
    let dir = location.local().map(|p| p.join("snapshots"));
    let direct = dir.as_ref().is_some_and(|d| d.is_dir());
    for i in 1..=count {
        let mut s = newest.clone();
        s.time_ns += i * 1_000_000_000;
        if let Some(h) = hosts {
            s.hostname = format!("host{:04}", i % h.max(1));
        }
        let Some(dir) = dir.as_ref().filter(|_| direct) else {
            repo.save_snapshot(&s)?;
            continue;
        };
        let bytes = s.encode(repo.scheme()?.payload())?;
        std::io::Write::write_all(
            &mut std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.join(Id::hash(&bytes).to_hex()))?,
            &bytes,
        )?;
    }
    Ok(())
}
