//! A mount that lives for months (issue 23): it keeps serving, without a remount, across a
//! prune that repacks what it reads and rewrites the whole index, across `key passwd` and
//! `key remove` of other keys, and across an object store that goes down and comes back
//! (reads fail with an error meanwhile, never hang, and work again after); and it unmounts
//! while the store is down.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::mount::{Mounted, can_mount, eventually, names};
use super::util::{CHEAP_KDF, Fixture, assert_ok, noise};

/// Every file of `src` reads back through `inside` as it is in `src`.
fn reads_back(src: &Path, inside: &Path) {
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let name = e.file_name();
            assert_eq!(
                fs::read(inside.join(&name)).unwrap(),
                fs::read(e.path()).unwrap(),
                "{}",
                name.to_string_lossy()
            );
        }
    }
}

#[test]
fn a_mount_serves_across_repacks_index_rewrites_and_key_changes() {
    if !can_mount("a_mount_serves_across_repacks_index_rewrites_and_key_changes") {
        return;
    }
    let f = Fixture::with_init(&["--pack-size", "1"]);
    for g in 0..3u64 {
        for i in 0..4u64 {
            fs::write(f.src.join(format!("g{g}-{i}")), noise(g * 10 + i, 300_000)).unwrap();
        }
        f.ok(&["backup", "-q", f.src_str()]);
        std::thread::sleep(Duration::from_millis(1100));
    }
    // Files gone from the latest snapshot leave unused chunks beside used ones in 1 MiB packs.
    for gone in ["g0-1", "g1-2", "g2-0"] {
        fs::remove_file(f.src.join(gone)).unwrap();
    }
    f.ok(&["backup", "-q", f.src_str()]);
    let m = Mounted::new(&f, &[]);
    reads_back(&f.src, &m.src_in(&f, "latest"));
    // Keys change under the running mount.
    let second = f.path("second");
    fs::write(&second, "second passphrase").unwrap();
    let mut add = vec![
        "key",
        "add",
        "--new-password-file",
        second.to_str().unwrap(),
    ];
    add.extend_from_slice(&CHEAP_KDF);
    f.ok(&add);
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
    let as_third = |args: &[&str]| {
        let out = f
            .cmd(args)
            .env("CHRONOFS_PASSWORD", "third passphrase")
            .output()
            .unwrap();
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let keys: serde_json::Value =
        serde_json::from_str(&as_third(&["key", "list", "--json"])).unwrap();
    let other = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] != true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    as_third(&["key", "remove", &other[..8]]);
    // The old snapshots go; the latest one's data is repacked and the index rewritten.
    as_third(&["forget", "--keep-last", "1"]);
    let r: serde_json::Value =
        serde_json::from_str(&as_third(&["prune", "--json", "--max-unused", "0"])).unwrap();
    assert!(r["packs_repacked"].as_u64().unwrap() > 0, "{r}");
    assert!(r["index_files_replaced"].as_u64().unwrap() > 0, "{r}");
    eventually("the forgotten snapshots leave the mount", || {
        names(&m.path)
            .iter()
            .filter(|n| n.starts_with("20"))
            .count()
            == 1
    });
    reads_back(&f.src, &m.src_in(&f, "latest"));
    // A new backup shows up in the same mount.
    fs::write(f.src.join("new"), noise(99, 200_000)).unwrap();
    as_third(&["backup", "-q", f.src_str()]);
    eventually("the new snapshot appears", || {
        m.src_in(&f, "latest").join("new").exists()
    });
    reads_back(&f.src, &m.src_in(&f, "latest"));
}

/// On a Garage server that goes down for a while: reads fail (quickly, with an error), the
/// mount stays, reads work again when it is back, and the mount unmounts while it is down.
pub(super) fn outage_scenario(f: &Fixture, server_down: &dyn Fn(), server_up: &dyn Fn()) {
    if !can_mount("a_mount_on_s3_survives_the_server_being_down") {
        return;
    }
    for i in 0..11u64 {
        fs::write(f.src.join(format!("f{i:02}")), noise(500 + i, 1_000_000)).unwrap();
    }
    f.ok(&["backup", "-q", f.src_str()]);
    // f11 in a pack of its own: the storage reads packs in 4 MiB blocks, and a block read for
    // a file fetched ahead may hold the next files of the same pack.
    fs::write(f.src.join("f11"), noise(511, 1_000_000)).unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    // A small block cache, so that the files not read yet must come from the server.
    let m = Mounted::new(f, &["--cache-size", "4M"]);
    let inside = m.src_in(f, "latest");
    assert_eq!(
        fs::read(inside.join("f00")).unwrap(),
        fs::read(f.src.join("f00")).unwrap()
    );
    server_down();
    let started = Instant::now();
    // Reading f00 fetched the first chunks of the eight files after it ahead of time (and
    // the blocks of the first pack holding them): f11 lies beyond, in another pack.
    let err = fs::read(inside.join("f11")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the read did not hang"
    );
    assert!(inside.join("f11").exists(), "the tree is still there");
    server_up();
    eventually("reads work again", || fs::read(inside.join("f11")).is_ok());
    reads_back(&f.src, &inside);
    // Down again: unmounting does not wait for it.
    server_down();
    let started = Instant::now();
    let out = super::util::bin()
        .arg("umount")
        .arg(&m.path)
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "unmount did not hang"
    );
    server_up();
    drop(m);
}
