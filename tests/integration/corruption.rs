//! A flipped byte in a pack: `check --read-data` names the pack and the files affected, and
//! restore of an affected file fails loudly (exit 11) without leaving wrong bytes.

use std::collections::BTreeSet;
use std::fs;

use super::util::{
    Fixture, damage_largest_pack, flip_byte, noise, pack_files, with_open_file_limit,
};

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

/// The same while the first name's batch is being written: with the open-file limit at 256, a
/// batch holds files of at most 16 directories, so the batch holding `d00/first` is handed to
/// the writer thread once `d15/a` joins it, and the walk meets `d15/z` (the second name) while
/// the writer still reads the first name's 24 MiB. Linking `d15/z` then would leave it behind
/// with partial bytes when the first name's data fails and that name is removed: the second
/// name has to wait for the batch in flight too, then be restored (and fail) on its own.
#[test]
fn damaged_hardlinked_file_in_a_batch_being_written_is_absent_under_every_name() {
    let f = Fixture::new();
    let data = noise(21, 24 << 20);
    // The first name's data alone in the packs of a first backup (the pack to damage).
    let alone = f.path("alone");
    fs::create_dir_all(&alone).unwrap();
    fs::write(alone.join("copy"), &data).unwrap();
    f.ok(&["backup", alone.to_str().unwrap()]);
    let data_pack = pack_files(&f.repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    for d in 0..16 {
        let dir = f.src.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("a"), [d]).unwrap();
    }
    fs::write(f.src.join("d00/first"), &data).unwrap();
    fs::hard_link(f.src.join("d00/first"), f.src.join("d15/z")).unwrap();
    f.ok(&["backup", f.src_str()]);
    flip_byte(&data_pack, 16 + 1000);

    let target = f.path("r");
    let out = with_open_file_limit(
        &f.cmd(&["restore", "latest", "--target", target.to_str().unwrap()]),
        256,
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{stderr}");
    assert!(
        stderr.contains("d00/first") && stderr.contains("d15/z"),
        "{stderr}"
    );
    let root = f.restored_src(&target);
    assert!(!root.join("d00/first").exists());
    assert!(
        !root.join("d15/z").exists(),
        "the second name was linked to data that then failed"
    );
    for d in 0..16u8 {
        assert_eq!(fs::read(root.join(format!("d{d:02}/a"))).unwrap(), [d]);
    }
}
