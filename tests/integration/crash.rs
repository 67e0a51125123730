//! Crash safety of a backup. (1) Library level: snapshot 1 is taken, then an incremental
//! backup of more than 64 packs (so index files are written along the way) fails at every
//! write step of the real path in turn: starting a streamed pack, each append, each commit,
//! each index file, the snapshot file; a failure leaves the partial temp file a crash would.
//! After each: snapshot 1 restores exactly, the snapshots listed are {1} or {1, 2}, `check`
//! passes, and the next backup completes. (2) Process level: SIGKILL of the real binary at
//! moments it is seen to reach (a temp file being written, N packs written, an index file
//! written, the last pack written), each shown to have landed mid-run.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chronofs::ingest::{self, BackupOptions, Silent};
use chronofs::maintain::check;
use chronofs::repo::{InitOptions, Repository};
use chronofs::restore::{self, RestoreOptions};

use super::util::{
    FaultyStorage, Fixture, RepoState, assert_same_tree, encrypted, kill_when, noise, open_on,
    open_repo, repo_state, sh, test_tmp,
};

/// A tmpfs mounted for the life of the value.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Tmpfs {
        sh(&format!(
            "mount -t tmpfs -o size=1g chronofs-crash '{}'",
            at.display()
        ));
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// 1 MiB packs and chunks of about 1 MiB: one chunk, five write steps per pack.
fn small_packs() -> InitOptions {
    InitOptions {
        pack_target_size: 1 << 20,
        ..InitOptions::default()
    }
}

/// Files of `count` MiB in total, incompressible, under `dir`.
fn bulk(dir: &Path, count: u64, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        std::fs::write(dir.join(format!("b{i:03}")), noise(seed + i, 1 << 20)).unwrap();
    }
}

/// Restores snapshot `s` of `repo` and compares the source part with `want`.
fn restores_as(
    repo: &Repository,
    s: &chronofs::format::snapshot::Snapshot,
    src: &Path,
    want: &Path,
    scratch: &Path,
) {
    let target = scratch.join("restore");
    let stats =
        restore::restore(repo, s, None, &target, &RestoreOptions::default(), &Silent).unwrap();
    assert_eq!((stats.damaged, stats.failed, stats.refused), (0, 0, 0));
    assert_same_tree(want, &target.join(src.strip_prefix("/").unwrap()));
    std::fs::remove_dir_all(&target).unwrap();
}

#[test]
fn failing_writes_at_every_step_of_an_incremental_backup_lose_nothing() {
    every_step(small_packs());
}

#[test]
fn failing_writes_at_every_step_of_an_encrypted_backup_lose_nothing() {
    every_step(encrypted(small_packs()));
}

/// Fails an incremental backup into a repository made with `init` at each of its write steps
/// in turn (see the module's comment).
fn every_step(init: InitOptions) {
    let scratch = tempfile::tempdir_in(test_tmp()).unwrap();
    // Hundreds of runs of a 90 MiB backup: as root, on a tmpfs, where fsync costs nothing
    // (the order of writes, which is what this test checks, is the same).
    let fast = scratch.path().join("fast");
    std::fs::create_dir(&fast).unwrap();
    let _tmpfs = (chronofs::sys::euid() == 0).then(|| Tmpfs::mount(&fast));
    let src = scratch.path().join("src");
    bulk(&src.join("old"), 3, 1);
    std::fs::write(src.join("note"), b"snapshot 1").unwrap();
    let first = scratch.path().join("first");
    sh(&format!("cp -a '{}' '{}'", src.display(), first.display()));
    // Snapshot 1, written without faults, kept as the template of every run.
    let template = fast.join("template");
    let repo = Repository::init(&template, &init).unwrap();
    ingest::backup(
        &repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
        &Silent,
    )
    .unwrap();
    drop(repo);
    // Then enough new data for more than 64 packs.
    bulk(&src.join("new"), 90, 100);
    std::fs::write(src.join("note"), b"snapshot 2").unwrap();

    let run = |fail_at: usize| -> (bool, usize, std::path::PathBuf) {
        let dir = fast.join(format!("repo-{fail_at}"));
        sh(&format!(
            "cp -a '{}' '{}'",
            template.display(),
            dir.display()
        ));
        let storage = Arc::new(FaultyStorage::new(&dir, fail_at));
        let repo = open_on(storage.clone(), &dir);
        repo.load_index_strict().unwrap();
        let ok = ingest::backup(
            &repo,
            std::slice::from_ref(&src),
            &BackupOptions::default(),
            &Silent,
        )
        .is_ok();
        (ok, storage.ops.load(Ordering::SeqCst), dir)
    };
    let (ok, total, dir) = run(usize::MAX);
    assert!(ok);
    let st = repo_state(&dir);
    let new_packs = st.packs.len() - repo_state(&template).packs.len();
    assert!(new_packs > 64, "{new_packs} packs");
    assert!(
        st.indexes.len() >= 3,
        "index files along the way: {}",
        st.indexes.len()
    );
    assert!(total > 5 * 64, "{total} write steps");
    std::fs::remove_dir_all(&dir).unwrap();

    // Blobs reach the packer in an order the compressor threads decide, so the number of
    // steps varies a little from run to run: fail at 0, 1, 2, … until a run gets through.
    let mut mid_write = 0;
    for fail_at in 0.. {
        let (ok, steps, dir) = run(fail_at);
        assert!(
            ok || steps > fail_at,
            "fail_at {fail_at}: failed with no failing step"
        );
        if !repo_state(&dir).temps.is_empty() {
            mid_write += 1; // the crash cut a file short
        }
        // "Reboot": open with plain storage.
        let repo = open_repo(&dir);
        let (snaps, bad) = repo.snapshots().unwrap();
        assert!(bad.is_empty(), "fail_at {fail_at}: {bad:?}");
        assert_eq!(snaps.len(), if ok { 2 } else { 1 }, "fail_at {fail_at}");
        let report = check::check(&repo, fail_at % 16 == 0).unwrap();
        assert!(report.is_ok(), "fail_at {fail_at}: {:?}", report.errors);
        restores_as(&repo, &snaps[0].1, &src, &first, scratch.path());
        if ok || fail_at % 32 == 0 {
            // The next backup completes (a no-op when the failed one had not failed).
            ingest::backup(
                &repo,
                std::slice::from_ref(&src),
                &BackupOptions::default(),
                &Silent,
            )
            .unwrap();
            let (snaps, _) = repo.snapshots().unwrap();
            restores_as(&repo, &snaps.last().unwrap().1, &src, &src, scratch.path());
            assert!(
                check::check(&repo, true).unwrap().is_ok(),
                "fail_at {fail_at}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
        if ok {
            // How blobs fill packs depends on that order too (a loaded machine shifts it
            // more): the run that gets through must still be within a tenth of the end.
            assert!(
                fail_at + total / 10 > total,
                "a run got through at step {fail_at} of {total}"
            );
            break;
        }
    }
    assert!(
        mid_write > total / 2,
        "only {mid_write} of {total} failures cut a file short"
    );
}

#[test]
fn sigkill_during_backup_at_observed_moments() {
    let f = Fixture::with_init(&["--pack-size", "1"]);
    bulk(&f.src, 4, 1);
    f.ok(&["backup", f.src_str()]);
    let snapshot_1 = f.path("snapshot-1");
    sh(&format!(
        "cp -a '{}' '{}'",
        f.src.display(),
        snapshot_1.display()
    ));
    let pristine = f.path("pristine");
    sh(&format!(
        "cp -a '{}' '{}'",
        f.repo.display(),
        pristine.display()
    ));
    let before = repo_state(&f.repo);
    // 120 MiB more: about a hundred packs, an index file every 64.
    bulk(&f.src.join("more"), 120, 1000);
    type When = Box<dyn Fn(&RepoState) -> bool>;
    let packs = |n: usize| -> When {
        let old = before.packs.clone();
        Box::new(move |st: &RepoState| st.packs.difference(&old).count() >= n)
    };
    let old_indexes = before.indexes.len();
    let thirty = packs(30);
    let moments: Vec<(&str, When)> = vec![
        ("the first temp file", Box::new(|st| !st.temps.is_empty())),
        ("one pack written", packs(1)),
        ("ten packs written", packs(10)),
        (
            "a pack being written after 30",
            Box::new(move |st| thirty(st) && !st.temps.is_empty()),
        ),
        (
            "the first index file of the run",
            Box::new(move |st| st.indexes.len() > old_indexes),
        ),
        ("80 packs written", packs(80)),
    ];
    for (what, when) in &moments {
        sh(&format!(
            "rm -rf '{r}' && cp -a '{p}' '{r}'",
            r = f.repo.display(),
            p = pristine.display()
        ));
        let seen = kill_when(
            f.cmd(&["--quiet", "backup", f.src_str()]),
            &f.repo,
            what,
            when,
        );
        let after = repo_state(&f.repo);
        assert_eq!(after.snapshots, before.snapshots, "{what}: no new snapshot");
        assert!(
            after.packs.len() >= seen.packs.len(),
            "{what}: packs seen before the kill are kept"
        );
        let out = f.run(&["check"]);
        assert!(
            out.status.success(),
            "check after the kill at {what}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let target = f.path("restored");
        f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
        assert_same_tree(&snapshot_1, &f.restored_src(&target));
        std::fs::remove_dir_all(&target).unwrap();
        // The next backup completes, reusing what the killed one indexed.
        f.ok(&["--quiet", "backup", f.src_str()]);
        f.ok(&["check", "--read-data"]);
    }
}
