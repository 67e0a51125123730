//! Fixture repositories (`tests/fixtures/`): made once by the chronofs of their day
//! (`tests/fixtures/make.sh`) and committed as bytes on disk, read by today's. Every build must
//! list, restore, check and mount them exactly: a change that breaks existing repositories
//! fails here, where the crafted-repository tests (built with today's encoders) cannot see it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::mount::{Mounted, can_mount};
use super::util::Fixture;

/// Each fixture: its name under `tests/fixtures/` and its passphrase (`None`: plaintext).
const FIXTURES: &[(&str, Option<&str>)] = &[
    ("v1-plain-2026-12", None),
    ("v2-encrypted-2026-12", Some("fixture passphrase")),
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected(name: &str, what: &str) -> String {
    let p = fixtures_dir().join(format!("{name}.{what}"));
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What `tests/fixtures/manifest.sh` (stat, sha256sum, readlink) sees under `dir`.
fn manifest(dir: &Path) -> String {
    let out = Command::new("bash")
        .arg(fixtures_dir().join("manifest.sh"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Copies the files of fixture `name` (as a clone of the repository has them: no empty
/// directories, modes as git gives them) to `to`, then makes it private as chronofs would.
fn copy_files(name: &str, to: &Path) {
    let from = fixtures_dir().join(name);
    let mut stack = vec![from.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let target = to.join(path.strip_prefix(&from).unwrap());
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::copy(&path, &target).unwrap();
            }
        }
    }
    let status = Command::new("chmod")
        .args(["-R", "go-rwx"])
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn every_fixture_repository_lists_restores_checks_and_mounts_exactly() {
    for &(name, passphrase) in FIXTURES {
        let env = passphrase
            .map(|p| vec![("CHRONOFS_PASSWORD".to_string(), p.to_string())])
            .unwrap_or_default();
        let holder = tempfile::tempdir_in(super::util::test_tmp()).unwrap();
        let repo = holder.path().join(name);
        copy_files(name, &repo);
        let f = Fixture::attach(Some(repo.to_str().unwrap()), env);
        let source = expected(name, "source");
        let source = source.trim().trim_start_matches('/');

        // The snapshots, in order, with the ids they were written with.
        let snaps = super::util::snapshot_listing(&f);
        let ids: Vec<&str> = snaps.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            expected(name, "snapshots").lines().collect::<Vec<_>>(),
            "{name}: snapshot ids"
        );

        // Each restores to exactly the tree it was taken of.
        for (i, (id, _)) in snaps.iter().enumerate() {
            let target = holder.path().join(format!("restored-{i}"));
            f.ok(&["restore", id, "--target", target.to_str().unwrap()]);
            assert_eq!(
                manifest(&target.join(source)),
                expected(name, &format!("{}.manifest", i + 1)),
                "{name}: snapshot {} restored",
                i + 1
            );
        }
        let check = f.run(&["check", "--read-data"]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{name}: check --read-data: {}",
            String::from_utf8_lossy(&check.stderr)
        );

        // The mount shows each as stored.
        if can_mount("every_fixture_repository_lists_restores_checks_and_mounts_exactly") {
            let m = Mounted::new(&f, &[]);
            for (i, (_, dated)) in snaps.iter().enumerate() {
                assert_eq!(
                    manifest(&m.path.join(dated).join(source)),
                    expected(name, &format!("{}.manifest", i + 1)),
                    "{name}: snapshot {} through the mount",
                    i + 1
                );
            }
        }
    }
}
