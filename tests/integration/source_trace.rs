//! The source as it is: trees deeper than `PATH_MAX` back up and restore exactly (walked by
//! file descriptor), and a backup leaves the source's access times alone, so the next
//! unchanged backup stores nothing new.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chronofs::dirfd::DirFd;

use super::util::{Fixture, dir_bytes, noise, sh};

const LEVELS: usize = 20;

fn long_name(level: usize) -> OsString {
    OsString::from(format!("{level:02}-{}", "n".repeat(247)))
}

/// Builds `LEVELS` directories of 250-byte names under `root`, with a file, a symlink, a
/// hardlink and an xattr at the bottom; returns the logical path of the deepest directory.
fn build_deep(root: &Path) -> std::path::PathBuf {
    let mut dir = DirFd::open(root).unwrap();
    for level in 0..LEVELS {
        dir.create_dir(&long_name(level), 0o750).unwrap();
        dir = dir.open_dir(&long_name(level)).unwrap();
    }
    let mut f = dir.create_file(OsStr::new("data.bin"), 0o640).unwrap();
    std::io::Write::write_all(&mut f, &noise(9, 300_000)).unwrap();
    drop(f);
    dir.symlink(OsStr::new("data.bin"), OsStr::new("link"))
        .unwrap();
    dir.hard_link(&dir, OsStr::new("data.bin"), OsStr::new("hard"))
        .unwrap();
    xattr::set(
        dir.entry_path(OsStr::new("data.bin")),
        "user.deep",
        b"value",
    )
    .unwrap();
    dir.path().to_path_buf()
}

/// Compares two trees through descriptors (their paths are too long for the kernel).
fn same_deep_tree(a: &DirFd, b: &DirFd) {
    let mut na = a.names().unwrap();
    let mut nb = b.names().unwrap();
    na.sort();
    nb.sort();
    assert_eq!(na, nb, "entries of {}", a.path().display());
    for name in na {
        let (sa, sb) = (a.stat(&name).unwrap(), b.stat(&name).unwrap());
        let what = format!("{}", a.path().join(&name).display());
        assert_eq!(sa.mode, sb.mode, "mode of {what}");
        assert_eq!((sa.uid, sa.gid), (sb.uid, sb.gid), "owner of {what}");
        assert_eq!(sa.mtime, sb.mtime, "mtime of {what}");
        assert_eq!(sa.nlink, sb.nlink, "link count of {what}");
        let xa = xattr::list(a.entry_path(&name)).unwrap().count();
        let xb = xattr::list(b.entry_path(&name)).unwrap().count();
        assert_eq!(xa, xb, "xattrs of {what}");
        if sa.is_dir() {
            same_deep_tree(&a.open_dir(&name).unwrap(), &b.open_dir(&name).unwrap());
        } else if sa.is_symlink() {
            assert_eq!(a.read_link(&name).unwrap(), b.read_link(&name).unwrap());
        } else {
            let read = |d: &DirFd| {
                let mut v = Vec::new();
                d.open_file(&name).unwrap().read_to_end(&mut v).unwrap();
                v
            };
            assert!(read(a) == read(b), "content of {what}");
        }
    }
}

#[test]
fn trees_deeper_than_path_max_back_up_and_restore_exactly() {
    let f = Fixture::new();
    let deepest = build_deep(&f.src);
    assert!(deepest.as_os_str().len() > 5000);
    f.ok(&["backup", f.src_str()]);
    f.ok(&["check", "--read-data"]);
    let listing = f.ok(&["ls", "latest"]);
    assert!(
        listing
            .lines()
            .any(|l| l.ends_with("/data.bin") && l.len() > 5000),
        "the deep file is listed by its full path"
    );
    let target = f.path("restored");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = f.restored_src(&target);
    same_deep_tree(
        &DirFd::open(&f.src).unwrap(),
        &DirFd::open(&restored).unwrap(),
    );
    // The hardlink came back as a link.
    let mut dir = DirFd::open(&restored).unwrap();
    for level in 0..LEVELS {
        dir = dir.open_dir(&long_name(level)).unwrap();
    }
    let (a, b) = (
        dir.stat(OsStr::new("data.bin")).unwrap(),
        dir.stat(OsStr::new("hard")).unwrap(),
    );
    assert_eq!((a.ino, a.nlink), (b.ino, 2));
    // A restore on top of it refuses every existing entry, and --overwrite replaces them.
    f.fails(
        &["restore", "latest", "--target", target.to_str().unwrap()],
        14,
    );
    f.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--overwrite",
    ]);
}

fn atime(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.atime(), m.atime_nsec())
}

#[test]
fn a_backup_leaves_access_times_alone_and_an_unchanged_one_adds_nothing() {
    let f = Fixture::new();
    fs::create_dir_all(f.src.join("dir/sub")).unwrap();
    fs::write(f.src.join("dir/file"), b"content").unwrap();
    std::os::unix::fs::symlink("file", f.src.join("dir/link")).unwrap();
    let (dir, link, file) = (
        f.src.join("dir"),
        f.src.join("dir/link"),
        f.src.join("dir/file"),
    );
    sh(&format!(
        "touch -a -d 2020-01-01 '{}' '{}' && touch -h -a -d 2020-01-01 '{}'",
        dir.display(),
        file.display(),
        link.display()
    ));
    let before = [atime(&dir), atime(&link), atime(&file)];
    assert_eq!(before[0].0, before[1].0);
    let summary = |out: &str| -> serde_json::Value {
        let last = out.lines().last().unwrap();
        serde_json::from_str(last).unwrap()
    };
    let first = summary(&f.ok(&["backup", f.src_str(), "--json"]));
    assert!(first["summary"]["bytes_added"].as_u64().unwrap() > 0);
    assert_eq!(
        [atime(&dir), atime(&link), atime(&file)],
        before,
        "access times of a directory, a symlink and a file after a backup"
    );
    // Another test creating a directory beside ours changes an ancestor, which a snapshot
    // records: take the backup again then.
    let repo_before = std::cell::Cell::new(0);
    let second = summary(&super::util::unchanged_backup(&f.src, || {
        repo_before.set(dir_bytes(&f.repo));
        f.ok(&["backup", f.src_str(), "--json"])
    }));
    let repo_before = repo_before.get();
    assert_eq!(
        second["summary"]["bytes_added"], 0,
        "an unchanged backup stores no blob: {second}"
    );
    assert_eq!(
        [atime(&dir), atime(&link), atime(&file)],
        before,
        "access times after the second backup"
    );
    let grown = dir_bytes(&f.repo) - repo_before;
    assert!(
        grown < 8 << 10,
        "the second backup added {grown} bytes, more than its snapshot file"
    );
}

/// A reporter that rewrites a file the moment the walk reports the repository directory, which
/// sorts between two names of that file: the second name then shows the inode changed.
struct RewriteOnNote(std::path::PathBuf);

impl chronofs::ingest::Reporter for RewriteOnNote {
    fn warning(&self, _: &Path, _: &str) {}
    fn note(&self, _: &Path, _: &str) {
        let mut f = fs::OpenOptions::new().append(true).open(&self.0).unwrap();
        std::io::Write::write_all(&mut f, b" and more").unwrap();
    }
}

#[test]
fn a_name_whose_inode_changed_since_its_first_name_is_a_file_of_its_own() {
    let scratch = tempfile::tempdir_in(super::util::test_tmp()).unwrap();
    let src = scratch.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"first version").unwrap();
    fs::hard_link(src.join("a"), src.join("b")).unwrap();
    // The repository lives between "a" and "b" in the walk's order.
    let repo_dir = src.join("a-repo");
    let repo = chronofs::repo::Repository::init(&repo_dir, &chronofs::repo::InitOptions::default())
        .unwrap();
    let out = chronofs::ingest::backup(
        &repo,
        std::slice::from_ref(&src),
        &chronofs::ingest::BackupOptions::default(),
        &RewriteOnNote(src.join("a")),
    )
    .unwrap();
    let root = repo.read_tree(&out.snapshot.root).unwrap();
    let node = chronofs::snapshot::find_node(&repo, &root, &src)
        .unwrap()
        .unwrap();
    let chronofs::format::tree::NodeKind::Dir { subtree } = node.kind else {
        panic!("not a directory")
    };
    let tree = repo.read_tree(&subtree).unwrap();
    let (a, b) = (tree.get(b"a").unwrap(), tree.get(b"b").unwrap());
    // The first name keeps its link count (its content is whatever its reader found, here
    // already changed); the second is a file of its own.
    assert_eq!(a.nlink, 2);
    assert_eq!(
        (b.nlink, b.size),
        (1, 22),
        "the second, changed name: a file of its own"
    );
    assert!(!a.same_inode_as(b));
    let report = chronofs::maintain::check::check(&repo, true).unwrap();
    assert!(
        report.is_ok(),
        "no inconsistent hardlink group: {:?}",
        report.errors
    );
    let target = scratch.path().join("restored");
    chronofs::restore::restore(
        &repo,
        &out.snapshot,
        None,
        &target,
        &chronofs::restore::RestoreOptions::default(),
        &chronofs::ingest::Silent,
    )
    .unwrap();
    let back = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(fs::read(back.join("b")).unwrap(), b"first version and more");
    let (ra, rb) = (
        fs::metadata(back.join("a")).unwrap(),
        fs::metadata(back.join("b")).unwrap(),
    );
    assert_ne!(ra.ino(), rb.ino(), "restored as two files, not linked");
}

/// A source nested deeper than the format's limit: the backup keeps every directory down to
/// the 1,024th level below `/`, leaves out what lies deeper with one warning naming it, counts
/// the error and exits 3; the rest of the source is backed up as usual.
#[test]
fn directories_nested_past_1024_levels_are_left_out_with_a_warning() {
    use chronofs::format::tree::{MAX_DEPTH, NodeKind};

    let f = Fixture::new();
    fs::write(f.src.join("ok"), b"next to the chain").unwrap();
    let mut dir = DirFd::open(&f.src).unwrap();
    for _ in 0..MAX_DEPTH + 10 {
        dir.create_dir(OsStr::new("d"), 0o755).unwrap();
        dir = dir.open_dir(OsStr::new("d")).unwrap();
    }
    drop(dir);
    let out = f.run(&["backup", f.src_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let warned: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("directories deep; not backed up"))
        .collect();
    assert_eq!(warned.len(), 1, "{err}");
    assert!(
        warned[0].contains("lies more than 1024 directories deep"),
        "{err}"
    );

    let repo = super::util::open_repo(&f.repo);
    let (snaps, _) = repo.snapshots().unwrap();
    let snapshot = &snaps[0].1;
    assert_eq!(snapshot.summary.errors, 1);
    let child = |tree: &chronofs::format::tree::Tree, name: &[u8]| {
        tree.entries
            .iter()
            .find(|n| n.name.as_bytes() == name)
            .map(|n| match &n.kind {
                NodeKind::Dir { subtree } => repo.read_tree(subtree).unwrap(),
                _ => panic!("{} is not a directory", String::from_utf8_lossy(name)),
            })
    };
    let mut tree = repo.read_tree(&snapshot.root).unwrap();
    let mut depth = 0;
    for part in f.src.strip_prefix("/").unwrap().iter() {
        tree = child(&tree, part.as_encoded_bytes()).unwrap();
        depth += 1;
    }
    assert!(tree.entries.iter().any(|n| n.name.as_bytes() == b"ok"));
    while let Some(next) = child(&tree, b"d") {
        tree = next;
        depth += 1;
    }
    assert_eq!(depth, MAX_DEPTH, "levels below / in the snapshot");
}
