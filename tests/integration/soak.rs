//! Soak: for a bounded time, three hosts back up trees that change between and during their
//! runs, a `forget --prune` loop runs beside them, a mount reads and verifies files of the
//! snapshots it shows, and a chaos thread SIGSTOPs (past the grace period, sometimes) and
//! SIGKILLs backups and prunes at random. At the end a prune finishes the job, `check
//! --read-data` is clean, and every snapshot recorded as committed that is still listed
//! restores exactly as its tree was when it was taken. Run on a directory and on Garage; the
//! counts each run survived are printed (and kept in bench/RESULTS.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::mount::{Mounted, can_mount};
use super::util::Fixture;

/// What the chaos did and what survived it.
#[derive(Default)]
struct Counts {
    backups_ok: AtomicU64,
    backups_revoked: AtomicU64,
    backups_killed: AtomicU64,
    backups_other: AtomicU64,
    prunes_ok: AtomicU64,
    prunes_failed: AtomicU64,
    sets_written: AtomicU64,
    sets_replaced: AtomicU64,
    stops: AtomicU64,
    long_stops: AtomicU64,
    kills: AtomicU64,
    files_verified: AtomicU64,
    reads_refused: AtomicU64,
}

/// The blake3 of each file of a tree (by name), the churn directory left out.
type Manifest = BTreeMap<String, [u8; 32]>;

fn manifest(dir: &Path) -> Manifest {
    let mut out = Manifest::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "churn" && e.file_type().unwrap().is_file() {
            out.insert(name, *blake3::hash(&fs::read(e.path()).unwrap()).as_bytes());
        }
    }
    out
}

/// Every tree each host's backups were started on (committed or not), by host.
type Attempts = Arc<Mutex<Vec<(usize, Manifest)>>>;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Changes a few files of `dir`: new, rewritten, deleted, with contents drawn from a small
/// pool.
fn mutate(dir: &Path, rng: &mut Rng) {
    for _ in 0..3 {
        let name = format!("f{}", rng.below(12));
        let path = dir.join(&name);
        match rng.below(4) {
            0 => {
                let _ = fs::remove_file(&path);
            }
            _ => {
                // Contents come back: a new backup often stores what a forgotten snapshot
                // stored, deduplicating against packs a prune just found unused.
                let k = rng.below(16);
                let len = 50_000 + k as usize * 20_000;
                fs::write(&path, super::util::noise(1000 + k, len)).unwrap();
            }
        }
    }
}

/// Processes the chaos may act on.
type Running = Arc<Mutex<Vec<u32>>>;

fn spawn_tracked(f: &Fixture, args: &[&str], running: &Running) -> Child {
    let child = f
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    running.lock().unwrap().push(child.id());
    child
}

fn untrack(running: &Running, pid: u32) {
    running.lock().unwrap().retain(|p| *p != pid);
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Runs the soak for `secs` seconds on `f`'s repository.
pub(super) fn soak(mut f: Fixture, secs: u64, label: &str) {
    if !can_mount("soak") {
        return;
    }
    // Locks go stale after 3 s, so that some stops outlast the grace period.
    f.env.push(("CHRONOFS_LOCK_STALE_SECS".into(), "3".into()));
    // Prunes leave index files of two blobs or more in place when nothing in them changes,
    // and merge the rest: both kinds of replacement happen beside the backups and mounts.
    f.env.push(("CHRONOFS_INDEX_KEEP_BLOBS".into(), "2".into()));
    // Prunes gather settled snapshot files into sets (and forget rewrites them) as soon as
    // there are two, so that sets are written, replaced and adopted beside everything else.
    f.env.push(("CHRONOFS_GATHER_AT".into(), "2".into()));
    let f = Arc::new(f);
    let seed = u64::from(std::process::id()) << 20 | 0x9e37;
    eprintln!("soak {label}: seed {seed}");
    let counts = Arc::new(Counts::default());
    let recorded: Arc<Mutex<BTreeMap<String, (usize, Manifest)>>> = Arc::default();
    let attempts: Attempts = Arc::default();
    attempts.lock().unwrap().push((0, Manifest::new()));
    let running: Running = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let hosts = 3;
    for h in 0..hosts {
        let dir = f.src.join(format!("h{h}"));
        fs::create_dir_all(dir.join("churn")).unwrap();
    }
    // A first snapshot, so that the mount has something to show.
    f.ok(&[
        "backup",
        "-q",
        "--host",
        "h0",
        f.src.join("h0").to_str().unwrap(),
    ]);
    let mnt = Mounted::new(&f, &[]);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut threads = Vec::new();

    for h in 0..hosts {
        let (f, counts, recorded, attempts, running, stop) = (
            Arc::clone(&f),
            Arc::clone(&counts),
            Arc::clone(&recorded),
            Arc::clone(&attempts),
            Arc::clone(&running),
            Arc::clone(&stop),
        );
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(seed ^ ((h as u64 + 1) * 0x1234_5678));
            let dir = f.src.join(format!("h{h}"));
            let host = format!("h{h}");
            while !stop.load(Ordering::SeqCst) {
                mutate(&dir, &mut rng);
                let want = manifest(&dir);
                attempts.lock().unwrap().push((h, want.clone()));
                let child = spawn_tracked(
                    &f,
                    &["backup", "--json", "--host", &host, dir.to_str().unwrap()],
                    &running,
                );
                let pid = child.id();
                let out = child.wait_with_output().unwrap();
                untrack(&running, pid);
                match out.status.code() {
                    Some(0 | 3) => {
                        let line = String::from_utf8_lossy(&out.stdout);
                        let v: serde_json::Value =
                            serde_json::from_str(line.lines().last().unwrap()).unwrap();
                        let id = v["snapshot_id"].as_str().unwrap().to_string();
                        recorded.lock().unwrap().insert(id, (h, want));
                        counts.backups_ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(20) => {
                        counts.backups_revoked.fetch_add(1, Ordering::SeqCst);
                    }
                    None => {
                        counts.backups_killed.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(c) => {
                        // Exit 12 cannot happen (a backup waits for no maintenance lock);
                        // anything else is a failure of the run, reported at the end.
                        counts.backups_other.fetch_add(1, Ordering::SeqCst);
                        eprintln!(
                            "soak: backup of {host} exited {c}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
            }
        }));
    }

    // Files changing while the backups read them (left out of the verification).
    {
        let (f, stop) = (Arc::clone(&f), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0xc0ff_ee00);
            while !stop.load(Ordering::SeqCst) {
                let h = rng.below(3);
                let p = f.src.join(format!("h{h}/churn/c{}", rng.below(4)));
                if rng.below(3) == 0 {
                    let _ = fs::remove_file(&p);
                } else {
                    let _ = fs::write(&p, super::util::noise(rng.next(), 50_000));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }

    // Retention and prune, again and again.
    {
        let (f, counts, running, stop) = (
            Arc::clone(&f),
            Arc::clone(&counts),
            Arc::clone(&running),
            Arc::clone(&stop),
        );
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let child = spawn_tracked(
                    &f,
                    &[
                        "forget",
                        "--json",
                        "--keep-last",
                        "3",
                        "--group-by",
                        "host",
                        "--prune",
                    ],
                    &running,
                );
                let pid = child.id();
                let out = child.wait_with_output().unwrap();
                untrack(&running, pid);
                match out.status.code() {
                    Some(0) => {
                        // The plan, then prune's report.
                        let text = String::from_utf8_lossy(&out.stdout);
                        let report: serde_json::Value =
                            serde_json::from_str(text.lines().last().unwrap_or("")).unwrap();
                        let n = |k: &str| report[k].as_u64().unwrap();
                        counts
                            .sets_written
                            .fetch_add(n("snapshot_sets_written"), Ordering::SeqCst);
                        counts
                            .sets_replaced
                            .fetch_add(n("snapshot_sets_replaced"), Ordering::SeqCst);
                        counts.prunes_ok.fetch_add(1, Ordering::SeqCst)
                    }
                    // Killed, revoked, or waiting for a stopped prune's lock to go stale.
                    Some(12 | 20) | None => counts.prunes_failed.fetch_add(1, Ordering::SeqCst),
                    Some(c) => {
                        // What `check` finds says which snapshot lost what (for diagnosis:
                        // the soak's failures are races, rarely reproduced).
                        let check = f.run(&["check"]);
                        panic!(
                            "soak: forget --prune exited {c}: {}\ncheck: {}{}",
                            String::from_utf8_lossy(&out.stderr),
                            String::from_utf8_lossy(&check.stdout),
                            String::from_utf8_lossy(&check.stderr)
                        )
                    }
                };
                std::thread::sleep(Duration::from_millis(300));
            }
        }));
    }

    // The mount: files of the snapshots it shows read back exactly as recorded, or not at all.
    {
        let (f, counts, attempts, stop) = (
            Arc::clone(&f),
            Arc::clone(&counts),
            Arc::clone(&attempts),
            Arc::clone(&stop),
        );
        let root = mnt.path.clone();
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                verify_through_mount(&f, &root, &attempts, &counts);
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
    }

    // Chaos.
    let mut rng = Rng(seed ^ 0xdead_beef);
    let mut stopped: Vec<(u32, Instant)> = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
        stopped.retain(|(pid, until)| {
            if Instant::now() >= *until {
                signal(*pid, "-CONT");
                false
            } else {
                true
            }
        });
        let pids = running.lock().unwrap().clone();
        if pids.is_empty() {
            continue;
        }
        let pid = pids[rng.below(pids.len() as u64) as usize];
        if stopped.iter().any(|(p, _)| *p == pid) {
            continue;
        }
        match rng.below(10) {
            0..=2 => {
                signal(pid, "-KILL");
                counts.kills.fetch_add(1, Ordering::SeqCst);
            }
            3..=6 => {
                // Past the grace period (3 s) one time in two.
                let long = rng.below(2) == 0;
                let ms = if long {
                    4000 + rng.below(2000)
                } else {
                    200 + rng.below(1500)
                };
                signal(pid, "-STOP");
                stopped.push((pid, Instant::now() + Duration::from_millis(ms)));
                counts.stops.fetch_add(1, Ordering::SeqCst);
                if long {
                    counts.long_stops.fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => {}
        }
    }
    stop.store(true, Ordering::SeqCst);
    for (pid, _) in &stopped {
        signal(*pid, "-CONT");
    }
    for t in threads {
        t.join().unwrap();
    }

    // The end: a last prune, a clean check, and every recorded snapshot still listed restores
    // exactly.
    let last: serde_json::Value = serde_json::from_str(&f.ok(&["prune", "--json"])).unwrap();
    f.ok(&["check", "--read-data"]);
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    let recorded = recorded.lock().unwrap();
    let mut restored = 0;
    for s in &listed {
        let id = s["id"].as_str().unwrap();
        let Some((h, want)) = recorded.get(id) else {
            continue;
        };
        let t = f.path(&format!("restore-{id}"));
        f.ok(&["restore", id, "--target", t.to_str().unwrap()]);
        let dir = f.restored_src(&t).join(format!("h{h}"));
        assert_eq!(&manifest(&dir), want, "snapshot {id} of h{h}");
        fs::remove_dir_all(&t).unwrap();
        restored += 1;
    }
    drop(mnt);
    let c = &*counts;
    let line = format!(
        "soak {label} ({secs} s): {} backups committed, {} revoked (exit 20), {} killed, \
         {} failed otherwise; {} prunes done ({} snapshot sets written, {} replaced), {} \
         killed, revoked or waiting; {} stops ({} past \
         the grace period), {} kills; {} files verified through the mount, {} reads refused; \
         {restored} snapshots restored exactly at the end; the last prune gathered {} \
         snapshot files into {} sets and replaced {} sets",
        c.backups_ok.load(Ordering::SeqCst),
        c.backups_revoked.load(Ordering::SeqCst),
        c.backups_killed.load(Ordering::SeqCst),
        c.backups_other.load(Ordering::SeqCst),
        c.prunes_ok.load(Ordering::SeqCst),
        c.sets_written.load(Ordering::SeqCst),
        c.sets_replaced.load(Ordering::SeqCst),
        c.prunes_failed.load(Ordering::SeqCst),
        c.stops.load(Ordering::SeqCst),
        c.long_stops.load(Ordering::SeqCst),
        c.kills.load(Ordering::SeqCst),
        c.files_verified.load(Ordering::SeqCst),
        c.reads_refused.load(Ordering::SeqCst),
        last["snapshots_gathered"],
        last["snapshot_sets_written"],
        last["snapshot_sets_replaced"],
    );
    eprintln!("{line}");
    if let Ok(out) = std::env::var("CHRONOFS_SOAK_REPORT") {
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .and_then(|mut o| std::io::Write::write_all(&mut o, format!("{line}\n").as_bytes()));
    }
    assert_eq!(c.backups_other.load(Ordering::SeqCst), 0, "{line}");
    assert!(c.backups_ok.load(Ordering::SeqCst) >= 3, "{line}");
    assert!(c.prunes_ok.load(Ordering::SeqCst) >= 1, "{line}");
    assert!(c.sets_written.load(Ordering::SeqCst) >= 1, "{line}");
    assert!(
        c.kills.load(Ordering::SeqCst) + c.stops.load(Ordering::SeqCst) >= 3,
        "{line}"
    );
    assert!(restored >= 1, "{line}");
}

/// Reads every file of the newest snapshots the mount shows and checks that each host's part
/// is one of the trees that host's backups were started on (its files do not change during a
/// backup), byte for byte. A snapshot forgotten meanwhile may refuse to read (ENOENT, EIO):
/// never different bytes.
fn verify_through_mount(f: &Fixture, root: &Path, attempts: &Attempts, counts: &Counts) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut snaps: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("20"))
        })
        .collect();
    snaps.sort();
    for snap in snaps.iter().rev().take(3) {
        for h in 0..3 {
            let dir = snap
                .join(f.src.strip_prefix("/").unwrap())
                .join(format!("h{h}"));
            let Ok(rd) = fs::read_dir(&dir) else {
                continue;
            };
            let mut seen = Manifest::new();
            let mut refused = false;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "churn" {
                    continue;
                }
                match fs::read(e.path()) {
                    Ok(b) => {
                        seen.insert(name, *blake3::hash(&b).as_bytes());
                    }
                    Err(_) => refused = true,
                }
            }
            if refused {
                counts.reads_refused.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let known = attempts
                .lock()
                .unwrap()
                .iter()
                .any(|(ah, m)| *ah == h && *m == seen);
            assert!(
                known,
                "{}: the mount shows a tree no backup of h{h} was started on",
                dir.display()
            );
            counts
                .files_verified
                .fetch_add(seen.len() as u64, Ordering::SeqCst);
        }
    }
}
