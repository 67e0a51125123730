//! The mount's inode table under a limit: past it, the kernel is asked to drop the entries
//! looked up least recently, the table (which `df -i` shows against its limit) comes back
//! under the limit, and every file still reads back exactly, open ones included.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use super::mount::{Mounted, can_mount, eventually};
use super::util::{Fixture, assert_same_tree};

/// The mount's inode limit and how many inodes it holds, as `stat -f` (statfs) reports them.
fn inodes(mnt: &Path) -> (u64, u64) {
    let out = Command::new("stat")
        .args(["-f", "-c", "%c %d"])
        .arg(mnt)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (v[0], v[0] - v[1])
}

#[test]
fn past_the_inode_limit_old_entries_are_dropped_and_everything_still_reads_back() {
    if !can_mount("past_the_inode_limit_old_entries_are_dropped_and_everything_still_reads_back") {
        return;
    }
    let f = Fixture::new();
    for d in 0..40 {
        let dir = f.src.join(format!("d{d:02}"));
        fs::create_dir(&dir).unwrap();
        for i in 0..25 {
            fs::write(
                dir.join(format!("f{i:02}")),
                format!("{d}/{i}\n").repeat(i + 1),
            )
            .unwrap();
        }
    }
    f.ok(&["backup", f.src_str()]);
    let log = f.path("mount.log");
    let m = Mounted::new(&f, &["--max-inodes", "300", "--log", log.to_str().unwrap()]);
    let (limit, before) = inodes(&m.path);
    assert_eq!(limit, 300);
    let limit_or_used = |mnt: &Path| {
        let (files, used) = inodes(mnt);
        assert!(files == limit || used == files, "{files} {used}");
        used
    };
    assert!(before < 50, "{before} inodes before any walk");
    let inside = m.src_in(&f, "latest");
    let mut open = fs::File::open(inside.join("d00/f24")).unwrap();

    // 1,040 files and 40 directories: the table holds at most the limit once the kernel has
    // dropped what it was asked to (a table that never shrinks would hold all of them).
    for round in 0..2 {
        assert_same_tree(&f.src, &inside);
        eventually("the inode table comes back under its limit", || {
            limit_or_used(&m.path) <= limit
        });
        let said = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            said.contains("asking the kernel to drop"),
            "round {round}: {said}"
        );
    }
    let mut kept = String::new();
    open.read_to_string(&mut kept).unwrap();
    assert_eq!(kept, "0/24\n".repeat(25), "a file open across the trimming");
}

#[test]
fn a_root_of_more_snapshots_than_the_inode_limit_lists_and_is_trimmed() {
    if !can_mount("a_root_of_more_snapshots_than_the_inode_limit_lists_and_is_trimmed") {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    f.ok(&["backup", f.src_str()]);
    // 600 snapshot records (copies of the first, a second apart), written through the library.
    super::util::copies_of_first_snapshot(&f.repo, 600, |_| None);
    let log = f.path("mount.log");
    let m = Mounted::new(&f, &["--max-inodes", "300", "--log", log.to_str().unwrap()]);
    // Look every dated directory up: 600 inodes past a limit of 300. Only dated directories
    // can be dropped here; the mount used to leave them, stay over its limit, and scan its
    // whole table again at every lookup.
    let mut dated = 0;
    for e in fs::read_dir(&m.path).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("20") {
            fs::metadata(e.path()).unwrap();
            dated += 1;
        }
    }
    assert_eq!(dated, 600);
    eventually("the inode table comes back under its limit", || {
        inodes(&m.path).1 <= 300
    });
    let said = fs::read_to_string(&log).unwrap_or_default();
    assert!(said.contains("asking the kernel to drop"), "{said}");
    // Dropped entries come back on the next lookup.
    assert_same_tree(&f.src, &m.src_in(&f, "latest"));
}
