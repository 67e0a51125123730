//! `--host`, `--tag` and `--path` select the same snapshots in every command that takes them
//! (`snapshots`, `forget`, `copy`, `find`, `versions`, `status`), with restic's meaning:
//! repeatable, a host or path matches any given, a tag list matches when a snapshot has all
//! of its tags; and `snapshots --latest N` keeps the newest N of each host and paths.

use std::fs;

use super::util::Fixture;

/// Four snapshots, an hour apart:
///   01:00 alpha src   daily    (file "one")
///   02:00 alpha src   weekly   (file "two")
///   03:00 bravo src   daily    (file "three")
///   04:00 bravo other daily    (other/note)
fn four(f: &Fixture) -> String {
    let other = f.path("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("note"), "note").unwrap();
    for (hour, host, tag, text) in [
        (1, "alpha", "daily", "one"),
        (2, "alpha", "weekly", "two"),
        (3, "bravo", "daily", "three"),
    ] {
        fs::write(f.src.join("file"), text).unwrap();
        let time = format!("2026-03-01T0{hour}:00:00Z");
        f.ok(&[
            "backup",
            "--host",
            host,
            "--tag",
            tag,
            "--time",
            &time,
            f.src_str(),
        ]);
    }
    let other = other.to_str().unwrap().to_string();
    f.ok(&[
        "backup",
        "--host",
        "bravo",
        "--tag",
        "daily",
        "--time",
        "2026-03-01T04:00:00Z",
        &other,
    ]);
    other
}

const ONE: &str = "2026-03-01T010000Z";
const TWO: &str = "2026-03-01T020000Z";
const THREE: &str = "2026-03-01T030000Z";
const FOUR: &str = "2026-03-01T040000Z";

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

/// The dated names `snapshots --json` gives with `args`.
fn listed(f: &Fixture, args: &[&str]) -> Vec<String> {
    let mut all = vec!["snapshots", "--json"];
    all.extend_from_slice(args);
    json(&f.ok(&all))
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn snapshots_selects_by_host_tag_and_path_and_keeps_the_latest_of_each_group() {
    let f = Fixture::new();
    let other = four(&f);
    let src = f.src_str();
    assert_eq!(listed(&f, &[]), [ONE, TWO, THREE, FOUR]);
    assert_eq!(listed(&f, &["--host", "alpha"]), [ONE, TWO]);
    assert_eq!(
        listed(&f, &["--host", "alpha", "--host", "bravo"]),
        [ONE, TWO, THREE, FOUR]
    );
    assert_eq!(listed(&f, &["--tag", "weekly"]), [TWO]);
    assert_eq!(
        listed(&f, &["--tag", "weekly", "--tag", "daily"]),
        [ONE, TWO, THREE, FOUR]
    );
    assert!(
        listed(&f, &["--tag", "weekly,daily"]).is_empty(),
        "all of a list"
    );
    assert_eq!(listed(&f, &["--path", &other]), [FOUR]);
    assert_eq!(listed(&f, &["--path", src, "--host", "bravo"]), [THREE]);
    // The newest of each host and paths: alpha/src, bravo/src, bravo/other.
    assert_eq!(listed(&f, &["--latest", "1"]), [TWO, THREE, FOUR]);
    assert_eq!(listed(&f, &["--latest", "2"]), [ONE, TWO, THREE, FOUR]);
    // Selected first, then the newest of what is left.
    assert_eq!(
        listed(&f, &["--latest", "1", "--tag", "daily"]),
        [ONE, THREE, FOUR]
    );
    assert_eq!(listed(&f, &["--latest", "1", "--host", "alpha"]), [TWO]);
    assert!(listed(&f, &["--latest", "0"]).is_empty());
}

#[test]
fn status_find_versions_and_copy_take_the_same_selection() {
    let f = Fixture::new();
    four(&f);
    let src_file = f.src.join("file");
    let src_file = src_file.to_str().unwrap();

    // status: with a tag, a group's newest snapshot that has it, and only those counted.
    let st = |args: &[&str]| {
        let mut all = vec!["status", "--json", "--max-age", "10000d"];
        all.extend_from_slice(args);
        let v = json(&f.ok(&all));
        let mut groups: Vec<(String, String, u64)> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["key"]["host"].as_str().unwrap().to_string(),
                    g["newest"].as_str().unwrap().to_string(),
                    g["snapshots"].as_u64().unwrap(),
                )
            })
            .collect();
        groups.sort();
        groups
    };
    let row = |h: &str, n: &str, c: u64| (h.to_string(), n.to_string(), c);
    assert_eq!(
        st(&[]),
        [
            row("alpha", TWO, 2),
            row("bravo", THREE, 1),
            row("bravo", FOUR, 1)
        ]
    );
    assert_eq!(
        st(&["--host", "alpha", "--tag", "daily"]),
        [row("alpha", ONE, 1)]
    );
    assert_eq!(st(&["--tag", "weekly"]), [row("alpha", TWO, 1)]);
    assert_eq!(st(&["--path", f.src_str()]).len(), 2);

    // versions: the versions of the file in the selected snapshots only.
    let firsts = |args: &[&str]| {
        let mut all = vec!["versions", "--json", src_file];
        all.extend_from_slice(args);
        f.ok(&all)
            .lines()
            .map(|l| json(l)["first"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(firsts(&[]), [ONE, TWO, THREE]);
    assert_eq!(firsts(&["--tag", "daily"]), [ONE, THREE]);
    assert_eq!(firsts(&["--host", "bravo"]), [THREE]);

    // find: paths in the selected snapshots only (none found is exit code 13).
    let found = |args: &[&str]| {
        let mut all = vec!["find", "--json", "note"];
        all.extend_from_slice(args);
        let out = f.run(&all);
        match out.status.code() {
            Some(0) => String::from_utf8_lossy(&out.stdout).lines().count(),
            Some(13) => 0,
            other => panic!("find {args:?}: {other:?}"),
        }
    };
    assert_eq!(found(&[]), 1);
    assert_eq!(found(&["--host", "alpha"]), 0);
    assert_eq!(found(&["--path", f.path("other").to_str().unwrap()]), 1);
    assert_eq!(found(&["--path", f.src_str()]), 0);
    assert_eq!(found(&["--host", "bravo", "--tag", "daily"]), 1);
    // Named snapshots are narrowed by the selection too.
    assert_eq!(found(&["--snapshot", FOUR]), 1);
    assert_eq!(found(&["--snapshot", FOUR, "--host", "alpha"]), 0);

    // copy: only the selected snapshots reach the destination.
    let to = f.path("to");
    let to_str = to.to_str().unwrap();
    let dest = Fixture::at(Some(to_str), Vec::new(), &[]);
    let r = json(&f.ok(&[
        "copy", "--to", to_str, "--json", "--host", "bravo", "--tag", "daily",
    ]));
    assert_eq!(r["snapshots_copied"], 2);
    assert_eq!(listed(&dest, &[]), [THREE, FOUR]);
    // Named snapshots are narrowed by the selection too.
    let r = json(&f.ok(&[
        "copy", "--to", to_str, "--json", ONE, TWO, "--tag", "weekly",
    ]));
    assert_eq!(r["snapshots_copied"], 1);
    assert_eq!(listed(&dest, &[]), [TWO, THREE, FOUR]);
}
