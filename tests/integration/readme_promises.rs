//! Promises the README makes that no other test held it to: `--one-file-system`, prune's
//! default `--max-unused` and its size forms, copy's read-back catching a byte changed on its
//! way to the destination, and EIO (never old or wrong bytes) for an open file whose snapshot
//! `forget` and `prune` removed.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use chronofs::storage::{LocalStorage, NewFile, Storage};

use super::mount::{Mounted, can_mount};
use super::util::{Fixture, have_root, noise, repo_state, sh};

#[test]
fn one_file_system_keeps_mount_points_as_empty_directories() {
    if !have_root("one_file_system_keeps_mount_points_as_empty_directories (mounts a tmpfs)") {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("here"), b"on the source's file system").unwrap();
    let mnt = f.src.join("mounted");
    fs::create_dir(&mnt).unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=4m chronofs-oneFS '{}'",
        mnt.display()
    ));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    fs::write(mnt.join("elsewhere"), b"on another file system").unwrap();
    let inside = format!("{}/mounted/elsewhere", f.src_str());
    let here = format!("{}/here", f.src_str());

    f.ok(&["backup", "--one-file-system", f.src_str(), "--tag", "x"]);
    let ls = f.ok(&["ls", "latest"]);
    assert!(ls.lines().any(|l| l == here), "{ls}");
    assert!(
        ls.lines().any(|l| l == format!("{}/mounted", f.src_str())),
        "the mount point is kept: {ls}"
    );
    assert!(!ls.contains(&inside), "nothing below the mount point: {ls}");
    // Without the option, the other file system is backed up too.
    f.ok(&["backup", f.src_str()]);
    let ls = f.ok(&["ls", "latest"]);
    assert!(ls.lines().any(|l| l == inside), "{ls}");
}

fn prune_report(f: &Fixture, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["prune", "--dry-run", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&f.ok(&all)).unwrap()
}

#[test]
fn prune_max_unused_default_and_size_forms() {
    // 1 MiB packs of small chunks: forgetting half the files leaves many half-used packs.
    let f = Fixture::with_init(super::maintain::SMALL);
    for i in 0..24u64 {
        fs::write(f.src.join(format!("f{i}")), noise(i, 200_000)).unwrap();
    }
    f.ok(&["backup", "-q", f.src_str()]);
    for i in (0..24u64).step_by(2) {
        fs::remove_file(f.src.join(format!("f{i}"))).unwrap();
    }
    f.ok(&["backup", "-q", f.src_str()]);
    f.ok(&["forget", "--keep-last", "1"]);
    let kept = |r: &serde_json::Value| r["unused_bytes_kept"].as_u64().unwrap();
    let used = |r: &serde_json::Value| r["bytes_after"].as_u64().unwrap() - kept(r);

    let unlimited = prune_report(&f, &["--max-unused", "unlimited"]);
    assert_eq!(unlimited["packs_repacked"], 0);
    let waste = kept(&unlimited);
    assert!(
        waste > 1 << 20,
        "the scenario leaves unused data: {unlimited}"
    );

    // The default is 10% of what remains after pruning.
    let default = prune_report(&f, &[]);
    assert!(default["packs_repacked"].as_u64().unwrap() > 0, "{default}");
    assert!(
        kept(&default) as f64 <= used(&default) as f64 * 10.0 / 90.0 + 1.0,
        "{default}"
    );
    assert_eq!(
        prune_report(&f, &["--max-unused", "10%"])["unused_bytes_kept"],
        kept(&default)
    );

    // Sizes: what is left unused stays within the size given.
    for (arg, limit) in [
        ("0", 0u64),
        ("512K", 512 << 10),
        ("1M", 1 << 20),
        ("2m", 2 << 20),
    ] {
        let r = prune_report(&f, &["--max-unused", arg]);
        assert!(kept(&r) <= limit, "--max-unused {arg}: {r}");
    }
    assert!(kept(&prune_report(&f, &["--max-unused", "0"])) == 0);
    // And the real prune does what its dry run said.
    let dry = prune_report(&f, &["--max-unused", "1M"]);
    let real: serde_json::Value =
        serde_json::from_str(&f.ok(&["prune", "--json", "--max-unused", "1M"])).unwrap();
    assert_eq!(real["unused_bytes_kept"], dry["unused_bytes_kept"]);
    f.ok(&["check", "--read-data"]);
}

/// Destination storage whose packs lose one bit on their way to disk.
struct FlipOnWrite(LocalStorage);

struct FlippingFile<'a>(Box<dyn NewFile + 'a>, bool);

impl NewFile for FlippingFile<'_> {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if self.1 || data.len() < 100 {
            return self.0.append(data);
        }
        self.1 = true;
        let mut bad = data.to_vec();
        bad[50] ^= 0x08;
        self.0.append(&bad)
    }
    fn commit(self: Box<Self>, path: &str) -> io::Result<()> {
        self.0.commit(path)
    }
}

impl Storage for FlipOnWrite {
    fn read(&self, p: &str, limit: u64) -> io::Result<Vec<u8>> {
        self.0.read(p, limit)
    }
    fn read_at(&self, p: &str, o: u64, b: &mut [u8]) -> io::Result<()> {
        self.0.read_at(p, o, b)
    }
    fn len(&self, p: &str) -> io::Result<u64> {
        self.0.len(p)
    }
    fn list(&self, d: &str) -> io::Result<Vec<String>> {
        self.0.list(d)
    }
    fn list_times(&self, d: &str) -> io::Result<Vec<(String, i64)>> {
        self.0.list_times(d)
    }
    fn remove(&self, p: &str) -> io::Result<()> {
        self.0.remove(p)
    }
    fn create_dir(&self, d: &str) -> io::Result<()> {
        self.0.create_dir(d)
    }
    fn write(&self, p: &str, data: &[u8]) -> io::Result<()> {
        self.0.write(p, data)
    }
    fn replace(&self, p: &str, data: &[u8]) -> io::Result<()> {
        self.0.replace(p, data)
    }
    fn create_new<'a>(&'a self, dir: &str) -> io::Result<Box<dyn NewFile + 'a>> {
        Ok(Box::new(FlippingFile(self.0.create_new(dir)?, false)))
    }
}

#[test]
fn copy_reads_back_and_catches_a_byte_changed_on_the_way() {
    let f = Fixture::new();
    fs::write(f.src.join("data"), noise(3, 400_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let dest = f.path("offsite");
    let out = super::util::bin()
        .args(["--repo", dest.to_str().unwrap(), "init"])
        .args(super::util::CHEAP_KDF)
        .output()
        .unwrap();
    assert!(out.status.success());
    let from = super::util::open_repo(&f.repo);
    let to = super::util::open_on(Arc::new(FlipOnWrite(LocalStorage::new(&dest))), &dest);
    to.load_index_strict().unwrap();
    let listing = chronofs::snapshot::list(&from).unwrap();
    let err = chronofs::maintain::copy::copy(
        &from,
        &to,
        &listing.snapshots,
        &(),
        None,
        &chronofs::progress::Progress::default(),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 11, "{err}");
    assert!(err.to_string().contains("data/"), "{err}");
    assert!(
        repo_state(&dest).snapshots.is_empty(),
        "no snapshot is written over a bad pack"
    );
}

#[test]
fn an_open_file_of_a_pruned_snapshot_reads_eio_never_wrong_bytes() {
    if !can_mount("an_open_file_of_a_pruned_snapshot_reads_eio_never_wrong_bytes") {
        return;
    }
    let f = Fixture::new();
    let old = noise(8, 6 << 20);
    fs::write(f.src.join("file"), &old).unwrap();
    f.ok(&["backup", f.src_str()]);
    let first = f.ok(&["snapshots", "--json"]);
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let name = first[0]["name"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(f.src.join("file"), noise(9, 6 << 20)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let m = Mounted::new(&f, &["--cache-size", "1M"]);
    let path = m
        .path
        .join(&name)
        .join(f.src.strip_prefix("/").unwrap())
        .join("file");
    let open = fs::File::open(&path).unwrap();
    // The first snapshot is forgotten and its data pruned while the file is open.
    f.ok(&["forget", &name]);
    let r: serde_json::Value =
        serde_json::from_str(&f.ok(&["prune", "--json", "--max-unused", "0"])).unwrap();
    assert!(r["bytes_reclaimed"].as_u64().unwrap() >= 6 << 20, "{r}");
    let mut buf = vec![0u8; 1 << 20];
    let mut saw_eio = false;
    for at in (0..6u64 << 20).step_by(1 << 20) {
        match open.read_at(&mut buf, at) {
            Ok(n) => assert!(
                buf[..n] == old[at as usize..at as usize + n],
                "wrong bytes at {at} of a pruned file"
            ),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
                saw_eio = true;
            }
        }
    }
    assert!(saw_eio, "the pruned data was still served");
}
