//! Time travel on the command line: `diff`, `versions` and `find` over a scripted history of
//! six snapshots (create, modify, delete, re-create, rename, chmod), checked against what the
//! script did.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::util::{Fixture, sh};

/// The dated names of the six snapshots.
const NAMES: [&str; 6] = [
    "2026-11-20T020000Z",
    "2026-11-21T020000Z",
    "2026-11-22T020000Z",
    "2026-11-23T020000Z",
    "2026-11-24T020000Z",
    "2026-11-25T020000Z",
];

/// Backs up `f.src` as the snapshot named `NAMES[i]`.
fn snap(f: &Fixture, i: usize) {
    f.ok(&["backup", "--time", NAMES[i], f.src_str()]);
}

/// The scripted history; returns the fixture.
fn history() -> Fixture {
    let f = Fixture::new();
    let p = |s: &str| f.src.join(s);
    fs::create_dir(p("dir")).unwrap();
    fs::write(p("dir/a"), b"a").unwrap();
    fs::write(p("keep.txt"), b"kept all along").unwrap();
    fs::write(p("notes.txt"), b"first version").unwrap();
    snap(&f, 0);
    fs::write(p("notes.txt"), b"second, longer version").unwrap();
    snap(&f, 1);
    fs::remove_file(p("notes.txt")).unwrap();
    snap(&f, 2);
    fs::write(p("notes.txt"), b"third").unwrap();
    snap(&f, 3);
    fs::rename(p("notes.txt"), p("renamed.txt")).unwrap();
    snap(&f, 4);
    fs::set_permissions(p("keep.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    snap(&f, 5);
    f
}

#[test]
fn diff_versions_and_find_tell_the_scripted_history() {
    let f = history();
    let src = f.src_str().to_string();
    let at = |name: &str| format!("{src}/{name}");

    // versions: three versions of notes.txt, each named by its first snapshot; the gap of
    // the deletion and the rename show as absences.
    let out = f.ok(&["versions", &at("notes.txt")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(NAMES[0]) && lines[0].ends_with(NAMES[0]),
        "{out}"
    );
    assert!(
        lines[1].starts_with(NAMES[1]) && lines[1].ends_with(NAMES[1]),
        "{out}"
    );
    assert!(
        lines[2].starts_with(NAMES[3]) && lines[2].ends_with(NAMES[3]),
        "{out}"
    );
    assert!(
        lines[0].contains("13 B") && lines[2].contains("5 B"),
        "sizes: {out}"
    );
    // A version kept over several snapshots is listed once, with its range.
    let out = f.ok(&["versions", &at("renamed.txt")]);
    assert_eq!(
        out.trim(),
        format!(
            "{}  {:>10}  {}  {}..{} (2)",
            NAMES[4],
            "5 B",
            out.split_whitespace().nth(3).unwrap(),
            NAMES[4],
            NAMES[5]
        )
    );
    // Metadata-only changes stay in one version.
    let out = f.ok(&["versions", &at("keep.txt")]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(&format!("{}..{} (6)", NAMES[0], NAMES[5])),
        "{out}"
    );
    // JSON carries the same facts.
    let out = f.ok(&["versions", "--json", &at("notes.txt")]);
    let v: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[1]["size"], 22);
    assert_eq!(v[1]["snapshots"], serde_json::json!([NAMES[1]]));
    assert_ne!(v[0]["content"], v[1]["content"]);
    f.fails(&["versions", &at("never.txt")], 13);

    // diff: modified content with its size change. Restricted to the source: the snapshots
    // also hold its ancestors, whose mtimes other tests change meanwhile.
    let out = f.ok(&["diff", NAMES[0], NAMES[1], &src]);
    assert!(out.contains(&format!("M  {}", at("notes.txt"))), "{out}");
    assert!(out.contains("content"), "{out}");
    assert!(out.contains("13 B -> 22 B (+9 B)"), "{out}");
    assert!(out.contains("0 added, 0 removed, 1 modified"), "{out}");
    // Removed, re-created, renamed.
    let out = f.ok(&["diff", NAMES[1], NAMES[2]]);
    assert!(out.contains(&format!("-  {}", at("notes.txt"))), "{out}");
    let out = f.ok(&["diff", NAMES[3], NAMES[4]]);
    assert!(out.contains(&format!("-  {}", at("notes.txt"))), "{out}");
    assert!(out.contains(&format!("+  {}", at("renamed.txt"))), "{out}");
    assert!(out.contains("1 added, 1 removed"), "{out}");
    // Mode only.
    let out = f.ok(&["diff", NAMES[4], NAMES[5]]);
    assert!(
        out.contains(&format!("M  {}  (mode", at("keep.txt"))),
        "{out}"
    );
    // Restricted to a path, and as JSON.
    let out = f.ok(&["diff", "--json", NAMES[0], NAMES[5], &at("dir")]);
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["added"].as_u64().unwrap()
            + summary["removed"].as_u64().unwrap()
            + summary["modified"].as_u64().unwrap(),
        0,
        "{out}"
    );
    let out = f.ok(&["diff", "--json", NAMES[0], NAMES[5]]);
    let changes: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "added" && c["path"] == at("renamed.txt")),
        "{out}"
    );

    // find: names, with the snapshots holding each as ranges.
    let out = f.ok(&["find", "*.txt"]);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&at(name)))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .to_string()
    };
    assert_eq!(
        line("notes.txt"),
        format!(
            "{}  {}..{} (2), {}",
            at("notes.txt"),
            NAMES[0],
            NAMES[1],
            NAMES[3]
        )
    );
    assert_eq!(
        line("renamed.txt"),
        format!("{}  {}..{} (2)", at("renamed.txt"), NAMES[4], NAMES[5])
    );
    assert_eq!(
        line("keep.txt"),
        format!("{}  {}..{} (6)", at("keep.txt"), NAMES[0], NAMES[5])
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    // Whole-path patterns, and a subset of snapshots.
    let out = f.ok(&["find", &format!("{src}/dir/*")]);
    assert_eq!(
        out.trim(),
        format!("{}  {}..{} (6)", at("dir/a"), NAMES[0], NAMES[5])
    );
    let out = f.ok(&[
        "find",
        "notes.txt",
        "--snapshot",
        NAMES[2],
        "--snapshot",
        NAMES[3],
    ]);
    assert_eq!(out.trim(), format!("{}  {}", at("notes.txt"), NAMES[3]));
    f.fails(&["find", "*.nothing"], 13);
    f.fails(&["find", "[unclosed"], 2);
}

#[test]
fn at_paths_in_the_mount_find_the_snapshot_of_any_time() {
    if !super::mount::can_mount("at_paths_in_the_mount_find_the_snapshot_of_any_time") {
        return;
    }
    let f = history();
    let m = super::mount::Mounted::new(&f, &[]);
    let rel = f.src.strip_prefix("/").unwrap().to_path_buf();
    let notes_at = |t: &str| m.path.join("at").join(t).join(&rel).join("notes.txt");
    let mut listed: Vec<String> = fs::read_dir(m.path.join("at"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, NAMES);
    // Every form of time a user types.
    assert_eq!(
        fs::read(notes_at("2026-11-21T1200Z")).unwrap(),
        b"second, longer version"
    );
    assert_eq!(
        fs::read(notes_at("2026-11-20T12:00:00+07:00")).unwrap(),
        b"first version"
    );
    assert_eq!(
        fs::read(notes_at("2026-11-21T020000Z")).unwrap(),
        b"second, longer version"
    );
    assert_eq!(
        fs::read(notes_at("2026-11-21")).unwrap(),
        b"second, longer version"
    );
    assert_eq!(fs::read(notes_at("2026-11-23T0300Z")).unwrap(), b"third");
    // The deletion, the rename, and a time before the first snapshot.
    assert_eq!(
        fs::metadata(notes_at("2026-11-22T1200Z"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_eq!(
        fs::metadata(notes_at("1h")).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert!(m.path.join("at/1h").join(&rel).join("renamed.txt").exists());
    assert_eq!(
        fs::read_link(m.path.join("at/2d")).unwrap(),
        std::path::Path::new(&format!("../{}", NAMES[5]))
    );
    for bad in [
        "2026-11-19",
        "garbage",
        "2026-13-45",
        "99999999999999999999d",
        "1y",
        "-1h",
        "...",
    ] {
        assert_eq!(
            fs::symlink_metadata(m.path.join("at").join(bad))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT),
            "{bad}"
        );
    }
    // Per host.
    let hosts: Vec<_> = fs::read_dir(m.path.join("hosts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(hosts.len(), 1);
    let host_at = hosts[0]
        .join("at/2026-11-23T0300Z")
        .join(&rel)
        .join("notes.txt");
    assert_eq!(fs::read(host_at).unwrap(), b"third");
    // The mount still answers after all that.
    assert_eq!(
        fs::read(m.path.join("latest").join(&rel).join("keep.txt")).unwrap(),
        b"kept all along"
    );
}

/// The names in directory `p`, sorted.
fn sorted_names(p: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn versions_in_the_mount_list_each_version_once_and_deleted_files_too() {
    if !super::mount::can_mount(
        "versions_in_the_mount_list_each_version_once_and_deleted_files_too",
    ) {
        return;
    }
    let f = history();
    let m = super::mount::Mounted::new(&f, &[]);
    let rel = f.src.strip_prefix("/").unwrap().to_path_buf();
    let v = m.path.join("versions").join(&rel);
    // The union of all snapshots' names: notes.txt is gone from the newest, still here.
    assert_eq!(
        sorted_names(&v),
        ["dir", "keep.txt", "notes.txt", "renamed.txt"]
    );
    // notes.txt: three versions, by the dated name of their first snapshot, as the CLI says.
    assert_eq!(
        sorted_names(&v.join("notes.txt")),
        [NAMES[0], NAMES[1], NAMES[3]]
    );
    let cli: Vec<String> = f
        .ok(&["versions", &format!("{}/notes.txt", f.src_str())])
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(sorted_names(&v.join("notes.txt")), cli);
    let texts: [&[u8]; 3] = [b"first version", b"second, longer version", b"third"];
    for (name, text) in [NAMES[0], NAMES[1], NAMES[3]].iter().zip(texts) {
        let p = v.join("notes.txt").join(name);
        assert_eq!(fs::read(&p).unwrap(), text, "{}", p.display());
        assert_eq!(fs::metadata(&p).unwrap().len(), text.len() as u64);
    }
    // Plain tools copy a version out.
    let out = f.path("restored-notes.txt");
    let status = std::process::Command::new("cp")
        .arg(v.join("notes.txt").join(NAMES[1]))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(fs::read(&out).unwrap(), b"second, longer version");
    // A metadata-only change is no new version; a renamed file starts its own history.
    assert_eq!(sorted_names(&v.join("keep.txt")), [NAMES[0]]);
    assert_eq!(sorted_names(&v.join("renamed.txt")), [NAMES[4]]);
    // Directories mirror the union below them.
    assert_eq!(sorted_names(&v.join("dir")), ["a"]);
    assert_eq!(sorted_names(&v.join("dir/a")), [NAMES[0]]);
    for missing in [
        "never.txt",
        "notes.txt/2026-11-22T020000Z",
        "notes.txt/garbage",
    ] {
        assert_eq!(
            fs::symlink_metadata(v.join(missing))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT),
            "{missing}"
        );
    }
    // Nothing can be written there.
    assert!(fs::write(v.join("notes.txt/new"), b"x").is_err());
}

/// Versions are told apart by content: a change that keeps the size and the modification
/// time is a new version (and so is a return to earlier content); a change of mode is not.
#[test]
fn versions_are_told_apart_by_content_not_by_size_or_time() {
    let f = Fixture::new();
    let p = f.src.join("same-size.txt");
    let write = |text: &[u8]| {
        fs::write(&p, text).unwrap();
        sh(&format!("touch -m -d @1700000000 '{}'", p.display()));
    };
    write(b"aaaa");
    snap(&f, 0);
    write(b"bbbb");
    snap(&f, 1);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    snap(&f, 2);
    write(b"aaaa");
    snap(&f, 3);
    let path = p.to_str().unwrap();
    let out = f.ok(&["versions", path]);
    let firsts: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(firsts, [NAMES[0], NAMES[1], NAMES[3]], "{out}");
    let json: Vec<serde_json::Value> = f
        .ok(&["versions", "--json", path])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        json[1]["snapshots"],
        serde_json::json!([NAMES[1], NAMES[2]])
    );
    assert_ne!(json[0]["content"], json[1]["content"]);
    assert_eq!(json[0]["content"], json[2]["content"]);
    for (i, v) in json.iter().enumerate() {
        assert_eq!(v["size"], 4, "version {i}");
    }
}
