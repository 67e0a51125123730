//! Many hosts backing up into one repository at once (issue 25): sixteen backup processes,
//! each posing as its own host with its own cache, back up a tree they share plus files of
//! their own at the same moment, twice; every snapshot restores exactly, the second round
//! stores only what is new (the shared data is found in the index other hosts wrote), and the
//! repository checks. On a local directory and on a three-node Garage cluster.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};

use super::s3::{Server, s3_fixture};
use super::util::{Fixture, assert_same_tree, noise};

const HOSTS: usize = 16;
const SHARED_FILES: u64 = 6;
const SHARED_LEN: usize = 150_000;
const OWN_LEN: usize = 60_000;

fn host_dir(f: &Fixture, i: usize) -> PathBuf {
    f.path(&format!("host{i}"))
}

/// Starts every host's backup at once; waits for all; each must succeed.
fn round(f: &Fixture) {
    let children: Vec<(usize, Child)> = (0..HOSTS)
        .map(|i| {
            let child = f
                .cmd(&[
                    "backup",
                    "-q",
                    "--host",
                    &format!("h{i}"),
                    host_dir(f, i).to_str().unwrap(),
                ])
                .env("CHRONOFS_CACHE_DIR", f.path(&format!("cache{i}")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, child)
        })
        .collect();
    for (i, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "host {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn stored_bytes(f: &Fixture) -> u64 {
    let st: serde_json::Value = serde_json::from_str(&f.ok(&["status", "--json"])).unwrap();
    st["repository_bytes"].as_u64().unwrap()
}

fn fleet(f: &Fixture, label: &str) {
    for i in 0..HOSTS {
        let d = host_dir(f, i);
        fs::create_dir_all(d.join("os")).unwrap();
        for s in 0..SHARED_FILES {
            fs::write(d.join(format!("os/lib{s}")), noise(100 + s, SHARED_LEN)).unwrap();
        }
        fs::write(d.join("own"), noise(1000 + i as u64, OWN_LEN)).unwrap();
    }
    round(f);
    let first = stored_bytes(f);
    let distinct = SHARED_FILES as usize * SHARED_LEN + HOSTS * OWN_LEN;
    // Every host changes its own file; the shared data is in the index by now.
    for i in 0..HOSTS {
        fs::write(host_dir(f, i).join("own"), noise(2000 + i as u64, OWN_LEN)).unwrap();
    }
    round(f);
    let second = stored_bytes(f) - first;
    eprintln!(
        "fleet {label}: {HOSTS} hosts, distinct data {distinct} B; first round stored {first} B \
         ({:.2}x the distinct data, {:.1}x less than without sharing), second round {second} B \
         for {} B of new data",
        first as f64 / distinct as f64,
        (HOSTS * (SHARED_FILES as usize * SHARED_LEN + OWN_LEN)) as f64 / first as f64,
        HOSTS * OWN_LEN
    );
    // The second round stores each host's new file and its trees, never the shared files
    // again (they alone would be 16 x 900 KB).
    assert!(
        second < (HOSTS * (OWN_LEN + 40_000)) as u64,
        "the second round stored {second} B"
    );
    assert!(first >= distinct as u64, "{first} B stored of {distinct} B");
    // Hosts that start at once cannot see each other's data in flight, so the first round
    // stores the shared files up to once per host; a prune keeps one copy of each blob and
    // reclaims the others.
    f.ok(&["prune", "--max-unused", "0"]);
    f.ok(&["prune", "--max-unused", "0"]);
    let pruned = stored_bytes(f);
    let all_new = distinct + HOSTS * OWN_LEN;
    eprintln!(
        "fleet {label}: after prune {pruned} B ({:.2}x the {all_new} B of distinct data of both \
         rounds)",
        pruned as f64 / all_new as f64
    );
    assert!(
        pruned < (all_new + HOSTS * 2 * 40_000) as u64,
        "after prune {pruned} B for {all_new} B of distinct data"
    );
    // Every host's newest snapshot restores its directory exactly.
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    assert_eq!(list.len(), 2 * HOSTS);
    for i in 0..HOSTS {
        let host = format!("h{i}");
        let newest = list
            .iter()
            .filter(|s| s["snapshot"]["hostname"] == host.as_str())
            .max_by_key(|s| s["snapshot"]["time_ns"].as_i64())
            .unwrap();
        let target = f.path(&format!("restored{i}"));
        f.ok(&[
            "restore",
            "--target",
            target.to_str().unwrap(),
            newest["id"].as_str().unwrap(),
        ]);
        let d = host_dir(f, i);
        assert_same_tree(&d, &target.join(d.strip_prefix("/").unwrap()));
    }
    let out = f.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors"), "{out}");
}

#[test]
fn sixteen_hosts_back_up_into_one_directory_at_once() {
    fleet(&Fixture::with_init(&["--encryption", "none"]), "directory");
}

#[test]
fn sixteen_hosts_back_up_into_one_garage_cluster_at_once() {
    let server = Server::start(3);
    let f = s3_fixture(&server, "fleet", &["--encryption", "none"]);
    fleet(&f, "three-node Garage");
}
