//! Every row of the README's exit-code table, one test per code, with the cases that once
//! gave another code than the README says. Codes whose triggers need a whole scenario are
//! tested where that scenario lives: 3 in `backup_behaviour::unreadable_files_warn_and_exit_3`,
//! 12 in `maintain::locks_conflict_name_their_holder_and_stale_ones_are_reported_and_removed`,
//! 15 in `bad_input::full_disk_fails_cleanly_and_loses_nothing`, and 11 for every kind of
//! crafted damage and every command in `hostile_repos`.

use std::fs;
use std::process::Command;

use super::craft::{Craft, file};
use super::util::{Fixture, noise};

fn bin() -> Command {
    super::util::bin()
}

fn code(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_0_success_with_chronofs_repo_alone_naming_the_repository() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    // No --repo anywhere: the environment variable alone names the repository.
    for args in [
        vec!["backup", f.src_str()],
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["check", "--read-data"],
    ] {
        let (c, err) = code(bin().env("CHRONOFS_REPO", &f.repo).args(&args));
        assert_eq!(c, 0, "{args:?}: {err}");
    }
    let listed = bin()
        .env("CHRONOFS_REPO", &f.repo)
        .args(["snapshots", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn exit_0_when_the_reader_of_the_output_goes_away() {
    // `chronofs snapshots --json | head -c 1`: a closed pipe ends the output quietly, for
    // JSON (which serde_json writes) as for text.
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", f.src_str()]);
    let file = f.src.join("a");
    let file = file.to_str().unwrap();
    for args in [
        &["snapshots", "--json"][..],
        &["snapshots"],
        &["ls", "--long", "latest"],
        &["cat", "snapshot", "latest"],
        &["find", "*"],
        &["versions", file],
        &["diff", "--json", "latest", "latest"],
        &["status"],
    ] {
        let mut child = f
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // No reader from the start: the first write fails with EPIPE (Rust ignores SIGPIPE).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn exit_1_fatal_errors() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", f.src_str()]);
    let missing = f.path("not-here");
    f.fails(&["backup", missing.to_str().unwrap()], 1);
    // A failing producer: no snapshot.
    f.fails(&["backup", "--stdin-from-command", "--", "false"], 1);
    // A restore target that cannot be a directory.
    let blocker = f.path("blocker");
    fs::write(&blocker, b"a file").unwrap();
    let target = blocker.join("below");
    f.fails(
        &["restore", "latest", "--target", target.to_str().unwrap()],
        1,
    );
    assert_eq!(
        super::util::repo_state(&f.repo).snapshots.len(),
        1,
        "failures wrote no snapshot"
    );
}

#[test]
fn exit_2_usage_errors() {
    let f = Fixture::new();
    f.fails(&["backup", "--no-such-flag"], 2);
    f.fails(&["backup", "--exclude", "[", f.src_str()], 2);
    f.fails(&["forget"], 2);
    f.fails(&["prune", "--max-unused", "lots"], 2);
    let (c, err) = code(bin().env_remove("CHRONOFS_REPO").args(["snapshots"]));
    assert_eq!(c, 2, "{err}");
    assert!(
        err.contains("--repo") && err.contains("CHRONOFS_REPO"),
        "{err}"
    );
}

#[test]
fn exit_10_no_repository() {
    let f = Fixture::new();
    for repo in [f.path("missing"), f.src.clone()] {
        let (c, err) = code(bin().arg("--repo").arg(&repo).arg("snapshots"));
        assert_eq!(c, 10, "{err}");
        assert!(err.contains(repo.to_str().unwrap()), "{err}");
    }
}

#[test]
fn exit_11_damage_as_the_readme_lists_it() {
    let scratch = tempfile::tempdir_in(super::util::test_tmp()).unwrap();
    let repo = scratch.path().join("repo");
    let mut c = Craft::new(&repo);
    let (_, piece) = c.chunk(&noise(1, 5000));
    let root = c.tree(vec![file(b"f", vec![piece])]);
    c.snapshot(root);
    let w = c.finish();
    let r = |args: &[&str]| code(bin().arg("--repo").arg(&repo).args(args));
    let data_pack = w.data_pack.unwrap();
    let target = scratch.path().join("t");
    let t = target.to_str().unwrap();

    // A pack the index lists is missing: restore and prune say so with 11.
    let good = fs::read(&data_pack).unwrap();
    fs::remove_file(&data_pack).unwrap();
    let data_before = super::util::repo_state(&repo).packs;
    assert_eq!(r(&["restore", "latest", "--target", t]).0, 11);
    let (c11, err) = r(&["prune"]);
    assert_eq!(c11, 11, "{err}");
    assert!(err.contains("missing"), "{err}");
    assert_eq!(
        super::util::repo_state(&repo).packs,
        data_before,
        "prune deleted nothing"
    );
    // A directory where the pack should be.
    fs::create_dir(&data_pack).unwrap();
    assert_eq!(r(&["restore", "latest", "--target", t]).0, 11);
    assert_eq!(r(&["check"]).0, 11);
    fs::remove_dir(&data_pack).unwrap();
    fs::write(&data_pack, &good).unwrap();
    assert_eq!(r(&["check", "--read-data"]).0, 0);

    // Every snapshot file damaged: `latest` is damage, not "no snapshots".
    for s in &w.snapshots {
        let mut b = fs::read(s).unwrap();
        b[60] ^= 1;
        fs::write(s, b).unwrap();
    }
    // (Read from the repository: a client whose snapshot catalog holds the records still
    // lists them, as tests/integration/snapshot_catalog.rs shows, and `check` says 11.)
    let (c11, err) = r(&["--no-cache", "ls", "latest"]);
    assert_eq!(c11, 11, "{err}");
    assert!(err.contains("snapshots/"), "{err}");
    assert_eq!(r(&["prune"]).0, 11);
    assert_eq!(r(&["check"]).0, 11);
}

#[test]
fn exit_13_not_found() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", f.src_str()]);
    let target = f.path("t");
    f.fails(
        &["restore", "deadbeef", "--target", target.to_str().unwrap()],
        13,
    );
    f.fails(&["ls", "latest", "/no/such/path"], 13);
    f.fails(&["cat", "snapshot", "2001-01-01T000000Z"], 13);
}

#[test]
fn exit_14_refused_to_protect_data() {
    let f = Fixture::with_init(&["--append-only"]);
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", f.src_str()]);
    let target = f.path("t");
    let t = target.to_str().unwrap();
    f.ok(&["restore", "latest", "--target", t]);
    // Restore never overwrites without --overwrite.
    let err = f.fails(&["restore", "latest", "--target", t], 14);
    assert!(err.contains("--overwrite"), "{err}");
    // init on a repository; forget and prune on an append-only one.
    f.fails(&["init"], 14);
    f.fails(&["forget", "--keep-last", "1"], 14);
    f.fails(&["prune"], 14);
    // init in a non-empty directory.
    let (c, _) = code(bin().arg("--repo").arg(&f.src).arg("init"));
    assert_eq!(c, 14);
}

#[test]
fn exit_16_mounting_and_unmounting() {
    let f = Fixture::new();
    let missing = f.path("no-mount-point");
    let err = f.fails(&["mount", missing.to_str().unwrap()], 16);
    assert!(err.contains("does not exist"), "{err}");
    let not_a_dir = f.path("file");
    fs::write(&not_a_dir, b"x").unwrap();
    f.fails(&["mount", not_a_dir.to_str().unwrap()], 16);
    let plain = f.path("plain-dir");
    fs::create_dir(&plain).unwrap();
    f.fails(&["umount", plain.to_str().unwrap()], 16);
}
