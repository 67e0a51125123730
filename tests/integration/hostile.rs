//! Hostile or garbled repository files: hundreds of random mutations (bit flips, truncations,
//! overwritten length fields, appended garbage) of every file in a repository. Every mutation
//! is noticed: opening the repository fails, or `check --read-data` names the damaged file.
//! Restore never produces wrong bytes: each file is either exact or absent, and every absent
//! one was reported (or the restore failed as a whole).

use std::fs;
use std::path::{Path, PathBuf};

use chronofs::ingest::{self, BackupOptions, Reporter, Silent};
use chronofs::maintain::check;
use chronofs::repo::{InitOptions, Repository};
use chronofs::restore::{self, RestoreOptions};

use super::util::{encrypted, noise, test_tmp, try_open};

/// Collects the paths restore warned about.
#[derive(Default)]
struct Collect(std::sync::Mutex<Vec<PathBuf>>);

impl Reporter for Collect {
    fn warning(&self, path: &Path, _message: &str) {
        self.0.lock().unwrap().push(path.to_path_buf());
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out)
        } else {
            out.push(p)
        }
    }
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(5) {
        0 => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => {
            // Overwrite a header/footer length field with a huge value.
            let at = if rng.below(2) == 0 {
                rng.below(64.min(bytes.len()))
            } else {
                bytes.len().saturating_sub(12)
            };
            for b in bytes.iter_mut().skip(at).take(8) {
                *b = 0xff;
            }
        }
        3 => bytes.extend_from_slice(&noise(rng.next(), rng.below(100) + 1)),
        _ => {
            let i = rng.below(bytes.len());
            let n = rng.below(16) + 1;
            for b in bytes.iter_mut().skip(i).take(n) {
                *b = rng.next() as u8;
            }
        }
    }
}

#[test]
fn random_damage_never_panics_or_yields_wrong_bytes() {
    random_damage(InitOptions::default());
}

#[test]
fn random_damage_of_an_encrypted_repository_never_yields_wrong_bytes() {
    random_damage(encrypted(InitOptions::default()));
}

/// Hundreds of rounds, each damaging one file of a repository made with `init` and putting
/// it back after.
fn random_damage(init: InitOptions) {
    let scratch = tempfile::tempdir_in(test_tmp()).unwrap();
    let src = scratch.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.bin"), noise(1, 300_000)).unwrap();
    fs::write(src.join("sub/b.txt"), "text ".repeat(50_000)).unwrap();
    fs::write(src.join("sub/c"), b"small").unwrap();
    let repo_dir = scratch.path().join("repo");
    let repo = Repository::init(&repo_dir, &init).unwrap();
    ingest::backup(
        &repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
        &Silent,
    )
    .unwrap();
    drop(repo);
    let mut all = Vec::new();
    files(&repo_dir, &mut all);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let rels = ["a.bin", "sub/b.txt", "sub/c"];
    for round in 0..400 {
        let victim = &all[rng.below(all.len())];
        let good = fs::read(victim).unwrap();
        let mut bad = good.clone();
        if bad.is_empty() {
            continue;
        }
        mutate(&mut bad, &mut rng);
        if bad == good {
            continue;
        }
        fs::write(victim, &bad).unwrap();
        let name = victim.file_name().unwrap().to_string_lossy().into_owned();
        // Opening fails (config, keys, index), or a full check names the damaged file.
        if let Ok(repo) = try_open(&repo_dir) {
            let report = check::check(&repo, true).unwrap();
            assert!(
                report.errors.iter().any(|e| e.contains(&name)),
                "round {round}: check --read-data does not name {}: {:?}",
                victim.display(),
                report.errors
            );
            if let Ok((snaps, _)) = repo.snapshots() {
                for (_, s) in snaps {
                    let target = scratch.path().join(format!("r{round}"));
                    let warned = Collect::default();
                    let outcome = restore::restore(
                        &repo,
                        &s,
                        None,
                        &target,
                        &RestoreOptions::default(),
                        &warned,
                    );
                    let restored = target.join(src.strip_prefix("/").unwrap());
                    let warnings = warned.0.into_inner().unwrap();
                    for rel in rels {
                        match fs::read(restored.join(rel)) {
                            Ok(got) => assert!(
                                got == fs::read(src.join(rel)).unwrap(),
                                "round {round}: wrong bytes restored for {rel} after damaging {}",
                                victim.display()
                            ),
                            // Not written: the restore failed outright, or said so for the
                            // file or a directory above it.
                            Err(_) => assert!(
                                outcome.is_err()
                                    || warnings.iter().any(|w| restored.join(rel).starts_with(w)),
                                "round {round}: {rel} was not restored and not reported ({warnings:?})"
                            ),
                        }
                    }
                    let _ = fs::remove_dir_all(&target);
                }
            }
        }
        fs::write(victim, &good).unwrap();
    }
    let repo = try_open(&repo_dir).unwrap();
    assert!(check::check(&repo, true).unwrap().is_ok());
}
