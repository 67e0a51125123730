//! Running chronofs on a server: generated man pages and completions that cannot go stale,
//! consistency hooks, RPO monitoring (`status`, Prometheus metrics), restore drills
//! (`check --read-data-subset`, `verify`) and job files (`chronofs job`).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::util::assert_ok;
use super::util::{Fixture, noise, pack_files, sh};

fn bin() -> Command {
    super::util::bin()
}

/// The files of `dir`, with their contents.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn man_pages_and_completions_are_generated_and_current() {
    let f = Fixture::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (what, committed) in [
        ("man", root.join("man")),
        ("completions", root.join("packaging/completions")),
    ] {
        let fresh = f.path(what);
        let out = bin().args(["generate", what]).arg(&fresh).output().unwrap();
        assert_ok(&out);
        let generated = files(&fresh);
        let checked_in: Vec<_> = files(&committed)
            .into_iter()
            .filter(|(name, _)| !name.ends_with(".5")) // written by hand
            .collect();
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&generated),
            names(&checked_in),
            "{what}: regenerate with `cargo run -- generate {what} {}`",
            committed.display()
        );
        for ((name, a), (_, b)) in generated.iter().zip(&checked_in) {
            assert!(
                a == b,
                "{what}/{name} is stale: regenerate with `cargo run -- generate {what} {}`",
                committed.display()
            );
        }
    }
    // A page per command, and the pages name what matters.
    let man = files(&root.join("man"));
    let page =
        |n: &str| String::from_utf8(man.iter().find(|(m, _)| m == n).unwrap().1.clone()).unwrap();
    assert!(page("chronofs.1").contains("Exit codes"));
    assert!(page("chronofs-backup.1").contains("pre\\-exec"));
    assert!(page("chronofs-status.1").contains("prometheus"));
    assert!(page("chronofs-job.5").contains("[retention]"));
}

#[test]
fn hooks_run_around_the_backup_and_post_learns_the_outcome() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), b"a").unwrap();
    let log = f.path("hooks.log");
    let l = log.to_str().unwrap();
    let pre = format!("echo pre $CHRONOFS_REPO >> {l}");
    let post = format!(
        "echo post $CHRONOFS_BACKUP_STATUS $CHRONOFS_BACKUP_EXIT_CODE $CHRONOFS_SNAPSHOT_ID >> {l}"
    );
    f.ok(&[
        "backup",
        f.src_str(),
        "--pre-exec",
        &pre,
        "--post-exec",
        &post,
    ]);
    let id = serde_json::from_str::<serde_json::Value>(&f.ok(&["snapshots", "--json"])).unwrap()[0]
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        format!("pre {}\npost success 0 {id}\n", f.repo.display()),
        "pre runs first, post last with the outcome"
    );

    // A failing pre hook: nothing is backed up, and post still runs, told why.
    fs::remove_file(&log).unwrap();
    let post_err = format!("echo post $CHRONOFS_BACKUP_STATUS \"$CHRONOFS_BACKUP_ERROR\" >> {l}");
    let err = f.fails(
        &[
            "backup",
            f.src_str(),
            "--pre-exec",
            "exit 7",
            "--post-exec",
            &post_err,
        ],
        1,
    );
    assert!(
        err.contains("pre-exec") && err.contains("exit status: 7"),
        "{err}"
    );
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("post failed") && text.contains("pre-exec"),
        "{text}"
    );

    // A failing backup (missing source): post runs with status failed and the exit code.
    fs::remove_file(&log).unwrap();
    let missing = f.path("missing");
    f.fails(
        &["backup", missing.to_str().unwrap(), "--post-exec", &post],
        1,
    );
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .starts_with("post failed 1")
    );

    // A failing post hook after a good backup: the snapshot stays, the exit code says so.
    let err = f.fails(&["backup", f.src_str(), "--post-exec", "false"], 1);
    assert!(err.contains("post-exec"), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[test]
fn status_reports_each_group_and_writes_prometheus_metrics() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(1, 10_000)).unwrap();
    f.ok(&["backup", f.src_str(), "--host", "fresh"]);
    f.ok(&[
        "backup",
        f.src_str(),
        "--host",
        "stale \"quoted\"",
        "--time",
        "2020-01-01T00:00:00Z",
    ]);
    // All within a very long max age: 0.
    let prom = f.path("metrics/chronofs.prom");
    fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let p = prom.to_str().unwrap();
    let out = f.run(&["status", "--max-age", "100000d", "--prometheus", p]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default (26h): one group is late: 1, and the table says which.
    let out = f.run(&["status", "--prometheus", p]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    let late: Vec<&str> = table.lines().filter(|l| l.ends_with("LATE")).collect();
    assert_eq!(late.len(), 1, "{table}");
    assert!(late[0].starts_with("stale"), "{table}");
    // Only the fresh host: 0.
    f.ok(&["status", "--host", "fresh"]);
    // JSON.
    let out = f.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["groups"].as_array().unwrap().len(), 2);
    assert!(v["repository_bytes"].as_u64().unwrap() > 10_000);
    // The metrics: escaped labels, one sample per group and metric, nothing left behind.
    let text = fs::read_to_string(&prom).unwrap();
    assert!(text.contains("host=\"stale \\\"quoted\\\"\""), "{text}");
    assert!(text.contains("chronofs_snapshot_late{"), "{text}");
    assert!(text.contains("chronofs_repository_readable{") && text.ends_with("} 1\n"));
    let stamps: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("chronofs_last_snapshot_timestamp_seconds{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(stamps.len(), 2);
    assert!(stamps.contains(&1_577_836_800.0), "{stamps:?}");
    assert_eq!(fs::read_dir(prom.parent().unwrap()).unwrap().count(), 1);
    // A repository that cannot be read: 2, and the metrics say so.
    fs::write(f.repo.join("config"), b"garbage").unwrap();
    let out = f.run(&["status", "--prometheus", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(fs::read_to_string(&prom).unwrap().ends_with("} 0\n"));
    let out = bin()
        .args(["--repo", f.path("nothing").to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn read_data_subsets_cover_every_pack_over_their_runs() {
    let f = Fixture::with_init(super::maintain::SMALL);
    for i in 0..30u64 {
        fs::write(f.src.join(format!("f{i}")), noise(i, 300_000)).unwrap();
    }
    f.ok(&["backup", "-q", f.src_str()]);
    let packs = pack_files(&f.repo).len();
    assert!(packs > 5, "{packs} packs");
    let read_packs = |out: &str| -> usize {
        out.split("read part ")
            .nth(1)
            .and_then(|s| s.split(": ").nth(1))
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no pack count in {out}"))
    };
    // N/M: the parts add up to every pack.
    let total: usize = (1..=4)
        .map(|n| read_packs(&f.ok(&["check", "--read-data-subset", &format!("{n}/4")])))
        .sum();
    assert_eq!(total, packs);
    // P%: each run reads the next part; 4 runs of 25% read every pack once.
    let cache = f.path("cache");
    let run = || {
        let out = f
            .cmd(&["check", "--read-data-subset", "25%"])
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut parts = BTreeSet::new();
    let mut total = 0;
    for _ in 0..4 {
        let out = run();
        parts.insert(out.split("read part ").nth(1).unwrap()[..3].to_string());
        total += read_packs(&out);
    }
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert_eq!(total, packs);
    // A part that holds a damaged pack finds it.
    let victim = pack_files(&f.repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = fs::read(&victim).unwrap();
    b[100] ^= 1;
    fs::write(&victim, b).unwrap();
    let codes: Vec<i32> = (1..=4)
        .map(|n| {
            f.run(&["check", "--read-data-subset", &format!("{n}/4")])
                .status
                .code()
                .unwrap()
        })
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 11).count(), 1, "{codes:?}");
    f.fails(&["check", "--read-data-subset", "5/4"], 2);
    f.fails(&["check", "--read-data-subset", "0%"], 2);
}

#[test]
fn verify_restores_and_compares_and_finds_damage() {
    let f = Fixture::new();
    super::roundtrip::build_small(&f.src);
    f.ok(&["backup", f.src_str()]);
    let scratch = f.path("scratch");
    fs::create_dir(&scratch).unwrap();
    let s = scratch.to_str().unwrap();
    let out = f.ok(&["verify", "--scratch", s]);
    assert!(out.contains("identical to the snapshot"), "{out}");
    assert_eq!(
        fs::read_dir(&scratch).unwrap().count(),
        0,
        "the scratch copy is removed"
    );
    let json: serde_json::Value =
        serde_json::from_str(&f.ok(&["verify", "latest", "--scratch", s, "--json", "--keep"]))
            .unwrap();
    assert!(json["report"]["files"].as_u64().unwrap() >= 5, "{json}");
    assert!(json["mib_per_second"].as_f64().unwrap() > 0.0);
    let kept = Path::new(json["kept"].as_str().unwrap());
    assert!(
        kept.join(f.src.strip_prefix("/").unwrap())
            .join("plain")
            .exists()
    );
    // Damage: the drill fails with 11 and names what it could not restore.
    let pack = pack_files(&f.repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = fs::read(&pack).unwrap();
    b[40] ^= 1;
    fs::write(&pack, b).unwrap();
    let out = f.run(&["verify", "--scratch", s]);
    assert_eq!(out.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not restored"));
}

/// Every per-group metric `status --prometheus` writes carries the value of that group's
/// newest snapshot record (or of the repository), not just a well-formed line; a snapshot file
/// that cannot be read makes the status exit 1 and the metrics say how many there are.
#[test]
fn status_metrics_hold_the_snapshots_values_and_an_unreadable_snapshot_file_is_exit_1() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(4, 30_000)).unwrap();
    f.ok(&["backup", f.src_str(), "--host", "fresh"]);
    fs::write(f.src.join("b"), noise(5, 20_000)).unwrap();
    f.ok(&["backup", f.src_str(), "--host", "fresh"]);
    let stale = ["--host", "stale", "--time", "2020-01-01T00:00:00Z"];
    f.ok(&[&["backup", f.src_str()][..], &stale].concat());
    let prom = f.path("m.prom");
    let p = prom.to_str().unwrap();
    f.fails(&["status", "--prometheus", p], 1);
    let text = fs::read_to_string(&prom).unwrap();
    let sample = |metric: &str, host: Option<&str>| -> f64 {
        let prefix = format!("{metric}{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .find(|l| host.is_none_or(|h| l.contains(&format!("host=\"{h}\""))))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {metric} for {host:?} in {text}"))
    };
    let listed: serde_json::Value = serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    for (host, count, late) in [("fresh", 2.0, 0.0), ("stale", 1.0, 1.0)] {
        let newest = listed
            .iter()
            .filter(|s| s["snapshot"]["hostname"] == host)
            .max_by_key(|s| s["snapshot"]["time_ns"].as_i64().unwrap())
            .unwrap();
        let record = &newest["snapshot"];
        let summary = &record["summary"];
        let ns = |v: &serde_json::Value| v.as_u64().unwrap() as f64 / 1e9;
        let h = Some(host);
        let stamp = sample("chronofs_last_snapshot_timestamp_seconds", h);
        assert!(
            (stamp - ns(&record["time_ns"])).abs() < 1e-6,
            "{host}: {stamp}"
        );
        let took = sample("chronofs_last_snapshot_duration_seconds", h);
        assert!(
            (took - ns(&summary["duration_ns"])).abs() < 1e-9,
            "{host}: {took}"
        );
        for (metric, field) in [
            ("chronofs_last_snapshot_bytes_added", "bytes_added"),
            ("chronofs_last_snapshot_errors", "errors"),
        ] {
            let want = summary[field].as_u64().unwrap() as f64;
            assert_eq!(sample(metric, h), want, "{host}: {metric}");
        }
        assert_eq!(sample("chronofs_snapshots", h), count, "{host}");
        assert_eq!(sample("chronofs_snapshot_late", h), late, "{host}");
    }
    // The newest "fresh" snapshot added the file b: its bytes, compressed and sealed.
    assert!(sample("chronofs_last_snapshot_bytes_added", Some("fresh")) > 20_000.0);
    let packs: u64 = pack_files(&f.repo)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(sample("chronofs_repository_size_bytes", None), packs as f64);
    assert_eq!(sample("chronofs_unreadable_snapshot_files", None), 0.0);
    assert_eq!(sample("chronofs_repository_readable", None), 1.0);

    // Nothing late: 0. Then one snapshot file damaged: 1, and the file is named (status
    // reading the repository's files: with a snapshot catalog it reads only those it has not
    // seen).
    let quiet = [
        "--no-cache",
        "status",
        "--max-age",
        "100000d",
        "--prometheus",
        p,
    ];
    f.ok(&quiet);
    let victim = f
        .repo
        .join("snapshots")
        .join(listed[0]["id"].as_str().unwrap());
    let mut bytes = fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&victim, bytes).unwrap();
    let out = f.run(&quiet);
    assert_eq!(out.status.code(), Some(1));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(listed[0]["id"].as_str().unwrap()), "{said}");
    let text = fs::read_to_string(&prom).unwrap();
    let unreadable = text
        .lines()
        .find(|l| l.starts_with("chronofs_unreadable_snapshot_files{"))
        .unwrap();
    assert!(unreadable.ends_with(" 1"), "{unreadable}");
}

/// The drill's comparison names each way a restored tree can differ from its snapshot (a
/// changed byte, mode, owner, extended attribute, a missing and an extra file), each once, at
/// its path, and nothing on an exact restore: a comparison that always says "identical" fails.
#[test]
fn verify_names_every_kind_of_difference() {
    use chronofs::ingest::Silent;
    use chronofs::restore::{self, RestoreOptions, verify};

    let f = Fixture::new();
    fs::write(f.src.join("data"), noise(3, 200_000)).unwrap();
    for name in ["mode", "owner", "xattr", "gone"] {
        fs::write(f.src.join(name), name).unwrap();
    }
    xattr::set(f.src.join("xattr"), "user.k", b"v").unwrap();
    f.ok(&["backup", f.src_str()]);
    let repo = super::util::open_repo(&f.repo);
    let (snaps, _) = repo.snapshots().unwrap();
    let snap = &snaps[0].1;
    let target = f.path("restored");
    restore::restore(
        &repo,
        snap,
        None,
        &target,
        &RestoreOptions::default(),
        &Silent,
    )
    .unwrap();
    let report = verify::compare(&repo, snap, None, &target).unwrap();
    assert!(report.is_ok(), "{:?}", report.differences);
    assert_eq!((report.files, report.bytes), (5, 200_000 + 4 + 5 + 5 + 4));

    let at = f.restored_src(&target);
    let mut data = fs::read(at.join("data")).unwrap();
    data[150_000] ^= 1;
    fs::write(at.join("data"), data).unwrap();
    sh(&format!("chmod 600 '{}'", at.join("mode").display()));
    let as_root = chronofs::sys::euid() == 0;
    if as_root {
        sh(&format!("chown 1234:1234 '{}'", at.join("owner").display()));
    }
    xattr::set(at.join("xattr"), "user.k", b"w").unwrap();
    fs::remove_file(at.join("gone")).unwrap();
    fs::write(at.join("extra"), b"extra").unwrap();
    // Times as the snapshot has them, so that each change shows as itself only.
    for p in ["data", ""] {
        let (a, b) = (f.src.join(p), at.join(p));
        sh(&format!("touch -m -r '{}' '{}'", a.display(), b.display()));
    }
    let report = verify::compare(&repo, snap, None, &target).unwrap();
    let mut want = vec![
        ("data", "content differs in bytes 0..200000"),
        ("mode", "mode 600, the snapshot says 644"),
        ("xattr", "extended attributes differ"),
        ("gone", "in the snapshot, but not restored"),
        ("extra", "restored, but not in the snapshot"),
    ];
    if as_root {
        want.push(("owner", "owner differs"));
    }
    let mut want: Vec<String> = want
        .into_iter()
        .map(|(name, what)| format!("{}: {what}", at.join(name).display()))
        .collect();
    want.sort();
    let mut got = report.differences.clone();
    got.sort();
    assert_eq!(got, want);
}

/// Writes job `name` into `dir`.
fn job(dir: &Path, name: &str, text: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{name}.conf")), text).unwrap();
}

#[test]
fn jobs_back_up_keep_their_retention_monitor_and_schedule() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(2, 50_000)).unwrap();
    let other = f.path("other-source");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("b"), b"b").unwrap();
    let conf = f.path("etc");
    let prom = f.path("job.prom");
    let log = f.path("post.log");
    job(
        &conf,
        "home",
        &format!(
            r#"
repository = "{repo}"
paths = ["{src}"]
exclude = ["*.tmp"]
tags = ["nightly"]
host = "jobhost"
[hooks]
post = "echo $CHRONOFS_BACKUP_STATUS >> {log}"
[retention]
keep-last = 2
[monitor]
max-age = "1h"
prometheus-file = "{prom}"
[verify]
read-data-subset = "50%"
scratch = "{scratch}"
[schedule]
backup = "*-*-* 02:00:00"
"#,
            repo = f.repo.display(),
            src = f.src_str(),
            log = log.display(),
            prom = prom.display(),
            scratch = f.dir.path().display()
        ),
    );
    let c = conf.to_str().unwrap();
    let job_cmd = |args: &[&str]| {
        let mut cmd = bin();
        cmd.env("CHRONOFS_CONFIG_DIR", c).arg("job").args(args);
        cmd.output().unwrap()
    };
    // `show` prints the commands a run makes.
    let shown = job_cmd(&["show", "home"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("backup --exclude '*.tmp'"), "{shown}");
    assert!(shown.contains("forget --host jobhost --path"), "{shown}");
    // Another job's snapshots in the same repository are left alone by this job's retention.
    f.ok(&["backup", other.to_str().unwrap(), "--host", "jobhost"]);
    for _ in 0..3 {
        let out = job_cmd(&["run", "home"]);
        assert_ok(&out);
    }
    let listed: serde_json::Value = serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    let tags: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["snapshot"]["tags"])
        .collect();
    assert_eq!(
        tags.len(),
        3,
        "keep-last 2 of the job, and the other job's one: {listed}"
    );
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "success\nsuccess\nsuccess\n"
    );
    assert!(
        fs::read_to_string(&prom)
            .unwrap()
            .contains("host=\"jobhost\"")
    );
    // The drill.
    let out = job_cmd(&["verify", "home"]);
    assert_ok(&out);
    // The schedule becomes timer drop-ins.
    let systemd = f.path("systemd");
    let out = job_cmd(&[
        "schedule",
        "home",
        "--systemd-dir",
        systemd.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let dropin =
        fs::read_to_string(systemd.join("chronofs-backup@home.timer.d/schedule.conf")).unwrap();
    assert!(
        dropin.contains("OnCalendar=\nOnCalendar=*-*-* 02:00:00"),
        "{dropin}"
    );
    assert!(
        systemd
            .join("chronofs-verify@home.timer.d/schedule.conf")
            .exists()
    );
    // Mistakes in job files are named.
    job(
        &conf,
        "typo",
        &format!(
            "repository = \"{}\"\npaths = [\"/\"]\nkeep-dialy = 3\n",
            f.repo.display()
        ),
    );
    let out = job_cmd(&["run", "typo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.conf") && err.contains("keep-dialy"),
        "{err}"
    );
    let out = job_cmd(&["run", "absent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.conf"));
}

/// `job mount NAME` mounts the job's repository at its `[mount] path` in the foreground, shows
/// the job's snapshots there byte for byte, and unmounts when stopped.
#[test]
fn job_mount_serves_the_jobs_repository_at_its_mount_point() {
    if !super::mount::can_mount("job_mount_serves_the_jobs_repository_at_its_mount_point") {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(6, 300_000)).unwrap();
    f.ok(&["backup", f.src_str()]);
    let conf = f.path("etc");
    let mnt = f.path("job-mnt");
    fs::create_dir(&mnt).unwrap();
    job(
        &conf,
        "home",
        &format!(
            "repository = \"{}\"\npaths = [\"{}\"]\n[mount]\npath = \"{}\"\ncache-size = \"8M\"\n",
            f.repo.display(),
            f.src_str(),
            mnt.display()
        ),
    );
    let mut child = bin()
        .env("CHRONOFS_CONFIG_DIR", &conf)
        .args(["job", "mount", "home"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let inside = mnt.join("latest").join(f.src.strip_prefix("/").unwrap());
    super::mount::eventually("the job's mount shows the snapshot", || {
        inside.join("a").exists()
    });
    assert_eq!(
        fs::read(inside.join("a")).unwrap(),
        fs::read(f.src.join("a")).unwrap()
    );
    sh(&format!("kill -TERM {}", child.id()));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let at = mnt.to_str().unwrap();
    assert!(
        !info.lines().any(|l| l.split(' ').nth(4) == Some(at)),
        "still mounted"
    );
}

#[test]
fn status_reports_the_last_prune_and_checks_and_their_outcomes() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(2, 300_000)).unwrap();
    f.ok(&["backup", "-q", f.src_str()]);
    let status = || -> serde_json::Value {
        serde_json::from_slice(&f.run(&["status", "--json"]).stdout).unwrap()
    };
    assert_eq!(status()["maintenance"], serde_json::json!([]));
    assert!(f.ok(&["status"]).contains("no prune or check recorded"));
    let before = chronofs::repo::now_ns();
    f.ok(&["prune"]);
    f.ok(&["check", "--read-data"]);
    f.ok(&["check", "--read-data-subset", "1/2"]);
    let after = chronofs::repo::now_ns();
    let jobs = status()["maintenance"].as_array().unwrap().clone();
    let names: Vec<&str> = jobs.iter().map(|j| j["job"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["prune", "check --read-data", "check --read-data-subset"]
    );
    for j in &jobs {
        let t = j["last_finished_ns"].as_i64().unwrap();
        assert!(before <= t && t <= after, "{j}");
        assert_eq!(j["last_ok"], true, "{j}");
        assert_eq!(j["last_success_ns"].as_i64(), Some(t), "{j}");
    }
    let good = jobs[1]["last_finished_ns"].as_i64().unwrap();
    // Damage: the next full check fails; status says so and keeps the last success.
    let pack = pack_files(&f.repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[100] ^= 0xff;
    sh(&format!("chmod u+w '{}'", pack.display()));
    fs::write(&pack, &bytes).unwrap();
    f.fails(&["check", "--read-data"], 11);
    let prom = f.path("chronofs.prom");
    let out = f.run(&["status", "--prometheus", prom.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a check that found damage makes the status unhealthy"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.starts_with("check --read-data:"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("FAILED") && line.contains("last success"),
        "{line}"
    );
    let j = status()["maintenance"][1].clone();
    assert_eq!(j["job"], "check --read-data");
    assert_eq!(j["last_ok"], false, "{j}");
    assert!(j["last_outcome"].as_str().unwrap().contains("error"), "{j}");
    assert_eq!(j["last_success_ns"].as_i64(), Some(good), "{j}");
    let text = fs::read_to_string(&prom).unwrap();
    let sample = |name: &str, job: &str| -> f64 {
        let prefix = format!("{name}{{");
        text.lines()
            .find(|l| l.starts_with(&prefix) && l.contains(&format!("job=\"{job}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} for {job} in {text}"))
    };
    assert_eq!(
        sample("chronofs_maintenance_last_run_success", "check --read-data"),
        0.0
    );
    assert_eq!(
        sample("chronofs_maintenance_last_run_success", "prune"),
        1.0
    );
    let success = sample(
        "chronofs_maintenance_last_success_timestamp_seconds",
        "check --read-data",
    );
    assert!(
        (success - good as f64 / 1e9).abs() < 1e-3,
        "{success} {good}"
    );
}
