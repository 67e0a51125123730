//! Repositories on object storage, against a real S3 server: Garage, started by the project's
//! own `tests/s3/server.sh` (built once per machine by `tests/s3/server.sh install`, which the
//! README's test command runs). These tests never skip: without the server they fail and say
//! how to install it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::mount::{Mounted, can_mount};
use super::roundtrip::build_everything;
use super::util::{Fixture, assert_same_tree, dir_bytes, noise, test_tmp};

/// A Garage server (one node or a cluster) with its data in a temp directory, stopped on drop.
pub(super) struct Server {
    dir: tempfile::TempDir,
    /// The variables `server.sh start` printed.
    pub env: Vec<(String, String)>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/server.sh")
}

impl Server {
    pub(super) fn start(nodes: u32) -> Server {
        let garage = std::env::var("CHRONOFS_GARAGE").unwrap_or_else(|_| {
            let root = std::env::var("CHRONOFS_GARAGE_ROOT")
                .unwrap_or_else(|_| "/var/cache/chronofs-test/garage".into());
            format!("{root}/bin/garage")
        });
        assert!(
            Path::new(&garage).exists(),
            "the S3 test server is not installed at {garage}: run `bash tests/s3/server.sh install` \
             (the README's test command does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("chronofs-s3-")
            .tempdir_in(test_tmp())
            .unwrap();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .args(["--nodes", &nodes.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "server.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>();
        assert!(
            env.iter().any(|(k, _)| k == "CHRONOFS_S3_TEST_REPO"),
            "server.sh printed no repository: {env:?}"
        );
        Server { dir, env }
    }

    fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// An `s3:` location in the test bucket under `prefix`.
    pub(super) fn repo(&self, prefix: &str) -> String {
        format!(
            "s3:{}/chronofs-test/{prefix}",
            self.var("CHRONOFS_S3_ENDPOINT")
        )
    }

    /// The environment for chronofs, with few retries so failures show quickly.
    pub(super) fn client_env(&self, retries: u32) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.push(("CHRONOFS_S3_RETRIES".into(), retries.to_string()));
        env
    }

    fn node(&self, what: &str, i: u32) {
        let ok = Command::new("bash")
            .arg(script())
            .arg(what)
            .arg(self.dir.path())
            .arg(i.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "server.sh {what} {i}");
    }

    /// Bytes node `i` stores.
    pub(super) fn stored_bytes(&self, i: u32) -> u64 {
        dir_bytes(&self.dir.path().join(format!("node{i}/data")))
    }

    /// Waits until node `i` stores `more` bytes than now, while `child` (a backup) runs.
    pub(super) fn wait_until_stored(&self, i: u32, more: u64, child: &mut std::process::Child) {
        let stored = self.stored_bytes(i);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.stored_bytes(i) < stored + more {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the backup ended before the kill"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the backup made no progress"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    pub(super) fn kill_node(&self, i: u32) {
        self.node("kill-node", i);
    }

    pub(super) fn start_node(&self, i: u32) {
        self.node("start-node", i);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// A fixture whose repository is `prefix` in the server's bucket.
pub(super) fn s3_fixture(server: &Server, prefix: &str, init: &[&str]) -> Fixture {
    let mut env = server.client_env(8);
    env.push((
        "CHRONOFS_CACHE_DIR".into(),
        server
            .dir
            .path()
            .join(format!("cache-{prefix}"))
            .display()
            .to_string(),
    ));
    Fixture::at(Some(&server.repo(prefix)), env, init)
}

/// How many snapshots `snapshots` lists.
fn snapshot_count(f: &Fixture) -> usize {
    f.ok(&["snapshots"])
        .lines()
        .filter(|l| l.contains("Z"))
        .count()
}

/// The `storage_traffic` object of a `backup --json` summary.
fn traffic(json: &str) -> serde_json::Value {
    let line = json
        .lines()
        .rev()
        .find(|l| l.contains("\"summary\""))
        .unwrap_or_else(|| panic!("no summary in {json}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["storage_traffic"].clone()
}

#[test]
fn every_command_works_on_an_s3_repository() {
    let server = Server::start(1);
    let f = s3_fixture(&server, "main", &[]);
    build_everything(&f.src);
    fs::write(f.src.join("big.bin"), noise(7, 3_000_000)).unwrap();

    let first = f.ok(&["backup", "--json", f.src_str()]);
    let t = traffic(&first);
    assert!(t["put"].as_u64().unwrap() >= 3, "{t}");
    // An unchanged re-backup uploads only its snapshot (and lock objects).
    // (Another test creating a directory beside ours changes an ancestor, which a snapshot
    // records: the backup is taken again then.)
    let backups = std::cell::Cell::new(1);
    let again = super::util::unchanged_backup(&f.src, || {
        backups.set(backups.get() + 1);
        f.ok(&["backup", "--json", f.src_str()])
    });
    let t = traffic(&again);
    assert!(t["put"].as_u64().unwrap() <= 4, "unchanged re-backup: {t}");
    assert!(
        t["bytes_up"].as_u64().unwrap() < 64 * 1024,
        "unchanged re-backup uploaded {t}"
    );
    // ... and reads next to nothing: index and snapshots come from the local cache, trees in
    // a few blocks.
    assert!(t["get"].as_u64().unwrap() <= 8, "unchanged re-backup: {t}");
    assert!(
        t["bytes_down"].as_u64().unwrap() < 1 << 20,
        "unchanged re-backup downloaded {t}"
    );
    let snaps = f.ok(&["snapshots"]);
    assert_eq!(
        snaps.lines().filter(|l| l.contains("Z")).count(),
        backups.get(),
        "{snaps}"
    );
    let listing = f.ok(&["ls", "latest", f.src_str()]);
    assert!(listing.contains("big.bin"), "{listing}");

    // Restore is the source, field by field.
    let target = f.path("restored");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&target));
    f.ok(&["check", "--read-data"]);

    // The mount shows the same tree.
    assert!(can_mount("every_command_works_on_an_s3_repository"));
    {
        let m = Mounted::new(&f, &[]);
        let inside = m.path.join("latest").join(f.src.strip_prefix("/").unwrap());
        assert_same_tree(&f.src, &inside);
    }

    // Off-site workflow: local → S3 and S3 → local, byte for byte.
    let local = f.path("local-repo");
    let local_s = local.to_str().unwrap();
    let local_f = Fixture::at(Some(local_s), server.client_env(8), &[]);
    f.ok(&["copy", "--to", local_s]);
    let back = f.path("from-local");
    local_f.ok(&["restore", "latest", "--target", back.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&back));
    let other = s3_fixture(&server, "offsite", &[]);
    local_f.ok(&["copy", "--to", &server.repo("offsite")]);
    let offsite = f.path("from-offsite");
    other.ok(&["restore", "latest", "--target", offsite.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&offsite));

    // stdin backups, forget and prune.
    let mut child = f
        .cmd(&["backup", "--stdin", "--stdin-name", "dump.sql"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &noise(3, 500_000)).unwrap();
    assert!(child.wait().unwrap().success());
    f.ok(&["forget", "--keep-last", "1", "--prune"]);
    // One snapshot of the tree and one of stdin stay (each is its own group).
    assert_eq!(snapshot_count(&f), 2);
    f.ok(&["check", "--read-data"]);
    let listing = f.ok(&["ls", "latest"]);
    assert!(listing.contains("dump.sql"), "{listing}");

    // Snapshot sets on object storage: gathered by prune (the objects' times are the storage's
    // clock), listed, restored, forgotten. Oldest first: these three, then the two kept above.
    for hour in 1..=3 {
        fs::write(f.src.join("gathered"), noise(hour, 2000)).unwrap();
        let time = format!("2026-02-01T0{hour}:00:00Z");
        f.ok(&["backup", "--time", &time, f.src_str()]);
    }
    let before = super::util::snapshot_listing(&f);
    // Settled: older than the 2 s grace period by the storage's clock, which says seconds.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let out = f
        .cmd(&["prune"])
        .env("CHRONOFS_GATHER_AT", "3")
        .env("CHRONOFS_LOCK_STALE_SECS", "2")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("5 snapshot files gathered into 1 snapshot sets"),
        "{said}"
    );
    assert_eq!(super::util::snapshot_listing(&f), before);
    // The gathered files and the packs prune deleted (DeleteObjects requests) are gone: check
    // would name a snapshot file a set also holds, or a pack no index names.
    let checked = f.ok(&["check"]);
    assert!(!checked.contains("harmless"), "{checked}");
    let back = f.path("from-set");
    f.ok(&["restore", &before[1].1, "--target", back.to_str().unwrap()]);
    assert_eq!(
        fs::read(f.restored_src(&back).join("gathered")).unwrap(),
        noise(2, 2000)
    );
    f.ok(&["forget", &before[1].1]);
    assert_eq!(snapshot_count(&f), 4);
    f.ok(&["check"]);
}

/// A restore from object storage reads each pack it needs once. `b/` repeats the 16,500 files
/// of `a/` (their chunks deduplicated), so the files of `b/` want the very chunks of `a/`:
/// with batches of at most 16,384 files, as from local storage, `b/`'s batch read the packs of
/// `a/`'s again (twice the bytes; the bench data took 11 times the requests and 1.8 times the
/// bytes). One batch from object storage reads each wanted chunk once, whatever wants it.
#[test]
fn a_restore_from_s3_fetches_each_pack_once() {
    let server = Server::start(1);
    let f = s3_fixture(&server, "once", &[]);
    for d in ["a", "b"] {
        let dir = f.src.join(d);
        fs::create_dir(&dir).unwrap();
        for i in 0..16_500u64 {
            fs::write(dir.join(format!("f{i:05}")), noise(i, 1024)).unwrap();
        }
    }
    let up = traffic(&f.ok(&["backup", "--json", f.src_str()]))["bytes_up"]
        .as_u64()
        .unwrap();
    let target = f.path("restored");
    let out = f.ok(&[
        "restore",
        "latest",
        "--json",
        "--no-progress",
        "--target",
        target.to_str().unwrap(),
    ]);
    let down = traffic(&out)["bytes_down"].as_u64().unwrap();
    assert!(
        down < up + up / 4,
        "restore downloaded {down} bytes of a repository of about {up}"
    );
    assert_same_tree(&f.src, &f.restored_src(&target));
}

#[test]
fn s3_failures_are_clear_and_write_nothing() {
    let server = Server::start(1);
    let f = s3_fixture(&server, "errs", &[]);
    fs::write(f.src.join("a"), b"data").unwrap();
    f.ok(&["backup", f.src_str()]);
    let run = |env: Vec<(String, String)>, repo: &str, args: &[&str]| {
        let g = Fixture {
            dir: tempfile::tempdir_in(test_tmp()).unwrap(),
            repo: PathBuf::from(repo),
            src: f.src.clone(),
            env,
        };
        let out = g.run(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let with = |k: &str, v: &str| {
        let mut env = server.client_env(1);
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v.into()));
        env
    };

    // Wrong secret: access denied, exit 19, nothing written.
    let (code, err) = run(
        with(
            "AWS_SECRET_ACCESS_KEY",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
        &server.repo("errs"),
        &["backup", f.src_str()],
    );
    assert_eq!(code, Some(19), "{err}");
    assert!(
        err.contains("access denied") || err.contains("403"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // A region the server does not serve.
    let (code, err) = run(
        with("AWS_DEFAULT_REGION", "mars-north-1"),
        &server.repo("errs"),
        &["snapshots"],
    );
    assert_eq!(code, Some(19), "{err}");
    assert!(err.contains("region"), "{err}");

    // A bucket that does not exist.
    let endpoint = server.var("CHRONOFS_S3_ENDPOINT");
    let (code, err) = run(
        server.client_env(1),
        &format!("s3:{endpoint}/no-such-bucket/x"),
        &["init"],
    );
    assert_eq!(code, Some(19), "{err}");
    assert!(
        err.contains("no-such-bucket") && err.contains("does not exist"),
        "{err}"
    );

    // Nothing listening at the endpoint.
    let (code, err) = run(
        server.client_env(1),
        "s3:http://127.0.0.1:9/chronofs-test/x",
        &["snapshots"],
    );
    assert_eq!(code, Some(19), "{err}");
    assert!(err.contains("cannot connect"), "{err}");

    // No credentials at all.
    let bare: Vec<(String, String)> = vec![
        ("AWS_ACCESS_KEY_ID".into(), String::new()),
        ("AWS_SECRET_ACCESS_KEY".into(), String::new()),
        ("HOME".into(), "/nonexistent".into()),
    ];
    let (code, err) = run(bare, &server.repo("errs"), &["snapshots"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no S3 credentials"), "{err}");

    // Credentials from the shared credentials file in $HOME: AWS_PROFILE picks a profile,
    // without it the default one (here: keys the server refuses) is used.
    let home = tempfile::tempdir_in(test_tmp()).unwrap();
    fs::create_dir(home.path().join(".aws")).unwrap();
    fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [chronofs-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            server.var("AWS_ACCESS_KEY_ID"),
            "0".repeat(64),
            server.var("AWS_ACCESS_KEY_ID"),
            server.var("AWS_SECRET_ACCESS_KEY"),
        ),
    )
    .unwrap();
    let from_file = |profile: Option<&str>| {
        let mut env = server.client_env(1);
        env.retain(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"));
        env.push(("HOME".into(), home.path().to_str().unwrap().into()));
        if let Some(p) = profile {
            env.push(("AWS_PROFILE".into(), p.into()));
        }
        env
    };
    let (code, err) = run(
        from_file(Some("chronofs-test")),
        &server.repo("errs"),
        &["snapshots"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(from_file(None), &server.repo("errs"), &["snapshots"]);
    assert_eq!(code, Some(19), "the default profile's keys: {err}");
    let (code, err) = run(
        from_file(Some("absent")),
        &server.repo("errs"),
        &["snapshots"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("absent"),
        "the missing profile is named: {err}"
    );

    // init refuses a prefix that holds a repository.
    let (code, err) = run(server.client_env(1), &server.repo("errs"), &["init"]);
    assert_eq!(code, Some(14), "{err}");
    assert!(err.contains("already exists"), "{err}");

    // The repository is as it was: one snapshot, clean.
    assert_eq!(snapshot_count(&f), 1);
    f.ok(&["check", "--read-data"]);
}

#[test]
fn server_killed_during_a_backup_loses_nothing() {
    let server = Server::start(1);
    let f = Fixture::at(
        Some(&server.repo("kill")),
        server.client_env(2),
        &["--pack-size", "1"],
    );
    fs::write(f.src.join("first"), noise(1, 1_000_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let before = f.ok(&["snapshots", "--json"]);
    for i in 0..40 {
        fs::write(f.src.join(format!("f{i}")), noise(100 + i, 1_500_000)).unwrap();
    }
    let mut child = f
        .cmd(&["backup", f.src_str()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once part of the backup has reached it.
    server.wait_until_stored(1, 8_000_000, &mut child);
    server.kill_node(1);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // With the server gone and two retries, the backup fails and says why.
    assert_eq!(out.status.code(), Some(19), "{err}");
    assert!(err.contains("127.0.0.1"), "names the server: {err}");
    server.start_node(1);
    // Every earlier snapshot is intact, the repository is clean, and a re-run completes.
    let after = f.ok(&["snapshots", "--json"]);
    assert!(after.contains(before.trim().trim_start_matches('[').trim_end_matches(']')));
    f.ok(&["check", "--read-data"]);
    f.ok(&["backup", f.src_str()]);
    f.ok(&["check", "--read-data"]);
    let target = f.path("restored");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&target));
}

#[test]
fn a_backup_and_a_prune_at_once_on_s3_lose_nothing() {
    let server = Server::start(1);
    let f = s3_fixture(&server, "concurrent", &["--pack-size", "1"]);
    for i in 0..6 {
        fs::write(f.src.join(format!("old{i}")), noise(900 + i, 700_000)).unwrap();
    }
    f.ok(&["backup", f.src_str()]);
    fs::remove_file(f.src.join("old0")).unwrap();
    f.ok(&["backup", f.src_str()]);
    for i in 0..20 {
        fs::write(f.src.join(format!("new{i}")), noise(950 + i, 1_000_000)).unwrap();
    }
    // They run at once: neither waits for the other's lock, and nothing the backup needs may
    // vanish.
    let backup = f
        .cmd(&["backup", f.src_str()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let prune = f
        .cmd(&["forget", "--keep-last", "1", "--prune"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for (what, child) in [("backup", backup), ("prune", prune)] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    f.ok(&["check", "--read-data"]);
    let target = f.path("restored");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&target));
}

#[test]
fn prune_beside_a_waiting_backup_on_s3_deletes_nothing_it_may_use() {
    let server = Server::start(1);
    super::prune_beside::in_flight_scenario(&s3_fixture(&server, "in-flight", &[]));
}

#[test]
fn a_backup_stopped_through_a_prune_on_s3_fails_cleanly() {
    let server = Server::start(1);
    super::prune_beside::stopped_scenario(s3_fixture(&server, "stopped", &[]));
}

#[test]
fn soak_on_s3() {
    let server = Server::start(1);
    super::soak::soak(
        s3_fixture(&server, "soak", &["--pack-size", "1"]),
        60,
        "garage",
    );
}

#[test]
fn a_mount_on_s3_survives_the_server_being_down() {
    let server = Server::start(1);
    let f = Fixture::at(
        Some(&server.repo("outage")),
        server.client_env(1),
        &["--pack-size", "1"],
    );
    super::mount_long::outage_scenario(&f, &|| server.kill_node(1), &|| server.start_node(1));
}
