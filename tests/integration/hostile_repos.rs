//! The hostile-repository suite: repositories crafted per docs/FORMAT.md with one defect
//! each (see [`super::craft`]), and every command run on each, plus the mount. Each run must
//! end with the documented exit code, in bounded time (a generous timeout) and bounded memory
//! (peak RSS from the kernel: `wait4` through GNU `time`, `VmHWM` for the mount), with a 512 KiB stack (so recursion that grows with
//! depth would show: the debug build's argument parsing alone needs more than 256 KiB), and
//! must never yield wrong bytes: every file a restore or the mount gives
//! back is exactly what was stored, and every file a restore leaves out is reported.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chronofs::format::id::{BlobId, ChunkId, Id};
use chronofs::format::pack::{BlobKind, Compression};
use chronofs::format::snapshot::Contents;
use chronofs::format::tree::{NodeKind, Piece, Xattr};

use super::craft::{Craft, Stored, dir, file, node};
use super::util::{CHEAP_KDF, PASSWORD, test_tmp};

/// A command that takes longer than this on a repository of a few KiB is hung.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Peak memory any command may reach on these repositories (their data is a few MiB at most;
/// the bound is generous so that it holds on any machine, whatever its core count).
const MEMORY_BOUND: u64 = 256 << 20;

/// What a run of the binary gave.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `chronofs --repo REPO ARGS` with a 512 KiB stack; fails the test on a timeout or a
/// peak RSS over [`MEMORY_BOUND`]. The peak is what GNU `time` reads from `wait4` for the
/// process it forks: a process spawned by this (large) test process itself would inherit
/// its peak through `vfork`.
fn run(repo: &Path, args: &[&str]) -> Ran {
    let peak_file = tempfile::NamedTempFile::new_in(test_tmp()).unwrap();
    let mut child = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(peak_file.path())
        .args([
            "-f",
            "%M",
            "sh",
            "-c",
            "ulimit -s 512 && exec \"$0\" \"$@\"",
        ])
        .arg(env!("CARGO_BIN_EXE_chronofs"))
        .env("CHRONOFS_PASSWORD", PASSWORD)
        .arg("--repo")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(format!("-{}", child.id()))
                .status();
            panic!("chronofs {args:?} hung for {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = err_reader.join().unwrap();
    let report = fs::read_to_string(peak_file.path()).unwrap();
    let peak_kib: u64 = report
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak from time: {report:?}"));
    let code = status.code().unwrap_or(-1);
    assert!(
        peak_kib << 10 < MEMORY_BOUND,
        "chronofs {args:?} peaked at {} MiB: {stderr}",
        peak_kib >> 10
    );
    assert!(
        !stderr.contains("panicked") && (0..128).contains(&code),
        "chronofs {args:?} crashed ({report}): {stderr}"
    );
    Ran {
        code,
        stdout: out_reader.join().unwrap(),
        stderr,
    }
}

/// What a correct reader does with one file of a crafted snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Fate {
    /// Restore writes it and the mount serves it, byte for byte.
    Intact,
    /// Its data is damaged: restore leaves it out and names it, the mount answers EIO.
    Damaged,
    /// What leads to it (its snapshot's root tree) cannot be read: restore writes nothing and
    /// fails, the mount (where it starts) answers EIO.
    Unreachable,
}

/// One file of a crafted snapshot: what it holds and what readers must make of it.
#[derive(Debug)]
pub(super) struct Want {
    pub(super) content: Vec<u8>,
    pub(super) fate: Fate,
}

/// The files of the latest crafted snapshot, by name under its root.
pub(super) type Expected = BTreeMap<String, Want>;

/// One crafted repository and what each command must answer.
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) build: Build,
    /// Exit codes of: snapshots, ls, restore, check, check --read-data, copy, prune, mount,
    /// and `check --read-data` on the copy (when the copy succeeds).
    pub(super) codes: [i32; 9],
}

/// How a case's repository comes to be.
pub(super) enum Build {
    /// Crafted byte for byte, plaintext (see [`super::craft`]).
    Crafted(fn(&mut Craft, &Path) -> Expected),
    /// An encrypted repository (passphrase [`PASSWORD`]) made by chronofs at the given path and
    /// then altered by someone holding some of its keys.
    Sealed(fn(&Path) -> Expected),
}

const COMMANDS: [&str; 9] = [
    "snapshots",
    "ls",
    "restore",
    "check",
    "check --read-data",
    "copy",
    "prune",
    "mount",
    "check --read-data of the copy",
];

fn case_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hostile-{name}-"))
        .tempdir_in(test_tmp())
        .unwrap()
}

/// What one restore of `latest` gave: its exit code and every file it wrote, by path.
#[derive(Debug, PartialEq)]
struct Restored {
    code: i32,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

/// Restores `latest` of `repo` into `target` (which must not exist) and holds it to
/// `expected`: intact files exactly, damaged ones absent and named, unreachable ones absent
/// after a failure. `code` is the exit code the restore must give.
fn restore_checked(
    case: &Case,
    repo: &Path,
    target: &Path,
    expected: &Expected,
    code: i32,
) -> Restored {
    let ran = run(
        repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    assert_eq!(
        ran.code,
        code,
        "{}: restore of {} exited {} (stderr: {})",
        case.name,
        repo.display(),
        ran.code,
        ran.stderr
    );
    for (name, want) in expected {
        let got = fs::symlink_metadata(target.join(name)).map(|_| fs::read(target.join(name)));
        match want.fate {
            Fate::Intact => match got {
                Ok(Ok(bytes)) => assert!(
                    bytes == want.content,
                    "{}: restore wrote wrong bytes for {name}",
                    case.name
                ),
                _ => panic!("{}: restore left out the intact {name}", case.name),
            },
            Fate::Damaged => {
                assert!(
                    got.is_err(),
                    "{}: restore wrote the damaged {name}",
                    case.name
                );
                assert!(
                    ran.code != 0 && ran.stderr.contains(name.as_str()),
                    "{}: the damaged {name} was not reported: {}",
                    case.name,
                    ran.stderr
                );
            }
            Fate::Unreachable => assert!(
                got.is_err() && ran.code != 0,
                "{}: restore wrote {name} though its snapshot cannot be read",
                case.name
            ),
        }
    }
    Restored {
        code: ran.code,
        files: files_under(target),
    }
}

/// Every regular file under `dir` (nothing if it does not exist), by path relative to it.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                todo.push(p);
            } else if meta.is_file() {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Runs every command but the mount on `case`; returns the repository and the expected files.
fn exercise(case: &Case, scratch: &Path) -> (PathBuf, Expected) {
    let repo = scratch.join("repo");
    let expected = match case.build {
        Build::Crafted(build) => build(&mut Craft::new(&repo), &repo),
        Build::Sealed(build) => build(&repo),
    };
    let want = |i: usize, ran: &Ran| {
        assert_eq!(
            ran.code, case.codes[i],
            "{}: `{}` exited {} (stderr: {})",
            case.name, COMMANDS[i], ran.code, ran.stderr
        );
        if ran.code != 0 {
            assert!(
                !ran.stderr.trim().is_empty() || !ran.stdout.is_empty(),
                "{}: `{}` failed without saying why",
                case.name,
                COMMANDS[i]
            );
        }
    };
    let listed = run(&repo, &["snapshots"]);
    want(0, &listed);
    let ls = run(&repo, &["ls", "--long", "latest"]);
    want(1, &ls);
    for out in [
        &listed.stdout,
        &ls.stdout,
        listed.stderr.as_bytes(),
        ls.stderr.as_bytes(),
    ] {
        assert!(
            !out.contains(&0x1b),
            "{}: an escape sequence reached the terminal",
            case.name
        );
    }
    let before = restore_checked(
        case,
        &repo,
        &scratch.join("restored"),
        &expected,
        case.codes[2],
    );
    want(3, &run(&repo, &["check"]));
    want(4, &run(&repo, &["check", "--read-data"]));
    let other = scratch.join("other");
    // A copy keeps the encryption of its source (a plaintext one keeps its ids too).
    let mut init = vec!["init"];
    match case.build {
        Build::Crafted(_) => init.extend(["--encryption", "none"]),
        Build::Sealed(_) => init.extend(CHEAP_KDF),
    }
    assert_eq!(run(&other, &init).code, 0);
    let copied = run(&repo, &["copy", "--to", other.to_str().unwrap()]);
    want(5, &copied);
    // Another restore (into `dir`) of `from` must give what the first one gave.
    let restores_as_before = |from: &Path, dir: &str, what: &str| {
        let again = restore_checked(case, from, &scratch.join(dir), &expected, case.codes[2]);
        assert_eq!(again, before, "{}: {what}", case.name);
    };
    if copied.code == 0 {
        // What a copy holds restores as the source does, file for file, and checks as said.
        restores_as_before(&other, "from-copy", "the copy restores otherwise");
        want(8, &run(&other, &["check", "--read-data"]));
    }
    let pruned = run(&repo, &["prune"]);
    want(6, &pruned);
    if pruned.code == 0 {
        // A prune that succeeds changes nothing any reader sees, damage included.
        restores_as_before(&repo, "after-prune", "prune changed the restore");
        want(4, &run(&repo, &["check", "--read-data"]));
    }
    (repo, expected)
}

#[test]
fn crafted_repositories_give_errors_never_wrong_bytes() {
    exercise_all(CASES, false);
}

#[test]
fn crafted_repositories_through_the_mount() {
    if super::mount::can_mount("crafted_repositories_through_the_mount") {
        exercise_all(CASES, true);
    }
}

/// Runs every command on each of `cases`, then (with `mount`) the mount.
pub(super) fn exercise_all(cases: &[Case], mount: bool) {
    for case in cases {
        let scratch = case_dir(case.name);
        let (repo, expected) = exercise(case, scratch.path());
        if mount {
            mount_case(case, &repo, &expected, scratch.path());
        }
    }
}

/// Mounts `repo` in the foreground with an 8 MiB cache and reads every expected file from four
/// threads at once: each read gives the stored bytes or EIO, the daemon stays within its
/// memory bound, and SIGTERM ends it.
fn mount_case(case: &Case, repo: &Path, expected: &Expected, scratch: &Path) {
    let mnt = scratch.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let mut child = super::util::bin()
        .arg("--repo")
        .arg(repo)
        .args([
            "mount",
            "--foreground",
            "--cache-size",
            "8M",
            "--threads",
            "4",
        ])
        .arg(&mnt)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mounted = loop {
        if is_mounted(&mnt) {
            break true;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            assert_eq!(
                st.code(),
                Some(case.codes[7]),
                "{}: mount exited {st} ({err})",
                case.name
            );
            assert!(
                !err.trim().is_empty(),
                "{}: mount failed silently",
                case.name
            );
            break false;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "{}: the mount never became ready",
            case.name
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    if !mounted {
        return;
    }
    assert_eq!(
        case.codes[7], 0,
        "{}: the mount should have failed",
        case.name
    );
    let root = mnt.join("latest");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for (name, want) in expected {
                    match (fs::read(root.join(name)), want.fate) {
                        (Ok(got), Fate::Intact) => assert!(
                            got == want.content,
                            "{}: the mount served wrong bytes for {name}",
                            case.name
                        ),
                        (Err(e), Fate::Damaged | Fate::Unreachable) => assert_eq!(
                            e.raw_os_error(),
                            Some(libc::EIO),
                            "{}: reading {name} through the mount failed with {e}, not EIO",
                            case.name
                        ),
                        (got, fate) => panic!(
                            "{}: the mount gave {:?} for {name}, which is {fate:?}",
                            case.name,
                            got.map(|b| b.len())
                        ),
                    }
                }
            });
        }
    });
    let status = fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let hwm: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(
        hwm << 10 < MEMORY_BOUND,
        "{}: the mount peaked at {} MiB",
        case.name,
        hwm >> 10
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}: the mount ignored SIGTERM",
            case.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!is_mounted(&mnt), "{}: still mounted", case.name);
}

fn is_mounted(p: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

fn expected(files: &[(&str, &[u8], Fate)]) -> Expected {
    files
        .iter()
        .map(|(n, c, fate)| {
            (
                (*n).to_string(),
                Want {
                    content: c.to_vec(),
                    fate: *fate,
                },
            )
        })
        .collect()
}

/// An honest snapshot of one file `ok`, for cases whose defect lies elsewhere; `fate` is what
/// that defect makes of it.
fn honest(c: &mut Craft, fate: Fate) -> Expected {
    let (_, piece) = c.chunk(b"honest content");
    let root = c.tree(vec![file(b"ok", vec![piece])]);
    c.snapshot(root);
    expected(&[("ok", b"honest content", fate)])
}

fn replace_data_pack(c: &mut Craft, how: impl FnOnce(&Path)) {
    let w = c.finish();
    let pack = w.data_pack.unwrap();
    fs::remove_file(&pack).unwrap();
    how(&pack);
}

// 0 snapshots, 1 ls, 2 restore, 3 check, 4 check --read-data, 5 copy, 6 prune, 7 mount,
// 8 check --read-data of the copy (-1: the copy fails).
const CASES: &[Case] = &[
    Case {
        // A file claims 5 bytes of a 9-byte chunk, then a 4-byte one: "I am EEEE" if
        // trusted.
        name: "piece-length-lie",
        build: Build::Crafted(|c, _| {
            let (a, _) = c.chunk(b"I am data");
            let (_, e) = c.chunk(b"EEEE");
            let (_, okp) = c.chunk(b"fine");
            let lie = file(b"lie", vec![Piece::Data { id: a, len: 5 }, e]);
            let root = c.tree(vec![lie, file(b"ok", vec![okp])]);
            c.snapshot(root);
            c.finish();
            expected(&[
                ("lie", b"I am data", Fate::Damaged),
                ("ok", b"fine", Fate::Intact),
            ])
        }),
        codes: [0, 0, 11, 11, 11, 11, 0, 0, -1],
    },
    Case {
        // The snapshot records no extended attributes, but a file has one: a mount would
        // tell the kernel there are none, so `check` must say the record is false.
        name: "contents-deny-an-xattr",
        build: Build::Crafted(|c, _| {
            let (_, p) = c.chunk(b"noted");
            let mut f = file(b"noted", vec![p]);
            f.xattrs.push(Xattr {
                name: b"user.note".as_slice().into(),
                value: b"v".as_slice().into(),
            });
            let root = c.tree(vec![f]);
            c.snapshot(root).contents = Some(Contents::default());
            c.finish();
            expected(&[("noted", b"noted", Fate::Intact)])
        }),
        codes: [0, 0, 0, 11, 11, 0, 0, 0, 11],
    },
    Case {
        // Two entries claim one inode (nlink 2) with different content.
        name: "hardlink-conflict",
        build: Build::Crafted(|c, _| {
            let (_, pa) = c.chunk(b"content of a");
            let (_, pb) = c.chunk(b"content of b, longer");
            let mut a = file(b"a", vec![pa]);
            let mut b = file(b"b", vec![pb]);
            for n in [&mut a, &mut b] {
                (n.dev, n.ino, n.nlink) = (7, 42, 2);
            }
            let root = c.tree(vec![a, b]);
            c.snapshot(root);
            c.finish();
            expected(&[
                ("a", b"content of a", Fate::Intact),
                ("b", b"content of b, longer", Fate::Intact),
            ])
        }),
        codes: [0, 0, 0, 11, 11, 0, 0, 0, 11],
    },
    Case {
        // 3,000 nested directories: deeper than restore accepts, and a recursive walk would
        // overflow the 512 KiB stack.
        name: "deep-chain",
        build: Build::Crafted(|c, _| {
            let (_, p) = c.chunk(b"at the bottom");
            let mut t = c.tree(vec![file(b"leaf", vec![p])]);
            for _ in 0..3000 {
                t = c.tree(vec![dir(b"d", t)]);
            }
            let (_, okp) = c.chunk(b"at the top");
            let root = c.tree(vec![dir(b"d", t), file(b"ok", vec![okp])]);
            c.snapshot(root);
            c.finish();
            expected(&[("ok", b"at the top", Fate::Intact)])
        }),
        codes: [0, 0, 11, 0, 0, 0, 0, 0, 0],
    },
    Case {
        // 40 levels that each point twice at the same subtree: 2^40 entries from 40 trees.
        name: "dag-bomb",
        build: Build::Crafted(|c, _| {
            let (_, p) = c.chunk(b"everywhere");
            let mut t = c.tree(vec![file(b"f", vec![p])]);
            for _ in 0..40 {
                t = c.tree(vec![dir(b"a", t), dir(b"b", t)]);
            }
            c.snapshot(t);
            c.finish();
            Expected::new()
        }),
        codes: [0, 11, 11, 11, 11, 0, 0, 0, 11],
    },
    Case {
        // The index claims a 512 MiB data chunk (the format caps chunks at 16 MiB).
        name: "chunk-claims-512-mib",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Unreachable);
            c.finish_with(|index| {
                let blob = &mut index.packs[0].blobs[0];
                blob.raw_len = 512 << 20;
                blob.compression = Compression::Zstd;
            });
            exp
        }),
        codes: [11, 11, 11, 11, 11, 11, 11, 11, -1],
    },
    Case {
        // Four 16 MiB zstd bombs (a few KiB each) whose content is not their id.
        name: "zstd-bombs",
        build: Build::Crafted(|c, _| {
            let bomb = zstd::bulk::compress(&vec![0u8; 16 << 20], 19).unwrap();
            let mut pieces = Vec::new();
            for i in 0..4u8 {
                let id = BlobId(Id::hash(&[i]));
                c.stored(Stored {
                    id,
                    kind: BlobKind::Data,
                    stored: bomb.clone(),
                    raw_len: 16 << 20,
                    compression: Compression::Zstd,
                });
                pieces.push(Piece::Data {
                    id: ChunkId(id.0),
                    len: 16 << 20,
                });
            }
            let (_, okp) = c.chunk(b"next to the bombs");
            let root = c.tree(vec![file(b"bomb", pieces), file(b"ok", vec![okp])]);
            c.snapshot(root);
            c.finish();
            expected(&[
                ("bomb", &[], Fate::Damaged),
                ("ok", b"next to the bombs", Fate::Intact),
            ])
        }),
        codes: [0, 0, 11, 0, 11, 11, 0, 0, -1],
    },
    Case {
        name: "sparse-giant-snapshot-file",
        build: Build::Crafted(|c, repo| {
            let exp = honest(c, Fate::Intact);
            c.finish();
            let giant =
                fs::File::create(repo.join(format!("snapshots/{}", "ab".repeat(32)))).unwrap();
            giant.set_len(200 << 20).unwrap();
            exp
        }),
        codes: [11, 0, 0, 11, 11, 11, 11, 0, -1],
    },
    Case {
        name: "sparse-giant-index-file",
        build: Build::Crafted(|c, repo| {
            let exp = honest(c, Fate::Unreachable);
            c.finish();
            let giant = fs::File::create(repo.join(format!("index/{}", "cd".repeat(32)))).unwrap();
            giant.set_len(200 << 20).unwrap();
            exp
        }),
        codes: [11, 11, 11, 11, 11, 11, 11, 11, -1],
    },
    Case {
        name: "pack-is-a-fifo",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Damaged);
            replace_data_pack(c, |p| {
                assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
            });
            exp
        }),
        codes: [0, 0, 11, 11, 11, 11, 11, 0, -1],
    },
    Case {
        name: "pack-is-a-symlink-to-dev-zero",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Damaged);
            replace_data_pack(c, |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
            exp
        }),
        codes: [0, 0, 11, 11, 11, 11, 11, 0, -1],
    },
    Case {
        name: "pack-missing",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Damaged);
            replace_data_pack(c, |_| {});
            exp
        }),
        codes: [0, 0, 11, 11, 11, 11, 11, 0, -1],
    },
    Case {
        name: "pack-is-a-directory",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Damaged);
            replace_data_pack(c, |p| fs::create_dir(p).unwrap());
            exp
        }),
        codes: [0, 0, 11, 11, 11, 11, 11, 0, -1],
    },
    Case {
        name: "pack-truncated",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Damaged);
            let w = c.finish();
            let pack = w.data_pack.unwrap();
            let bytes = fs::read(&pack).unwrap();
            fs::write(&pack, &bytes[..20]).unwrap();
            exp
        }),
        codes: [0, 0, 11, 11, 11, 11, 0, 0, -1],
    },
    Case {
        // The footer says the trailer is 4 GiB long.
        name: "trailer-length-huge",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Intact);
            let w = c.finish();
            let pack = w.data_pack.unwrap();
            let mut bytes = fs::read(&pack).unwrap();
            let at = bytes.len() - 12;
            bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            fs::write(&pack, &bytes).unwrap();
            exp
        }),
        codes: [0, 0, 0, 11, 11, 0, 0, 0, 0],
    },
    Case {
        // The index places a blob past the end of its pack (and says the pack is longer).
        name: "index-points-past-the-pack",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Damaged);
            c.finish_with(|index| {
                let p = &mut index.packs[0];
                p.len += 1 << 20;
                p.blobs[0].offset += 1 << 19;
            });
            exp
        }),
        codes: [0, 0, 11, 11, 11, 11, 0, 0, -1],
    },
    Case {
        // A snapshot file whose path list claims 2^60 entries (valid envelope and name).
        name: "count-of-2-to-the-60",
        build: Build::Crafted(|c, repo| {
            honest(c, Fate::Intact);
            let w = c.finish();
            let good = fs::read(&w.snapshots[0]).unwrap();
            fs::remove_file(&w.snapshots[0]).unwrap();
            let mut payload = good[56..].to_vec();
            // Variant 0, time, host, user, then the paths' count: find it after the strings.
            let paths_at = 1 + varint_len(&payload[1..]) + 1 + 7 + 1 + 4;
            let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
            payload.splice(paths_at..paths_at + 1, huge);
            write_envelope(repo, "snapshots", 3, &payload);
            Expected::new()
        }),
        codes: [11, 11, 11, 11, 11, 11, 11, 11, -1],
    },
    Case {
        name: "every-snapshot-file-damaged",
        build: Build::Crafted(|c, _| {
            honest(c, Fate::Intact);
            let (_, p) = c.chunk(b"second");
            let root = c.tree(vec![file(b"second", vec![p])]);
            c.snapshot(root);
            let w = c.finish();
            for s in &w.snapshots {
                let mut b = fs::read(s).unwrap();
                let last = b.len() - 1;
                b[last] ^= 1;
                fs::write(s, b).unwrap();
            }
            Expected::new()
        }),
        codes: [11, 11, 11, 11, 11, 11, 11, 11, -1],
    },
    Case {
        // Names and a host that would drive a terminal if printed raw.
        name: "escape-sequences-in-names",
        build: Build::Crafted(|c, _| {
            let (_, p) = c.chunk(b"x");
            let evil = file(b"\x1b]0;pwned\x07\x1b[2J", vec![p]);
            let mut link = node(
                b"link\x1b[31m",
                NodeKind::Symlink {
                    target: b"\x1b[5m".as_slice().into(),
                },
                4,
            );
            link.ino = 2;
            let root = c.tree(vec![evil, link]);
            let s = c.snapshot(root);
            s.hostname = "host\x1b[2J".into();
            s.tags = vec!["tag\x1b[1m".into()];
            c.finish();
            expected(&[("\x1b]0;pwned\x07\x1b[2J", b"x", Fate::Intact)])
        }),
        codes: [0, 0, 0, 0, 0, 0, 0, 0, 0],
    },
    Case {
        // The index says a tree is 500 MiB; its zstd frame declares a few bytes.
        name: "tree-claims-500-mib",
        build: Build::Crafted(|c, _| {
            let exp = honest(c, Fate::Unreachable);
            c.finish_with(|index| {
                let trees = index
                    .packs
                    .iter_mut()
                    .find(|p| p.blobs[0].kind == BlobKind::Tree)
                    .unwrap();
                let blob = &mut trees.blobs[0];
                blob.raw_len = 500 << 20;
                blob.compression = Compression::Zstd;
            });
            exp
        }),
        codes: [0, 11, 11, 11, 11, 11, 11, 0, -1],
    },
];

fn varint_len(b: &[u8]) -> usize {
    b.iter().position(|x| x & 0x80 == 0).unwrap() + 1
}

/// Writes `payload` in a valid envelope of `kind` under `dir`, named by its hash.
fn write_envelope(repo: &Path, dir: &str, kind: u8, payload: &[u8]) {
    let mut f = b"CHRONOFS".to_vec();
    f.push(kind);
    f.extend_from_slice(&1u16.to_le_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    f.extend_from_slice(Id::hash(payload).0.as_slice());
    f.extend_from_slice(payload);
    fs::write(repo.join(dir).join(Id::hash(&f).to_hex()), f).unwrap();
}
