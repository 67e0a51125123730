//! A repository is private whatever the umask: directories 0700 and files 0600 (0750 and 0640
//! with `init --group-readable`), every file written later included; opening one that others
//! can read warns with the fix; and another user can neither list nor restore it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use super::util::assert_ok;
use super::util::{Fixture, have_root, noise, sh};

/// Every (path, mode) under `dir`, the directory itself included.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut out = vec![(dir.display().to_string(), mode(dir))];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(modes(&p));
        } else {
            out.push((p.display().to_string(), mode(&p)));
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Runs chronofs under `umask`.
fn with_umask(f: &Fixture, umask: &str, args: &str) -> std::process::Output {
    Command::new("sh")
        .env("CHRONOFS_PASSWORD", super::util::PASSWORD)
        .arg("-c")
        .arg(format!(
            "umask {umask} && exec '{}' --repo '{}' {args}",
            env!("CARGO_BIN_EXE_chronofs"),
            f.repo.display()
        ))
        .output()
        .unwrap()
}

fn assert_modes(repo: &Path, dir_mode: u32, file_mode: u32) {
    let all = modes(repo);
    assert!(
        all.len() > 260,
        "expected the whole layout, got {}",
        all.len()
    );
    for (path, m) in all {
        let want = if Path::new(&path).is_dir() {
            dir_mode
        } else {
            file_mode
        };
        assert_eq!(m, want, "{path} has mode {m:o}, expected {want:o}");
    }
}

#[test]
fn repositories_are_private_whatever_the_umask() {
    let f = Fixture::new();
    fs::remove_dir_all(&f.repo).unwrap();
    fs::write(f.src.join("a"), noise(1, 100_000)).unwrap();
    let out = with_umask(&f, "000", "init --kdf-memory 64K --kdf-time 1");
    assert_ok(&out);
    let out = with_umask(&f, "000", &format!("backup '{}'", f.src_str()));
    assert_ok(&out);
    // A lock, a second index and a snapshot written later keep the modes too.
    fs::write(f.src.join("b"), noise(2, 100_000)).unwrap();
    let out = with_umask(&f, "022", &format!("backup '{}'", f.src_str()));
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "no warning for a private repository: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_modes(&f.repo, 0o700, 0o600);

    // A repository made by hand (or by an older chronofs) that others can read: one warning
    // naming the fix, on every command that opens it.
    fs::set_permissions(&f.repo, fs::Permissions::from_mode(0o755)).unwrap();
    let err = String::from_utf8_lossy(&f.run(&["snapshots"]).stderr).into_owned();
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(
        err.contains(&format!("chmod -R go-rwx {}", f.repo.display())),
        "{err}"
    );
    sh(&format!("chmod -R go-rwx '{}'", f.repo.display()));
    assert!(f.run(&["snapshots"]).stderr.is_empty());
}

#[test]
fn group_readable_repositories_are_readable_by_the_group_only() {
    let f = Fixture::new();
    fs::remove_dir_all(&f.repo).unwrap();
    fs::write(f.src.join("a"), b"x").unwrap();
    let out = with_umask(
        &f,
        "077",
        "init --group-readable --kdf-memory 64K --kdf-time 1",
    );
    assert_ok(&out);
    let out = with_umask(&f, "077", &format!("backup '{}'", f.src_str()));
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_modes(&f.repo, 0o750, 0o640);
}

#[test]
fn another_user_can_neither_list_nor_restore_the_repository() {
    if !have_root("another_user_can_neither_list_nor_restore_the_repository") {
        return;
    }
    let f = Fixture::new();
    fs::write(f.src.join("shadow"), b"root:secret-hash:").unwrap();
    fs::set_permissions(f.src.join("shadow"), fs::Permissions::from_mode(0o600)).unwrap();
    f.ok(&["backup", f.src_str()]);
    // Everything on the way to the repository is open to `nobody`, and so is a copy of the
    // binary: only the repository's own modes stand in the way.
    let bin = f.path("chronofs");
    fs::copy(env!("CARGO_BIN_EXE_chronofs"), &bin).unwrap();
    sh(&format!(
        "chmod 755 '{}' '{}'",
        f.dir.path().display(),
        bin.display()
    ));
    let target = f.path("stolen");
    fs::create_dir(&target).unwrap();
    sh(&format!("chmod 777 '{}'", target.display()));
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(args)
            .output()
            .unwrap()
    };
    let version = as_nobody(&[bin.to_str().unwrap(), "--version"]);
    assert!(version.status.success(), "nobody cannot run the binary");
    let repo = f.repo.to_str().unwrap();
    let bin = bin.to_str().unwrap();
    for args in [
        vec![bin, "--repo", repo, "snapshots"],
        vec![bin, "--repo", repo, "ls", "latest"],
        vec![
            bin,
            "--repo",
            repo,
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ],
        vec!["ls", repo],
        vec!["cat", &format!("{repo}/config")],
    ] {
        let out = as_nobody(&args);
        assert!(!out.status.success(), "nobody ran {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
}
