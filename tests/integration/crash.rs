//! Crash safety. (1) Library level: a storage that fails every write from the Nth on (leaving
//! a partial temp file, as a crash mid-write would), for every N; the repository must then
//! check clean, every snapshot must restore exactly, and the next backup must succeed.
//! (2) Process level: SIGKILL of the real binary at many points during a large backup.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chronofs::ingest::{self, BackupOptions, Silent};
use chronofs::repo::storage::LocalStorage;
use chronofs::repo::{InitOptions, Repository, check};
use chronofs::restore::{self, RestoreOptions};

use super::util::{FaultyStorage, Fixture, assert_same_tree, noise, test_tmp};

fn make_source(root: &Path, seed: u64) {
    std::fs::create_dir_all(root.join("d1/d2")).unwrap();
    for i in 0..12u64 {
        let dir = if i % 3 == 0 {
            root.join("d1/d2")
        } else {
            root.to_path_buf()
        };
        std::fs::write(
            dir.join(format!("f{i}")),
            noise(seed + i, 150_000 + (i as usize) * 40_000),
        )
        .unwrap();
    }
}

fn restore_and_compare(repo: &Repository, source: &Path, scratch: &Path) {
    let (snaps, bad) = repo.snapshots().unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    for (i, (_, s)) in snaps.iter().enumerate() {
        let target = scratch.join(format!("restore-{i}"));
        let stats =
            restore::restore(repo, s, None, &target, &RestoreOptions::default(), &Silent).unwrap();
        assert_eq!((stats.damaged, stats.failed), (0, 0));
        assert_same_tree(source, &target.join(source.strip_prefix("/").unwrap()));
        std::fs::remove_dir_all(&target).unwrap();
    }
}

#[test]
fn failing_writes_at_every_point_leave_a_consistent_repository() {
    let scratch = tempfile::tempdir_in(test_tmp()).unwrap();
    let src = scratch.path().join("src");
    make_source(&src, 100);
    let small_packs = InitOptions {
        pack_target_size: 1 << 20,
        ..InitOptions::default()
    };
    // Count the writes of one complete backup (after the first, which this test keeps).
    let count_repo = scratch.path().join("count");
    Repository::init(&count_repo, &small_packs).unwrap();
    let counter = Arc::new(FaultyStorage {
        inner: LocalStorage::new(&count_repo),
        ops: AtomicUsize::new(0),
        fail_at: usize::MAX,
    });
    let repo = Repository::open_storage(counter.clone(), &count_repo).unwrap();
    ingest::backup(
        &repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
        &Silent,
    )
    .unwrap();
    let total = counter.ops.load(Ordering::SeqCst);
    assert!(
        total >= 4,
        "expected several packs, an index and a snapshot; got {total} writes"
    );

    for fail_at in 0..=total {
        let repo_dir = scratch.path().join(format!("repo-{fail_at}"));
        Repository::init(&repo_dir, &small_packs).unwrap();
        let storage = Arc::new(FaultyStorage {
            inner: LocalStorage::new(&repo_dir),
            ops: AtomicUsize::new(0),
            fail_at,
        });
        let crashing = Repository::open_storage(storage, &repo_dir).unwrap();
        let result = ingest::backup(
            &crashing,
            std::slice::from_ref(&src),
            &BackupOptions::default(),
            &Silent,
        );
        assert_eq!(result.is_ok(), fail_at >= total, "fail_at {fail_at}");
        // "Reboot": open with plain storage.
        let repo = Repository::open(&repo_dir).unwrap();
        let report = check::check(&repo, true).unwrap();
        assert!(report.is_ok(), "fail_at {fail_at}: {:?}", report.errors);
        restore_and_compare(&repo, &src, scratch.path());
        // The next backup succeeds and is complete.
        ingest::backup(
            &repo,
            std::slice::from_ref(&src),
            &BackupOptions::default(),
            &Silent,
        )
        .unwrap();
        let report = check::check(&repo, true).unwrap();
        assert!(
            report.is_ok(),
            "after recovery, fail_at {fail_at}: {:?}",
            report.errors
        );
        restore_and_compare(&repo, &src, scratch.path());
        std::fs::remove_dir_all(&repo_dir).unwrap();
    }
}

#[test]
fn sigkill_during_backup_at_many_points() {
    let f = Fixture::new();
    // A small source that completes first, so there are snapshots to keep intact.
    make_source(&f.src, 1);
    f.ok(&["backup", f.src_str()]);
    // A large source (~160 MiB, part compressible) for the killed runs.
    let big: PathBuf = f.path("big");
    for d in 0..8u64 {
        let dir = big.join(format!("dir{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..40u64 {
            let data = if i % 2 == 0 {
                noise(d * 100 + i, 500_000)
            } else {
                format!("{d}-{i} compressible line\n")
                    .repeat(25_000)
                    .into_bytes()
            };
            std::fs::write(dir.join(format!("file{i}")), data).unwrap();
        }
    }
    // How long an uninterrupted backup of it takes here.
    let probe = Fixture::new();
    let t0 = Instant::now();
    probe.ok(&["backup", big.to_str().unwrap()]);
    let full = t0.elapsed();

    let big_s = big.to_str().unwrap();
    for k in 1..=12u32 {
        let mut child = f
            .cmd(&["--quiet", "backup", big_s])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * k / 13);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let out = f.run(&["check"]);
        assert!(
            out.status.success(),
            "check after kill {k}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        verify_listed(&f, &big, k);
    }
    // The next backup succeeds and the whole repository reads back clean.
    f.ok(&["backup", big_s]);
    f.ok(&["check", "--read-data"]);
    verify_listed(&f, &big, 99);
    let _ = Duration::ZERO;
}

/// Restores the newest snapshot of each source and compares it with the source.
fn verify_listed(f: &Fixture, big: &Path, k: u32) {
    let listing: serde_json::Value = serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    for source in [f.src.as_path(), big] {
        let newest = listing
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s["snapshot"]["paths"][0] == source.to_str().unwrap());
        let Some(s) = newest else { continue };
        let target = f.path(&format!("verify-{k}"));
        f.ok(&[
            "restore",
            s["id"].as_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
        ]);
        assert_same_tree(source, &target.join(source.strip_prefix("/").unwrap()));
        std::fs::remove_dir_all(&target).unwrap();
    }
}
