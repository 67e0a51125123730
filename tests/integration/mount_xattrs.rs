//! Extended attributes and ACLs through a real mount: shown and enforced where snapshots hold
//! them; where no snapshot holds any, the kernel is told so once (and stops asking), while
//! every copy tool still reproduces the source; a snapshot taken later that holds some appears
//! without a remount, with them, shown and enforced: the mount replaces its connection with
//! one that never told the kernel otherwise (beneath the old one, so the mount point is never
//! empty), and the mount point holds one mount throughout.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::mount::{Mounted, acl, as_nobody, can_mount, errno, eventually, names};
use super::util::{Fixture, assert_same_tree, have_root, sh};

const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;

/// `cat p` as nobody: its output, or `None` if refused.
fn read_as_nobody(p: &Path) -> Option<Vec<u8>> {
    let o = as_nobody(p);
    o.status.success().then_some(o.stdout)
}

/// Waits until the mount shows `dated` snapshots after it logged that it replaced its
/// connection, and checks that the mount point holds exactly one mount.
fn replaced_and_shown(m: &Mounted, log: &Path, dated: usize) {
    eventually("the new snapshot appears in the same mount", || {
        names(&m.path).len() == dated + super::mount::FIXED_ROOT_ENTRIES
    });
    let logged = fs::read_to_string(log).unwrap_or_default();
    assert!(logged.contains("replacing the mount"), "{logged}");
    assert_eq!(mounts_at(&m.path), 1, "one mount at the mount point");
}

/// How many mounts are stacked at `path` (from /proc/self/mountinfo).
fn mounts_at(path: &Path) -> usize {
    let path = path.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(path))
        .count()
}

/// Sets the times of everything in `dir` to a past second: copy tools compare directory
/// times to the second, so a copy made in the second the source was written could keep its
/// own time.
fn age(dir: &Path) {
    sh(&format!(
        "find '{}' -exec touch -h -d @1700000000.123456789 {{}} +",
        dir.display()
    ));
}

/// A second snapshot (one second later, so it gets its own dated name).
fn second_backup(f: &Fixture) {
    std::thread::sleep(Duration::from_millis(1100));
    f.ok(&["backup", f.src_str()]);
}

#[test]
fn acls_are_shown_and_enforced_and_a_snapshot_without_any_still_copies_out_exactly() {
    let test = "acls_are_shown_and_enforced_and_a_snapshot_without_any_still_copies_out_exactly";
    if !can_mount(test) || !have_root(&format!("{test} (switches to another user)")) {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("shared"), b"shared").unwrap();
    fs::write(f.src.join("secret"), b"secret").unwrap();
    fs::create_dir(f.src.join("dir")).unwrap();
    sh(&format!(
        "chmod 755 '{}' '{}' && chmod 640 '{s}/shared' '{s}/secret' && \
         setfacl -m u:65534:r '{s}/shared' && setfacl -d -m u:65534:rx '{s}/dir'",
        f.dir.path().display(),
        f.src.display(),
        s = f.src.display()
    ));
    f.ok(&["backup", f.src_str()]);
    {
        let m = Mounted::new(&f, &["--allow-other"]);
        let inside = m.src_in(&f, "latest");
        assert_eq!(acl(&inside.join("shared")), acl(&f.src.join("shared")));
        assert_eq!(acl(&inside.join("dir")), acl(&f.src.join("dir")));
        // The kernel enforces the stored ACL: its named user may read, nobody else.
        assert_eq!(
            read_as_nobody(&inside.join("shared")).as_deref(),
            Some(&b"shared"[..])
        );
        assert_eq!(read_as_nobody(&inside.join("secret")), None);
    }

    // The same files without ACLs, but with a file capability and a user attribute.
    sh(&format!(
        "setfacl -b '{s}/shared' && setfacl -k '{s}/dir' && \
         setfattr -n user.note -v kept '{s}/secret' && \
         setfattr -n security.capability -v 0sAQAAAgAUAAAAAAAAAAAAAAAAAAA= '{s}/shared'",
        s = f.src.display()
    ));
    let f2 = Fixture::new();
    sh(&format!(
        "cp -a '{}/.' '{}'",
        f.src.display(),
        f2.src.display()
    ));
    age(&f2.src);
    f2.ok(&["backup", f2.src_str()]);
    let m = Mounted::new(&f2, &["--allow-other"]);
    let inside = m.src_in(&f2, "latest");
    // ACL questions are "not supported" (the kernel checks the modes), other attributes are
    // as stored.
    assert_eq!(
        errno(xattr::get(inside.join("secret"), "system.posix_acl_access")),
        Some(EOPNOTSUPP)
    );
    assert_eq!(
        xattr::get(inside.join("secret"), "user.note")
            .unwrap()
            .as_deref(),
        Some(&b"kept"[..])
    );
    assert!(
        xattr::get(inside.join("shared"), "security.capability")
            .unwrap()
            .is_some()
    );
    assert_eq!(acl(&inside.join("secret")), acl(&f2.src.join("secret")));
    assert_eq!(read_as_nobody(&inside.join("secret")), None);
    // Copy tools asking for ACLs take "not supported" as "none" and reproduce the source.
    for (tool, how) in [
        ("cp", "cp -a '{}' '{}'"),
        ("rsync", "rsync -aHAX '{}/' '{}/'"),
    ] {
        let dst = f2.path(&format!("{tool}-copy"));
        sh(&how
            .replacen("{}", &inside.display().to_string(), 1)
            .replacen("{}", &dst.display().to_string(), 1));
        assert_same_tree(&f2.src, &dst);
    }
}

#[test]
fn a_mount_of_snapshots_without_xattrs_shows_a_later_one_with_them_without_a_remount() {
    let test = "a_mount_of_snapshots_without_xattrs_shows_a_later_one_with_them_without_a_remount";
    if !can_mount(test) || !have_root(&format!("{test} (replaces its connection)")) {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("plain"), b"plain").unwrap();
    age(&f.src);
    f.ok(&["backup", f.src_str()]);
    let log = f.path("mount.log");
    let log_arg = log.to_str().unwrap().to_owned();
    let m = Mounted::new(&f, &["--log", &log_arg]);
    let inside = m.src_in(&f, "latest");
    // The first question tells the kernel there are none; it answers every later one
    // ("not supported", and "no ACL" for an ACL).
    assert_eq!(
        errno(xattr::get(inside.join("plain"), "user.x")),
        Some(EOPNOTSUPP)
    );
    assert_eq!(errno(xattr::list(inside.join("plain"))), Some(EOPNOTSUPP));
    assert_eq!(
        xattr::get(&inside, "system.posix_acl_access").unwrap(),
        None
    );
    assert_eq!(acl(&inside.join("plain")), acl(&f.src.join("plain")));
    let dst = f.path("rsync-copy");
    sh(&format!(
        "rsync -aHAX '{}/' '{}/'",
        inside.display(),
        dst.display()
    ));
    assert_same_tree(&f.src, &dst);
    // A process inside the old connection keeps it while it stays.
    let held = fs::File::open(inside.join("plain")).unwrap();

    sh(&format!(
        "setfattr -n user.x -v 1 '{}/plain'",
        f.src.display()
    ));
    second_backup(&f);
    replaced_and_shown(&m, &log, 2);
    let inside = m.src_in(&f, "latest");
    assert_eq!(
        xattr::get(inside.join("plain"), "user.x")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    let dated = names(&m.path)[0].clone();
    assert_eq!(
        xattr::get(m.src_in(&f, &dated).join("plain"), "user.x").unwrap(),
        None,
        "the first snapshot has no attribute"
    );
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
    assert_eq!(
        old, "plain",
        "the old connection still serves what it had open"
    );
    drop(held);
    let dst = f.path("rsync-copy-2");
    sh(&format!(
        "rsync -aHAX '{}/' '{}/'",
        inside.display(),
        dst.display()
    ));
    assert_same_tree(&f.src, &dst);
}

#[test]
fn keep_xattrs_shows_a_later_snapshot_with_acls_while_mounted() {
    let test = "keep_xattrs_shows_a_later_snapshot_with_acls_while_mounted";
    if !can_mount(test) {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("plain"), b"plain").unwrap();
    f.ok(&["backup", f.src_str()]);
    let m = Mounted::new(&f, &["--keep-xattrs"]);
    let inside = m.src_in(&f, "latest");
    assert_eq!(xattr::get(inside.join("plain"), "user.x").unwrap(), None);
    sh(&format!("setfacl -m u:65534:r '{}/plain'", f.src.display()));
    second_backup(&f);
    eventually("the new snapshot appears", || {
        names(&m.path).len() == 2 + super::mount::FIXED_ROOT_ENTRIES
    });
    assert_eq!(
        acl(&m.src_in(&f, "latest").join("plain")),
        acl(&f.src.join("plain"))
    );
}

#[test]
fn a_mount_without_acls_shows_a_later_snapshot_with_one_and_enforces_it() {
    let test = "a_mount_without_acls_shows_a_later_snapshot_with_one_and_enforces_it";
    if !can_mount(test) || !have_root(&format!("{test} (switches to another user)")) {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("open"), b"open").unwrap();
    fs::write(f.src.join("b"), b"secret").unwrap();
    sh(&format!(
        "chmod 0755 '{0}' && chmod 0644 '{0}/open' '{0}/b'",
        f.src.display()
    ));
    sh(&format!(
        "setfattr -n user.x -v 1 '{}/open'",
        f.src.display()
    ));
    f.ok(&["backup", f.src_str()]);
    let log = f.path("mount.log");
    let m = Mounted::new(&f, &["--allow-other", "--log", log.to_str().unwrap()]);
    let inside = m.src_in(&f, "latest");
    assert_eq!(
        errno(xattr::get(inside.join("b"), "system.posix_acl_access")),
        Some(EOPNOTSUPP),
        "no snapshot holds an ACL: the kernel was told so"
    );
    assert_eq!(
        read_as_nobody(&inside.join("b")).as_deref(),
        Some(&b"secret"[..])
    );
    let before = fs::read_link(m.path.join("latest")).unwrap();
    // The scenario of issue 23: a file gets an ACL that denies a named user.
    sh(&format!("setfacl -m u:65534:--- '{}/b'", f.src.display()));
    assert!(
        read_as_nobody(&f.src.join("b")).is_none(),
        "the source denies nobody"
    );
    second_backup(&f);
    replaced_and_shown(&m, &log, 2);
    let after = fs::read_link(m.path.join("latest")).unwrap();
    assert_ne!(after, before, "latest follows the new snapshot");
    let inside = m.src_in(&f, "latest");
    assert_eq!(acl(&inside.join("b")), acl(&f.src.join("b")));
    assert!(
        read_as_nobody(&inside.join("b")).is_none(),
        "the ACL is enforced as on the source"
    );
    assert_eq!(
        read_as_nobody(&inside.join("open")).as_deref(),
        Some(&b"open"[..])
    );
    // The old snapshot, through the new connection: no ACL, readable as before.
    let dated = names(&m.path)[0].clone();
    assert_eq!(
        read_as_nobody(&m.src_in(&f, &dated).join("b")).as_deref(),
        Some(&b"secret"[..])
    );
}
