//! What the kernel makes of the mount beyond reading files: it is mounted `nodev` and
//! `nosuid` (a device node in a snapshot cannot be opened through it), and `SEEK_DATA` /
//! `SEEK_HOLE` find the same data and holes as on the source, so `cp --sparse` and `tar -S`
//! skip the holes.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use chronofs::sys::seek_data_or_hole;

use super::mount::{Mounted, can_mount};
use super::util::{Fixture, have_root, noise, sh};

/// The data extents of `path` as `SEEK_DATA` and `SEEK_HOLE` report them.
fn extents(path: &Path) -> Vec<(u64, u64)> {
    let f = fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < len {
        let Some(data) = seek_data_or_hole(&f, pos, true).unwrap() else {
            break;
        };
        let hole = seek_data_or_hole(&f, data, false).unwrap().unwrap_or(len);
        assert!(hole > data, "{}: no progress at {data}", path.display());
        out.push((data, hole));
        pos = hole;
    }
    out
}

/// The options of the mount at `mnt` (per-mount flags, from /proc/self/mountinfo).
fn mount_options(mnt: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mnt = mnt.to_str().unwrap();
    let line = info
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(mnt))
        .unwrap_or_else(|| panic!("{mnt} is not mounted"));
    line.split(' ')
        .nth(5)
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_mount_is_nodev_nosuid_and_reports_data_and_holes_as_the_source() {
    if !can_mount("the_mount_is_nodev_nosuid_and_reports_data_and_holes_as_the_source") {
        return;
    }
    let f = Fixture::new();
    const MIB: u64 = 1 << 20;
    let sparse = f.src.join("sparse");
    let mut file = fs::File::create(&sparse).unwrap();
    file.write_all(&noise(1, MIB as usize)).unwrap();
    file.seek(SeekFrom::Start(9 * MIB)).unwrap();
    file.write_all(&noise(2, MIB as usize)).unwrap();
    file.set_len(12 * MIB).unwrap();
    drop(file);
    let want = extents(&sparse);
    assert_eq!(
        want,
        [(0, MIB), (9 * MIB, 10 * MIB)],
        "the test's file system keeps holes"
    );
    let suid = f.src.join("setuid");
    fs::write(&suid, b"#!/bin/sh\nid -u\n").unwrap();
    sh(&format!("chmod 4755 '{}'", suid.display()));
    let as_root = have_root("the_mount_is_nodev_nosuid_and_reports_data_and_holes_as_the_source");
    if as_root {
        sh(&format!("mknod '{}' c 1 3", f.src.join("null").display()));
    }
    f.ok(&["backup", f.src_str()]);
    let m = Mounted::new(&f, &[]);
    let inside = m.src_in(&f, "latest");

    let options = mount_options(&m.path);
    for flag in ["ro", "nodev", "nosuid"] {
        assert!(
            options.iter().any(|o| o == flag),
            "{flag} missing: {options:?}"
        );
    }
    assert_eq!(
        fs::metadata(inside.join("setuid")).unwrap().permissions(),
        fs::metadata(&suid).unwrap().permissions(),
        "the setuid bit is shown as stored"
    );
    if as_root {
        let e = fs::File::open(inside.join("null")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    }

    assert_eq!(extents(&inside.join("sparse")), want);
    assert_eq!(
        fs::read(inside.join("sparse")).unwrap(),
        fs::read(&sparse).unwrap()
    );
    // Past the last data: ENXIO for SEEK_DATA, the end for SEEK_HOLE.
    let through = fs::File::open(inside.join("sparse")).unwrap();
    assert_eq!(seek_data_or_hole(&through, 10 * MIB, true).unwrap(), None);
    assert_eq!(
        seek_data_or_hole(&through, 10 * MIB + 5, false).unwrap(),
        Some(10 * MIB + 5)
    );
}
