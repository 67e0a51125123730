//! Prune beside writers (docs/FORMAT.md, "Prune beside writers"), one invariant per test:
//! - data a backup in flight deduplicated against is never deleted, whether it commits before
//!   the prune's first look, between its two looks, or after it (library level, with the
//!   second look forced into the gap; and through the binary, on disk and on Garage);
//! - a backup stopped (SIGSTOP) through a whole prune fails with exit 20 and commits nothing,
//!   while the prune deletes what no live writer needs;
//! - a snapshot a revoked writer commits after the prune looked is void: listed nowhere,
//!   withdrawn by its writer, deleted by the next prune, and `check` stays clean;
//! - two maintenance commands exclude each other.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chronofs::format::fence::Fence;
use chronofs::format::id::Id;
use chronofs::ingest::{self, BackupOptions, Silent};
use chronofs::maintain::check;
use chronofs::maintain::prune::{self, PruneOptions};
use chronofs::repo::lock::{LockKind, RepoLock};
use chronofs::storage::LocalStorage;
use serde_json::Value;

use super::util::{
    Fixture, Observed, assert_ok, hooked_at_write, noise, once_at, open_on, open_repo,
};

fn json(s: &str) -> Value {
    serde_json::from_str(s.lines().last().unwrap_or("")).unwrap()
}

/// A writer as `chronofs backup` is one: its lock taken, then its index loaded, its basis
/// recorded.
/// A prune's lock on the repository at `repo_path`, taken through its own handle (so that an
/// observing storage sees only the prune's own operations).
pub(super) fn prune_lock(repo_path: &Path) -> RepoLock {
    RepoLock::acquire(
        &open_repo(repo_path),
        LockKind::Maintenance,
        "prune",
        Duration::ZERO,
    )
    .unwrap()
}

fn writer(repo_path: &Path) -> (chronofs::repo::Repository, Arc<RepoLock>) {
    let repo = open_on(Arc::new(LocalStorage::new(repo_path)), repo_path);
    let lock = RepoLock::acquire(&repo, LockKind::Shared, "backup", Duration::ZERO).unwrap();
    repo.load_index_strict().unwrap();
    lock.set_basis(repo.index().epoch()).unwrap();
    (repo, Arc::new(lock))
}

/// Backs up `src` as the holder of `lock`.
fn backup_under(
    repo: &chronofs::repo::Repository,
    lock: &Arc<RepoLock>,
    src: &Path,
) -> chronofs::format::id::SnapshotId {
    let options = BackupOptions {
        lock: Some(Arc::clone(lock)),
        ..BackupOptions::default()
    };
    ingest::backup(repo, &[src.to_path_buf()], &options, &Silent)
        .unwrap()
        .id
}

/// A repository whose only data is a forgotten snapshot of `src` (so all of it is unused).
fn forgotten_data(f: &Fixture) {
    fs::write(f.src.join("big"), noise(7, 3 << 20)).unwrap();
    fs::write(f.src.join("small"), b"small file").unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    f.ok(&["forget", "latest"]);
}

#[test]
fn a_backup_that_commits_between_the_two_looks_keeps_its_data() {
    let f = Fixture::new();
    forgotten_data(&f);
    // The writer loads its index while the old data is live: it deduplicates against it.
    let (wrepo, wlock) = writer(&f.repo);
    let committed = Arc::new(Mutex::new(None));
    let hook = {
        let (src, committed) = (f.src.clone(), Arc::clone(&committed));
        move || {
            // Between the prune's first look and its second: commit, and finish.
            let id = backup_under(&wrepo, &wlock, &src);
            *committed.lock().unwrap() = Some(id);
            drop(wlock);
        }
    };
    // The prune's second look at the writers is its second listing of `locks/` with times.
    let storage = Arc::new(Observed::new(
        &f.repo,
        once_at(2, |op, path| op == "list_times" && path == "locks", hook),
    ));
    let repo = open_on(storage, &f.repo);
    // Taken through other storage: the hook counts the prune's own listings only.
    let lock = prune_lock(&f.repo);
    let r = prune::prune(&repo, &lock, &PruneOptions::default()).unwrap();
    drop(lock);
    assert!(committed.lock().unwrap().is_some(), "the hook ran");
    // The first look condemned the old data; the second saw the new snapshot use its data
    // pack (its trees differ: reading the files changed their atimes).
    assert!(r.packs_condemned >= 2, "{r:?}");
    assert!(r.packs_recovered >= 1, "{r:?}");
    assert_eq!(
        r.packs_deleted + r.unindexed_packs_deleted + r.packs_recovered,
        r.packs_condemned,
        "{r:?}"
    );
    let repo = open_repo(&f.repo);
    let report = check::check(&repo, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    let t = f.path("restored");
    f.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    super::util::assert_same_tree(&f.src, &f.restored_src(&t));
    // Recovered packs are live again: the next prune keeps them, and writers use them.
    let again = json(&f.ok(&["prune", "--json"]));
    assert_eq!(again["packs_deleted"], 0, "{again}");
    assert_eq!(again["packs_condemned"], 0, "{again}");
}

#[test]
fn a_backup_in_flight_holds_back_what_it_may_use_through_the_binary() {
    let f = Fixture::new();
    in_flight_scenario(&f);
}

/// A backup loads its index, then waits (its source command waits for a file); `prune` runs
/// meanwhile: it condemns the forgotten data but deletes nothing the backup may use. The
/// backup then stores the same data (deduplicated against the condemned packs) and commits;
/// the next prune recovers those packs; everything checks and restores.
pub(super) fn in_flight_scenario(f: &Fixture) {
    let data = f.path("data");
    fs::write(&data, noise(11, 3 << 20)).unwrap();
    let d = data.to_str().unwrap();
    f.ok(&[
        "backup",
        "-q",
        "--stdin-from-command",
        "--stdin-name",
        "data",
        "cat",
        d,
    ]);
    f.ok(&["forget", "latest"]);
    let go = f.path("go");
    let (backup, _reap) = waiting_backup(f, &data, &go, std::process::Stdio::inherit());
    let r = json(&f.ok(&["prune", "--json"]));
    assert!(r["packs_condemned"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["packs_deleted"], 0, "the backup may use them: {r}");
    assert!(r["packs_waiting"].as_u64().unwrap() >= 1, "{r}");
    assert!(
        r["writers_waited_for"][0]
            .as_str()
            .unwrap()
            .contains("backup"),
        "{r}"
    );
    fs::write(&go, b"").unwrap();
    let out = backup.wait_with_output().unwrap();
    assert_ok(&out);
    let b = json(&String::from_utf8_lossy(&out.stdout));
    assert!(
        b["summary"]["bytes_added"].as_u64().unwrap() < 1 << 20,
        "deduplicated against the condemned packs: {b}"
    );
    f.ok(&["check", "--read-data"]);
    // The next prune sees the new snapshot use the condemned data pack: live again. (The
    // old tree pack goes: the new snapshot's tree is another.)
    let r = json(&f.ok(&["prune", "--json"]));
    assert!(r["packs_recovered"].as_u64().unwrap() >= 1, "{r}");
    f.ok(&["check", "--read-data"]);
    let t = f.path("restored");
    f.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_eq!(fs::read(t.join("data")).unwrap(), fs::read(&data).unwrap());
    // Forgotten again, with no writer running, it goes at once.
    f.ok(&["forget", "latest"]);
    let r = json(&f.ok(&["prune", "--json"]));
    assert!(r["packs_deleted"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["packs_waiting"], 0, "{r}");
    f.ok(&["check", "--read-data"]);
}

/// Starts a backup of `data` as a stdin file whose source command waits for the file `go`,
/// and waits until its lock is there; the returned guard ends it if the test fails.
fn waiting_backup<'a>(
    f: &Fixture,
    data: &Path,
    go: &'a Path,
    capture: std::process::Stdio,
) -> (std::process::Child, Reap<'a>) {
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; cat '{}'",
        go.display(),
        data.display()
    );
    let mut cmd = f.cmd(&[
        "backup",
        "-q",
        "--json",
        "--stdin-from-command",
        "--stdin-name",
        "data",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(capture)
        .spawn()
        .unwrap();
    let reap = Reap {
        pid: child.id(),
        go,
    };
    // Its lock is there (a lock that names no basis yet holds back every condemned pack).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f.ok(&["unlock"]).contains("kept shared lock") {
        assert!(Instant::now() < deadline, "the backup never took its lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, reap)
}

/// Ends a backup left waiting by a test that failed: lets its source command go on and kills
/// it, so that no process outlives the test.
struct Reap<'a> {
    pid: u32,
    go: &'a Path,
}

impl Drop for Reap<'_> {
    fn drop(&mut self) {
        let _ = fs::write(self.go, b"");
        for sig in ["-CONT", "-KILL"] {
            // Usually the backup has ended already: nothing to say then.
            let _ = std::process::Command::new("kill")
                .args([sig, &self.pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

#[test]
fn a_backup_stopped_through_a_whole_prune_fails_cleanly_and_loses_nothing() {
    stopped_scenario(Fixture::new());
}

/// A backup loads its index and is stopped (SIGSTOP) longer than the grace period (2 s here);
/// a prune meanwhile revokes it and deletes the data its index still names; woken, the
/// backup fails with exit 20 and commits nothing; the repository checks and restores.
pub(super) fn stopped_scenario(mut f: Fixture) {
    // Locks go stale after 2 s here, so that the stop outlasts the grace period.
    f.env.push(("CHRONOFS_LOCK_STALE_SECS".into(), "2".into()));
    let data = f.path("data");
    fs::write(&data, noise(12, 3 << 20)).unwrap();
    let d = data.to_str().unwrap();
    f.ok(&[
        "backup",
        "-q",
        "--stdin-from-command",
        "--stdin-name",
        "data",
        "cat",
        d,
    ]);
    fs::write(f.src.join("kept"), b"kept").unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    let keep = f.ok(&["snapshots", "--json"]);
    let by_time: Vec<Value> = serde_json::from_str(&keep).unwrap();
    let stdin_id = by_time[0]["id"].as_str().unwrap().to_string();
    f.ok(&["forget", &stdin_id]);
    let go = f.path("go");
    let (backup, _reap) = waiting_backup(&f, &data, &go, std::process::Stdio::piped());
    // Its index is loaded right after its lock is taken.
    std::thread::sleep(Duration::from_millis(500));
    let pid = backup.id().to_string();
    super::util::sh(&format!("kill -STOP {pid}"));
    // Longer than the grace period (by the storage's clock too): the prune revokes it and
    // deletes the old data, which the stopped backup's index still names.
    std::thread::sleep(Duration::from_secs(4));
    let r = json(&f.ok(&["prune", "--json"]));
    // The backup, and only it, is revoked: one lock file, or two when it was stopped in the
    // middle of replacing its lock by a fresher one (the new written, the old not yet gone).
    let revoked = r["writers_revoked"].as_array().unwrap();
    assert!(
        matches!(revoked.len(), 1 | 2)
            && revoked
                .iter()
                .all(|w| w.as_str().unwrap().contains(&format!("PID {pid} (backup)"))),
        "{r}"
    );
    assert!(r["packs_deleted"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["packs_waiting"], 0, "{r}");
    fs::write(&go, b"").unwrap();
    super::util::sh(&format!("kill -CONT {pid}"));
    let out = backup.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(20), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lost the repository lock"), "{err}");
    // Nothing was committed; what is there checks and restores.
    let after: Vec<Value> = serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    assert_eq!(after.len(), 1, "only the kept snapshot: {after:?}");
    f.ok(&["check", "--read-data"]);
    let t = f.path("restored");
    f.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    super::util::assert_same_tree(&f.src, &f.restored_src(&t));
}

#[test]
fn a_snapshot_committed_after_the_prune_looked_is_void_everywhere() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(3, 100_000)).unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    let repo = open_repo(&f.repo);
    let listed_before = f.ok(&["snapshots"]);
    // A writer that passed its lock check, then slept while a prune revoked it and looked.
    let (wrepo, wlock) = writer(&f.repo);
    let fence = Fence {
        time_ns: chronofs::repo::now_ns(),
        revoked: vec![(wlock.writer(), "backup (test)".into())],
        accepted: Some(Vec::new()),
    };
    let bytes = fence.encode(repo.scheme().unwrap().payload()).unwrap();
    repo.storage().create_dir("fences").unwrap();
    repo.storage()
        .write(&format!("fences/{}", Id::hash(&bytes).to_hex()), &bytes)
        .unwrap();
    // Its commit finds the fence after writing: it withdraws the snapshot and fails.
    fs::write(f.src.join("b"), noise(4, 100_000)).unwrap();
    let options = BackupOptions {
        lock: Some(Arc::clone(&wlock)),
        ..BackupOptions::default()
    };
    let e = ingest::backup(&wrepo, std::slice::from_ref(&f.src), &options, &Silent).unwrap_err();
    assert!(matches!(e, chronofs::Error::Revoked(_)), "{e}");
    assert_eq!(e.exit_code(), 20);
    assert_eq!(f.ok(&["snapshots"]), listed_before, "withdrawn");
    // A writer that died before withdrawing leaves the file: it is void for every reader.
    let (snaps, _) = wrepo.snapshots().unwrap();
    let mut late = snaps[0].1.clone();
    late.time_ns += 1_000_000_000;
    late.commit = Some(chronofs::format::snapshot::Commit {
        writer: wlock.writer(),
        basis: 0,
    });
    let late_id = wrepo.save_snapshot(&late).unwrap();
    let late_file = f.repo.join(format!("snapshots/{}", late_id.to_hex()));
    assert!(late_file.exists());
    assert_eq!(f.ok(&["snapshots"]), listed_before, "void: not listed");
    assert!(
        f.fails(&["ls", &late_id.to_hex()[..12]], 13)
            .contains("no snapshot")
    );
    f.ok(&["check"]);
    drop(wlock);
    let r = json(&f.ok(&["prune", "--json"]));
    assert_eq!(r["void_snapshots_deleted"], 1, "{r}");
    assert!(!late_file.exists());
    f.ok(&["check", "--read-data"]);
}

#[test]
fn maintenance_commands_exclude_each_other_but_not_writers() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    let repo = open_repo(&f.repo);
    let held = RepoLock::acquire(&repo, LockKind::Maintenance, "prune", Duration::ZERO).unwrap();
    let e = f.fails(&["prune"], 12);
    assert!(
        e.contains("maintenance lock by") && e.contains("(prune)"),
        "{e}"
    );
    let e = f.fails(&["forget", "--keep-last", "1"], 12);
    assert!(e.contains("maintenance lock by"), "{e}");
    // Writers and readers go on.
    f.ok(&["backup", "-q", f.src_str()]);
    f.ok(&["check"]);
    f.ok(&["snapshots"]);
    drop(held);
    f.ok(&["forget", "--keep-last", "1", "--prune"]);
}

#[test]
fn soak_on_a_directory() {
    // Small packs, so that packs fall out of use often.
    super::soak::soak(Fixture::with_init(&["--pack-size", "1"]), 60, "directory");
}

#[test]
fn a_damaged_fence_is_reported_and_no_backup_commits_past_it() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    let listed = f.ok(&["snapshots"]);
    fs::create_dir_all(f.repo.join("fences")).unwrap();
    let junk = b"CHRONOFS not a fence";
    fs::write(
        f.repo.join(format!("fences/{}", Id::hash(junk).to_hex())),
        junk,
    )
    .unwrap();
    // Readers go on (every blob is verified on read anyway); check names the file.
    assert_eq!(f.ok(&["snapshots"]), listed);
    let out = f.run(&["check"]);
    assert_eq!(out.status.code(), Some(11));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("fences/"),
        "{out:?}"
    );
    // A writer cannot tell whether the damaged fence revokes it: it withdraws its snapshot.
    fs::write(f.src.join("b"), b"b").unwrap();
    let e = f.fails(&["backup", "-q", f.src_str()], 11);
    assert!(e.contains("fences/"), "{e}");
    assert_eq!(f.ok(&["snapshots"]), listed, "nothing committed");
}

/// A prune's handle on the repository at `repo_path`, its lock, and what `meanwhile`
/// returns once it ran: `meanwhile` runs when the prune's `n`-th write of a file under `dir`
/// starts (as if the prune stopped there), on a handle of its own, given the prune's lock file
/// and the repository's path.
pub(super) fn stopped_at_write<T: Send + 'static>(
    repo_path: &Path,
    n: usize,
    dir: &'static str,
    meanwhile: impl FnOnce(&chronofs::repo::Repository, &str, &Path) -> T + Send + 'static,
) -> (chronofs::repo::Repository, RepoLock, Arc<Mutex<Option<T>>>) {
    let lock = prune_lock(repo_path);
    let done = Arc::new(Mutex::new(None));
    let hook = {
        let (path, file, done) = (repo_path.to_path_buf(), lock.file(), Arc::clone(&done));
        move || {
            let other = open_repo(&path);
            *done.lock().unwrap() = Some(meanwhile(&other, &file, &path));
        }
    };
    (hooked_at_write(repo_path, n, dir, hook), lock, done)
}

/// A prune stopped between its lock check and the write of its final index (I6): while it
/// sleeps it is revoked, and another prune repacks a pack the sleeper's index still names as
/// live, and deletes it. The sleeper's index, written when it wakes, must not stay: it would
/// name a deleted pack as the place of data a snapshot uses (every later prune would refuse,
/// and reads could fail). The sleeper withdraws it and fails; the repository stays whole.
#[test]
fn a_prune_revoked_between_its_lock_check_and_its_index_write_withdraws_that_index() {
    let f = Fixture::new();
    let dir = |name: &str| {
        let d = f.path(name);
        fs::create_dir(&d).unwrap();
        d
    };
    let snap = |d: &Path| -> String {
        let out = f.ok(&["backup", "-q", "--json", d.to_str().unwrap()]);
        json(&out)["snapshot_id"].as_str().unwrap().to_string()
    };
    // Unused in full (a deletion, so the prune writes its final index), and a pack half used.
    let (d0, d1, d2) = (dir("d0"), dir("d1"), dir("d2"));
    fs::write(d0.join("u"), noise(31, 2 << 20)).unwrap();
    fs::write(d1.join("p"), noise(32, 1 << 20)).unwrap();
    fs::write(d1.join("q"), noise(33, 300_000)).unwrap();
    fs::copy(d1.join("q"), d2.join("q")).unwrap();
    fs::write(d2.join("r"), noise(34, 300_000)).unwrap();
    let s0 = snap(&d0);
    let s1 = snap(&d1);
    snap(&d2);
    f.ok(&["forget", &s0, &s1]);

    // Stopped just before its second index write (its final index), revoked (its lock is
    // gone), and a whole prune runs that repacks.
    let (repo, lock, other) =
        stopped_at_write(&f.repo, 2, "index/", |brepo, lock_file, repo_path| {
            fs::remove_file(repo_path.join(lock_file)).unwrap();
            let block =
                RepoLock::acquire(brepo, LockKind::Maintenance, "prune", Duration::ZERO).unwrap();
            let options = PruneOptions {
                max_unused: prune::MaxUnused::Bytes(0),
                dry_run: false,
                ..PruneOptions::default()
            };
            prune::prune(brepo, &block, &options).unwrap()
        });
    let sleeper = PruneOptions {
        max_unused: prune::MaxUnused::Unlimited,
        dry_run: false,
        ..PruneOptions::default()
    };
    let err = prune::prune(&repo, &lock, &sleeper).unwrap_err();
    assert!(
        matches!(err, chronofs::Error::Revoked(_)),
        "the sleeper learns it was revoked: {err}"
    );
    drop(lock);
    let r = other.lock().unwrap().take().expect("the other prune ran");
    assert!(r.packs_repacked >= 1 && r.packs_deleted >= 1, "{r:?}");
    // Whole: checks clean, prunes again, and the snapshot left restores exactly.
    let report = check::check(&open_repo(&f.repo), true).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    f.ok(&["prune"]);
    f.ok(&["check", "--read-data"]);
    let t = f.path("restored");
    f.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let back = t.join(d2.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read(back.join("q")).unwrap(),
        fs::read(d2.join("q")).unwrap()
    );
    assert_eq!(
        fs::read(back.join("r")).unwrap(),
        fs::read(d2.join("r")).unwrap()
    );
}
