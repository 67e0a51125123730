//! The virtual tree without a mount: the same answers the FUSE adapter hands the kernel,
//! asked for directly (lookup, listing, attributes, reads), on a repository of 200 snapshots.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chronofs::repo::Repository;

use chronofs::vfs::state::{Settings, State};
use chronofs::vfs::{Errno, Kind, Vfs, inodes};

use super::util::{Fixture, Observed, open_repo};

/// The tree over the fixture's repository.
fn vfs_of(f: &Fixture) -> Vfs {
    vfs_on(open_repo(&f.repo))
}

/// The tree over `repo`.
fn vfs_on(repo: Repository) -> Vfs {
    let settings = Settings {
        cache_bytes: 8 << 20,
        tree_cache_bytes: 4 << 20,
        prefetch_threads: 1,
        keep_xattrs: false,
        max_inodes: 1 << 20,
    };
    let state = State::open(Arc::new(repo), &settings, &mut |w| panic!("{w}")).unwrap();
    Vfs::new(Arc::clone(&state))
}

/// An idle mount on local storage does not list the snapshot files again while their
/// directory says nothing changed, and picks up a new snapshot at the next refresh after one
/// is written, however soon.
#[test]
fn an_idle_mount_lists_the_snapshots_only_when_their_directory_changed() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"first").unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    let snapshot_listings = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&snapshot_listings);
    let storage = Arc::new(Observed::new(&f.repo, move |op, path| {
        if op == "list" && path == "snapshots" {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let vfs = vfs_on(super::util::open_on(storage, &f.repo));
    let listings = || snapshot_listings.load(Ordering::SeqCst);
    // Past the least time between refreshes (more than 100 ms when the last one was slow).
    let refresh = || {
        std::thread::sleep(vfs.state().refresh_gap() + Duration::from_millis(50));
        vfs.state().refresh_soon();
    };
    let snapshots = || {
        list(&vfs, inodes::ROOT)
            .into_iter()
            .filter(|n| n.starts_with("20"))
            .count()
    };
    // Until the directory has been still for a second, every refresh lists.
    std::thread::sleep(Duration::from_millis(1100));
    refresh();
    let settled = listings();
    for _ in 0..5 {
        refresh();
    }
    assert_eq!(listings(), settled, "listed again with nothing changed");
    assert_eq!(snapshots(), 1);
    // A new snapshot: the next refresh lists and shows it.
    fs::write(f.src.join("a"), b"second").unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    refresh();
    assert_eq!(listings(), settled + 1);
    assert_eq!(snapshots(), 2);
    // And one written right after the previous listing, in the same second.
    f.ok(&["backup", "-q", "--force", f.src_str()]);
    refresh();
    assert_eq!(snapshots(), 3);
}

/// The inode at `path` (slash-separated, below the root), looked up one name at a time.
fn walk(vfs: &Vfs, path: &str) -> Result<u64, Errno> {
    let mut ino = inodes::ROOT;
    for name in path.split('/').filter(|s| !s.is_empty()) {
        ino = vfs.lookup(ino, name.as_bytes())?.0.ino;
    }
    Ok(ino)
}

/// The names directory `ino` lists, dots left out, in listing order.
fn list(vfs: &Vfs, ino: u64) -> Vec<String> {
    let mut names = Vec::new();
    vfs.list(ino, 0, &mut |e| {
        let n = e.name.to_string_lossy().into_owned();
        if n != "." && n != ".." {
            names.push(n);
        }
        false
    })
    .unwrap();
    names
}

#[test]
fn versions_of_a_path_across_200_snapshots_without_a_mount() {
    let f = Fixture::new();
    let src = f.src_str().to_string();
    fs::create_dir(f.src.join("docs")).unwrap();
    fs::write(f.src.join("docs/static.txt"), b"never changes").unwrap();
    // 200 snapshots, one a day: report.txt changes every 10th day, gone for days 100..109;
    // day-N.txt exists only in snapshot N (for the first 5 days).
    let mut names = Vec::new();
    let mut expected = Vec::new();
    for day in 0..200u32 {
        let report = f.src.join("docs/report.txt");
        if (100..110).contains(&day) {
            let _ = fs::remove_file(&report);
        } else if day % 10 == 0 {
            fs::write(&report, format!("report as of day {day}")).unwrap();
        }
        if day < 5 {
            fs::write(f.src.join(format!("docs/day-{day}.txt")), b"x").unwrap();
        }
        if day > 0 && day <= 5 {
            fs::remove_file(f.src.join(format!("docs/day-{}.txt", day - 1))).unwrap();
        }
        let secs = 1_767_225_600 + i64::from(day) * 86_400; // 2026-01-01, one a day
        let name = chronofs::snapshot::dated_name(secs * 1_000_000_000);
        f.ok(&["backup", "-q", "--time", &name, &src]);
        names.push(name);
        if day % 10 == 0 && !(100..110).contains(&day) || day == 110 {
            expected.push(day as usize);
        }
    }
    let vfs = vfs_of(&f);
    let docs = format!("versions{src}/docs");
    let dir = walk(&vfs, &docs).unwrap();
    assert_eq!(
        list(&vfs, dir),
        [
            "day-0.txt",
            "day-1.txt",
            "day-2.txt",
            "day-3.txt",
            "day-4.txt",
            "report.txt",
            "static.txt"
        ]
    );
    // Each version once: the 19 changes, and the return after the gap (day 110).
    let report = walk(&vfs, &format!("{docs}/report.txt")).unwrap();
    let listed = list(&vfs, report);
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    let want: Vec<&String> = expected.iter().map(|&d| &names[d]).collect();
    assert_eq!(listed.iter().collect::<Vec<_>>(), want);
    // Each entry is the file as that snapshot holds it, byte for byte.
    for (entry, day) in listed.iter().zip(&expected) {
        let ino = walk(&vfs, &format!("{docs}/report.txt/{entry}")).unwrap();
        let (attr, _) = vfs.getattr(ino).unwrap();
        assert_eq!(attr.kind, Kind::File);
        let data = vfs.read(ino, 0, 4096).unwrap();
        let want = format!("report as of day {day}");
        assert_eq!(data.bytes(), want.as_bytes(), "{entry}");
        assert_eq!(attr.size, want.len() as u64);
    }
    assert_eq!(
        list(&vfs, walk(&vfs, &format!("{docs}/static.txt")).unwrap()).len(),
        1
    );
    assert_eq!(
        list(&vfs, walk(&vfs, &format!("{docs}/day-3.txt")).unwrap()).len(),
        1
    );
    assert_eq!(walk(&vfs, &format!("{docs}/nothing")), Err(Errno::ENOENT));
    // The rest of the tree answers the same way: the root, at/ and a dated directory.
    let root = list(&vfs, inodes::ROOT);
    assert_eq!(
        root.len(),
        200 + super::mount::FIXED_ROOT_ENTRIES,
        "{root:?}"
    );
    // (`latest` is a symlink: the kernel follows it; here the dated name is used.)
    assert_eq!(
        vfs.readlink(walk(&vfs, "latest").unwrap()).unwrap(),
        names[199].as_bytes()
    );
    let latest = walk(&vfs, &format!("{}{src}/docs/static.txt", names[199])).unwrap();
    assert_eq!(vfs.read(latest, 0, 100).unwrap().bytes(), b"never changes");
    assert_eq!(walk(&vfs, "at/garbage"), Err(Errno::ENOENT));
}
