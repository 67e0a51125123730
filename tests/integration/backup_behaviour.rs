//! What users expect of `backup`: excludes, the repository never backing itself up, warnings
//! and exit code 3 for unreadable files, stdin streams, change detection, listings.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use super::util::assert_ok;
use super::util::{Fixture, sh};

fn summary(f: &Fixture, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["backup", "--json"];
    full.extend_from_slice(args);
    let out = f.ok(&full);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    v["summary"].clone()
}

#[test]
fn excludes_and_repository_inside_source() {
    let f = Fixture::new();
    fs::create_dir_all(f.src.join("keep/cache")).unwrap();
    fs::write(f.src.join("keep/a.txt"), b"a").unwrap();
    fs::write(f.src.join("keep/b.tmp"), b"b").unwrap();
    fs::write(f.src.join("keep/cache/c"), b"c").unwrap();
    fs::write(f.src.join("keep/d.log"), b"d").unwrap();
    let exclude_file = f.path("excludes");
    fs::write(&exclude_file, "# comment\n\n*.log\n").unwrap();
    // A second repository inside the source tree.
    let inner = f.src.join("inner-repo");
    let out = f
        .cmd(&["init"])
        .env_remove("CHRONOFS_REPO")
        .arg("--repo")
        .arg(&inner)
        .output()
        .unwrap();
    assert!(out.status.success());
    let cache = format!("{}/keep/cache", f.src_str());
    let out = f
        .cmd(&[
            "backup",
            f.src_str(),
            "--exclude",
            "*.tmp",
            "--exclude",
            &cache,
            "--exclude-file",
            exclude_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let ls = f.ok(&["ls", "latest"]);
    assert!(ls.contains("keep/a.txt"));
    for gone in ["b.tmp", "keep/cache", "d.log"] {
        assert!(!ls.contains(gone), "{gone} should be excluded:\n{ls}");
    }
    // Backing up a tree that contains the repository itself skips the repository.
    let outer = Fixture::new();
    let repo_inside = outer.src.join("repo");
    let out = outer
        .cmd(&["init"])
        .env_remove("CHRONOFS_REPO")
        .arg("--repo")
        .arg(&repo_inside)
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(outer.src.join("file"), b"f").unwrap();
    let out = super::util::bin()
        .args([
            "--repo",
            repo_inside.to_str().unwrap(),
            "backup",
            outer.src_str(),
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("repository itself"));
    let ls = super::util::bin()
        .args(["--repo", repo_inside.to_str().unwrap(), "ls", "latest"])
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.contains("/file") && !ls.contains("/repo/config"), "{ls}");
}

#[test]
fn unreadable_files_warn_and_exit_3() {
    let f = Fixture::new();
    fs::write(f.src.join("ok.txt"), b"fine").unwrap();
    fs::write(f.src.join("secret"), b"hidden").unwrap();
    fs::create_dir(f.src.join("locked")).unwrap();
    fs::write(f.src.join("locked/inside"), b"x").unwrap();
    fs::set_permissions(f.src.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(f.src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads everything, so run the backup as an unprivileged user when we are root.
    let as_root = chronofs::sys::euid() == 0;
    if as_root {
        sh(&format!(
            "chmod 0777 '{0}' '{0}/repo' && chmod -R a+rwX '{0}/repo'",
            f.dir.path().display()
        ));
    }
    let mut cmd = if as_root {
        let mut c = std::process::Command::new("setpriv");
        c.env("CHRONOFS_PASSWORD", super::util::PASSWORD);
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_chronofs"),
        ]);
        c
    } else {
        super::util::bin()
    };
    let out = cmd
        .args([
            "--repo",
            f.repo.to_str().unwrap(),
            "backup",
            "--json",
            f.src_str(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("secret") && stderr.contains("Permission denied"),
        "{stderr}"
    );
    assert!(stderr.contains("locked"), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(v["summary"]["errors"], 2);
    // The readable file is in the snapshot.
    let ls = f.ok(&["ls", "latest"]);
    assert!(ls.contains("ok.txt") && !ls.contains("secret"), "{ls}");
}

#[test]
fn stdin_and_failing_producers() {
    let f = Fixture::new();
    let mut child = f
        .cmd(&["backup", "--stdin", "--stdin-name", "db.sql"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data = "INSERT INTO t VALUES (1);\n".repeat(100_000);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let ls = f.ok(&["ls", "latest"]);
    assert_eq!(ls.trim(), "/db.sql");
    let target = f.path("r");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(target.join("db.sql")).unwrap(), data);

    // A producer that fails yields no snapshot and a non-zero exit.
    let before = f.ok(&["snapshots", "--json"]);
    let err = f.fails(
        &[
            "backup",
            "--stdin-from-command",
            "--stdin-name",
            "dump.sql",
            "--",
            "sh",
            "-c",
            "echo partial; exit 7",
        ],
        1,
    );
    assert!(err.contains("command failed"), "{err}");
    assert_eq!(f.ok(&["snapshots", "--json"]), before);
    // A producer that succeeds yields a snapshot with its output.
    f.ok(&[
        "backup",
        "--stdin-from-command",
        "--stdin-name",
        "dump.sql",
        "--",
        "sh",
        "-c",
        "echo complete",
    ]);
    let t2 = f.path("r2");
    f.ok(&["restore", "latest", "--target", t2.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(t2.join("dump.sql")).unwrap(),
        "complete\n"
    );
}

#[test]
fn incremental_backup_reads_only_changes() {
    let f = Fixture::new();
    for i in 0..20 {
        fs::write(
            f.src.join(format!("f{i}")),
            format!("file {i}").repeat(1000),
        )
        .unwrap();
    }
    let s1 = summary(&f, &[f.src_str()]);
    assert_eq!(s1["files_new"], 20);
    let s2 = summary(&f, &[f.src_str()]);
    assert_eq!(
        (s2["files_unchanged"].as_u64(), s2["bytes_read"].as_u64()),
        (Some(20), Some(0))
    );
    // Rewrite one file keeping size and mtime: the new ctime still marks it changed.
    sh(&format!(
        "cd '{0}' && touch -r f3 '{1}' && echo 'FILE 3' | dd of=f3 conv=notrunc status=none && touch -r '{1}' f3",
        f.src_str(),
        f.path("mtime-ref").display()
    ));
    fs::write(f.src.join("new"), b"new").unwrap();
    let s3 = summary(&f, &[f.src_str()]);
    assert_eq!(
        (
            s3["files_changed"].as_u64(),
            s3["files_new"].as_u64(),
            s3["files_unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(19))
    );
    let s4 = summary(&f, &["--force", f.src_str()]);
    assert_eq!(s4["files_changed"], 21);
    assert_eq!(s4["chunks_new"], 0, "forced re-read dedups everything");
    // Every snapshot restores on its own and the listing shows all four.
    let listing: serde_json::Value = serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    assert_eq!(listing.as_array().unwrap().len(), 4);
    let first = listing[0]["id"].as_str().unwrap()[..8].to_string();
    let t = f.path("t");
    f.ok(&["restore", &first, "--target", t.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(f.restored_src(&t).join("f3")).unwrap(),
        "file 3".repeat(1000)
    );
    let cat = f.ok(&["cat", "snapshot", &first]);
    assert!(cat.contains("\"root\""), "{cat}");
    assert!(f.ok(&["cat", "config"]).contains("chunker"));
}
