//! Retention, garbage collection, locks, append-only repositories and copies, through the real
//! binary (and, for fault injection, the library).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chronofs::maintain::check;
use chronofs::maintain::prune::{self, MaxUnused, PruneOptions};
use chronofs::repo::lock::{LockKind, RepoLock};
use serde_json::Value;

use super::mount::{Mounted, can_mount};
use super::util::{
    FaultyStorage, Fixture, RepoState, assert_same_tree, dir_bytes, have_root, kill_when, noise,
    repo_state, sh, test_tmp,
};
use super::util::{assert_ok, snapshot_listing as listing};

/// Small chunks and 1 MiB packs, so that a few MiB make many packs to delete and repack.
pub(super) const SMALL: &[&str] = &[
    "--pack-size",
    "1",
    "--chunk-min",
    "16384",
    "--chunk-avg",
    "65536",
    "--chunk-max",
    "262144",
];

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Rewrites `src` for generation `g`: a stable part, a part that changes every generation,
/// and a part that changes every other generation.
fn generation(src: &Path, g: u64) {
    let _ = fs::remove_dir_all(src);
    fs::create_dir_all(src.join("stable")).unwrap();
    fs::create_dir_all(src.join("moving")).unwrap();
    for i in 0..4 {
        fs::write(src.join(format!("stable/s{i}")), noise(1000 + i, 300_000)).unwrap();
    }
    for i in 0..6 {
        fs::write(
            src.join(format!("moving/m{i}")),
            noise(g * 100 + i, 200_000),
        )
        .unwrap();
    }
    fs::write(src.join("slow"), noise(5000 + g / 2, 400_000)).unwrap();
    // Stable and changing 300 KB segments in turn: whatever way the writer fills its packs,
    // the packs holding this file hold blobs every generation uses beside blobs only this
    // generation uses, so forgetting a generation leaves packs that prune must repack.
    let mut mixed = Vec::new();
    for i in 0..4 {
        mixed.extend(noise(7000 + i, 300_000));
        mixed.extend(noise(g * 100 + 50 + i, 300_000));
    }
    fs::write(src.join("mixed"), mixed).unwrap();
}

/// A repository with `n` generations; returns a copy of each generation's source, by id.
fn generations(f: &Fixture, n: u64) -> BTreeMap<String, PathBuf> {
    let mut expected = BTreeMap::new();
    for g in 0..n {
        generation(&f.src, g);
        let time = format!("2026-01-{:02}T12:00:00Z", g + 1);
        f.ok(&["backup", "--quiet", f.src_str(), "--time", &time]);
        let copy = f.path(&format!("expected/{g}"));
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        sh(&format!("cp -a {} {}", f.src.display(), copy.display()));
        let (id, _) = listing(f).pop().unwrap();
        expected.insert(id, copy);
    }
    expected
}

/// Restores every listed snapshot and compares it with its expected source (`expected` is
/// keyed by snapshot id, or by dated name where ids differ, as in a copy with its own key).
fn verify_snapshots(f: &Fixture, expected: &BTreeMap<String, PathBuf>) {
    let listed = listing(f);
    for (id, name) in &listed {
        let want = expected
            .get(id)
            .or_else(|| expected.get(name))
            .unwrap_or_else(|| panic!("unexpected snapshot {id}"));
        let target = f.path(&format!("verify-{}", &id[..8]));
        f.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        assert_same_tree(want, &f.restored_src(&target));
        fs::remove_dir_all(&target).unwrap();
    }
}

#[test]
fn forget_applies_the_policy_per_group_in_the_local_time_zone() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"x").unwrap();
    // The table of the policy's unit test: in Tokyo, 2026-03-01T20:00Z is already 03-02.
    let times = [
        "2026-03-01T10:00:00Z",
        "2026-03-01T20:00:00Z",
        "2026-03-02T01:00:00Z",
        "2026-03-02T03:00:00Z",
    ];
    for t in times {
        f.ok(&["backup", "-q", f.src_str(), "--host", "alpha", "--time", t]);
    }
    f.ok(&[
        "backup",
        "-q",
        f.src_str(),
        "--host",
        "beta",
        "--time",
        "2026-02-01T00:00:00Z",
    ]);
    let names: Vec<String> = listing(&f).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names[0], "2026-02-01T000000Z");

    let plan = |tz: &str, extra: &[&str]| -> BTreeMap<String, String> {
        let mut args = vec!["forget", "--dry-run", "--json", "--keep-daily", "3"];
        args.extend_from_slice(extra);
        let out = f.cmd(&args).env("TZ", tz).output().unwrap();
        assert_ok(&out);
        let mut actions = BTreeMap::new();
        for g in json(&String::from_utf8_lossy(&out.stdout))
            .as_array()
            .unwrap()
        {
            for s in g["snapshots"].as_array().unwrap() {
                actions.insert(
                    s["name"].as_str().unwrap().to_string(),
                    s["action"].as_str().unwrap().to_string(),
                );
            }
        }
        actions
    };
    let kept = |m: &BTreeMap<String, String>| -> Vec<String> {
        m.iter()
            .filter(|(_, a)| *a == "keep")
            .map(|(n, _)| n.clone())
            .collect()
    };
    // Per host: beta's only snapshot is kept on its own.
    assert_eq!(
        kept(&plan("UTC", &[])),
        [
            "2026-02-01T000000Z",
            "2026-03-01T100000Z",
            "2026-03-01T200000Z",
            "2026-03-02T030000Z"
        ]
    );
    assert_eq!(
        kept(&plan("Asia/Tokyo", &[])),
        [
            "2026-02-01T000000Z",
            "2026-03-01T100000Z",
            "2026-03-02T030000Z"
        ]
    );
    // A POSIX TZ string works as well (no tz database needed): UTC+9 without DST.
    assert_eq!(kept(&plan("JST-9", &[])), kept(&plan("Asia/Tokyo", &[])));
    // One group for all hosts: beta's February snapshot is now the oldest of the group.
    assert_eq!(
        kept(&plan("Asia/Tokyo", &["--group-by", ""])),
        [
            "2026-02-01T000000Z",
            "2026-03-01T100000Z",
            "2026-03-02T030000Z"
        ]
    );
    assert_eq!(
        kept(&plan("UTC", &["--group-by", "", "--host", "alpha"])).len(),
        3,
        "--host beta's snapshot is not even considered"
    );

    // Dry runs removed nothing; a real run removes exactly the planned ones.
    assert_eq!(listing(&f).len(), 5);
    let out = f
        .cmd(&["forget", "--keep-daily", "3"])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("daily snapshot"), "{text}");
    assert!(text.contains("removed 2 snapshot(s)"), "{text}");
    let left: Vec<String> = listing(&f).into_iter().map(|(_, n)| n).collect();
    assert_eq!(left, kept(&plan("Asia/Tokyo", &[])));

    // By name; and the refusals.
    f.ok(&["forget", "2026-02-01T000000Z"]);
    assert_eq!(listing(&f).len(), 2);
    let e = f.fails(&["forget"], 2);
    assert!(e.contains("needs a policy"), "{e}");
    let e = f.fails(&["forget", "latest", "--keep-last", "1"], 2);
    assert!(e.contains("not both"), "{e}");
    let e = f.fails(&["forget", "--keep-within", "3w"], 2);
    assert!(e.contains("not a duration"), "{e}");
    f.fails(&["forget", "--keep-last", "x"], 2);
    // --keep-tag keeps a tagged snapshot that nothing else would.
    f.ok(&[
        "backup",
        "-q",
        f.src_str(),
        "--host",
        "alpha",
        "--tag",
        "audit",
        "--time",
        "2025-01-01T00:00:00Z",
    ]);
    f.ok(&["forget", "--keep-last", "1", "--keep-tag", "audit"]);
    let left: Vec<String> = listing(&f).into_iter().map(|(_, n)| n).collect();
    assert_eq!(left, ["2025-01-01T000000Z", "2026-03-02T030000Z"]);
}

#[test]
fn prune_deletes_and_repacks_and_every_remaining_snapshot_restores() {
    let f = Fixture::with_init(SMALL);
    let expected = generations(&f, 6);
    let before = dir_bytes(&f.repo.join("data"));
    // Forget generations 0, 2, 3 (by id; the listing is sorted by time, ids are not).
    let by_time = listing(&f);
    for (id, _) in [&by_time[0], &by_time[2], &by_time[3]] {
        f.ok(&["forget", id]);
    }
    let dry = json(&f.ok(&["prune", "--dry-run", "--json", "--max-unused", "0"]));
    assert!(dry["dry_run"].as_bool().unwrap());
    assert_eq!(
        dir_bytes(&f.repo.join("data")),
        before,
        "a dry run deletes nothing"
    );
    let r = json(&f.ok(&["prune", "--json", "--max-unused", "0"]));
    assert_eq!(r["snapshots"], 3);
    assert!(r["packs_deleted"].as_u64().unwrap() > 0, "{r}");
    assert!(r["packs_repacked"].as_u64().unwrap() > 0, "{r}");
    assert!(r["bytes_reclaimed"].as_u64().unwrap() > 1_000_000, "{r}");
    assert_eq!(r["unused_bytes_kept"], 0);
    assert!(dir_bytes(&f.repo.join("data")) < before);
    f.ok(&["check", "--read-data"]);
    let remaining: BTreeMap<String, PathBuf> = expected
        .into_iter()
        .filter(|(id, _)| listing(&f).iter().any(|(l, _)| l == id))
        .collect();
    assert_eq!(remaining.len(), 3);
    verify_snapshots(&f, &remaining);
    // Nothing left to do.
    let again = json(&f.ok(&["prune", "--json", "--max-unused", "0"]));
    assert_eq!(again["packs_deleted"], 0);
    assert_eq!(again["packs_repacked"], 0);
    assert_eq!(again["bytes_reclaimed"], 0);
    // The next backup dedups against what prune kept, and forgetting all reclaims all.
    generation(&f.src, 5);
    let out = json(
        f.ok(&["backup", "--json", f.src_str()])
            .lines()
            .last()
            .unwrap(),
    );
    let added = out["summary"]["bytes_added"].as_u64().unwrap();
    assert!(added < 100_000, "{out}");
    let all: Vec<String> = listing(&f).into_iter().map(|(id, _)| id).collect();
    let mut args = vec!["forget"];
    args.extend(all.iter().map(String::as_str));
    args.push("--prune");
    f.ok(&args);
    assert!(listing(&f).is_empty());
    assert!(super::util::pack_files(&f.repo).is_empty());
    f.ok(&["check", "--read-data"]);
}

/// Library-level: prune fails at each of its writes and deletes in turn; after each failure
/// the repository checks clean with `--read-data`, every snapshot restores exactly, and the
/// next prune completes.
#[test]
fn prune_interrupted_at_every_step_loses_nothing() {
    let f = Fixture::with_init(SMALL);
    let expected = generations(&f, 4);
    let by_time = listing(&f);
    f.ok(&["forget", &by_time[0].0, &by_time[2].0]);
    let remaining: BTreeMap<String, PathBuf> = expected
        .into_iter()
        .filter(|(id, _)| *id != by_time[0].0 && *id != by_time[2].0)
        .collect();
    let pristine = f.path("pristine");
    sh(&format!(
        "cp -a {} {}",
        f.repo.display(),
        pristine.display()
    ));
    let options = PruneOptions {
        max_unused: MaxUnused::Bytes(0),
        dry_run: false,
        ..PruneOptions::default()
    };
    let run = |fail_at: usize| -> (bool, usize) {
        sh(&format!(
            "rm -rf {r} && cp -a {p} {r}",
            r = f.repo.display(),
            p = pristine.display()
        ));
        let plain = super::util::open_repo(&f.repo);
        let lock =
            RepoLock::acquire(&plain, LockKind::Maintenance, "test", Duration::ZERO).unwrap();
        let storage = Arc::new(FaultyStorage::new(&f.repo, fail_at));
        let failing = super::util::open_on(storage.clone(), &f.repo);
        let ok = prune::prune(&failing, &lock, &options).is_ok();
        (ok, storage.ops.load(Ordering::SeqCst))
    };
    let (ok, total) = run(usize::MAX);
    assert!(ok);
    assert!(
        total >= 6,
        "expected packs, an index and deletions: {total} steps"
    );
    for fail_at in 0..total {
        let (ok, _) = run(fail_at);
        assert!(!ok, "fail_at {fail_at}");
        let repo = super::util::open_repo(&f.repo);
        let report = check::check(&repo, true).unwrap();
        assert!(report.is_ok(), "fail_at {fail_at}: {:?}", report.errors);
        verify_snapshots(&f, &remaining);
        // The next prune finishes the job.
        let r = json(&f.ok(&["prune", "--json", "--max-unused", "0"]));
        assert_eq!(r["snapshots"], 2, "fail_at {fail_at}");
        let out = f.run(&["check", "--read-data"]);
        assert!(
            out.status.success(),
            "fail_at {fail_at}: {r}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let after = json(&f.ok(&["prune", "--json", "--max-unused", "0"]));
        assert_eq!(after["bytes_reclaimed"], 0, "fail_at {fail_at}: {after}");
    }
}

/// Process-level: SIGKILL of the real `prune` at many points of a run.
#[test]
fn sigkill_during_prune_at_observed_moments() {
    let f = Fixture::with_init(SMALL);
    // More data, so that a prune takes long enough to be interrupted.
    for g in 0..5u64 {
        generation(&f.src, g);
        for d in 0..6u64 {
            let dir = f.src.join(format!("bulk{d}"));
            fs::create_dir_all(&dir).unwrap();
            for i in 0..8u64 {
                let seed = if i < 3 {
                    7000 + d * 10 + i
                } else {
                    g * 1000 + d * 10 + i
                };
                fs::write(dir.join(format!("f{i}")), noise(seed, 300_000)).unwrap();
            }
        }
        f.ok(&[
            "backup",
            "-q",
            f.src_str(),
            "--time",
            &format!("2026-02-{:02}T00:00:00Z", g + 1),
        ]);
    }
    let by_time = listing(&f);
    f.ok(&["forget", &by_time[0].0, &by_time[1].0, &by_time[3].0]);
    let keep: Vec<String> = listing(&f).into_iter().map(|(id, _)| id).collect();
    // Restore what must survive, to compare against after every kill.
    let reference = f.path("reference");
    for id in &keep {
        let t = reference.join(id);
        f.ok(&["restore", id, "--target", t.to_str().unwrap()]);
    }
    let pristine = f.path("pristine");
    sh(&format!(
        "cp -a {} {}",
        f.repo.display(),
        pristine.display()
    ));
    let before = repo_state(&f.repo);
    type When = Box<dyn Fn(&RepoState) -> bool>;
    let (old_packs, old_indexes) = (before.packs.clone(), before.indexes.clone());
    let new_pack = move |st: &RepoState| st.packs.difference(&old_packs).count();
    let moments: Vec<(&str, When)> = vec![
        (
            "a repacked pack being written",
            Box::new(|st| !st.temps.is_empty()),
        ),
        (
            "the first repacked pack",
            Box::new(move |st| new_pack(st) >= 1),
        ),
        (
            "the new index file",
            Box::new(move |st| st.indexes.difference(&old_indexes).count() > 0),
        ),
        (
            "the first old index file deleted",
            Box::new(move |st| !before.indexes.is_subset(&st.indexes)),
        ),
        (
            "the first unused pack deleted",
            Box::new({
                let all = repo_state(&f.repo).packs;
                move |st| !all.is_subset(&st.packs)
            }),
        ),
    ];
    for (k, (what, when)) in moments.iter().enumerate() {
        sh(&format!(
            "rm -rf {r} && cp -a {p} {r}",
            r = f.repo.display(),
            p = pristine.display()
        ));
        kill_when(
            f.cmd(&["prune", "-q", "--max-unused", "0"]),
            &f.repo,
            what,
            when,
        );
        let out = f.run(&["check", "--read-data"]);
        assert!(
            out.status.success(),
            "check after kill {k}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for id in &keep {
            let t = f.path(&format!("kill-{k}"));
            f.ok(&["restore", id, "--target", t.to_str().unwrap()]);
            assert_same_tree(&f.restored_src(&reference.join(id)), &f.restored_src(&t));
            fs::remove_dir_all(&t).unwrap();
        }
        // The killed prune's lock is stale (its process is gone): the next one runs.
        f.ok(&["prune", "-q", "--max-unused", "0"]);
        f.ok(&["check"]);
    }
}

#[test]
fn prune_while_the_mount_reads_every_remaining_snapshot() {
    if !can_mount("prune_while_the_mount_reads_every_remaining_snapshot") {
        return;
    }
    let f = Fixture::with_init(SMALL);
    let expected = generations(&f, 6);
    let by_time = listing(&f);
    // Kept throughout: generations 1, 3 and 5. The others are forgotten while reading.
    let kept: Vec<(String, PathBuf)> = [1usize, 3, 5]
        .iter()
        .map(|&g| (by_time[g].1.clone(), expected[&by_time[g].0].clone()))
        .collect();
    let m = Mounted::new(&f, &["--cache-size", "1M"]);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        let mnt = m.path.clone();
        let src = f.src.clone();
        let kept = kept.clone();
        std::thread::spawn(move || {
            let mut rounds = 0u32;
            while !stop.load(Ordering::SeqCst) || rounds < 2 {
                for (name, want) in &kept {
                    let got = mnt.join(name).join(src.strip_prefix("/").unwrap());
                    assert_same_tree(want, &got);
                }
                // Make the next round read through the daemon again, not the page cache:
                // drop the cached pages of the mounted files themselves (nothing machine-wide).
                for (name, _) in &kept {
                    sh(&format!(
                        "find '{}' -type f -exec dd if={{}} iflag=nocache count=0 status=none ';'",
                        mnt.join(name).display()
                    ));
                }
                rounds += 1;
            }
            rounds
        })
    };
    for (id, _) in [&by_time[0], &by_time[2], &by_time[4]] {
        f.ok(&["forget", id]);
        let r = json(&f.ok(&["prune", "--json", "--max-unused", "0"]));
        assert!(r["bytes_reclaimed"].as_u64().unwrap() > 0, "{r}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // A new snapshot and another prune while the reader goes on.
    generation(&f.src, 9);
    f.ok(&["backup", "-q", f.src_str()]);
    f.ok(&["prune", "-q", "--max-unused", "0"]);
    stop.store(true, Ordering::SeqCst);
    let rounds = reader
        .join()
        .expect("the reader saw an error or a wrong byte");
    assert!(rounds >= 2);
    f.ok(&["check", "--read-data"]);
}

#[test]
fn two_backups_at_once_both_land() {
    let f = Fixture::new();
    let a = f.path("a");
    let b = f.path("b");
    for (dir, seed) in [(&a, 1u64), (&b, 2)] {
        fs::create_dir_all(dir).unwrap();
        for i in 0..40u64 {
            // Shared content too, so both writers race to store the same chunks.
            let data = if i % 2 == 0 {
                noise(i, 400_000)
            } else {
                noise(seed * 1000 + i, 400_000)
            };
            fs::write(dir.join(format!("f{i}")), data).unwrap();
        }
    }
    for _ in 0..3 {
        let children: Vec<_> = [&a, &b]
            .iter()
            .map(|d| {
                f.cmd(&["backup", "-q", "--force", d.to_str().unwrap()])
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert_ok(&out);
        }
    }
    assert_eq!(listing(&f).len(), 6);
    f.ok(&["check", "--read-data"]);
    let snaps = json(&f.ok(&["snapshots", "--json"]));
    for s in snaps.as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let path = s["snapshot"]["paths"][0].as_str().unwrap();
        let t = f.path(&format!("r-{}", &id[..8]));
        f.ok(&["restore", id, "--target", t.to_str().unwrap()]);
        assert_same_tree(Path::new(path), &t.join(path.trim_start_matches('/')));
    }
    assert!(
        fs::read_dir(f.repo.join("locks")).unwrap().next().is_none(),
        "locks released"
    );
}

#[test]
fn locks_conflict_name_their_holder_and_stale_ones_are_reported_and_removed() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    // A backup that holds its shared lock while its source command sleeps.
    let mut slow = f
        .cmd(&["backup", "-q", "--stdin-from-command", "sleep", "30"])
        .spawn()
        .unwrap();
    let lock_dir = f.repo.join("locks");
    super::mount::eventually("the backup's lock", || {
        fs::read_dir(&lock_dir).unwrap().next().is_some()
    });
    // Prune and forget run beside it: it loaded its index, and they wait for nothing.
    f.ok(&["prune"]);
    f.ok(&["forget", "--keep-last", "5"]);
    // Shared with shared is fine.
    f.ok(&["backup", "-q", f.src_str()]);
    f.ok(&["check"]);
    // The holder dies: its lock is stale (same host, PID gone), reported, and the next prune
    // revokes it (a fence) and removes its lock.
    slow.kill().unwrap();
    slow.wait().unwrap();
    let out = f.run(&["prune", "--json"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ignoring") && err.contains("no longer runs"),
        "{err}"
    );
    let r = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        r["writers_revoked"].as_array().map(Vec::len),
        Some(1),
        "{r}"
    );
    assert!(
        r["writers_revoked"][0]
            .as_str()
            .unwrap()
            .contains(&format!("PID {}", slow.id())),
        "{r}"
    );
    assert!(fs::read_dir(&lock_dir).unwrap().next().is_none());
    assert_eq!(
        fs::read_dir(f.repo.join("fences")).unwrap().count(),
        2,
        "a begin and an end"
    );
    assert!(f.ok(&["unlock"]).contains("removed 0 lock(s)"));

    // Locks of another host: live unless too old.
    let repo = super::util::open_repo(&f.repo);
    let write_lock = |host: &str, age_s: i64| {
        let l = chronofs::format::lock::Lock {
            mode: chronofs::format::lock::LockMode::Exclusive,
            writer: chronofs::format::id::WriterId(chronofs::format::id::Id::hash(host.as_bytes())),
            basis: None,
            hostname: host.into(),
            username: "someone".into(),
            pid: 1,
            process_start: 0,
            time_ns: chronofs::repo::now_ns() - age_s * 1_000_000_000,
            purpose: "prune".into(),
        };
        let bytes = l.encode(repo.scheme().unwrap().payload()).unwrap();
        let name = format!("locks/{}", chronofs::format::id::Id::hash(&bytes).to_hex());
        repo.storage().write(&name, &bytes).unwrap();
        // Staleness needs the storage's clock to agree: the file is as old as the lock says.
        sh(&format!(
            "touch -d '@{}' '{}'",
            chronofs::repo::now_ns() / 1_000_000_000 - age_s,
            f.repo.join(&name).display()
        ));
    };
    write_lock("elsewhere", 10);
    let e = f.fails(&["backup", "-q", f.src_str()], 12);
    assert!(e.contains("exclusive lock by someone@elsewhere"), "{e}");
    let e = f.fails(&["prune"], 12);
    assert!(e.contains("exclusive lock by someone@elsewhere"), "{e}");
    let kept = f.ok(&["unlock"]);
    assert!(
        kept.contains("kept exclusive lock by someone@elsewhere"),
        "{kept}"
    );
    // --retry-lock waits for it to go away.
    let waiting = f
        .cmd(&["--retry-lock", "60s", "backup", "-q", f.src_str()])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    f.ok(&["unlock", "--remove-all"]);
    assert!(waiting.wait_with_output().unwrap().status.success());
    write_lock("elsewhere", 3600);
    let out = f.run(&["backup", "-q", f.src_str()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not refreshed for 60 minutes"));
    assert!(f.ok(&["unlock"]).contains("removed 1 lock(s)"));
}

#[test]
fn append_only_repositories_refuse_deletion() {
    let f = Fixture::with_init(&["--append-only"]);
    fs::write(f.src.join("a"), noise(1, 100_000)).unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    f.ok(&["backup", "-q", f.src_str(), "--force"]);
    assert_eq!(f.ok(&["append-only"]).trim(), "append-only: on");
    for args in [
        &["forget", "--keep-last", "1"][..],
        &["forget", "latest"],
        &["prune"],
        &["forget", "--keep-last", "1", "--prune"],
    ] {
        let e = f.fails(args, 14);
        assert!(
            e.contains("append-only") && e.contains("refused"),
            "{args:?}: {e}"
        );
    }
    // A dry run deletes nothing, so it is allowed.
    f.ok(&["forget", "--keep-last", "1", "--dry-run"]);
    f.ok(&["prune", "--dry-run"]);
    assert_eq!(listing(&f).len(), 2);
    f.ok(&["append-only", "off"]);
    f.ok(&["forget", "--keep-last", "1", "--prune"]);
    assert_eq!(listing(&f).len(), 1);
    f.ok(&["append-only", "on"]);
    f.fails(&["prune"], 14);
    f.ok(&["check", "--read-data"]);
}

/// With `chattr +a` on the data directories and `chattr +i` on the config (root only), a
/// client can still back up, but can delete nothing, not even with append-only turned off.
#[test]
fn append_only_with_chattr_lets_backups_in_and_nothing_out() {
    if !have_root("append_only_with_chattr_lets_backups_in_and_nothing_out") {
        return;
    }
    let f = Fixture::with_init(&["--append-only"]);
    fs::write(f.src.join("a"), noise(1, 100_000)).unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    let r = f.repo.display();
    // What README's "Append-only repositories" has the administrator run as root after each
    // backup: every directory and file append-only, the config immutable.
    let seal = format!("chattr -R +a {r}/data {r}/index {r}/snapshots");
    let protect = format!("chattr +i {r}/config && {seal}");
    let st = Command::new("sh").arg("-c").arg(&protect).status().unwrap();
    assert!(
        st.success() || std::env::var_os("CHRONOFS_REQUIRE_ROOT_TESTS").is_none(),
        "chattr failed on {}: the test directory must be on ext4, xfs or btrfs",
        test_tmp().display()
    );
    if !st.success() {
        eprintln!("SKIPPED append_only_with_chattr: chattr unsupported here");
        return;
    }
    struct Unprotect(String);
    impl Drop for Unprotect {
        fn drop(&mut self) {
            let _ = Command::new("sh").arg("-c").arg(&self.0).status();
        }
    }
    let _cleanup = Unprotect(format!("chattr -R -a -i {r}"));
    // Backups still work, new data and unchanged alike.
    fs::write(f.src.join("b"), noise(2, 300_000)).unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    f.ok(&["backup", "-q", f.src_str()]);
    sh(&seal);
    f.ok(&["check", "--read-data"]);
    assert_eq!(listing(&f).len(), 3);
    // Nothing goes: not through chronofs, not by hand.
    let e = f.fails(&["append-only", "off"], 1);
    assert!(e.contains("config"), "{e}");
    f.fails(&["prune"], 14);
    let snap = fs::read_dir(f.repo.join("snapshots"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        fs::remove_file(&snap).is_err(),
        "a snapshot file could be deleted"
    );
    let pack = super::util::pack_files(&f.repo).pop().unwrap();
    assert!(fs::remove_file(&pack).is_err());
    assert!(
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&pack)
            .is_err()
    );
    verify_snapshots_by_restore(&f);
}

fn verify_snapshots_by_restore(f: &Fixture) {
    let t = f.path("restored-latest");
    f.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&t));
}

#[test]
fn copy_transfers_only_what_is_missing_verifies_and_resumes() {
    let f = Fixture::with_init(SMALL);
    let expected = generations(&f, 4);
    f.ok(&[
        "backup",
        "-q",
        f.src_str(),
        "--tag",
        "weekly",
        "--host",
        "other",
    ]);
    // Destination with other chunking parameters and compression, append-only.
    let dest = f.path("offsite");
    let g = Fixture {
        dir: tempfile::tempdir_in(test_tmp()).unwrap(),
        repo: dest.clone(),
        src: f.src.clone(),
        env: Vec::new(),
    };
    g.ok(&["init", "--append-only", "--compression-level", "1"]);
    let d = dest.to_str().unwrap();
    // Copy two snapshots first, then everything.
    let by_time = listing(&f);
    let r = json(&f.ok(&["copy", "--to", d, "--json", &by_time[0].0, &by_time[1].1]));
    assert_eq!(r["snapshots_copied"], 2);
    let first_bytes = r["bytes_copied"].as_u64().unwrap();
    let r = json(&f.ok(&["copy", "--to", d, "--json"]));
    assert_eq!(
        (
            r["snapshots_copied"].as_u64(),
            r["snapshots_present"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert!(
        r["bytes_copied"].as_u64().unwrap() < first_bytes,
        "only new chunks: {r}"
    );
    assert!(r["packs_verified"].as_u64().unwrap() > 0);
    // Idempotent.
    let r = json(&f.ok(&["copy", "--to", d, "--json"]));
    assert_eq!(
        (r["snapshots_copied"].as_u64(), r["blobs_copied"].as_u64()),
        (Some(0), Some(0))
    );
    // Same names, times, hosts, paths, tags and summaries. The destination has its own key,
    // so every id there is its own: snapshot ids and root trees differ.
    let src_list = json(&f.ok(&["snapshots", "--json"]));
    let dst_list = json(&g.ok(&["snapshots", "--json"]));
    let without_ids = |v: &serde_json::Value| {
        let mut v = v.clone();
        for s in v.as_array_mut().unwrap() {
            let o = s.as_object_mut().unwrap();
            o.remove("id");
            let snap = o["snapshot"].as_object_mut().unwrap();
            snap.remove("root");
            snap.remove("parent");
        }
        v
    };
    assert_eq!(without_ids(&src_list), without_ids(&dst_list));
    assert_ne!(
        src_list[0]["snapshot"]["root"], dst_list[0]["snapshot"]["root"],
        "ids are keyed per repository"
    );
    g.ok(&["check", "--read-data"]);
    let by_name: BTreeMap<String, PathBuf> = by_time
        .iter()
        .filter_map(|(id, name)| expected.get(id).map(|p| (name.clone(), p.clone())))
        .chain([(by_time[4].1.clone(), f.src.clone())])
        .collect();
    verify_snapshots(&g, &by_name);

    // Resumable: kill a copy to a fresh destination midway, then run it again.
    let dest2 = f.path("offsite2");
    let g2 = Fixture {
        dir: tempfile::tempdir_in(test_tmp()).unwrap(),
        repo: dest2.clone(),
        src: f.src.clone(),
        env: Vec::new(),
    };
    g2.ok(&["init", "--pack-size", "1"]);
    let d2 = dest2.to_str().unwrap();
    let total = src_list.as_array().unwrap().len();
    let seen = kill_when(
        f.cmd(&["copy", "-q", "--to", d2]),
        &dest2,
        "the first snapshot copied",
        |st| !st.snapshots.is_empty(),
    );
    assert!(
        seen.snapshots.len() < total,
        "the kill landed before the end"
    );
    g2.ok(&["check"]);
    let resumed = json(&f.ok(&["copy", "--json", "--to", d2]));
    assert!(
        resumed["snapshots_present"].as_u64().unwrap() >= 1,
        "the second run resumes from what reached the destination: {resumed}"
    );
    g2.ok(&["check", "--read-data"]);
    assert_eq!(
        without_ids(&json(&g2.ok(&["snapshots", "--json"]))),
        without_ids(&src_list)
    );
    // Same repository on both sides is refused.
    f.fails(&["copy", "--to", f.repo.to_str().unwrap()], 2);
}

/// Every blob of a fresh load of `repo`'s index, with its location, sorted.
fn index_contents(repo: &chronofs::repo::Repository) -> Vec<String> {
    let mut all: Vec<String> = repo
        .index()
        .iter()
        .map(|(id, loc)| format!("{id} {loc:?}"))
        .collect();
    all.sort();
    all
}

#[test]
fn an_index_refresh_reads_only_new_index_files_until_files_are_removed() {
    let f = Fixture::with_init(&["--encryption", "none"]);
    fs::write(f.src.join("a"), noise(1, 300_000)).unwrap();
    f.ok(&["backup", "-q", f.src.to_str().unwrap()]);
    let mounted = super::util::open_repo(&f.repo);
    let old_index: Vec<PathBuf> = fs::read_dir(f.repo.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(old_index.len(), 1);
    fs::write(f.src.join("b"), noise(2, 300_000)).unwrap();
    f.ok(&["backup", "-q", f.src.to_str().unwrap()]);
    // The file already loaded is damaged now: a refresh that read it again would say so.
    let kept = fs::read(&old_index[0]).unwrap();
    fs::write(&old_index[0], b"damaged").unwrap();
    let problems = mounted.refresh_index().unwrap().expect("a new index file");
    assert!(
        problems.is_empty(),
        "only the new file is read: {problems:?}"
    );
    fs::write(&old_index[0], &kept).unwrap();
    let fresh = super::util::open_repo(&f.repo);
    assert_eq!(index_contents(&mounted), index_contents(&fresh));
    assert!(
        mounted.refresh_index().unwrap().is_none(),
        "nothing changed"
    );

    // A damaged new file is reported; the refresh after it loads everything again, so it is
    // reported again (not forgotten because it was seen once).
    fs::write(f.src.join("c"), noise(3, 300_000)).unwrap();
    f.ok(&["backup", "-q", f.src.to_str().unwrap()]);
    let newest = fs::read_dir(f.repo.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !fresh.index_files().iter().any(|n| p.ends_with(n)))
        .unwrap();
    let good = fs::read(&newest).unwrap();
    fs::write(&newest, b"damaged").unwrap();
    let problems = mounted.refresh_index().unwrap().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .file
            .ends_with(newest.file_name().unwrap().to_str().unwrap())
    );
    fs::write(&newest, &good).unwrap();
    fs::write(f.src.join("d"), noise(4, 300_000)).unwrap();
    f.ok(&["backup", "-q", f.src.to_str().unwrap()]);
    fs::write(&newest, b"damaged").unwrap();
    let problems = mounted.refresh_index().unwrap().unwrap();
    assert_eq!(
        problems.len(),
        1,
        "the damaged file is reported again: {problems:?}"
    );
    fs::write(&newest, &good).unwrap();
    assert!(
        mounted.refresh_index().unwrap().is_none(),
        "same files listed"
    );

    // Files removed (a prune rewrote the index): the whole index is built again, and matches
    // a fresh load exactly.
    f.ok(&[
        "forget",
        "-q",
        "--keep-last",
        "1",
        "--prune",
        "--max-unused",
        "0",
    ]);
    let problems = mounted.refresh_index().unwrap().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let fresh = super::util::open_repo(&f.repo);
    assert_eq!(index_contents(&mounted), index_contents(&fresh));
    assert_eq!(mounted.index_files(), fresh.index_files());
}

/// A full load (prune's and check's index) streams the index files into its table. A file
/// superseded by another that is present (a prune stopped before deleting it) must not count:
/// not its blobs, its packs or its prune state; and the superseding file's condemned pack is
/// flagged, though its entries were added before the prune state was known.
#[test]
fn a_full_index_leaves_out_superseded_files_and_flags_condemned_packs() {
    use chronofs::format::id::{BlobId, Id, PackId};
    use chronofs::format::index::{Condemned, Index, IndexedPack, PruneState};
    use chronofs::format::pack::{BlobKind, Compression, PackedBlob};
    let f = Fixture::with_init(&["--encryption", "none"]);
    let blob = |n: u8| PackedBlob {
        id: BlobId(Id([n; 32])),
        kind: BlobKind::Data,
        offset: 16,
        stored_len: 10,
        raw_len: 10,
        compression: Compression::None,
    };
    let pack = |n: u8| IndexedPack {
        id: PackId(Id([n; 32])),
        len: 100,
        blobs: vec![blob(n)],
        session: 0,
    };
    let state = |epoch: u64, condemned: u8| PruneState {
        epoch,
        condemned: vec![Condemned {
            pack: pack(condemned).id,
            epoch,
        }],
    };
    let repo = super::util::open_repo(&f.repo);
    let old = repo
        .write_index_record(&Index {
            packs: vec![pack(1)],
            prune: Some(state(9, 2)),
            ..Index::default()
        })
        .unwrap();
    repo.write_index_record(&Index {
        packs: vec![pack(2), pack(3)],
        supersedes: vec![old],
        prune: Some(state(4, 3)),
        ..Index::default()
    })
    .unwrap();
    let repo = chronofs::repo::Repository::open_unindexed(&f.repo).unwrap();
    repo.load_full_index_strict().unwrap();
    let idx = repo.index();
    let packs: Vec<PackId> = idx.packs().iter().map(|(p, _)| *p).collect();
    assert_eq!(packs, [pack(2).id, pack(3).id]);
    assert!(
        idx.lookup(&blob(1).id).is_none(),
        "a superseded file's blob"
    );
    assert_eq!(idx.epoch(), 4, "a superseded file's prune state");
    assert_eq!(idx.condemned_at(&pack(2).id), None);
    assert_eq!(idx.condemned_at(&pack(3).id), Some(4));
    assert!(idx.contains(&blob(2).id));
    assert!(idx.lookup(&blob(3).id).is_some());
    assert!(
        !idx.contains(&blob(3).id),
        "a condemned pack's blob offered to writers"
    );
}
