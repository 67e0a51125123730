//! `backup --consistent`: a writer keeps writing while the backup runs, and what comes back
//! is one state the writer really had (a counter file and a log that agree); the restored
//! file system checks clean; what was taken is given back on success, on failure, at the
//! freeze timeout and on SIGTERM (a btrfs snapshot deleted, a frozen file system thawed).
//! Root, loop devices; btrfs, ext4 and xfs.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::images::{KernelMount, Loop, backup_json, ext4_image};
use super::util::{Fixture, have_root, noise, sh};

/// A thread that appends line `i` to `zlog` and then sets `counter` to `i`, for i = 1, 2, ...
/// until stopped, as an application that wants to survive a crash does: the line is synced
/// before the counter moves, and the counter is written to a temporary file, synced and
/// renamed. So in any state a crash (or a crash-consistent snapshot) can leave, the log
/// holds lines 1..=L and the counter says L or L - 1.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Writer {
    fn start(dir: &Path) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, flag) = (dir.to_path_buf(), Arc::clone(&stop));
        fs::write(dir.join("counter"), "0").unwrap();
        fs::write(dir.join("zlog"), "").unwrap();
        let handle = std::thread::spawn(move || {
            let mut log = fs::OpenOptions::new()
                .append(true)
                .open(dir.join("zlog"))
                .unwrap();
            let mut i = 0u64;
            while !flag.load(Ordering::Relaxed) {
                i += 1;
                log.write_all(format!("{i}\n").as_bytes()).unwrap();
                log.sync_data().unwrap();
                let mut tmp = fs::File::create(dir.join("counter.tmp")).unwrap();
                tmp.write_all(i.to_string().as_bytes()).unwrap();
                tmp.sync_data().unwrap();
                fs::rename(dir.join("counter.tmp"), dir.join("counter")).unwrap();
            }
            i
        });
        // Let it get going.
        std::thread::sleep(Duration::from_millis(100));
        Writer {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops it; returns how many lines it wrote.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The counter and the log in `dir` are a state the writer had: lines 1..=L in order, and a
/// counter of L or L - 1. Returns L.
fn assert_one_instant(dir: &Path) -> u64 {
    let counter: u64 = fs::read_to_string(dir.join("counter"))
        .unwrap()
        .parse()
        .unwrap();
    let log = fs::read_to_string(dir.join("zlog")).unwrap();
    assert!(log.is_empty() || log.ends_with('\n'), "a torn last line");
    let lines: Vec<u64> = log.lines().map(|l| l.parse().unwrap()).collect();
    let expected: Vec<u64> = (1..=lines.len() as u64).collect();
    assert!(lines == expected, "the log is not 1..={}", lines.len());
    let l = lines.len() as u64;
    assert!(
        counter == l || counter + 1 == l,
        "counter {counter} and a log of {l} lines were never true at once"
    );
    l
}

/// A btrfs file system on a loop device, mounted, with a subvolume `vol`.
fn btrfs(f: &Fixture) -> (Loop, KernelMount, PathBuf) {
    let image = f.path("btrfs.img");
    fs::File::create(&image)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    sh(&format!(
        "mkfs.btrfs -q -f {} >/dev/null 2>&1",
        image.display()
    ));
    let lo = Loop::attach(&image);
    let m = KernelMount::new(&[], &lo.dev, &f.path("btrfs"));
    let vol = m.0.join("vol");
    sh(&format!("btrfs -q subvolume create {}", vol.display()));
    (lo, m, vol)
}

/// The subvolumes of the btrfs file system mounted at `m`, by path from its top.
fn subvolumes(m: &Path) -> Vec<String> {
    let out = Command::new("btrfs")
        .args(["subvolume", "list"])
        .arg(m)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut all: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split(" path ").nth(1).map(str::to_string))
        .collect();
    all.sort();
    all
}

#[test]
fn a_btrfs_snapshot_backup_of_a_busy_subvolume_holds_one_instant_and_leaves_nothing_behind() {
    let test =
        "a_btrfs_snapshot_backup_of_a_busy_subvolume_holds_one_instant_and_leaves_nothing_behind";
    if !have_root(test) {
        return;
    }
    let f = Fixture::new();
    let (_lo, m, vol) = btrfs(&f);
    // Between the counter and the log in name order: 24 MiB that take a while to read, with
    // one reader, so that a backup of the live files reads them far apart.
    fs::write(vol.join("middle"), noise(1, 24 << 20)).unwrap();
    let writer = Writer::start(&vol);
    let vol_s = vol.to_str().unwrap();
    let out = backup_json(
        &f,
        &[
            "--consistent",
            "btrfs-snapshot",
            "--read-concurrency",
            "1",
            "--exclude",
            "*.tmp",
            vol_s,
        ],
    );
    let written = writer.stop();
    assert_eq!(out["consistency"]["method"], "btrfs-snapshot", "{out}");
    assert_eq!(out["consistency"]["held_ns"], 0, "{out}");
    assert_eq!(out["summary"]["errors"], 0, "{out}");

    // The snapshot was deleted, its holding directory too, and neither is in the backup.
    assert_eq!(subvolumes(&m.0), vec!["vol".to_string()]);
    let left: Vec<String> = fs::read_dir(&vol)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".chronofs"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let listing = f.ok(&["ls", "latest", vol_s]);
    assert!(!listing.contains(".chronofs"), "{listing}");

    // Restored under the subvolume's own path: one instant of the writer.
    let target = f.path("restored");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let got = target.join(vol.strip_prefix("/").unwrap());
    let lines = assert_one_instant(&got);
    assert!(lines > 0 && lines <= written, "{lines} of {written}");
    assert!(fs::read(got.join("middle")).unwrap() == noise(1, 24 << 20));

    // The next backup compares against it: the unchanged file is not read again.
    let again = backup_json(&f, &["--consistent", "btrfs-snapshot", vol_s]);
    assert_eq!(again["summary"]["files_unchanged"], 1, "{again}");
    assert_eq!(subvolumes(&m.0), vec!["vol".to_string()]);
}

/// A subvolume nested in the one backed up: the outer snapshot holds it as an empty directory
/// (btrfs snapshots stop at subvolume boundaries), so it gets a snapshot of its own, is read
/// from it, recorded among the subjects, comes back whole, and leaves nothing behind; a file
/// system mounted below the source (which the snapshot holds as its bare mount point) is read
/// live. With `--one-file-system` both stay out, as they do without `--consistent`.
#[test]
fn nested_subvolumes_and_mounts_below_a_snapshotted_source_come_back_whole() {
    let test = "nested_subvolumes_and_mounts_below_a_snapshotted_source_come_back_whole";
    if !have_root(test) {
        return;
    }
    let f = Fixture::new();
    let (_lo, m, vol) = btrfs(&f);
    fs::write(vol.join("outer"), b"outer").unwrap();
    let inner = vol.join("inner");
    sh(&format!("btrfs -q subvolume create {}", inner.display()));
    fs::create_dir_all(inner.join("deep/er")).unwrap();
    fs::write(inner.join("deep/er/file"), noise(7, 300_000)).unwrap();
    fs::write(inner.join("top"), b"top").unwrap();
    // And a file system mounted below the source: a snapshot holds only its mount point.
    let tmp = KernelMount::new(&["-t", "tmpfs"], Path::new("none"), &vol.join("mnt"));
    fs::write(tmp.0.join("mounted"), b"mounted").unwrap();
    let vol_s = vol.to_str().unwrap();
    let out = backup_json(&f, &["--consistent", "btrfs-snapshot", vol_s]);
    assert_eq!(out["summary"]["errors"], 0, "{out}");
    let subjects = out["consistency"]["subjects"].to_string();
    assert!(
        subjects.contains(&format!("{} (subvolume", inner.display())),
        "{out}"
    );
    assert_eq!(subvolumes(&m.0), ["vol", "vol/inner"]);
    let target = f.path("restored");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    // (The directories holding the snapshots changed the times of vol and inner themselves.)
    let back = target.join(vol.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read(back.join("inner/deep/er/file")).unwrap(),
        noise(7, 300_000)
    );
    assert_eq!(fs::read(back.join("inner/top")).unwrap(), b"top");
    assert_eq!(fs::read(back.join("outer")).unwrap(), b"outer");
    assert_eq!(fs::read(back.join("mnt/mounted")).unwrap(), b"mounted");
    let mut names: Vec<_> = fs::read_dir(back.join("inner"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["deep", "top"]);

    let out = backup_json(
        &f,
        &["--consistent", "btrfs-snapshot", "--one-file-system", vol_s],
    );
    assert_eq!(out["summary"]["errors"], 0, "{out}");
    let listing = f.ok(&["ls", "latest", inner.to_str().unwrap()]);
    assert!(!listing.contains("top"), "{listing}");
    let listing = f.ok(&["ls", "latest", tmp.0.to_str().unwrap()]);
    assert!(!listing.contains("mounted"), "{listing}");
    drop(tmp);
    assert_eq!(subvolumes(&m.0), ["vol", "vol/inner"]);
}

#[test]
fn a_btrfs_snapshot_is_deleted_when_the_backup_is_stopped_by_sigterm() {
    let test = "a_btrfs_snapshot_is_deleted_when_the_backup_is_stopped_by_sigterm";
    if !have_root(test) {
        return;
    }
    let f = Fixture::new();
    let (_lo, m, vol) = btrfs(&f);
    fs::write(vol.join("big"), noise(2, 160 << 20)).unwrap();
    let stderr = stopped_by_sigterm(
        &f,
        &["--consistent", "btrfs-snapshot", vol.to_str().unwrap()],
        (Duration::from_millis(10), Duration::from_secs(60)),
        || subvolumes(&m.0).len() >= 2,
        "the snapshot appeared",
    );
    assert_eq!(subvolumes(&m.0), vec!["vol".to_string()], "{stderr}");
    assert_eq!(f.ok(&["snapshots", "--json"]).trim(), "[]");
}

/// Runs `backup ARGS`, asks `held` every `every` (for up to `within`) until it says the backup
/// holds what `--consistent` takes, then stops it with SIGTERM: it must exit with 128 + 15
/// saying it released what it held. Returns its stderr.
fn stopped_by_sigterm(
    f: &Fixture,
    args: &[&str],
    (every, within): (Duration, Duration),
    held: impl Fn() -> bool,
    what: &str,
) -> String {
    let mut child = f
        .cmd(&[&["backup"], args].concat())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !held() {
        assert!(started.elapsed() < within, "never {what}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before it could be stopped once {what}"
        );
        std::thread::sleep(every);
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(128 + 15), "{stderr}");
    assert!(stderr.contains("released"), "{stderr}");
    stderr
}

/// A shell that writes a file into `dir` every 10 ms: it waits in the kernel's freeze lock
/// (its wait channel says `percpu_rwsem_wait`) exactly while the file system is frozen.
struct Probe(std::process::Child);

impl Probe {
    fn start(dir: &Path) -> Probe {
        let script = format!(
            "while :; do echo x > '{}'; sleep 0.01; done",
            dir.join("probe").display()
        );
        Probe(Command::new("sh").arg("-c").arg(script).spawn().unwrap())
    }

    fn blocked_by_a_freeze(&self) -> bool {
        fs::read_to_string(format!("/proc/{}/wchan", self.0.id()))
            .is_ok_and(|w| w.contains("percpu_rwsem"))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGTERM while `backup --consistent freeze` holds a file system frozen: the signal thread
/// thaws it before the process ends (exit 143, "released"), a writer blocked on it goes on,
/// and no snapshot is written. Without the thaw, every writer of that file system would wait
/// until someone ran `fsfreeze --unfreeze`.
#[test]
fn a_frozen_file_system_is_thawed_when_the_backup_is_stopped_by_sigterm() {
    let test = "a_frozen_file_system_is_thawed_when_the_backup_is_stopped_by_sigterm";
    if !have_root(test) {
        return;
    }
    let f = Fixture::new();
    let image = f.path("fs.img");
    let empty = f.path("empty");
    fs::create_dir(&empty).unwrap();
    ext4_image(&image, 256, &empty);
    let lo = Loop::attach(&image);
    let m = KernelMount::new(&[], &lo.dev, &f.path("mounted"));
    // Data to read while frozen (zeros would be passed over as holes).
    fs::write(m.0.join("fill"), noise(4, 200 << 20)).unwrap();
    let probe = Probe::start(&m.0);
    let stderr = stopped_by_sigterm(
        &f,
        &["--consistent", "freeze", lo.dev_str()],
        (Duration::from_millis(1), Duration::from_secs(120)),
        || probe.blocked_by_a_freeze(),
        "the file system was seen frozen",
    );
    // Thawed: the probe's write goes through (it would wait forever on a frozen one).
    let started = Instant::now();
    while probe.blocked_by_a_freeze() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still frozen a minute after the backup ended: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    fs::write(m.0.join("after"), "after").unwrap();
    drop(probe);
    assert_eq!(f.ok(&["snapshots", "--json"]).trim(), "[]");
}

#[test]
fn a_frozen_ext4_under_a_writer_is_read_whole_and_restores_to_a_clean_file_system() {
    let test = "a_frozen_ext4_under_a_writer_is_read_whole_and_restores_to_a_clean_file_system";
    if have_root(test) {
        frozen_under_a_writer(FileSystem::Ext4);
    }
}

#[test]
fn a_frozen_xfs_under_a_writer_is_read_whole_and_restores_to_a_clean_file_system() {
    let test = "a_frozen_xfs_under_a_writer_is_read_whole_and_restores_to_a_clean_file_system";
    if have_root(test) {
        frozen_under_a_writer(FileSystem::Xfs);
    }
}

/// A device that is held (here by an exclusive open, as a device-mapper target or an md array
/// holds its members) but has no mount to freeze is refused rather than read unfrozen; once
/// let go, it is read as an unmounted device.
#[test]
fn a_held_device_without_a_mount_is_refused_for_freeze_and_read_once_free() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let test = "a_held_device_without_a_mount_is_refused_for_freeze_and_read_once_free";
    if !have_root(test) {
        return;
    }
    let f = Fixture::new();
    let image = f.path("disk.img");
    fs::write(&image, noise(5, 4 << 20)).unwrap();
    let lo = Loop::attach(&image);
    let holder = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(&lo.dev)
        .unwrap();
    let err = f.fails(&["backup", "--consistent", "freeze", lo.dev_str()], 14);
    assert!(err.contains("is in use"), "{err}");
    assert_eq!(f.ok(&["snapshots", "--json"]).trim(), "[]");
    drop(holder);
    let out = backup_json(&f, &["--consistent", "freeze", lo.dev_str()]);
    assert_eq!(
        out["consistency"]["subjects"][0],
        format!("{} (not mounted)", lo.dev_str()),
        "{out}"
    );
}

#[test]
fn a_frozen_btrfs_under_a_writer_is_read_whole_and_restores_to_a_clean_file_system() {
    let test = "a_frozen_btrfs_under_a_writer_is_read_whole_and_restores_to_a_clean_file_system";
    if have_root(test) {
        frozen_under_a_writer(FileSystem::Btrfs);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileSystem {
    Ext4,
    Xfs,
    Btrfs,
}

/// An empty file system of `kind` in a new image file.
fn make_fs(f: &Fixture, kind: FileSystem) -> PathBuf {
    let image = f.path("fs.img");
    match kind {
        FileSystem::Ext4 => {
            let empty = f.path("empty");
            fs::create_dir(&empty).unwrap();
            ext4_image(&image, 96, &empty);
        }
        FileSystem::Xfs => {
            // 300 MiB: the smallest xfs that mkfs.xfs makes.
            fs::File::create(&image)
                .unwrap()
                .set_len(300 << 20)
                .unwrap();
            sh(&format!("mkfs.xfs -q -f {}", image.display()));
        }
        FileSystem::Btrfs => {
            fs::File::create(&image)
                .unwrap()
                .set_len(256 << 20)
                .unwrap();
            sh(&format!(
                "mkfs.btrfs -q -f {} >/dev/null 2>&1",
                image.display()
            ));
        }
    }
    image
}

/// The file system check of `kind` passes on `image`, changing nothing.
fn assert_checks_clean(kind: FileSystem, image: &Path) {
    let out = match kind {
        FileSystem::Ext4 => Command::new("e2fsck")
            .args(["-n", "-f"])
            .arg(image)
            .output(),
        FileSystem::Xfs => Command::new("xfs_repair").arg("-n").arg(image).output(),
        FileSystem::Btrfs => Command::new("btrfs")
            .args(["check", "--readonly"])
            .arg(image)
            .output(),
    }
    .unwrap();
    assert!(
        out.status.success(),
        "{kind:?} check of {}: {}{}",
        image.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A writer writes into a mounted file system of `kind` while `backup --consistent freeze`
/// reads its device; refusals, the timeout, the record, the thaw, and the restored image.
fn frozen_under_a_writer(kind: FileSystem) {
    let f = Fixture::new();
    let image = make_fs(&f, kind);
    let lo = Loop::attach(&image);
    let m = KernelMount::new(&[], &lo.dev, &f.path("mounted"));
    fs::write(m.0.join("middle"), noise(3, 8 << 20)).unwrap();
    let writer = Writer::start(&m.0);

    // Refused before anything is frozen: a repository on the file system to freeze.
    let inside = Fixture::attach(Some(m.0.join("repo").to_str().unwrap()), Vec::new());
    inside.ok(&["init"]);
    let err = inside.fails(&["backup", "--consistent", "freeze", lo.dev_str()], 14);
    assert!(err.contains("on the file system to freeze"), "{err}");
    // And a source that is not a device.
    let err = f.fails(&["backup", "--consistent", "freeze", f.src_str()], 2);
    assert!(err.contains("not a block device"), "{err}");

    // Frozen for at most 0 s: thawed at once, no snapshot.
    let err = f.fails(
        &[
            "backup",
            "--consistent",
            "freeze",
            "--freeze-timeout",
            "0",
            lo.dev_str(),
        ],
        1,
    );
    assert!(err.contains("freeze-timeout"), "{err}");
    assert_eq!(f.ok(&["snapshots", "--json"]).trim(), "[]");

    let out = backup_json(&f, &["--consistent", "freeze", lo.dev_str()]);
    let written = writer.stop();
    let c = &out["consistency"];
    assert_eq!(c["method"], "freeze", "{out}");
    assert!(c["held_ns"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(
        c["subjects"][0],
        format!("{} (frozen)", m.0.display()),
        "{out}"
    );
    // Thawed: the file system takes writes again (this would hang if it were still frozen).
    fs::write(m.0.join("after"), "after").unwrap();
    let cat = f.ok(&["cat", "snapshot", "latest"]);
    assert!(cat.contains("\"method\": \"freeze\""), "{cat}");
    drop(m);

    // The image restores to a file system that checks clean and holds one instant.
    let restored = f.path("restored.img");
    fs::write(&restored, "").unwrap();
    f.ok(&[
        "restore",
        &format!("latest:{}", lo.dev_str()),
        "--target",
        restored.to_str().unwrap(),
        "--overwrite",
    ]);
    // ext4's and btrfs's freezes leave them clean (btrfs commits its transaction, which
    // drops the log of the writer's fsyncs); xfs's leaves its log to replay at the next
    // mount, as after a crash (which the mount does; the check after it must then pass).
    if kind != FileSystem::Xfs {
        assert_checks_clean(kind, &restored);
    }
    let inside = KernelMount::new(&["-o", "loop"], &restored, &f.path("check"));
    let lines = assert_one_instant(&inside.0);
    assert!(lines > 0 && lines <= written, "{lines} of {written}");
    assert!(fs::read(inside.0.join("middle")).unwrap() == noise(3, 8 << 20));
    drop(inside);
    assert_checks_clean(kind, &restored);
}
