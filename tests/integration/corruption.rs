//! A flipped byte in a pack: `check --read-data` names the pack and the files affected, and
//! restore of an affected file fails loudly (exit 11) without leaving wrong bytes.

use std::collections::BTreeSet;
use std::fs;

use super::util::{Fixture, damage_largest_pack, flip_byte, noise, pack_files};

#[test]
fn flipped_byte_is_named_and_never_restored() {
    let f = Fixture::new();
    fs::write(f.src.join("victim.bin"), noise(7, 600_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let first_packs: BTreeSet<_> = pack_files(&f.repo).into_iter().collect();
    fs::write(f.src.join("other.txt"), b"unaffected").unwrap();
    f.ok(&["backup", f.src_str()]);
    f.ok(&["check", "--read-data"]);

    // The data pack of the first backup is the larger of its two packs (the other holds trees).
    let data_pack = first_packs
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    flip_byte(&data_pack, 16 + 1000);

    // Structure still looks fine; reading the data finds the damage and names it.
    f.ok(&["check"]);
    let out = f.run(&["check", "--read-data"]);
    assert_eq!(out.status.code(), Some(11));
    let report = String::from_utf8_lossy(&out.stdout);
    let pack_name = data_pack.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        report.contains(&pack_name),
        "report does not name the pack:\n{report}"
    );
    let damaged: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("damaged: "))
        .collect();
    assert_eq!(
        damaged.len(),
        2,
        "both snapshots' victim.bin should be named:\n{report}"
    );
    assert!(
        damaged.iter().all(|l| l.ends_with("/victim.bin")),
        "{report}"
    );

    // Restore: the damaged file fails loudly and is absent; the rest is restored.
    let target = f.path("r");
    let out = f.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(11));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("victim.bin") && stderr.contains("damaged"),
        "{stderr}"
    );
    let root = f.restored_src(&target);
    assert!(
        !root.join("victim.bin").exists(),
        "a damaged file must not be left behind"
    );
    assert_eq!(fs::read(root.join("other.txt")).unwrap(), b"unaffected");
}

/// A damaged file with two names: the restore writes the first name's data in a batch and
/// links the second after it; when the data fails, neither name may be left behind, and both
/// are reported.
#[test]
fn damaged_hardlinked_file_is_absent_under_every_name() {
    let f = Fixture::new();
    fs::create_dir_all(f.src.join("a")).unwrap();
    fs::create_dir_all(f.src.join("b")).unwrap();
    fs::write(f.src.join("a/victim"), noise(9, 600_000)).unwrap();
    fs::hard_link(f.src.join("a/victim"), f.src.join("b/second-name")).unwrap();
    f.ok(&["backup", f.src_str()]);
    damage_largest_pack(&f.repo);

    let target = f.path("r");
    let out = f.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(11));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a/victim") && stderr.contains("b/second-name"),
        "{stderr}"
    );
    let root = f.restored_src(&target);
    assert!(!root.join("a/victim").exists());
    assert!(!root.join("b/second-name").exists());
    assert!(root.join("b").is_dir());
}
