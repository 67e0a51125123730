//! Disk images and block devices: a device backed up as its content (zeros as holes), restored
//! and read back through the mount byte for byte, and a file system image in the mount
//! loop-mounted read-only. Runs as root on loop devices.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::mount::{Mounted, can_mount};
use super::util::{Fixture, assert_same_tree, have_root, noise, sh};

/// A loop device over a file, detached on drop (also when the test fails).
pub(super) struct Loop {
    pub(super) dev: PathBuf,
}

impl Loop {
    pub(super) fn attach(file: &Path) -> Loop {
        Self::attach_with(file, &[])
    }

    /// A loop device whose partitions appear as `DEVpN`; `read_only` for a file that is.
    pub(super) fn attach_partitioned(file: &Path, read_only: bool) -> Loop {
        let lo = Self::attach_with(file, if read_only { &["-P", "-r"] } else { &["-P"] });
        // The kernel reads the partition table (the nodes may take a moment); a kernel built
        // without support for the table's kind (this project's CI kernel) needs `partx -a`.
        let p1 = PathBuf::from(format!("{}p1", lo.dev_str()));
        let wait = |secs: u64| {
            let started = std::time::Instant::now();
            while !p1.exists() && started.elapsed() < std::time::Duration::from_secs(secs) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            p1.exists()
        };
        if !wait(2) {
            sh(&format!("partx -a {}", lo.dev_str()));
            assert!(wait(10), "{} never appeared", p1.display());
        }
        lo
    }

    fn attach_with(file: &Path, flags: &[&str]) -> Loop {
        let out = Command::new("losetup")
            .args(flags)
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Loop {
            dev: PathBuf::from(dev),
        }
    }

    pub(super) fn dev_str(&self) -> &str {
        self.dev.to_str().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// A file system mounted by the test, unmounted on drop.
pub(super) struct KernelMount(pub(super) PathBuf);

impl KernelMount {
    pub(super) fn new(args: &[&str], source: &Path, at: &Path) -> KernelMount {
        fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(args)
            .arg(source)
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount {args:?} {}", source.display());
        KernelMount(at.to_path_buf())
    }
}

impl Drop for KernelMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// An ext4 image of `size` MiB at `image` holding the tree `content` (made without mounting).
pub(super) fn ext4_image(image: &Path, size_mib: u64, content: &Path) {
    let f = fs::File::create(image).unwrap();
    f.set_len(size_mib << 20).unwrap();
    drop(f);
    let out = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-E",
            "lazy_itable_init=0,lazy_journal_init=0",
            "-d",
        ])
        .arg(content)
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkfs.ext4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bytes of disk space a file takes.
fn allocated(p: &Path) -> u64 {
    fs::metadata(p).unwrap().blocks() * 512
}

/// The `summary` object of `backup --json`.
pub(super) fn backup_summary(f: &Fixture, args: &[&str]) -> serde_json::Value {
    backup_json(f, args)["summary"].clone()
}

/// The summary line of `backup --json`.
pub(super) fn backup_json(f: &Fixture, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["backup", "--json"];
    all.extend_from_slice(args);
    let out = f.ok(&all);
    let line = out
        .lines()
        .find(|l| l.contains("\"message_type\":\"summary\""))
        .unwrap_or_else(|| panic!("no summary in {out}"));
    serde_json::from_str::<serde_json::Value>(line).unwrap()
}

#[test]
fn a_block_device_is_backed_up_as_its_content_with_its_zeros_as_holes() {
    let test = "a_block_device_is_backed_up_as_its_content_with_its_zeros_as_holes";
    if !have_root(test) || !can_mount(test) {
        return;
    }
    let f = Fixture::new();
    // A 64 MiB ext4 file system holding 3 MiB of noise and a text file: most of it zeros.
    let content = f.path("content");
    fs::create_dir(&content).unwrap();
    fs::write(content.join("noise"), noise(1, 3 << 20)).unwrap();
    fs::write(content.join("notes.txt"), "disk image test\n".repeat(1000)).unwrap();
    let image = f.path("disk.img");
    ext4_image(&image, 64, &content);
    let lo = Loop::attach(&image);
    let name = lo.dev.file_name().unwrap().to_str().unwrap().to_string();

    let first = backup_summary(&f, &[lo.dev_str()]);
    assert_eq!(first["files_new"], 1, "{first}");
    assert_eq!(first["total_bytes"], 64 << 20, "{first}");
    assert_eq!(first["errors"], 0, "{first}");
    let added = first["bytes_added"].as_u64().unwrap();
    assert!(
        added < 8 << 20,
        "a mostly empty 64 MiB disk adds {added} bytes"
    );
    let before = f.path("before.img");
    fs::copy(&image, &before).unwrap();

    // Restored: a regular file of the device's size, equal byte for byte, its zero runs holes.
    let out = f.path("out1");
    f.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    let restored = out.join("dev").join(&name);
    let meta = fs::symlink_metadata(&restored).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!(meta.len(), 64 << 20);
    assert_eq!(fs::read(&restored).unwrap(), fs::read(&image).unwrap());
    assert!(
        allocated(&restored) < 16 << 20,
        "the restored image takes {} bytes of disk: its zeros were written",
        allocated(&restored)
    );

    // Change 1% of the device through the device: the next backup reads it again (a device
    // node's times do not change when its content does) and adds about what changed.
    fs::write(f.path("patch"), noise(2, 640 << 10)).unwrap();
    sh(&format!(
        "dd if={} of={} bs=64K seek=300 conv=notrunc,fsync status=none",
        f.path("patch").display(),
        lo.dev_str()
    ));
    let second = backup_summary(&f, &[lo.dev_str()]);
    assert_eq!(
        (
            second["files_changed"].as_u64(),
            second["files_unchanged"].as_u64()
        ),
        (Some(1), Some(0)),
        "{second}"
    );
    let added = second["bytes_added"].as_u64().unwrap();
    assert!(added < 2 << 20, "640 KiB changed, {added} bytes added");

    // Both snapshots through the mount: each equals the device as it was; the newer one's
    // file system mounts read-only from the mount (the proxy pattern) and holds the files.
    let m = Mounted::new(&f, &[]);
    let listing = super::mount::names(&m.path);
    let dated: Vec<&String> = listing.iter().filter(|n| n.starts_with("20")).collect();
    assert_eq!(dated.len(), 2, "{listing:?}");
    let old = m.path.join(dated[0]).join("dev").join(&name);
    let new = m.path.join("latest").join("dev").join(&name);
    assert_eq!(fs::read(&old).unwrap(), fs::read(&before).unwrap());
    assert_eq!(fs::read(&new).unwrap(), fs::read(&image).unwrap());
    assert_ne!(fs::read(&before).unwrap(), fs::read(&image).unwrap());
    {
        let inside = KernelMount::new(&["-o", "ro,loop"], &old, &f.path("inside"));
        assert_same_tree_content(&content, &inside.0);
    }
}

/// The files of `a` are in `b` with the same content (a file system's own entries, such as
/// ext4's `lost+found`, may be there besides).
fn assert_same_tree_content(a: &Path, b: &Path) {
    for e in fs::read_dir(a).unwrap() {
        let e = e.unwrap();
        let there = b.join(e.file_name());
        assert_eq!(
            fs::read(e.path()).unwrap(),
            fs::read(&there).unwrap_or_else(|err| panic!("{}: {err}", there.display())),
            "{}",
            there.display()
        );
    }
}

#[test]
fn devices_in_a_tree_stay_nodes_unless_asked_and_a_named_symlink_to_one_is_read() {
    let test = "devices_in_a_tree_stay_nodes_unless_asked_and_a_named_symlink_to_one_is_read";
    if !have_root(test) {
        return;
    }
    let f = Fixture::new();
    let image = f.path("disk.img");
    let mut data = noise(3, 1 << 20);
    data.resize(4 << 20, 0);
    fs::write(&image, &data).unwrap();
    let lo = Loop::attach(&image);
    let rdev = fs::metadata(&lo.dev).unwrap().rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    sh(&format!("mknod {}/disk b {major} {minor}", f.src_str()));
    std::os::unix::fs::symlink(&lo.dev, f.src.join("link")).unwrap();
    fs::write(f.src.join("plain"), "plain file").unwrap();

    // By default a device met in the walk is a node, and a symlink a symlink.
    f.ok(&["backup", f.src_str(), "--tag", "nodes"]);
    let out = f.path("nodes");
    f.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    let got = f.restored_src(&out);
    assert_same_tree(&f.src, &got);
    assert!(
        fs::symlink_metadata(got.join("disk"))
            .unwrap()
            .file_type()
            .is_block_device()
    );

    // --read-devices: the device's content, under the node's permissions and owner.
    f.ok(&["backup", "--read-devices", f.src_str(), "--tag", "content"]);
    let out = f.path("content");
    f.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    let got = f.restored_src(&out);
    let disk = fs::symlink_metadata(got.join("disk")).unwrap();
    assert!(disk.file_type().is_file(), "{disk:?}");
    let node = fs::symlink_metadata(f.src.join("disk")).unwrap();
    assert_eq!(disk.mode() & 0o7777, node.mode() & 0o7777);
    assert_eq!((disk.uid(), disk.gid()), (node.uid(), node.gid()));
    assert_eq!(fs::read(got.join("disk")).unwrap(), data);
    assert!(
        fs::symlink_metadata(got.join("link"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "a symlink met in the walk is never followed"
    );
    assert_eq!(fs::read(got.join("plain")).unwrap(), b"plain file");

    // A symlink named as the source is followed when it leads to a block device.
    let link = f.src.join("link");
    f.ok(&["backup", link.to_str().unwrap(), "--tag", "named"]);
    let out = f.path("named");
    f.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    let got = f.restored_src(&out).join("link");
    assert!(fs::symlink_metadata(&got).unwrap().file_type().is_file());
    assert_eq!(fs::read(&got).unwrap(), data);
}

#[test]
fn an_image_restores_onto_a_device_or_file_and_unsafe_targets_are_refused() {
    let test = "an_image_restores_onto_a_device_or_file_and_unsafe_targets_are_refused";
    if !have_root(test) {
        return;
    }
    let f = Fixture::new();
    let content = f.path("content");
    fs::create_dir(&content).unwrap();
    fs::write(content.join("noise"), noise(4, 2 << 20)).unwrap();
    fs::write(content.join("notes.txt"), "restore me\n".repeat(500)).unwrap();
    let image = f.path("disk.img");
    ext4_image(&image, 32, &content);
    let source = Loop::attach(&image);
    f.ok(&["backup", source.dev_str()]);
    let want = fs::read(&image).unwrap();
    let spec = format!("latest:{}", source.dev_str());

    // A 40 MiB device full of old data: larger than the image, and holes must be zeroed.
    let old = noise(5, 40 << 20);
    let backing = f.path("target.img");
    fs::write(&backing, &old).unwrap();
    let target = Loop::attach(&backing);
    let read_target = || fs::read(&target.dev).unwrap();

    // Refused, and nothing written: no --overwrite; a mounted device (the source itself,
    // which holds the file system); no file named.
    let err = f.fails(&["restore", &spec, "--target", target.dev_str()], 14);
    assert!(err.contains("--overwrite"), "{err}");
    assert!(read_target() == old);
    {
        let _mounted = KernelMount::new(&["-o", "ro"], &source.dev, &f.path("busy"));
        let err = f.fails(
            &[
                "restore",
                &spec,
                "--target",
                source.dev_str(),
                "--overwrite",
            ],
            14,
        );
        assert!(err.contains("mounted or in use"), "{err}");
    }
    let err = f.fails(&["restore", "latest", "--target", target.dev_str()], 2);
    assert!(err.contains("SNAP:PATH"), "{err}");
    let small_backing = f.path("small.img");
    fs::write(&small_backing, noise(6, 8 << 20)).unwrap();
    let small = Loop::attach(&small_backing);
    let err = f.fails(
        &["restore", &spec, "--target", small.dev_str(), "--overwrite"],
        14,
    );
    assert!(err.contains("too small"), "{err}");
    assert_eq!(fs::read(&small.dev).unwrap(), noise(6, 8 << 20));

    // Written: the image, its holes zeroed over the old data, the rest of the device as it
    // was; the file system in it checks clean.
    let out = f.ok(&[
        "restore",
        &spec,
        "--target",
        target.dev_str(),
        "--overwrite",
    ]);
    assert!(out.contains("verified 32.0 MiB"), "{out}");
    let got = read_target();
    assert!(
        got[..want.len()] == want[..],
        "the device does not hold the image"
    );
    assert!(
        got[want.len()..] == old[want.len()..],
        "bytes past the image changed"
    );
    sh(&format!("e2fsck -n -f {} >/dev/null", target.dev_str()));

    // --sparse onto a fresh (zero) device: the holes are not written, so its backing file
    // stays sparse, and the content is the image.
    let fresh_backing = f.path("fresh.img");
    fs::File::create(&fresh_backing)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let fresh = Loop::attach(&fresh_backing);
    f.ok(&[
        "restore",
        &spec,
        "--target",
        fresh.dev_str(),
        "--overwrite",
        "--sparse",
    ]);
    assert!(fs::read(&fresh.dev).unwrap() == want);
    drop(fresh);
    assert!(
        allocated(&fresh_backing) < 16 << 20,
        "--sparse wrote the holes: {} bytes allocated",
        allocated(&fresh_backing)
    );

    // An existing regular file: replaced by the image, sparse.
    let file = f.path("image-copy");
    fs::write(&file, noise(7, 1 << 20)).unwrap();
    f.ok(&[
        "restore",
        &spec,
        "--target",
        file.to_str().unwrap(),
        "--overwrite",
    ]);
    assert!(fs::read(&file).unwrap() == want);
    assert!(
        allocated(&file) < 16 << 20,
        "{} bytes allocated",
        allocated(&file)
    );
}

/// Runs `cmd` with `args`, asserts it worked, returns its standard output.
fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_disk_image_in_the_mount_serves_its_partitions_and_a_writable_qemu_overlay() {
    let test = "a_disk_image_in_the_mount_serves_its_partitions_and_a_writable_qemu_overlay";
    if !have_root(test) || !can_mount(test) {
        return;
    }
    let f = Fixture::new();
    // A 48 MiB disk with a partition table and an ext4 file system in its second partition.
    let disk = f.src.join("disk.img");
    fs::File::create(&disk).unwrap().set_len(48 << 20).unwrap();
    sh(&format!(
        "printf 'label: dos\\nstart=2048, size=8192, type=83\\nstart=10240, type=83\\n' | sfdisk -q {}",
        disk.display()
    ));
    let content = f.path("content");
    fs::create_dir(&content).unwrap();
    fs::write(content.join("guest-file"), noise(8, 3 << 20)).unwrap();
    {
        let lo = Loop::attach_partitioned(&disk, false);
        let part = format!("{}p2", lo.dev_str());
        run_ok("mkfs.ext4", &["-q", "-d", content.to_str().unwrap(), &part]);
    }
    let original = fs::read(&disk).unwrap();
    f.ok(&["backup", f.src_str()]);
    let m = Mounted::new(&f, &[]);
    let in_mount = m.src_in(&f, "latest").join("disk.img");

    // File-level recovery: the partitions of the image in the mount, read-only.
    {
        let lo = Loop::attach_partitioned(&in_mount, true);
        let part = PathBuf::from(format!("{}p2", lo.dev_str()));
        let inside = KernelMount::new(&["-o", "ro"], &part, &f.path("guest"));
        assert_same_tree_content(&content, &inside.0);
    }

    // Instant recovery: a qcow2 overlay on the image in the mount takes writes, reads the
    // rest from the backup, and checks clean; the backup is untouched.
    let overlay = f.path("overlay.qcow2");
    run_ok(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            in_mount.to_str().unwrap(),
            "-F",
            "raw",
            overlay.to_str().unwrap(),
        ],
    );
    let writes: [(u64, u8); 4] = [
        (0, 0x11),
        (7 << 20, 0x22),
        (20 << 20, 0x33),
        (47 << 20, 0x44),
    ];
    let mut cmds: Vec<String> = Vec::new();
    for (at, p) in writes {
        cmds.push(format!("write -q -P {p} {at} 65536"));
        cmds.push(format!("read -q -P {p} {at} 65536"));
    }
    // Reads of parts it never wrote come from the backing image.
    cmds.push("read -q 30M 1M".into());
    let mut args: Vec<&str> = Vec::new();
    for c in &cmds {
        args.extend(["-c", c.as_str()]);
    }
    args.push(overlay.to_str().unwrap());
    run_ok("qemu-io", &args);
    run_ok("qemu-img", &["check", "-q", overlay.to_str().unwrap()]);
    let flat = f.path("flat.raw");
    run_ok(
        "qemu-img",
        &[
            "convert",
            "-f",
            "qcow2",
            "-O",
            "raw",
            overlay.to_str().unwrap(),
            flat.to_str().unwrap(),
        ],
    );
    let mut want = original.clone();
    for (at, p) in writes {
        let at = usize::try_from(at).unwrap();
        want[at..at + 65536].fill(p);
    }
    assert!(
        fs::read(&flat).unwrap() == want,
        "the overlay's disk is not the backup plus the writes"
    );
    assert!(fs::read(&in_mount).unwrap() == original);
}
