//! The local index a client keeps in its cache directory (docs/FORMAT.md, "Local index
//! runs"): lost, stale, truncated or tampered, it never changes what a command gives: a
//! damaged run is named in a warning, left out, and rebuilt from the index files.

use std::fs;
use std::path::{Path, PathBuf};

use super::util::{
    Fixture, assert_same_tree, cached_fixture as fixture, noise, pack_files, repo_cache_dir,
};

/// The fixture's local index directory.
fn index_dir(f: &Fixture, cache: &str) -> PathBuf {
    repo_cache_dir(f, cache, "index")
}

fn runs(dir: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("run-"))
        .collect();
    runs.sort();
    runs
}

/// Two backups of different data, so the local index holds runs from two index files.
fn two_backups(f: &Fixture) {
    fs::write(f.src.join("a"), noise(1, 300_000)).unwrap();
    fs::create_dir(f.src.join("d")).unwrap();
    fs::write(f.src.join("d/b"), noise(2, 50_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    fs::write(f.src.join("c"), noise(3, 200_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
}

/// Restores the latest snapshot into a new directory, asserts it equals the source, and
/// returns the command's stderr.
fn restore_exactly(f: &Fixture, name: &str) -> String {
    let target = f.path(name);
    let out = f.run(&["restore", "--target", target.to_str().unwrap(), "latest"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "restore failed: {stderr}");
    assert_same_tree(&f.src, &f.restored_src(&target));
    stderr
}

#[test]
fn a_lost_local_index_is_rebuilt_and_changes_nothing() {
    let f = fixture(&["--encryption", "none"]);
    two_backups(&f);
    let dir = index_dir(&f, "cache");
    assert!(!runs(&dir).is_empty(), "the backups left no local index");
    fs::remove_dir_all(&dir).unwrap();
    let stderr = restore_exactly(&f, "r1");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(
        !runs(&dir).is_empty(),
        "the restore did not rebuild the local index"
    );
    assert!(dir.join("manifest").exists());
    // Private, as the repository is.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for r in runs(&dir) {
        assert_eq!(
            fs::metadata(&r).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

/// A way of damaging a run or the manifest, and the words its warning must hold.
type Damage = (&'static str, fn(&Path), &'static str);

/// Every [`Damage`] tried.
fn damages() -> Vec<Damage> {
    fn flip(path: &Path, at: u64) {
        let mut b = fs::read(path).unwrap();
        let at = usize::try_from(at).unwrap().min(b.len() - 1);
        b[at] ^= 0x40;
        fs::write(path, b).unwrap();
    }
    fn largest_run(dir: &Path) -> PathBuf {
        runs(dir)
            .into_iter()
            .max_by_key(|r| fs::metadata(r).unwrap().len())
            .unwrap()
    }
    vec![
        (
            "an entry page altered",
            |dir| flip(&largest_run(dir), 100),
            "page 0 fails its check",
        ),
        (
            "the header altered",
            |dir| {
                let r = largest_run(dir);
                let len = fs::metadata(&r).unwrap().len();
                flip(&r, len - 60);
            },
            "the header fails its check",
        ),
        (
            "a run truncated by a page",
            |dir| {
                let r = largest_run(dir);
                let b = fs::read(&r).unwrap();
                fs::write(&r, &b[4096..]).unwrap();
            },
            "truncated",
        ),
        (
            "a run cut to its first page",
            |dir| {
                let r = largest_run(dir);
                let b = fs::read(&r).unwrap();
                fs::write(&r, &b[..4096]).unwrap();
            },
            "bad magic bytes",
        ),
        (
            "a run deleted",
            |dir| fs::remove_file(largest_run(dir)).unwrap(),
            "No such file",
        ),
        (
            "the manifest altered",
            |dir| flip(&dir.join("manifest"), 9),
            "the manifest fails its check",
        ),
    ]
}

fn damaged_runs_are_named_and_rebuilt(init: &[&str]) {
    // Cold: the damaged run is merged with the run of the newest index file, and the merge
    // finds the damage. Warm: the index is up to date, and a lookup finds it.
    for warm in [false, true] {
        for (what, damage, words) in damages() {
            let f = fixture(init);
            two_backups(&f);
            if warm {
                restore_exactly(&f, "r0");
                assert_eq!(runs(&index_dir(&f, "cache")).len(), 1);
            }
            damage(&index_dir(&f, "cache"));
            let stderr = restore_exactly(&f, "r1");
            assert!(
                stderr.contains("local index")
                    && stderr.contains(words)
                    && stderr.contains("rebuilding"),
                "{what} (warm: {warm}): {stderr}"
            );
            // Rebuilt: the next command has nothing to say.
            let stderr = restore_exactly(&f, "r2");
            assert!(
                !stderr.contains("warning"),
                "{what} (warm: {warm}), second restore: {stderr}"
            );
        }
    }
}

#[test]
fn damaged_runs_of_a_plaintext_repository_are_named_and_rebuilt() {
    damaged_runs_are_named_and_rebuilt(&["--encryption", "none"]);
}

#[test]
fn damaged_runs_of_an_encrypted_repository_are_named_and_rebuilt() {
    damaged_runs_are_named_and_rebuilt(&[]);
}

#[test]
fn a_run_of_another_repository_is_refused() {
    let (f, g) = (fixture(&[]), fixture(&[]));
    two_backups(&f);
    two_backups(&g);
    // Another repository's run under this one's name: its tags were made with another key.
    let (mine, theirs) = (runs(&index_dir(&f, "cache")), runs(&index_dir(&g, "cache")));
    fs::copy(&theirs[0], &mine[0]).unwrap();
    let stderr = restore_exactly(&f, "r1");
    assert!(
        stderr.contains("the header fails its check") && stderr.contains("rebuilding"),
        "{stderr}"
    );
}

#[test]
fn a_stale_local_index_never_lends_a_pruned_chunk_to_a_backup() {
    let f = fixture(&["--encryption", "none"]);
    // Host A backs up data that is later pruned; its local index names those chunks.
    fs::write(f.src.join("gone"), noise(10, 400_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    restore_exactly(&f, "r0");
    let a_runs = runs(&index_dir(&f, "cache"));
    assert!(!a_runs.is_empty());
    // Host B (its own cache) replaces the data, forgets the first snapshot, and prunes: the
    // chunks of `gone` are deleted and the index files naming them superseded.
    let host_b = |args: &[&str]| {
        let out = f
            .cmd(args)
            .env("XDG_CACHE_HOME", f.path("cache-b"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    fs::rename(f.src.join("gone"), f.path("gone")).unwrap();
    fs::write(f.src.join("new"), noise(11, 100_000)).unwrap();
    host_b(&["backup", f.src_str()]);
    host_b(&["forget", "--keep-last", "1"]);
    // The first prune condemns the packs, the next deletes them.
    let packs = pack_files(&f.repo).len();
    host_b(&["prune"]);
    host_b(&["prune"]);
    assert!(
        pack_files(&f.repo).len() < packs,
        "the prunes deleted no pack"
    );
    assert_eq!(
        runs(&index_dir(&f, "cache")),
        a_runs,
        "host A's index was touched"
    );
    // Host A, with its stale index, backs the pruned data up again: it must store it anew.
    fs::rename(f.path("gone"), f.src.join("gone")).unwrap();
    f.ok(&["backup", f.src_str()]);
    let out = f.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors"), "{out}");
    restore_exactly(&f, "r1");
}

#[test]
fn a_local_index_that_cannot_be_updated_falls_back_to_memory() {
    let f = fixture(&["--encryption", "none"]);
    two_backups(&f);
    // The lock file replaced by a directory: the local index cannot be updated (as when the
    // cache is not writable, which root cannot be shown): the command warns and goes on.
    let dir = index_dir(&f, "cache");
    fs::remove_file(dir.join("lock")).unwrap();
    fs::create_dir(dir.join("lock")).unwrap();
    let stderr = restore_exactly(&f, "r1");
    assert!(
        stderr.contains("cannot be updated") && stderr.contains("into memory"),
        "{stderr}"
    );
    // A cache directory that cannot be made at all: the same.
    fs::write(f.path("not-a-dir"), b"").unwrap();
    let target = f.path("r2");
    let out = f
        .cmd(&["restore", "--target", target.to_str().unwrap(), "latest"])
        .env("XDG_CACHE_HOME", f.path("not-a-dir"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no local index"), "{stderr}");
    assert_same_tree(&f.src, &f.restored_src(&target));
}

fn index_files(f: &Fixture) -> std::collections::BTreeSet<String> {
    fs::read_dir(f.repo.join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

#[test]
fn a_prune_replaces_only_the_index_files_that_change() {
    let mut f = fixture(&["--encryption", "none"]);
    // Files of any size stay when nothing in them changes (by default only those of at least
    // 250,000 blobs do; smaller ones are merged).
    f.env.push(("CHRONOFS_INDEX_KEEP_BLOBS".into(), "1".into()));
    fs::write(f.src.join("a"), noise(20, 300_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let first = index_files(&f);
    fs::remove_file(f.src.join("a")).unwrap();
    fs::write(f.src.join("b"), noise(21, 300_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    fs::write(f.src.join("c"), noise(22, 300_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let before = index_files(&f);
    assert_eq!((first.len(), before.len()), (1, 3));
    // Only the first snapshot used `a`: its pack goes, and with it the first index file.
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    let oldest = list[0]["id"].as_str().unwrap().to_string();
    f.ok(&["forget", &oldest]);
    let packs = super::util::pack_files(&f.repo).len();
    f.ok(&["prune"]);
    f.ok(&["prune"]);
    assert!(
        super::util::pack_files(&f.repo).len() < packs,
        "nothing was deleted"
    );
    let after = index_files(&f);
    let kept: Vec<&String> = before.intersection(&after).collect();
    let later: Vec<&String> = before.difference(&first).collect();
    assert_eq!(
        kept, later,
        "the later backups' index files should stay: {after:?}"
    );
    assert!(
        after.is_disjoint(&first),
        "the first index file should be replaced"
    );
    let out = f.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors"), "{out}");
    restore_exactly(&f, "r1");
    // The same repository pruned with every index file replaced (the default for files
    // this small) reads the same.
    f.env.pop();
    f.ok(&["forget", "--keep-last", "1"]);
    f.ok(&["prune"]);
    assert!(index_files(&f).is_disjoint(&after));
    restore_exactly(&f, "r2");
}

#[test]
fn a_background_mount_keeps_its_local_index_where_it_was_told() {
    if !super::mount::can_mount("a_background_mount_keeps_its_local_index_where_it_was_told") {
        return;
    }
    let f = fixture(&["--encryption", "none"]);
    two_backups(&f);
    // --cache-dir reaches the mount's background process (which once used the default).
    let elsewhere = f.path("elsewhere");
    let m = super::mount::Mounted::new(&f, &["--cache-dir", elsewhere.to_str().unwrap()]);
    let restored = m.src_in(&f, "latest");
    assert_eq!(fs::read(restored.join("c")).unwrap(), noise(3, 200_000));
    let repos: Vec<PathBuf> = fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(repos.len(), 1, "{repos:?}");
    assert!(!runs(&repos[0].join("index")).is_empty());
}
