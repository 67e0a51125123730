//! Snapshot sets (docs/FORMAT.md, "Snapshot sets"): `prune` gathers settled snapshot files
//! into sets so that `snapshots/` stays short, and nothing a user sees changes: the same ids,
//! names and records in every listing (with and without a client's cache), restores and the
//! mount as before; `forget` takes a snapshot out of its set; an interrupted replacement never
//! brings a forgotten snapshot back; a damaged set is named and stops `prune`; a client's
//! damaged or stale copy of a set's table is named and read again.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chronofs::format::id::{Id, SnapshotId};
use chronofs::maintain::prune::{self, PruneOptions};
use chronofs::repo::fence;
use chronofs::repo::lock::{self, LockKind, RepoLock};

use super::mount::{Mounted, can_mount, names as dir_names};
use super::prune_beside::stopped_at_write;
use super::util::{
    Fixture, cached_fixture, noise, open_repo, repo_cache_dir, sh, snapshot_listing,
};

/// A fixture whose prunes gather as soon as there are `at` settled snapshot files, settled
/// after 2 s.
fn gathering(init: &[&str], at: usize) -> Fixture {
    let mut f = cached_fixture(init);
    f.env.push(("CHRONOFS_GATHER_AT".into(), at.to_string()));
    f.env.push(("CHRONOFS_LOCK_STALE_SECS".into(), "2".into()));
    f
}

/// `n` backups, an hour apart from `first_hour`, alternating two hosts, each of different
/// content; returns the content of each.
fn backups(f: &Fixture, first_hour: u32, n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let hour = first_hour + i;
            let data = noise(u64::from(hour), 3000 + hour as usize);
            fs::write(f.src.join("file"), &data).unwrap();
            let host = if hour.is_multiple_of(2) {
                "even"
            } else {
                "odd"
            };
            let time = format!("2026-05-{:02}T{:02}:00:00Z", 1 + hour / 24, hour % 24);
            f.ok(&["backup", "--host", host, "--time", &time, f.src_str()]);
            data
        })
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

/// The snapshot files of the repository.
fn snapshot_files(f: &Fixture) -> Vec<PathBuf> {
    files_in(&f.repo.join("snapshots"))
}

/// Waits until the snapshot files are settled (older than the 2 s grace period by the
/// storage's clock), then prunes; returns prune's output.
fn settle_and_prune(f: &Fixture) -> String {
    std::thread::sleep(std::time::Duration::from_millis(2500));
    f.ok(&["prune"])
}

/// The listing through the client's cache, and with no cache at all: they must agree.
fn listing(f: &Fixture) -> Vec<(String, String)> {
    let cached = snapshot_listing(f);
    let out = f.ok(&["--no-cache", "snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let uncached: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        cached, uncached,
        "the cached listing differs from the repository's"
    );
    cached
}

fn restored(f: &Fixture, name: &str) -> Vec<u8> {
    let target = f.path(&format!("restore-{name}"));
    f.ok(&["restore", name, "--target", target.to_str().unwrap()]);
    fs::read(f.restored_src(&target).join("file")).unwrap()
}

#[test]
fn gathered_snapshots_keep_their_ids_and_list_restore_forget_and_mount_as_before() {
    for init in [&["--encryption", "none"][..], &[][..]] {
        let f = gathering(init, 5);
        let data = backups(&f, 0, 8);
        let before = listing(&f);
        assert_eq!(before.len(), 8);
        assert_eq!(snapshot_files(&f).len(), 8);
        let out = settle_and_prune(&f);
        assert!(
            out.contains("8 snapshot files gathered into 1 snapshot sets"),
            "{out}"
        );
        let files = snapshot_files(&f);
        assert_eq!(files.len(), 1, "{files:?}");
        // The same ids and names, through the cache and without it.
        assert_eq!(listing(&f), before);
        let odd = f.ok(&["snapshots", "--host", "odd", "--json"]);
        let odd: serde_json::Value = serde_json::from_str(&odd).unwrap();
        assert_eq!(odd.as_array().unwrap().len(), 4);
        // Restores of a gathered snapshot are exact.
        assert_eq!(restored(&f, &before[2].1), data[2]);
        f.ok(&["check"]);
        // A forgotten member leaves every listing; the set is written again without it.
        f.ok(&["forget", &before[3].1]);
        let mut want = before.clone();
        want.remove(3);
        assert_eq!(listing(&f), want);
        let after = snapshot_files(&f);
        assert_eq!(after.len(), 1);
        assert_ne!(after, files, "the set was not written again");
        // A new backup is a file of its own beside the set.
        backups(&f, 20, 1);
        let now = listing(&f);
        assert_eq!(now.len(), 8);
        assert_eq!(now[..7], want[..]);
        assert_eq!(snapshot_files(&f).len(), 2);
        // The mount shows every snapshot, gathered or not, with its content.
        if can_mount(
            "gathered_snapshots_keep_their_ids_and_list_restore_forget_and_mount_as_before",
        ) {
            // As a client that never met the set: the mount's first load reads the set file,
            // and must then show its members.
            let tables = repo_cache_dir(&f, "cache", "catalog").join("sets");
            fs::remove_dir_all(&tables).unwrap();
            let m = Mounted::new(&f, &[]);
            let shown = dir_names(&m.path);
            for (_, name) in &now {
                assert!(shown.contains(name), "{name} not in the mount: {shown:?}");
            }
            let file = m.src_in(&f, &before[5].1).join("file");
            assert_eq!(fs::read(file).unwrap(), data[5]);
            // The mount's first listing is of the files: it keeps the set's table.
            assert_eq!(
                files_in(&tables).len(),
                1,
                "the mount dropped the set's table"
            );
        }
        f.ok(&["check"]);
    }
}

#[test]
fn an_interrupted_replacement_never_brings_a_forgotten_snapshot_back() {
    let f = gathering(&["--encryption", "none"], 5);
    backups(&f, 0, 6);
    let before = listing(&f);
    settle_and_prune(&f);
    let old = snapshot_files(&f);
    assert_eq!(old.len(), 1);
    let old_bytes = fs::read(&old[0]).unwrap();
    f.ok(&["forget", &before[1].1]);
    // As if forget had stopped after writing the new set, before deleting the old one.
    fs::write(&old[0], &old_bytes).unwrap();
    assert_eq!(snapshot_files(&f).len(), 2);
    let mut want = before.clone();
    want.remove(1);
    assert_eq!(listing(&f), want, "the replaced set came back");
    let check = f.ok(&["check"]);
    assert!(check.contains("snapshot set replaced by set"), "{check}");
    // The next prune deletes it.
    let out = settle_and_prune(&f);
    assert!(out.contains("1 sets replaced"), "{out}");
    assert!(!old[0].exists());
    assert_eq!(listing(&f), want);

    // Gathering stopped after writing its set, before deleting the files it gathered.
    let sets = snapshot_files(&f);
    backups(&f, 10, 5);
    let singles: Vec<(PathBuf, Vec<u8>)> = snapshot_files(&f)
        .into_iter()
        .filter(|p| !sets.contains(p))
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    assert_eq!(singles.len(), 5);
    let whole = listing(&f);
    assert_eq!(whole.len(), 10);
    let out = settle_and_prune(&f);
    assert!(out.contains("gathered into 1 snapshot sets"), "{out}");
    for (p, b) in &singles {
        fs::write(p, b).unwrap();
    }
    assert_eq!(
        listing(&f),
        whole,
        "a snapshot in a set and in its own file is listed once"
    );
    f.ok(&["check"]);
    // The next prune deletes the leftover files instead of gathering them a second time.
    let out = settle_and_prune(&f);
    assert!(!out.contains("gathered"), "{out}");
    assert_eq!(snapshot_files(&f).len(), 1, "{:?}", snapshot_files(&f));
    assert_eq!(listing(&f), whole);
    // Put them back once more for the forget below.
    for (p, b) in &singles {
        fs::write(p, b).unwrap();
    }
    // Forgetting one of them removes both its file and its place in the set.
    f.ok(&["forget", &whole[7].1]);
    let mut want = whole.clone();
    want.remove(7);
    assert_eq!(listing(&f), want);
    let id = &whole[7].0;
    assert!(!f.repo.join("snapshots").join(id).exists());
}

#[test]
fn a_damaged_set_is_named_and_prune_and_check_refuse() {
    let f = gathering(&["--encryption", "none"], 5);
    backups(&f, 0, 5);
    settle_and_prune(&f);
    backups(&f, 10, 1);
    let set = snapshot_files(&f)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&set).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&set, &bytes).unwrap();
    let name = set.file_name().unwrap().to_string_lossy().into_owned();
    // Without a cache every file is read: the damage is named, the rest listed.
    let out = f.run(&["--no-cache", "snapshots", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&name), "{stderr}");
    let damaged: i32 = chronofs::error::exit::DAMAGED.into();
    for cmd in [&["prune"][..], &["check"][..]] {
        let out = f.run(cmd);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(damaged), "{cmd:?}: {said}");
        assert!(said.contains(&name), "{cmd:?}: {said}");
    }
}

#[test]
fn a_damaged_or_stale_local_set_table_is_named_and_the_set_read_again() {
    let f = gathering(&["--encryption", "none"], 5);
    backups(&f, 0, 6);
    let before = listing(&f);
    settle_and_prune(&f);
    assert_eq!(listing(&f), before);
    let dir = repo_cache_dir(&f, "cache", "catalog").join("sets");
    let tables = files_in(&dir);
    assert_eq!(tables.len(), 1, "{tables:?}");
    let mut bytes = fs::read(&tables[0]).unwrap();
    bytes[70] ^= 1;
    fs::write(&tables[0], &bytes).unwrap();
    let out = f.run(&["snapshots", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&tables[0].display().to_string()),
        "the damaged table was not named: {stderr}"
    );
    assert_eq!(snapshot_listing(&f), before);
    assert_ne!(
        fs::read(&tables[0]).unwrap(),
        bytes,
        "the table was not saved again"
    );
    // The catalog's records lost, the set tables kept: the members are read from their set.
    let catalog = repo_cache_dir(&f, "cache", "catalog");
    for seg in files_in(&catalog) {
        if seg
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seg-")
        {
            fs::remove_file(seg).unwrap();
        }
    }
    assert_eq!(
        snapshot_listing(&f),
        before,
        "members of a known set went missing"
    );
    // A replaced set's table goes at the next listing.
    f.ok(&["forget", &before[0].1]);
    assert_eq!(snapshot_listing(&f), before[1..]);
    let now = files_in(&dir);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, tables);
}

#[test]
fn prune_leaves_fewer_settled_snapshot_files_than_the_threshold_as_they_are() {
    // The default threshold (1,000) leaves a small repository's files alone.
    let mut f = cached_fixture(&["--encryption", "none"]);
    f.env.push(("CHRONOFS_LOCK_STALE_SECS".into(), "2".into()));
    backups(&f, 0, 3);
    let out = settle_and_prune(&f);
    assert!(!out.contains("gathered"), "{out}");
    assert_eq!(snapshot_files(&f).len(), 3);
    // One short of a threshold of 4: still alone; at 4, one set.
    f.env.push(("CHRONOFS_GATHER_AT".into(), "4".into()));
    let out = settle_and_prune(&f);
    assert!(!out.contains("gathered"), "{out}");
    assert_eq!(snapshot_files(&f).len(), 3);
    backups(&f, 3, 1);
    let out = settle_and_prune(&f);
    assert!(
        out.contains("4 snapshot files gathered into 1 snapshot sets"),
        "{out}"
    );
    assert_eq!(snapshot_files(&f).len(), 1);
}

fn sid(hex: &str) -> SnapshotId {
    SnapshotId(hex.parse::<Id>().unwrap())
}

fn ids_of(listed: &[(String, String)]) -> Vec<String> {
    listed.iter().map(|(id, _)| id.clone()).collect()
}

/// Whether the file of `snapshots/` at `path` is a set.
fn is_a_set(path: &Path) -> bool {
    chronofs::format::snapshot_set::is_set(&fs::read(path).unwrap())
}

/// What the soak test found with gathering on: a prune stopped past the grace period between
/// reading the snapshot files it gathers and writing their set wakes after another prune
/// revoked it, forgot one of them and deleted its data. Its set is written (from what it read
/// before it stopped), its check after the write finds its lock gone, and it withdraws the
/// set: the forgotten snapshot stays gone, and the repository checks clean. Without the check
/// after the write the set stays (void, since the other prune's end did not accept it).
#[test]
fn a_prune_revoked_while_it_gathers_withdraws_its_set_and_nothing_forgotten_comes_back() {
    let mut f = cached_fixture(&[]);
    backups(&f, 0, 4);
    let ids = ids_of(&snapshot_listing(&f));
    let forgotten = sid(&ids[1]);
    // Settled: older than the grace period by the storage's clock.
    sh(&format!(
        "touch -d '2 hours ago' {}/snapshots/*",
        f.repo.display()
    ));
    // Stopped just before it writes its set, revoked, and a forget and a prune run.
    let (repo, lock, other) = stopped_at_write(&f.repo, 1, "snapshots/", move |o, lock_file, _| {
        let locks = lock::list(o).unwrap();
        let sleeper = locks.iter().find(|l| l.file == lock_file).unwrap();
        fence::revoke(o, &[sleeper]).unwrap();
        let block = RepoLock::acquire(o, LockKind::Maintenance, "forget", Duration::ZERO).unwrap();
        chronofs::snapshot::list(o).unwrap();
        chronofs::maintain::forget::remove(o, &block, &[forgotten]).unwrap();
        let options = PruneOptions {
            max_unused: prune::MaxUnused::Bytes(0),
            dry_run: false,
            gather_at: usize::MAX,
        };
        prune::prune(o, &block, &options).unwrap()
    });
    let sleeper = PruneOptions {
        max_unused: prune::MaxUnused::Unlimited,
        dry_run: false,
        gather_at: 1,
    };
    let err = prune::prune(&repo, &lock, &sleeper).unwrap_err();
    assert!(matches!(err, chronofs::Error::Revoked(_)), "{err}");
    drop(lock);
    let r = other.lock().unwrap().take().expect("the other prune ran");
    assert!(
        r.packs_deleted >= 1,
        "the forgotten snapshot's data is gone: {r:?}"
    );
    let files = snapshot_files(&f);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files.iter().all(|p| !is_a_set(p)),
        "the set was withdrawn: {files:?}"
    );
    let mut left = ids.clone();
    left.remove(1);
    assert_eq!(ids_of(&listing(&f)), left);
    f.ok(&["check", "--read-data"]);
    // Gathering works afterwards, and the forgotten snapshot stays gone.
    f.env.push(("CHRONOFS_GATHER_AT".into(), "1".into()));
    let out = f.ok(&["prune"]);
    assert!(
        out.contains("3 snapshot files gathered into 1 snapshot sets"),
        "{out}"
    );
    assert_eq!(ids_of(&listing(&f)), left);
    f.ok(&["check", "--read-data"]);
}

/// A prune that stops for longer than the grace period after it gathered snapshot `a` into a
/// set (and deleted `a`'s file): `forget` revokes it before it lists, accepts its set (it was
/// there before the listing) and adopts it (writes it again in its own name, since its
/// writer may still withdraw it); the set the revoked prune writes when it wakes (from what
/// it saw: holding `c`, which forget removed, and replacing the set that now holds `a`) is
/// void: listings, the mount and restores ignore it, `check` calls it harmless, and the next
/// prune deletes it.
#[test]
fn sets_of_a_revoked_maintenance_process_are_adopted_when_accepted_and_ignored_when_void() {
    let mut f = cached_fixture(&[]);
    f.env.push(("CHRONOFS_LOCK_STALE_SECS".into(), "2".into()));
    let data = backups(&f, 0, 3);
    let before = snapshot_listing(&f);
    let (a, b, c) = (&before[0].0, &before[1].0, &before[2].0);
    let repo = open_repo(&f.repo);
    let stopped = RepoLock::acquire(&repo, LockKind::Maintenance, "prune", Duration::ZERO).unwrap();
    let body = |id: &str| repo.snapshot_file_bytes(&sid(id)).unwrap();
    let first = repo
        .write_snapshot_set(vec![(sid(a), body(a))], Vec::new(), stopped.writer())
        .unwrap();
    let c_body = body(c);
    let path = |id: &SnapshotId| f.repo.join("snapshots").join(id.to_hex());
    fs::remove_file(path(&sid(a))).unwrap();
    // Past the grace period without a refresh.
    std::thread::sleep(Duration::from_millis(2500));
    f.ok(&["forget", c]);
    assert!(
        matches!(stopped.ensure_held(), Err(chronofs::Error::Revoked(_))),
        "forget revoked the stopped prune"
    );
    assert!(!path(&first).exists(), "the accepted set was adopted");
    let adopted: Vec<PathBuf> = snapshot_files(&f)
        .into_iter()
        .filter(|p| is_a_set(p))
        .collect();
    assert_eq!(adopted.len(), 1, "{adopted:?}");
    let adopted = sid(adopted[0].file_name().unwrap().to_str().unwrap());
    assert_eq!(ids_of(&listing(&f)), [a.clone(), b.clone()]);
    // The revoked prune wakes and writes a set from what it saw.
    let late = repo
        .write_snapshot_set(
            vec![(sid(b), body(b)), (sid(c), c_body)],
            vec![adopted],
            stopped.writer(),
        )
        .unwrap();
    assert_eq!(listing(&f), before[..2].to_vec());
    assert_eq!(restored(&f, a), data[0]);
    // Asked for by id, the forgotten snapshot is gone, though the void set holds it.
    let fresh = open_repo(&f.repo);
    // (A listing first: the process learns the sets, the void one too.)
    assert_eq!(fresh.snapshots().unwrap().0.len(), 2);
    let err = fresh
        .load_snapshot(&sid(c))
        .expect_err("a forgotten snapshot");
    assert!(err.to_string().contains(&sid(c).to_hex()), "{err}");
    assert!(fresh.load_snapshot(&sid(b)).is_ok());
    if can_mount(
        "sets_of_a_revoked_maintenance_process_are_adopted_when_accepted_and_ignored_when_void",
    ) {
        let m = Mounted::new(&f, &[]);
        let mut want: Vec<String> = before[..2].iter().map(|(_, n)| n.clone()).collect();
        want.sort();
        let mut shown: Vec<String> = dir_names(&m.path)
            .into_iter()
            .filter(|n| n.starts_with("20"))
            .collect();
        shown.sort();
        assert_eq!(shown, want);
    }
    let out = f.ok(&["check"]);
    assert!(
        out.contains(&format!("snapshots/{}", late.to_hex())) && out.contains("written too late"),
        "{out}"
    );
    f.ok(&["prune"]);
    assert!(!path(&late).exists(), "the void set was deleted");
    assert!(path(&adopted).exists());
    assert_eq!(listing(&f), before[..2].to_vec());
    let out = f.ok(&["check", "--read-data"]);
    assert!(!out.contains("harmless"), "{out}");
    drop(stopped);
}
