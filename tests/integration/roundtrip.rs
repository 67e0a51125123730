//! Backup → restore reproduces every kind of file and all metadata, compared field by field.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::util::assert_ok;
use super::util::{Fixture, assert_same_tree, have_root, noise, os, sh};

/// Builds a source tree with every kind of entry the format stores. Device nodes and foreign
/// owners need root; without it they are left out (and the rest is all there).
pub(super) fn build_everything(src: &Path) {
    let root = chronofs::sys::euid() == 0;
    let p = |s: &str| src.join(s);
    fs::write(p("plain.txt"), b"hello\n").unwrap();
    fs::write(p("empty"), b"").unwrap();
    fs::create_dir(p("emptydir")).unwrap();
    fs::write(p("big.bin"), noise(1, 3 << 20)).unwrap();
    fs::write(p("text.log"), "line of text\n".repeat(200_000)).unwrap();
    // Names are bytes: non-UTF-8, newline, spaces, leading dash.
    fs::write(src.join(os(b"caf\xe9-latin1")), b"x").unwrap();
    fs::write(p("new\nline"), b"y").unwrap();
    fs::write(p("-dash and space"), b"z").unwrap();
    // Symlinks: relative, absolute, dangling, non-UTF-8 target.
    symlink("plain.txt", p("link-rel")).unwrap();
    symlink("/etc/hostname", p("link-abs")).unwrap();
    symlink("does/not/exist", p("link-dangling")).unwrap();
    symlink(os(b"t\xff\xfe"), p("link-bytes")).unwrap();
    // All 12 mode bits.
    for (name, mode) in [
        ("setuid", 0o4755),
        ("setgid", 0o2750),
        ("sticky-dir", 0o1777),
        ("odd", 0o7001),
        ("none", 0o000),
    ] {
        let f = p(name);
        if name.ends_with("dir") {
            fs::create_dir(&f).unwrap()
        } else {
            fs::write(&f, name).unwrap()
        }
        fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
    }
    // Sparse: a 5 GiB hole with data at both ends and in the middle.
    sh(&format!(
        "truncate -s 5G '{0}' && printf start | dd of='{0}' conv=notrunc status=none && printf middle | dd of='{0}' bs=1 seek=2147483648 conv=notrunc status=none && printf end >> '{0}'",
        p("sparse").display()
    ));
    sh(&format!("truncate -s 1G '{}'", p("all-hole").display()));
    // Special files.
    sh(&format!("mkfifo '{}'", p("fifo").display()));
    if root {
        sh(&format!(
            "mknod '{}' c 1 3 && mknod '{}' b 7 200 && mknod '{}' c 4095 1048575",
            p("chardev").display(),
            p("blockdev").display(),
            p("bigdev").display()
        ));
    }
    let _sock = std::os::unix::net::UnixListener::bind(p("socket")).unwrap();
    // Hardlinks of every file type.
    fs::create_dir(p("links")).unwrap();
    for (orig, link) in [
        ("plain.txt", "links/plain-2"),
        ("fifo", "links/fifo-2"),
        ("chardev", "links/chardev-2"),
        ("socket", "links/socket-2"),
        ("link-rel", "links/symlink-2"),
        ("plain.txt", "links/plain-3"),
    ] {
        if root || orig != "chardev" {
            fs::hard_link(p(orig), p(link)).unwrap();
        }
    }
    // Owners up to 2^32-2 (root only), xattrs and ACLs.
    if root {
        sh(&format!(
            "chown 4294967294:4294967293 '{}'",
            p("plain.txt").display()
        ));
        sh(&format!(
            "chown -h 123456:654321 '{}'",
            p("link-rel").display()
        ));
    }
    sh(&format!(
        "setfattr -n user.comment -v 'hello world' '{0}' && setfattr -n user.bin -v 0x00ff10 '{0}'",
        p("big.bin").display()
    ));
    sh(&format!(
        "setfacl -m u:1234:rwx,g:4321:r '{}' && setfacl -d -m u:1234:rx '{}'",
        p("text.log").display(),
        p("emptydir").display()
    ));
    // Times across the whole range, with nanoseconds; directories last (children touch them).
    for (name, time) in [
        ("plain.txt", "1901-12-14 20:45:53.000000001"),
        ("empty", "1969-12-31 23:59:59.999999999"),
        ("big.bin", "2038-01-19 03:14:08.5"),
        ("text.log", "2262-04-11 23:47:16.854775807"),
        ("link-rel", "1999-09-09 09:09:09.090909090"),
    ] {
        sh(&format!("touch -h -d '{time} UTC' '{}'", p(name).display()));
    }
    sh(&format!(
        "touch -d '2100-02-28 12:00:00.25 UTC' '{}' '{}'",
        p("emptydir").display(),
        p("links").display()
    ));
}

/// A small tree of the common kinds of entry: files, an empty file, a subdirectory, a
/// symlink, a hardlink, a FIFO, a sparse file and an xattr.
pub(super) fn build_small(src: &Path) {
    let p = |s: &str| src.join(s);
    fs::write(p("plain"), b"plain text\n").unwrap();
    fs::write(p("empty"), b"").unwrap();
    fs::create_dir(p("dir")).unwrap();
    fs::write(p("dir/noise"), noise(4, 200_000)).unwrap();
    symlink("plain", p("link")).unwrap();
    fs::hard_link(p("plain"), p("dir/hard")).unwrap();
    sh(&format!("mkfifo '{}'", p("fifo").display()));
    sh(&format!(
        "truncate -s 10M '{0}' && printf end >> '{0}' && setfattr -n user.note -v x '{0}'",
        p("sparse").display()
    ));
}

/// Runs as any user: non-UTF-8 names, symlinks, hardlinks, sparse files, FIFOs, sockets,
/// every mode bit, `user.*` xattrs, ACLs and nanosecond times. As root (which CI requires),
/// device nodes and foreign owners are in the tree too.
#[test]
fn every_kind_of_file_round_trips() {
    if !have_root("every_kind_of_file_round_trips (device nodes and owners)") {
        eprintln!("(the rest of every_kind_of_file_round_trips runs without root)");
    }
    let f = Fixture::new();
    build_everything(&f.src);
    let out = f.ok(&["backup", f.src_str()]);
    assert!(out.contains("saved"), "{out}");
    let target = f.path("restore");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&target));
    // The whole-repository check agrees.
    f.ok(&["check", "--read-data"]);
    // Listings: escaped for people, exact for scripts.
    let plain = f.ok(&["ls", "latest"]);
    assert!(
        plain.contains("caf\\351-latin1") && plain.contains("new\\nline"),
        "{plain}"
    );
    let exact = f.run(&["ls", "-0", "latest"]).stdout;
    let names: Vec<&[u8]> = exact.split(|b| *b == 0).collect();
    let src = f.src.as_os_str().as_encoded_bytes();
    assert!(names.contains(&[src, b"/caf\xe9-latin1"].concat().as_slice()));
    assert!(names.contains(&[src, b"/new\nline"].concat().as_slice()));
    let json = f.ok(&["ls", "--json", "latest"]);
    assert!(
        json.lines()
            .any(|l| l.contains("\"hex\":") && l.contains("636166e9")),
        "{json}"
    );
    // The 5 GiB hole cost nothing in the repository.
    let repo_size: u64 = walkdir_size(&f.repo);
    assert!(repo_size < 16 << 20, "repository is {repo_size} bytes");
}

fn walkdir_size(p: &Path) -> u64 {
    let m = fs::symlink_metadata(p).unwrap();
    if m.is_dir() {
        fs::read_dir(p)
            .unwrap()
            .map(|e| walkdir_size(&e.unwrap().path()))
            .sum()
    } else {
        m.len()
    }
}

#[test]
fn subtree_and_single_file_restore() {
    let f = Fixture::new();
    fs::create_dir_all(f.src.join("docs/deep")).unwrap();
    fs::write(f.src.join("docs/deep/a.txt"), b"a").unwrap();
    fs::write(f.src.join("docs/b.txt"), b"b").unwrap();
    f.ok(&["backup", f.src_str()]);
    let t1 = f.path("t1");
    let spec = format!("latest:{}/docs", f.src_str());
    f.ok(&["restore", &spec, "--target", t1.to_str().unwrap()]);
    assert_eq!(fs::read(t1.join("deep/a.txt")).unwrap(), b"a");
    assert_eq!(fs::read(t1.join("b.txt")).unwrap(), b"b");
    let t2 = f.path("t2");
    let spec = format!("latest:{}/docs/b.txt", f.src_str());
    f.ok(&["restore", &spec, "--target", t2.to_str().unwrap()]);
    assert_eq!(fs::read(t2.join("b.txt")).unwrap(), b"b");
    // Existing files are kept unless --overwrite.
    fs::write(t2.join("b.txt"), b"local change").unwrap();
    let err = f.fails(&["restore", &spec, "--target", t2.to_str().unwrap()], 14);
    assert!(err.contains("exists"), "{err}");
    assert_eq!(fs::read(t2.join("b.txt")).unwrap(), b"local change");
    f.ok(&[
        "restore",
        &spec,
        "--target",
        t2.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(fs::read(t2.join("b.txt")).unwrap(), b"b");
    // ls shows the paths.
    let ls = f.ok(&["ls", "latest"]);
    assert!(
        ls.contains(&format!("{}/docs/deep/a.txt", f.src_str())),
        "{ls}"
    );
    let long = f.ok(&["ls", "latest", &format!("{}/docs", f.src_str()), "--long"]);
    assert!(
        long.lines()
            .any(|l| l.starts_with("-rw") && l.ends_with("docs/b.txt")),
        "{long}"
    );
}

#[test]
fn multiple_sources_appear_under_their_absolute_paths() {
    let f = Fixture::new();
    fs::create_dir_all(f.src.join("one")).unwrap();
    fs::create_dir_all(f.src.join("two/x")).unwrap();
    fs::write(f.src.join("one/1"), b"1").unwrap();
    fs::write(f.src.join("two/x/2"), b"2").unwrap();
    let (one, two) = (f.src.join("one"), f.src.join("two/x"));
    f.ok(&["backup", one.to_str().unwrap(), two.to_str().unwrap()]);
    let target = f.path("r");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let root = f.restored_src(&target);
    assert_eq!(fs::read(root.join("one/1")).unwrap(), b"1");
    assert_eq!(fs::read(root.join("two/x/2")).unwrap(), b"2");
    assert_same_tree(&one, &root.join("one"));
}

/// The restore writes file data in batches, pack by pack. With a low open-file limit the
/// batches hold 22 files, so this tree crosses many batch boundaries: hardlink groups whose
/// names fall in different batches, chunks shared by many files, read-only files in a
/// read-only directory, a sparse file, empty files and files larger than a chunk.
#[test]
fn restore_in_small_batches_keeps_links_shared_chunks_and_modes() {
    let f = Fixture::new();
    let shared = noise(7, 300_000);
    for d in 0..5 {
        let dir = f.src.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..40 {
            let p = dir.join(format!("f{i:02}"));
            match i % 5 {
                0 => fs::write(&p, &shared).unwrap(),
                1 => fs::write(&p, b"").unwrap(),
                _ => fs::write(&p, noise(d * 100 + i, 1000 + 3000 * i as usize)).unwrap(),
            }
        }
        // One name of each group here, the other in the next directory (another batch).
        if d > 0 {
            fs::hard_link(f.src.join(format!("d{}/f07", d - 1)), dir.join("link")).unwrap();
        }
    }
    fs::write(f.src.join("d4/big"), noise(99, 5 << 20)).unwrap();
    let sparse = fs::File::create(f.src.join("d4/sparse")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"middle", 32 << 20).unwrap();
    drop(sparse);
    for i in 0..40 {
        let p = f.src.join(format!("d3/f{i:02}"));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
    }
    fs::set_permissions(f.src.join("d3"), fs::Permissions::from_mode(0o555)).unwrap();
    f.ok(&["backup", f.src_str()]);

    let target = f.path("restore");
    let out = super::util::with_open_file_limit(
        &f.cmd(&["restore", "latest", "--target", target.to_str().unwrap()]),
        300,
    )
    .output()
    .unwrap();
    assert_ok(&out);
    assert_same_tree(&f.src, &f.restored_src(&target));
    for d in [&f.src, &f.restored_src(&target)] {
        fs::set_permissions(d.join("d3"), fs::Permissions::from_mode(0o755)).unwrap();
    }
}
