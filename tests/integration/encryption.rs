//! Encrypted repositories (format version 2): nothing readable in the files, ids keyed per
//! repository, every damaged byte noticed, clear errors for keys, key management, copies
//! between keys. (Every other test module runs on encrypted repositories too: the fixture
//! makes one.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::util::assert_ok;
use super::util::{CHEAP_KDF, Fixture, assert_same_tree, bin, noise, test_tmp};

/// Every regular file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.insert(e.path(), fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A source with a marker in a file's content, in a file name and in a directory name.
fn marked(f: &Fixture) {
    fs::create_dir(f.src.join("dir-MARKERNAME")).unwrap();
    let mut content = b"MARKER-CONTENT-0123456789 ".repeat(2000);
    content.extend_from_slice(&noise(1, 300_000));
    fs::write(f.src.join("dir-MARKERNAME/file-MARKERNAME.txt"), &content).unwrap();
    fs::write(f.src.join("small"), b"MARKER-CONTENT-0123456789").unwrap();
}

#[test]
fn no_marker_reaches_any_repository_file_but_a_plaintext_one_shows_it() {
    let f = Fixture::new();
    marked(&f);
    f.ok(&["backup", f.src_str(), "--tag", "MARKERTAG"]);
    f.ok(&["backup", "--stdin", "--stdin-name", "MARKERNAME.sql"]);
    for (path, bytes) in files(&f.repo) {
        for marker in [
            &b"MARKER-CONTENT"[..],
            b"MARKERNAME",
            b"MARKERTAG",
            f.src_str().as_bytes(),
        ] {
            assert!(
                !contains(&bytes, marker),
                "{} holds {:?}",
                path.display(),
                String::from_utf8_lossy(marker)
            );
        }
    }
    // The same backup without encryption shows them: the test can see a marker when it is
    // there.
    let plain = Fixture::with_init(&["--encryption", "none"]);
    marked(&plain);
    plain.ok(&["backup", plain.src_str()]);
    let all: Vec<u8> = files(&plain.repo).into_values().flatten().collect();
    assert!(contains(&all, b"MARKERNAME"));
    assert!(contains(&all, b"MARKER-CONTENT"));
}

/// Blob ids of a repository, from its index files.
fn blob_ids(f: &Fixture) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for e in fs::read_dir(f.repo.join("index")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let v: serde_json::Value = serde_json::from_str(&f.ok(&["cat", "index", &name])).unwrap();
        for p in v["packs"].as_array().unwrap() {
            for b in p["blobs"].as_array().unwrap() {
                ids.insert(b["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

#[test]
fn the_same_file_gets_other_ids_and_cut_points_in_another_repository() {
    let a = Fixture::with_init(&[
        "--chunk-min",
        "4096",
        "--chunk-avg",
        "16384",
        "--chunk-max",
        "65536",
    ]);
    let b = Fixture::with_init(&[
        "--chunk-min",
        "4096",
        "--chunk-avg",
        "16384",
        "--chunk-max",
        "65536",
    ]);
    let data = noise(9, 2_000_000);
    for f in [&a, &b] {
        fs::write(f.src.join("same"), &data).unwrap();
        f.ok(&["backup", f.src_str()]);
    }
    let (ia, ib) = (blob_ids(&a), blob_ids(&b));
    assert!(ia.len() > 20 && ib.len() > 20);
    assert!(ia.is_disjoint(&ib), "ids are keyed per repository");
    // Cut points depend on the key too: the chunk lengths differ.
    let lengths = |f: &Fixture| -> Vec<u64> {
        let ls: serde_json::Value =
            serde_json::from_str(&f.ok(&["cat", "snapshot", "latest"])).unwrap();
        let mut tree = ls["snapshot"]["root"].as_str().unwrap().to_string();
        // Walk down the source path to the file.
        for part in f.src.components().skip(1) {
            let t: serde_json::Value =
                serde_json::from_str(&f.ok(&["cat", "tree", &tree])).unwrap();
            let name = part.as_os_str().to_string_lossy().to_string();
            let node = t["entries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["name"] == serde_json::json!(name))
                .unwrap()
                .clone();
            tree = node["kind"]["Dir"]["subtree"].as_str().unwrap().to_string();
        }
        let t: serde_json::Value = serde_json::from_str(&f.ok(&["cat", "tree", &tree])).unwrap();
        t["entries"][0]["kind"]["File"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Data"]["len"].as_u64().unwrap())
            .collect()
    };
    let (la, lb) = (lengths(&a), lengths(&b));
    assert_eq!(la.iter().sum::<u64>(), lb.iter().sum::<u64>());
    assert_ne!(la, lb, "the chunker is seeded from the key");
}

/// What a restore of the latest snapshot gives: Ok(files) or the exit code.
fn restore(f: &Fixture, target: &Path) -> (i32, String) {
    let _ = fs::remove_dir_all(target);
    let out = f.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_flipped_byte_in_any_object_is_named_and_never_gives_wrong_bytes() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(2, 200_000)).unwrap();
    fs::write(f.src.join("b"), b"small file").unwrap();
    f.ok(&["backup", f.src_str()]);
    let target = f.path("target");
    let originals = files(&f.repo);
    let mut cases = 0;
    for (path, bytes) in &originals {
        let rel = path
            .strip_prefix(&f.repo)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel == "config" || rel.starts_with("keys/") {
            continue; // below
        }
        for at in [
            0,
            20,
            60,
            bytes.len() / 2,
            bytes.len() - 20,
            bytes.len() - 1,
        ] {
            let at = at.min(bytes.len() - 1);
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            fs::write(path, &bad).unwrap();
            let check = f.run(&["check", "--read-data"]);
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(check.status.code(), Some(11), "{rel} at {at}: {report}");
            assert!(
                report.contains(&name[..8]),
                "{rel} at {at}: not named: {report}"
            );
            let (code, err) = restore(&f, &target);
            if code == 0 {
                assert_same_tree(&f.src, &f.restored_src(&target));
            } else {
                assert!(code == 11 || code == 1, "{rel} at {at}: exit {code}: {err}");
                // Whatever was restored is right.
                let restored = f.restored_src(&target);
                for (name, want) in [
                    ("a", fs::read(f.src.join("a")).unwrap()),
                    ("b", b"small file".to_vec()),
                ] {
                    if let Ok(got) = fs::read(restored.join(name)) {
                        assert_eq!(got, want, "{rel} at {at}: {name} restored wrong");
                    }
                }
            }
            fs::write(path, bytes).unwrap();
            cases += 1;
        }
    }
    assert!(cases >= 24, "two packs, an index and a snapshot: {cases}");
    f.ok(&["check", "--read-data"]);

    // A damaged key file: a clear key error, nothing else.
    let key = fs::read_dir(f.repo.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = fs::read(&key).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    fs::write(&key, &bad).unwrap();
    let err = f.fails(&["snapshots"], 17);
    assert!(err.contains("damaged"), "{err}");
    fs::write(&key, &good).unwrap();
    // A damaged config.
    let config = f.repo.join("config");
    let good = fs::read(&config).unwrap();
    let mut bad = good.clone();
    bad[60] ^= 1;
    fs::write(&config, &bad).unwrap();
    f.fails(&["snapshots"], 11);
    fs::write(&config, &good).unwrap();
    f.ok(&["snapshots"]);
}

#[test]
fn key_errors_are_clear_and_write_nothing() {
    let f = Fixture::new();
    fs::write(f.src.join("x"), b"x").unwrap();
    f.ok(&["backup", f.src_str()]);
    let before = files(&f.repo);
    let with = |pass: Option<&str>, args: &[&str]| {
        let mut c = f.cmd(args);
        match pass {
            Some(p) => c.env("CHRONOFS_PASSWORD", p),
            None => c.env_remove("CHRONOFS_PASSWORD"),
        };
        c.output().unwrap()
    };
    let out = with(Some("wrong"), &["backup", f.src_str()]);
    assert_eq!(out.status.code(), Some(17));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // No passphrase and no terminal: say how to give one.
    let out = with(None, &["snapshots"]);
    assert_eq!(out.status.code(), Some(17));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHRONOFS_PASSWORD"));
    // A passphrase is never an argument.
    let out = with(None, &["--password", "x", "snapshots"]);
    assert_eq!(out.status.code(), Some(2));
    // From a file (one trailing newline ignored) and from a command.
    let pw = f.path("pw");
    fs::write(&pw, format!("{}\n", super::util::PASSWORD)).unwrap();
    let out = with(
        None,
        &["--password-file", pw.to_str().unwrap(), "snapshots"],
    );
    assert_ok(&out);
    let cmd = format!("cat '{}'", pw.display());
    let out = with(None, &["--password-command", &cmd, "snapshots"]);
    assert!(out.status.success());
    let out = with(None, &["--password-command", "exit 3", "snapshots"]);
    assert_eq!(out.status.code(), Some(17));
    assert_eq!(files(&f.repo), before, "nothing was written");

    // Truncated and missing key files.
    let key = fs::read_dir(f.repo.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = fs::read(&key).unwrap();
    fs::write(&key, &good[..good.len() / 2]).unwrap();
    let err = f.fails(&["ls", "latest"], 17);
    assert!(err.contains("damaged") && err.contains("keys/"), "{err}");
    fs::remove_file(&key).unwrap();
    let err = f.fails(&["backup", f.src_str()], 17);
    assert!(err.contains("no key file"), "{err}");
    fs::write(&key, &good).unwrap();
    let mut after = files(&f.repo);
    after.retain(|p, _| !p.starts_with(f.repo.join("locks")));
    assert_eq!(after, before, "nothing was written");
}

#[test]
fn keys_add_passwd_remove_and_default_cost() {
    let f = Fixture::new();
    fs::write(f.src.join("x"), b"data").unwrap();
    f.ok(&["backup", f.src_str()]);
    let second = f.path("second");
    fs::write(&second, "second passphrase\n").unwrap();
    let mut add = vec![
        "key",
        "add",
        "--new-password-file",
        second.to_str().unwrap(),
    ];
    add.extend_from_slice(&CHEAP_KDF);
    f.ok(&add);
    let list: serde_json::Value = serde_json::from_str(&f.ok(&["key", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // Who made each key: shown to a key holder, sealed in the key files.
    let host = chronofs::sys::hostname();
    let user = chronofs::sys::user_name(chronofs::sys::euid()).unwrap();
    for k in list.as_array().unwrap() {
        assert_eq!(k["hostname"], host.as_str(), "{k}");
        assert_eq!(k["username"], user.as_str(), "{k}");
    }
    for entry in fs::read_dir(f.repo.join("keys")).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        for name in [&host, &user].into_iter().filter(|n| n.len() >= 4) {
            assert!(
                !contains(&bytes, name.as_bytes()),
                "{name} is in a key file in the clear"
            );
        }
    }
    let as_second = |args: &[&str]| {
        f.cmd(args)
            .env("CHRONOFS_PASSWORD", "second passphrase")
            .output()
            .unwrap()
    };
    assert!(as_second(&["ls", "latest"]).status.success());
    // The key in use cannot be removed; another one can, but not the last full key.
    let ids: Vec<(String, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap().to_string(), k["current"] == true))
        .collect();
    let (current, _) = ids.iter().find(|(_, c)| *c).unwrap();
    let (other, _) = ids.iter().find(|(_, c)| !*c).unwrap();
    f.fails(&["key", "remove", &current[..8]], 14);
    // Change the first passphrase, then the old one no longer opens.
    let third = f.path("third");
    fs::write(&third, "third passphrase").unwrap();
    let mut passwd = vec![
        "key",
        "passwd",
        "--new-password-file",
        third.to_str().unwrap(),
    ];
    passwd.extend_from_slice(&CHEAP_KDF);
    f.ok(&passwd);
    assert_eq!(f.run(&["snapshots"]).status.code(), Some(17));
    assert!(as_second(&["snapshots"]).status.success());
    let out = f
        .cmd(&["key", "remove", &other[..8]])
        .env("CHRONOFS_PASSWORD", "third passphrase")
        .output()
        .unwrap();
    assert_ok(&out);
    let out = as_second(&["snapshots"]);
    assert_eq!(out.status.code(), Some(17));
    // Now one full key is left: it cannot be removed (and it is the one in use).
    let list = f
        .cmd(&["key", "list", "--json"])
        .env("CHRONOFS_PASSWORD", "third passphrase")
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Without --kdf-*, a key costs at least 64 MiB to guess with.
    let dir = tempfile::tempdir_in(test_tmp()).unwrap();
    let out = bin()
        .arg("--repo")
        .arg(dir.path().join("r"))
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = bin()
        .arg("--repo")
        .arg(dir.path().join("r"))
        .args(["key", "list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list[0]["kdf"]["memory_kib"].as_u64().unwrap() >= 65536,
        "{list}"
    );
}

#[test]
fn copies_between_keys_and_from_plaintext_restore_exactly() {
    let plain = Fixture::with_init(&["--encryption", "none"]);
    fs::create_dir(plain.src.join("d")).unwrap();
    fs::write(plain.src.join("d/f"), noise(4, 500_000)).unwrap();
    fs::write(plain.src.join("g"), b"g").unwrap();
    plain.ok(&["backup", plain.src_str()]);
    fs::write(plain.src.join("g"), b"changed").unwrap();
    plain.ok(&["backup", plain.src_str()]);

    // Plaintext to encrypted: every id is new, the content is the same.
    let enc = plain.path("enc");
    let out = bin()
        .args(["--repo", enc.to_str().unwrap(), "init"])
        .args(CHEAP_KDF)
        .output()
        .unwrap();
    assert!(out.status.success());
    let r: serde_json::Value =
        serde_json::from_str(&plain.ok(&["copy", "--to", enc.to_str().unwrap(), "--json"]))
            .unwrap();
    assert_eq!(r["snapshots_copied"], 2);
    let r: serde_json::Value =
        serde_json::from_str(&plain.ok(&["copy", "--to", enc.to_str().unwrap(), "--json"]))
            .unwrap();
    assert_eq!(
        (
            r["snapshots_copied"].as_u64(),
            r["snapshots_present"].as_u64()
        ),
        (Some(0), Some(2))
    );
    let e = Fixture {
        dir: tempfile::tempdir_in(test_tmp()).unwrap(),
        repo: enc.clone(),
        src: plain.src.clone(),
        env: Vec::new(),
    };
    e.ok(&["check", "--read-data"]);
    let t = e.path("t");
    e.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_same_tree(&plain.src, &e.restored_src(&t));

    // A repository made with --copy-settings-from shares ids: copies keep root trees and
    // deduplicate against what was there.
    let twin = plain.path("twin");
    let out = bin()
        .args([
            "--repo",
            twin.to_str().unwrap(),
            "init",
            "--copy-settings-from",
            enc.to_str().unwrap(),
        ])
        .args(CHEAP_KDF)
        .output()
        .unwrap();
    assert_ok(&out);
    let r: serde_json::Value =
        serde_json::from_str(&e.ok(&["copy", "--to", twin.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(r["snapshots_copied"], 2);
    let tw = Fixture {
        dir: tempfile::tempdir_in(test_tmp()).unwrap(),
        repo: twin.clone(),
        src: plain.src.clone(),
        env: Vec::new(),
    };
    let root = |f: &Fixture| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&f.ok(&["cat", "snapshot", "latest"])).unwrap();
        v["snapshot"]["root"].clone()
    };
    assert_eq!(root(&e), root(&tw));
    assert_ne!(
        fs::read(e.repo.join("config")).unwrap(),
        fs::read(tw.repo.join("config")).unwrap()
    );
    // A backup of the same source into the twin finds every chunk there already.
    fs::write(plain.src.join("new"), b"new").unwrap();
    tw.ok(&["backup", tw.src_str()]);
    let v: serde_json::Value =
        serde_json::from_str(&tw.ok(&["cat", "snapshot", "latest"])).unwrap();
    assert_eq!(v["snapshot"]["summary"]["chunks_new"], 1, "{v}");
    tw.ok(&["check", "--read-data"]);
    let t2 = tw.path("t2");
    tw.ok(&["restore", "latest", "--target", t2.to_str().unwrap()]);
    assert_same_tree(&plain.src, &tw.restored_src(&t2));
}

#[test]
fn a_backup_only_key_adds_dedups_and_reads_nothing() {
    let f = Fixture::new();
    fs::create_dir(f.src.join("d")).unwrap();
    fs::write(f.src.join("d/big"), noise(5, 3_000_000)).unwrap();
    fs::write(f.src.join("small"), b"small").unwrap();
    f.ok(&["backup", f.src_str()]);
    let bo = f.path("bo");
    fs::write(&bo, "backup only").unwrap();
    let mut add = vec![
        "key",
        "add",
        "--backup-only",
        "--new-password-file",
        bo.to_str().unwrap(),
    ];
    add.extend_from_slice(&CHEAP_KDF);
    f.ok(&add);
    let cache = f.path("cache");
    let host = |args: &[&str]| {
        f.cmd(args)
            .env("CHRONOFS_PASSWORD", "backup only")
            .env("CHRONOFS_TO_PASSWORD", super::util::PASSWORD)
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .unwrap()
    };
    let summary = |out: &std::process::Output| -> serde_json::Value {
        assert_ok(out);
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .to_string();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()["summary"].clone()
    };
    // The first backup with the key cannot see the full key's snapshot (it may not read it),
    // so it reads every file, but stores no chunk again: the index is readable.
    let s = summary(&host(&["backup", "--json", f.src_str()]));
    assert_eq!(s["chunks_new"], 0, "{s}");
    // The next one finds its own snapshot in its cache: nothing is read, nothing added.
    let s = summary(&host(&["backup", "--json", f.src_str()]));
    assert_eq!(
        (s["files_unchanged"].as_u64(), s["bytes_read"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    assert_eq!(s["bytes_added"], 0, "{s}");
    // A change is found and stored.
    fs::write(f.src.join("small"), b"changed by the host").unwrap();
    fs::write(f.src.join("new"), noise(6, 100_000)).unwrap();
    let s = summary(&host(&["backup", "--json", f.src_str()]));
    assert_eq!(
        (
            s["files_new"].as_u64(),
            s["files_changed"].as_u64(),
            s["files_unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{s}"
    );
    // Stdin backups work too.
    let mut c = f.cmd(&["backup", "--stdin", "--stdin-name", "dump.sql"]);
    c.env("CHRONOFS_PASSWORD", "backup only")
        .env("XDG_CACHE_HOME", &cache)
        .stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"create table t;").unwrap();
    assert!(child.wait().unwrap().success());

    // Nothing can be read with it, its own snapshots included: exit 18, a clear message.
    let target = f.path("t");
    let mnt = f.path("mnt");
    fs::create_dir(&mnt).unwrap();
    let elsewhere = Fixture::new();
    let before = super::util::repo_state(&f.repo);
    let elsewhere_before = super::util::repo_state(&elsewhere.repo);
    let file = f.src.join("small");
    let file = file.to_str().unwrap();
    for args in [
        vec!["prune"],
        vec!["forget", "--keep-last", "1", "--prune"],
        vec!["copy", "--to", elsewhere.repo.to_str().unwrap()],
        vec!["diff", "latest", "latest"],
        vec!["versions", file],
        vec!["find", "small"],
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
        vec!["cat", "snapshot", "latest"],
        vec!["check"],
        vec!["forget", "--keep-last", "1"],
        vec!["verify", "latest"],
        vec!["mount", "--foreground", mnt.to_str().unwrap()],
    ] {
        let out = host(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(18), "{args:?}: {err}");
        assert!(err.contains("backup-only"), "{args:?}: {err}");
    }
    // `status` keeps to its monitoring codes (0 ok, 1 late, 2 unreadable) and says why.
    let status = host(&["status"]);
    let err = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(2), "{err}");
    assert!(err.contains("backup-only"), "{err}");
    assert!(!target.exists());
    // Refused before touching anything, here or at the copy's destination.
    assert_eq!(super::util::repo_state(&f.repo), before);
    assert_eq!(super::util::repo_state(&elsewhere.repo), elsewhere_before);
    // Its cache holds only what it wrote (no chunk, trees only) and its local index (what the
    // index files say: ids and places, no content).
    let cached = files(&cache);
    assert!(!cached.is_empty());
    assert!(cached.keys().all(|p| {
        let s = p.to_string_lossy();
        let name = p.file_name().unwrap().to_string_lossy();
        s.contains("/trees/")
            || s.contains("/snapshots/")
            || (s.contains("/index/")
                && (name.starts_with("run-") || name == "manifest" || name == "lock"))
    }));
    // A backup-only key cannot make a full one.
    let mut add_full = vec!["key", "add", "--new-password-file", bo.to_str().unwrap()];
    add_full.extend_from_slice(&CHEAP_KDF);
    assert_eq!(host(&add_full).status.code(), Some(18));

    // The full key reads everything the host wrote, byte for byte with its metadata.
    let list = f.ok(&["snapshots", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 5);
    let latest_dir = list
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s["snapshot"]["stdin"] == false)
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    f.ok(&["restore", &latest_dir, "--target", target.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&target));
    f.ok(&["check", "--read-data"]);
    let t2 = f.path("t2");
    f.ok(&[
        "restore",
        "latest:/dump.sql",
        "--target",
        t2.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(t2.join("dump.sql")).unwrap(), b"create table t;");
}

/// A copy into a repository with a passphrase of its own takes it from `--to-password-file`,
/// `--to-password-command` or `CHRONOFS_TO_PASSWORD`; without one (the source's is tried) or
/// with a wrong one it is exit 17 and the destination is left as it was.
#[test]
fn copy_takes_the_destinations_passphrase_three_ways() {
    const OTHER: &str = "the other passphrase";
    let f = Fixture::new();
    let dest = Fixture::attach(None, Vec::new());
    let dest_cmd = |args: &[&str]| {
        let out = dest
            .cmd(args)
            .env("CHRONOFS_PASSWORD", OTHER)
            .output()
            .unwrap();
        assert_ok(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    dest_cmd(&["init"]);
    let to = dest.repo.to_str().unwrap();
    let untouched = super::util::repo_state(&dest.repo);
    fs::write(f.src.join("a"), noise(11, 100_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let copy = |how: &dyn Fn(&mut std::process::Command)| {
        let mut c = f.cmd(&["copy", "--to", to]);
        how(&mut c);
        c.output().unwrap()
    };
    for wrong in [
        copy(&|_| {}),
        copy(&|c| {
            c.env("CHRONOFS_TO_PASSWORD", "wrong");
        }),
    ] {
        let err = String::from_utf8_lossy(&wrong.stderr);
        assert_eq!(wrong.status.code(), Some(17), "{err}");
        assert_eq!(super::util::repo_state(&dest.repo), untouched);
    }
    let pass_file = f.path("dest-pass");
    fs::write(&pass_file, format!("{OTHER}\n")).unwrap();
    let ways: [&dyn Fn(&mut std::process::Command); 3] = [
        &|c| {
            c.env("CHRONOFS_TO_PASSWORD", OTHER);
        },
        &|c| {
            c.arg("--to-password-file").arg(&pass_file);
        },
        &|c| {
            c.arg("--to-password-command")
                .arg(format!("printf '%s' '{OTHER}'"));
        },
    ];
    for (n, way) in (1..).zip(ways) {
        // A new snapshot each time: each way must have opened the destination to copy it.
        fs::write(f.src.join("n"), format!("{n}")).unwrap();
        f.ok(&["backup", f.src_str()]);
        assert_ok(&copy(way));
        let listed = dest_cmd(&["snapshots", "--json"]);
        let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed.as_array().unwrap().len(), n + 1, "way {n}");
    }
    let target = dest.path("t");
    dest_cmd(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&target));
}

/// Someone who can write the repository swaps its config for a plaintext one (valid, from
/// another repository) to make the next backup write in the clear: every command refuses with
/// exit 11 and says why, and nothing is written.
#[test]
fn a_config_swapped_for_a_plaintext_one_is_refused() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(12, 50_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let plain = Fixture::with_init(&["--encryption", "none"]);
    fs::copy(plain.repo.join("config"), f.repo.join("config")).unwrap();
    let before = super::util::repo_state(&f.repo);
    let target = f.path("t");
    let mnt = f.path("mnt");
    fs::create_dir(&mnt).unwrap();
    for args in [
        vec!["backup", f.src_str()],
        vec!["snapshots"],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
        vec!["check"],
        vec!["mount", mnt.to_str().unwrap()],
    ] {
        let err = f.fails(&args, 11);
        assert!(
            err.contains("not encrypted, but keys/ holds key files"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(super::util::repo_state(&f.repo), before);
    assert!(!target.exists());
    assert_eq!(fs::read_dir(&mnt).unwrap().count(), 0, "nothing mounted");
}
