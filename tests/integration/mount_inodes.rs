//! The mount's inode table under a limit: past it, the kernel is asked to drop the entries
//! looked up least recently, and every file still reads back exactly, open ones included.

use std::fs;
use std::io::Read;

use super::mount::{Mounted, can_mount, eventually};
use super::util::{Fixture, assert_same_tree};

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
    let inside = m.src_in(&f, "latest");
    let mut open = fs::File::open(inside.join("d00/f24")).unwrap();

    assert_same_tree(&f.src, &inside);
    eventually("the mount asks the kernel to drop entries", || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains("asking the kernel to drop"))
    });
    // Looked up again after the kernel dropped them: the same entries, the same bytes.
    assert_same_tree(&f.src, &inside);
    let mut kept = String::new();
    open.read_to_string(&mut kept).unwrap();
    assert_eq!(kept, "0/24\n".repeat(25), "a file open across the trimming");
}
