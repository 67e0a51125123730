//! Progress as users see it: on a terminal (a pseudo-terminal made by `script`), `backup`
//! (its total from the parent snapshot, or a scan beside a first backup), `restore` and
//! `check --read-data` draw a bar that knows the total (percentage, ETA), and `prune` one per
//! phase;
//! off a terminal, and with `--quiet` or `--no-progress`, they print none. With `--json`,
//! restore and check print status objects (the last with the final counts) and a summary;
//! the JSON form of backup's progress is tested in `ingest.rs`.

use std::fs;
use std::process::Command;

use super::util::{Fixture, assert_same_tree, damage_largest_pack, noise, pack_files};

/// Runs `chronofs ARGS` on the fixture's repository inside a pseudo-terminal; returns
/// everything it wrote to the terminal (stdout and stderr, with the bar's redraws).
fn on_a_terminal(f: &Fixture, args: &[&str]) -> String {
    let c = f.cmd(args);
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(quote(c.get_program()))
        .chain(c.get_args().map(quote))
        .collect();
    let mut script = Command::new("script");
    // A wide terminal, so that the bar's message (files, current path) is not squeezed out.
    let shell = format!("stty cols 200 rows 50; {}", line.join(" "));
    script.args(["-qec", &shell, "/dev/null"]);
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            script.env(k, v);
        }
    }
    let out = script.output().expect("script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chronofs {args:?} on a terminal: {text}"
    );
    text
}

/// A bar with a total, as drawn when the command ends: the whole of `total` done, at 100%.
fn assert_full_bar(text: &str, verb: &str, total: &str) {
    let bar = text
        .split(['\r', '\n'])
        .rfind(|l| l.contains(verb))
        .unwrap_or_else(|| panic!("no {verb:?} bar in: {text:?}"));
    assert!(
        bar.contains(&format!("{total}/{total} (100%)")) && bar.contains("ETA"),
        "{bar:?}"
    );
}

#[test]
fn backup_restore_and_check_draw_a_bar_with_the_total_on_a_terminal_only() {
    let f = Fixture::new();
    fs::write(f.src.join("a"), noise(1, 3 << 20)).unwrap();
    fs::write(f.src.join("b"), noise(2, 1 << 20)).unwrap();
    // On a terminal, a first backup learns its total from a scan of the sources beside it
    // (two entries: done long before 4 MiB are read and hashed).
    let text = on_a_terminal(&f, &["backup", f.src_str()]);
    assert_full_bar(&text, "backing up", "4.00 MiB");
    // Off a terminal: no bar on stderr.
    let out = f.run(&["backup", f.src_str()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("backing up"), "{err}");
    // The next backup knows its total from its parent.
    let text = on_a_terminal(&f, &["backup", f.src_str()]);
    assert_full_bar(&text, "backing up", "4.00 MiB");
    assert!(text.contains("2 of 2 files"), "{text:?}");
    // Restore knows its total from the snapshot's trees before it writes a byte.
    let target = f.path("restored");
    let text = on_a_terminal(
        &f,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    assert_full_bar(&text, "restoring", "4.00 MiB");
    let out = f.run(&[
        "restore",
        "latest",
        "--target",
        f.path("again").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("restoring"),
        "no bar off a terminal"
    );
    // check --read-data counts the packs it reads, and their bytes.
    let text = on_a_terminal(&f, &["check", "--read-data"]);
    assert!(
        text.split(['\r', '\n'])
            .any(|l| l.contains("reading data") && l.contains("(100%)") && l.contains("packs")),
        "{text:?}"
    );
    // prune shows its phases, each with its own count (the display samples a few times a
    // second: a quick prune shows its last phase, deleting the packs of a forgotten file).
    fs::remove_file(f.src.join("a")).unwrap();
    f.ok(&["backup", f.src_str()]);
    f.ok(&["forget", "--keep-last", "1"]);
    let text = on_a_terminal(&f, &["prune"]);
    assert!(
        text.split(['\r', '\n'])
            .any(|l| l.contains("pruning: deleting packs") && l.contains("(100%)")),
        "{text:?}"
    );
    // --quiet and --no-progress: nothing drawn, even on a terminal.
    let text = on_a_terminal(
        &f,
        &[
            "restore",
            "latest",
            "--no-progress",
            "--target",
            f.path("quiet").to_str().unwrap(),
        ],
    );
    assert!(!text.contains("restoring"), "{text:?}");
    let text = on_a_terminal(&f, &["--quiet", "check", "--read-data"]);
    assert!(!text.contains("reading data"), "{text:?}");
}

/// `copy` on a terminal: a bar counting the snapshots (3 of 3 at the end) with the bytes
/// copied, instead of a line per snapshot on the same terminal; off a terminal, the lines and
/// no bar.
#[test]
fn copy_draws_a_bar_of_snapshots_on_a_terminal_and_prints_lines_off_it() {
    let f = Fixture::new();
    for i in 0..3 {
        fs::write(f.src.join("a"), noise(i, 300_000)).unwrap();
        f.ok(&["backup", f.src_str()]);
    }
    let dest = Fixture::new();
    let to = dest.repo.to_str().unwrap();
    let text = on_a_terminal(&f, &["copy", "--to", to]);
    let lines: Vec<&str> = text.split(['\r', '\n']).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("copying [") && l.contains("3/3 (100%)") && l.contains("copied")),
        "{text:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("copying 20")),
        "per-snapshot lines under the bar: {text:?}"
    );
    assert!(text.contains("copied 3 snapshot(s)"), "{text:?}");
    // Off a terminal (into a second destination): a line per snapshot, no bar.
    let other = Fixture::new();
    let out = f.run(&["copy", "--to", other.repo.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("copying 20"))
            .count(),
        3,
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("copying"), "{stderr}");
}

/// Every line of `out`, each a JSON object; panics on one that is not.
fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn restore_and_check_print_json_status_lines_ending_with_the_final_counts_and_a_summary() {
    let f = Fixture::new();
    fs::write(f.src.join("big"), noise(3, 700_000)).unwrap();
    fs::write(f.src.join("small"), b"hello").unwrap();
    // A second name: linked, not written again, but a file done like the others.
    fs::hard_link(f.src.join("big"), f.src.join("big-too")).unwrap();
    f.ok(&["backup", f.src_str()]);
    let total = 700_005;

    let restore_json = |target: &std::path::Path, more: &[&str]| {
        let mut args = vec!["restore", "latest", "--target", target.to_str().unwrap()];
        args.push("--json");
        args.extend_from_slice(more);
        f.ok(&args)
    };
    let target = f.path("restore");
    let out = restore_json(&target, &[]);
    let lines = json_lines(&out);
    let (summary, statuses) = lines.split_last().unwrap();
    assert_eq!(summary["message_type"], "summary", "{out}");
    assert_eq!(summary["summary"]["files"], 3, "{out}");
    assert_eq!(summary["summary"]["bytes"], total, "{out}");
    assert_eq!(summary["summary"]["damaged"], 0, "{out}");
    assert!(!statuses.is_empty(), "no status line: {out}");
    assert!(
        statuses.iter().all(|s| s["message_type"] == "status"),
        "{out}"
    );
    let last = statuses.last().unwrap();
    assert_eq!(last["bytes_done"], total, "{out}");
    assert_eq!(last["total_bytes"], total, "{out}");
    assert_eq!(last["percent_done"], 1.0, "{out}");
    assert_eq!(last["files_done"], 3, "{out}");
    assert_eq!(last["total_files"], 3, "{out}");
    assert_same_tree(&f.src, &f.restored_src(&target));
    // --no-progress leaves the summary alone.
    let out = restore_json(&f.path("again"), &["--no-progress"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["message_type"], "summary");

    let out = f.ok(&["check", "--read-data", "--json"]);
    let lines = json_lines(&out);
    let (summary, statuses) = lines.split_last().unwrap();
    let packs = pack_files(&f.repo).len();
    assert_eq!(summary["ok"], true, "{out}");
    assert_eq!(summary["read"], "all", "{out}");
    assert_eq!(summary["report"]["snapshots"], 1, "{out}");
    assert_eq!(summary["report"]["packs_read"], packs, "{out}");
    assert_eq!(statuses.last().unwrap()["files_done"], packs, "{out}");
    assert_eq!(statuses.last().unwrap()["total_files"], packs, "{out}");

    // Damage: the summary says so, names it, and the exit code is 11.
    let data_pack = damage_largest_pack(&f.repo);
    let out = f.run(&["check", "--read-data", "--json"]);
    assert_eq!(out.status.code(), Some(11));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = json_lines(&stdout).pop().unwrap();
    assert_eq!(summary["ok"], false, "{stdout}");
    let name = data_pack
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let errors = summary["report"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e.as_str().unwrap().contains(&name)),
        "{stdout}"
    );
    assert!(
        summary["report"]["damaged_files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().ends_with("/big")),
        "{stdout}"
    );
}
