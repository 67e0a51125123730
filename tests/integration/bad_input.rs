//! Bad input gets a one-line error naming what and where, and a distinct exit code.

use std::fs;

use super::util::{Fixture, pack_files};

fn first_file(dir: &std::path::Path) -> std::path::PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap()
}

fn one_line(s: &str) {
    assert_eq!(
        s.trim_end().lines().count(),
        1,
        "expected a one-line error, got:\n{s}"
    );
}

#[test]
fn missing_repository_and_usage_errors() {
    let f = Fixture::new();
    let missing = f.path("nope");
    let out = f
        .cmd(&["snapshots"])
        .env_remove("CHRONOFS_REPO")
        .output()
        .unwrap();
    // --repo from the fixture points at a real repo; use a missing one instead.
    assert!(out.status.success());
    let out = super::util::bin()
        .args(["--repo", missing.to_str().unwrap(), "snapshots"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(
        err.contains(missing.to_str().unwrap()) && err.contains("does not exist"),
        "{err}"
    );
    one_line(&err);
    // A directory that is not a repository.
    let err = String::from_utf8_lossy(
        &super::util::bin()
            .args(["--repo", f.src_str(), "snapshots"])
            .output()
            .unwrap()
            .stderr,
    )
    .into_owned();
    assert!(err.contains("not a chronofs repository"), "{err}");
    // Usage errors exit 2; unknown snapshots 13; init over an existing repo refuses with 14.
    f.fails(&["backup", "--no-such-flag"], 2);
    let target = f.path("x");
    let err = f.fails(
        &["restore", "deadbeef", "--target", target.to_str().unwrap()],
        13,
    );
    one_line(&err);
    f.fails(&["init"], 14);
    f.fails(&["backup", "/definitely/not/here"], 1);
    f.fails(&["backup", "--exclude", "[", f.src_str()], 2);
}

#[test]
fn damaged_repository_files_are_named() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"some data").unwrap();
    f.ok(&["backup", f.src_str()]);

    // Snapshot file garbled: listed as a warning naming the file, exit 11.
    let snap = first_file(&f.repo.join("snapshots"));
    let good_snap = fs::read(&snap).unwrap();
    fs::write(&snap, b"garbage").unwrap();
    let err = f.fails(&["snapshots"], 11);
    assert!(
        err.contains(&format!(
            "snapshots/{}",
            snap.file_name().unwrap().to_string_lossy()
        )),
        "{err}"
    );
    fs::write(&snap, &good_snap).unwrap();

    // Index file truncated: every command that reads it names it, check reports it. A
    // command whose local index already holds the file's verified contents (the backup's
    // commit loaded it) does not read it again, and lists exactly what the file said.
    let index = first_file(&f.repo.join("index"));
    let good_index = fs::read(&index).unwrap();
    fs::write(&index, &good_index[..good_index.len() / 2]).unwrap();
    let err = f.fails(&["--no-cache", "ls", "latest"], 11);
    assert!(err.contains("index/"), "{err}");
    one_line(&err);
    let out = f.ok(&["ls", "latest"]);
    assert!(out.contains(&format!("{}/a", f.src_str())), "{out}");
    let out = f.run(&["check"]);
    assert_eq!(out.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&out.stdout).contains("index/"));
    fs::write(&index, &good_index).unwrap();

    // Pack truncated: check names the pack and the file affected.
    let pack = pack_files(&f.repo).into_iter().next().unwrap();
    let good_pack = fs::read(&pack).unwrap();
    fs::write(&pack, &good_pack[..good_pack.len() - 5]).unwrap();
    let out = f.run(&["check"]);
    assert_eq!(out.status.code(), Some(11));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&pack.file_name().unwrap().to_string_lossy().to_string()),
        "{report}"
    );
    fs::write(&pack, &good_pack).unwrap();

    // Config garbled or truncated: named, exit 11.
    let config = f.repo.join("config");
    let good = fs::read(&config).unwrap();
    for bad in [
        &good[..10],
        b"CHRONOFSgarbagegarbagegarbagegarbagegarbagegarbagegarbagegarbage".as_slice(),
    ] {
        fs::write(&config, bad).unwrap();
        let err = f.fails(&["snapshots"], 11);
        assert!(err.contains("config"), "{err}");
        one_line(&err);
    }
    fs::write(&config, &good).unwrap();
    f.ok(&["check", "--read-data"]);
}

#[test]
fn full_disk_fails_cleanly_and_loses_nothing() {
    if !super::util::have_root("full_disk_fails_cleanly_and_loses_nothing") {
        return;
    }
    let f = Fixture::new();
    let small = f.path("small");
    fs::create_dir(&small).unwrap();
    super::util::sh(&format!(
        "mount -t tmpfs -o size=3m chronofs-test '{}'",
        small.display()
    ));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(small.clone());
    let repo = small.join("repo");
    let run = |args: &[&str]| {
        super::util::bin()
            .arg("--repo")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["init"]).status.success());
    fs::write(f.src.join("fits"), b"small file").unwrap();
    assert!(run(&["backup", f.src_str()]).status.success());
    fs::write(f.src.join("too-big"), super::util::noise(3, 8 << 20)).unwrap();
    let out = run(&["backup", f.src_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(15), "{err}");
    assert!(
        err.contains("No space left") && err.contains("data/"),
        "{err}"
    );
    one_line(&err);
    // The earlier snapshot is intact and the repository checks clean.
    let out = run(&["check", "--read-data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listing: serde_json::Value =
        serde_json::from_slice(&run(&["snapshots", "--json"]).stdout).unwrap();
    assert_eq!(listing.as_array().unwrap().len(), 1, "{listing}");
}
