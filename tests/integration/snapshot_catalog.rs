//! The snapshot catalog a client keeps in its cache directory (docs/FORMAT.md, "Snapshot
//! catalog"): it saves reading snapshot files, and never changes which snapshots a command
//! sees or what they hold. A forgotten snapshot leaves every listing at once; a lost,
//! truncated or altered catalog gives the same listing (damage is named in a warning and the
//! catalog rewritten); an encrypted repository's catalog holds no name in the clear; and
//! `check` reads the repository's own snapshot files.

use std::fs;
use std::path::{Path, PathBuf};

use super::util::{Fixture, cached_fixture as fixture, noise, repo_cache_dir};

fn catalog_dir(f: &Fixture) -> PathBuf {
    repo_cache_dir(f, "cache", "catalog")
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .collect();
    v.sort();
    v
}

/// Backups of three hosts, an hour apart.
fn three_hosts(f: &Fixture) {
    for (i, host) in ["alpha", "bravo", "charlie"].iter().enumerate() {
        fs::write(f.src.join("file"), noise(i as u64, 10_000)).unwrap();
        let time = format!("2026-03-01T0{i}:00:00Z");
        f.ok(&["backup", "--host", host, "--time", &time, f.src_str()]);
    }
}

/// `snapshots --json`, and the command's stderr.
fn listing(f: &Fixture, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec!["snapshots", "--json"];
    args.extend_from_slice(extra);
    let out = f.run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "snapshots failed: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_catalog_follows_forget_and_new_backups_and_per_host_listing_selects() {
    let f = fixture(&["--encryption", "none"]);
    three_hosts(&f);
    let (all, stderr) = listing(&f, &[]);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(
        names(&all),
        [
            "2026-03-01T000000Z",
            "2026-03-01T010000Z",
            "2026-03-01T020000Z"
        ]
    );
    assert!(!segments(&catalog_dir(&f)).is_empty(), "no catalog written");
    // Per host.
    let (bravo, _) = listing(&f, &["--host", "bravo"]);
    assert_eq!(names(&bravo), ["2026-03-01T010000Z"]);
    assert_eq!(bravo[0]["snapshot"]["hostname"], "bravo");
    // A forgotten snapshot is gone from the next listing, though the catalog holds it.
    f.ok(&["forget", "2026-03-01T010000Z"]);
    let (after, _) = listing(&f, &[]);
    assert_eq!(names(&after), ["2026-03-01T000000Z", "2026-03-01T020000Z"]);
    assert!(names(&listing(&f, &["--host", "bravo"]).0).is_empty());
    // A new one appears, and `latest` resolves to it.
    fs::write(f.src.join("file"), noise(9, 10_000)).unwrap();
    f.ok(&[
        "backup",
        "--host",
        "delta",
        "--time",
        "2026-03-01T03:00:00Z",
        f.src_str(),
    ]);
    let (after, _) = listing(&f, &[]);
    assert_eq!(names(&after).len(), 3);
    assert_eq!(after[2]["snapshot"]["hostname"], "delta");
    let ls = f.ok(&["ls", "latest"]);
    assert!(ls.contains("file"), "{ls}");
    // The same as a command without any cache.
    let out = f.run(&["--no-cache", "snapshots", "--json"]);
    assert!(out.status.success());
    let uncached: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(uncached, after);
}

#[test]
fn a_lost_truncated_or_altered_catalog_gives_the_same_listing() {
    let f = fixture(&[]);
    three_hosts(&f);
    let (want, _) = listing(&f, &[]);
    let dir = catalog_dir(&f);
    // Lost: rebuilt silently.
    fs::remove_dir_all(&dir).unwrap();
    let (got, stderr) = listing(&f, &[]);
    assert_eq!(got, want);
    assert!(stderr.is_empty(), "{stderr}");
    let seg = segments(&dir);
    assert_eq!(seg.len(), 1, "{seg:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        fs::metadata(&seg[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Truncated, a table entry altered, a sealed record altered: each is named in a
    // warning, the listing is unchanged (read from the snapshot files), and the catalog is
    // rewritten without the damage.
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 3] = [
        ("truncated", |b| b.truncate(b.len() / 2)),
        ("entry", |b| b[16 + 40] ^= 1),
        ("record", |b| {
            let at = b.len() - 40;
            b[at] ^= 0x10;
        }),
    ];
    for (what, damage) in damages {
        let seg = segments(&dir);
        assert_eq!(seg.len(), 1, "{what}: {seg:?}");
        let victim = &seg[0];
        let mut bytes = fs::read(victim).unwrap();
        damage(&mut bytes);
        fs::write(victim, &bytes).unwrap();
        let (got, stderr) = listing(&f, &[]);
        assert_eq!(got, want, "{what}");
        assert!(
            stderr.contains("warning: snapshot catalog")
                && stderr.contains(&*victim.to_string_lossy()),
            "{what}: {stderr}"
        );
        assert!(!victim.exists(), "{what}: the damaged segment was kept");
        if what == "record" {
            // Found when the record was opened, after the table was read: the segment was
            // removed, and this listing writes the catalog again.
            listing(&f, &[]);
        }
        let (got, stderr) = listing(&f, &[]);
        assert_eq!(got, want, "{what}");
        assert!(stderr.is_empty(), "{what}: {stderr}");
    }
}

/// Hundreds of records opened from one segment: each must come back with its own id (a
/// record opened for another entry fails its check, and is named), and a damaged body in the
/// middle of them is read from its file like any other.
#[test]
fn hundreds_of_records_from_one_segment_list_as_the_files_do_and_a_damaged_one_is_read_again() {
    let f = fixture(&[]);
    fs::write(f.src.join("file"), b"x").unwrap();
    f.ok(&["backup", "--host", "h", f.src_str()]);
    super::util::copies_of_first_snapshot(&f.repo, 700, |i| Some(format!("host{}", i % 7)));
    // The first listing reads the files and writes the catalog; the second opens its bodies.
    let (want, _) = listing(&f, &[]);
    assert_eq!(want.as_array().unwrap().len(), 700);
    let (got, stderr) = listing(&f, &[]);
    assert_eq!(got, want);
    assert!(stderr.is_empty(), "{stderr}");
    let dir = catalog_dir(&f);
    let seg = segments(&dir);
    assert_eq!(seg.len(), 1, "{seg:?}");
    // A byte in the middle of the bodies (after the header, 700 entries and the table's tag).
    let mut bytes = fs::read(&seg[0]).unwrap();
    let bodies = 16 + 700 * 96 + 32;
    let at = bodies + (bytes.len() - bodies) / 2;
    bytes[at] ^= 0x20;
    fs::write(&seg[0], &bytes).unwrap();
    let (got, stderr) = listing(&f, &[]);
    assert_eq!(got, want);
    assert!(
        stderr.contains("warning: snapshot catalog") && stderr.contains(&*seg[0].to_string_lossy()),
        "{stderr}"
    );
    assert!(!seg[0].exists(), "the damaged segment was kept");
}

#[test]
fn an_encrypted_repositorys_catalog_holds_no_name_in_the_clear() {
    let f = fixture(&[]);
    three_hosts(&f);
    listing(&f, &[]);
    let dir = catalog_dir(&f);
    let seg = segments(&dir);
    assert!(!seg.is_empty());
    for s in &seg {
        let bytes = fs::read(s).unwrap();
        for secret in ["alpha", "bravo", "charlie", f.src_str()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds {secret:?} in the clear",
                s.display()
            );
        }
    }
}

#[test]
fn check_reads_the_repositorys_snapshot_files_not_the_catalog() {
    let f = fixture(&["--encryption", "none"]);
    three_hosts(&f);
    let (want, _) = listing(&f, &[]);
    // Damage a snapshot file in the repository. The catalog's record of it is still right
    // (a snapshot file never changes), so listings go on; check must see the damage.
    let snaps = f.repo.join("snapshots");
    let file = fs::read_dir(&snaps)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&file, &bytes).unwrap();
    assert_eq!(listing(&f, &[]).0, want);
    let out = f.run(&["check"]);
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(chronofs::error::exit::DAMAGED.into()),
        "{stderr}"
    );
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stderr.contains(&name),
        "check did not name {name}: {stderr}"
    );
}

/// Waits until the snapshot directory's times are a second old: only then does the storage
/// give a token for it, and a listing get saved or used.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn a_saved_listing_serves_only_the_directory_state_it_was_taken_in() {
    let f = fixture(&["--encryption", "none"]);
    three_hosts(&f);
    let mut repo = super::util::open_repo(&f.repo);
    repo.attach_disk_cache(&f.path("cache").join("chronofs"))
        .unwrap();
    let listed = |repo: &chronofs::repo::Repository| {
        let mut ids = repo.snapshot_ids().unwrap();
        ids.sort();
        ids
    };
    let three = listed(&repo);
    assert_eq!(three.len(), 3);
    // Saved under a token; given the same token back, the saved ids are the answer even after
    // the directory changed (which is why the token must change with it: next).
    let token = chronofs::storage::ListToken {
        file: (1, 2),
        times: (3, 4),
    };
    assert_eq!(repo.snapshot_ids_under(Some(token)).unwrap(), three);
    assert!(
        catalog_dir(&f).join("listing").is_file(),
        "no listing saved"
    );
    let forgotten = three[1].to_hex();
    fs::remove_file(f.repo.join("snapshots").join(&forgotten)).unwrap();
    assert_eq!(repo.snapshot_ids_under(Some(token)).unwrap(), three);
    // Any other token (or none) lists the directory.
    let other = chronofs::storage::ListToken {
        times: (3, 5),
        ..token
    };
    let two = listed(&repo);
    assert_eq!(repo.snapshot_ids_under(Some(other)).unwrap(), two);
    assert_eq!(repo.snapshot_ids_under(None).unwrap(), two);
    // The directory's real token changes with what it holds, so a command sees a forgotten
    // snapshot leave and a new one come, though a listing was saved in between.
    settle();
    let before = repo
        .snapshot_list_token()
        .unwrap()
        .expect("a settled directory");
    assert_eq!(repo.snapshot_ids_under(Some(before)).unwrap(), two);
    f.ok(&["forget", &three[0].to_hex()[..8]]);
    settle();
    let after = repo
        .snapshot_list_token()
        .unwrap()
        .expect("a settled directory");
    assert_ne!(before, after, "a removed file leaves the token as it was");
    assert_eq!(listing(&f, &[]).0.as_array().unwrap().len(), 1);
    fs::write(f.src.join("file"), noise(7, 10_000)).unwrap();
    f.ok(&["backup", "--host", "delta", f.src_str()]);
    settle();
    assert_ne!(
        after,
        repo.snapshot_list_token().unwrap().unwrap(),
        "a new file leaves the token as it was"
    );
    let (now, _) = listing(&f, &[]);
    assert_eq!(now.as_array().unwrap().len(), 2);
    assert_eq!(now[1]["snapshot"]["hostname"], "delta");
}

#[test]
fn a_damaged_saved_listing_is_named_and_the_directory_listed_again() {
    let f = fixture(&["--encryption", "none"]);
    three_hosts(&f);
    settle();
    let (clean, stderr) = listing(&f, &[]);
    assert!(stderr.is_empty(), "{stderr}");
    let saved = catalog_dir(&f).join("listing");
    let good = fs::read(&saved).expect("a listing saved once the directory settled");
    for damage in ["flip", "cut", "foreign"] {
        let mut bytes = good.clone();
        match damage {
            "flip" => bytes[good.len() / 2] ^= 1,
            "cut" => bytes.truncate(good.len() - 32),
            // One id left out, as a listing of another state would: the tag no longer fits.
            _ => {
                bytes.drain(72 + 32..72 + 64);
                bytes[64] -= 1;
            }
        }
        fs::write(&saved, &bytes).unwrap();
        let (again, stderr) = listing(&f, &[]);
        assert_eq!(again, clean, "{damage}");
        assert!(
            stderr.contains("listing the snapshot directory again")
                && stderr.contains(&saved.display().to_string()),
            "{damage}: {stderr}"
        );
        // Saved anew.
        assert_eq!(fs::read(&saved).unwrap(), good, "{damage}");
    }
}
