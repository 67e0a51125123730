//! The hostile suite on encrypted repositories: each case is a repository made by chronofs
//! (two backups of three one-chunk files) and then altered by someone who holds the keys that
//! seal the index (a backup-only key has them), so every altered file is validly sealed and
//! named by its hash. Each alteration must be refused with exit 11; files it does not touch
//! still restore and read exactly, the ones it does are left out, named, and EIO on the mount.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chronofs::crypto::Scheme;
use chronofs::format::codec::{self, FileKind};
use chronofs::format::id::{BlobId, Id, IndexId, PackId};
use chronofs::format::index::{Index, IndexFile, IndexV1, IndexedPackV1};
use chronofs::format::pack::PackedBlob;
use chronofs::repo::{Repository, layout};
use chronofs::storage::LocalStorage;

use super::hostile_repos::{Build, Case, Expected, Fate, Want, exercise_all};
use super::util::{CHEAP_KDF, PASSWORD, bin, noise};

/// Length of each source file: one chunk (below the chunker's minimum), stored raw (noise).
const FILE_LEN: usize = 64 << 10;
/// The passphrase of the backup-only key every case repository has.
const BACKUP_ONLY: &str = "backup only";

/// The three files: `a` and `b` in the first backup (one data pack, one session), `c` added
/// by the second (another pack and session).
const FILES: [&str; 3] = ["a", "b", "c"];

/// An encrypted repository at `repo` with a backup-only key and two backups of `src/` beside
/// it. Returns the files' names under the snapshot root and their contents.
fn two_backups(repo: &Path) -> Vec<(String, Vec<u8>)> {
    let src = repo.parent().unwrap().join("src");
    fs::create_dir(&src).unwrap();
    let chronofs = |args: &[&str]| {
        let out = bin().arg("--repo").arg(repo).args(args).output().unwrap();
        super::util::assert_ok(&out);
    };
    let mut init = vec!["init"];
    init.extend(CHEAP_KDF);
    chronofs(&init);
    let bo = repo.parent().unwrap().join("backup-only-pass");
    fs::write(&bo, BACKUP_ONLY).unwrap();
    let mut add = vec!["key", "add", "--backup-only", "--new-password-file"];
    add.push(bo.to_str().unwrap());
    add.extend(CHEAP_KDF);
    chronofs(&add);
    let mut files = Vec::new();
    for (seed, name) in (1..).zip(FILES) {
        let content = noise(seed, FILE_LEN);
        fs::write(src.join(name), &content).unwrap();
        let under_root = src.join(name).strip_prefix("/").unwrap().to_owned();
        files.push((under_root.to_str().unwrap().to_owned(), content));
        if name != "a" {
            chronofs(&["backup", src.to_str().unwrap()]);
        }
    }
    files
}

fn unlocked(repo: &Path, passphrase: &str) -> Repository {
    let storage = Arc::new(LocalStorage::new(repo));
    let mut r = Repository::open_storage(storage, repo).unwrap();
    r.unlock(passphrase.as_bytes()).unwrap();
    r
}

/// Every index file of `repo`, opened with `scheme`'s keys.
fn index_files(repo: &Path, scheme: &Scheme) -> Vec<(PathBuf, Index)> {
    fs::read_dir(repo.join("index"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let index = Index::decode(&fs::read(&path).unwrap(), scheme.payload()).unwrap();
            (path, index)
        })
        .collect()
}

/// Puts `bytes` (an index file) in place of the one at `old`, named by its hash as writers do.
fn replace_index(repo: &Path, old: &Path, bytes: &[u8]) {
    fs::remove_file(old).unwrap();
    let new = repo.join(layout::index_path(&IndexId(Id::hash(bytes))));
    fs::write(new, bytes).unwrap();
}

/// Rewrites every index file of `repo` after `edit` had its say, sealed with `scheme`.
fn edit_index(repo: &Path, scheme: &Scheme, mut edit: impl FnMut(&mut Index)) {
    for (path, mut index) in index_files(repo, scheme) {
        edit(&mut index);
        replace_index(repo, &path, &index.encode(scheme.payload()).unwrap());
    }
}

/// Where the index places the blob of `content`: its pack and entry.
fn place(repo: &Path, scheme: &Scheme, content: &[u8]) -> (PackId, PackedBlob) {
    let id: BlobId = scheme.blob_id(content);
    index_files(repo, scheme)
        .into_iter()
        .flat_map(|(_, index)| index.packs)
        .find_map(|p| p.blobs.iter().find(|b| b.id == id).map(|b| (p.id, *b)))
        .unwrap()
}

/// Rewrites the pack `id` with `edit`, renames it to its new hash and makes the index say so.
fn edit_pack(repo: &Path, scheme: &Scheme, id: PackId, edit: impl FnOnce(&mut Vec<u8>)) -> PackId {
    let old = repo.join(layout::pack_path(&id));
    let mut bytes = fs::read(&old).unwrap();
    edit(&mut bytes);
    let new_id = PackId(Id::hash(&bytes));
    fs::remove_file(&old).unwrap();
    fs::write(repo.join(layout::pack_path(&new_id)), &bytes).unwrap();
    edit_index(repo, scheme, |index| {
        for p in index.packs.iter_mut().filter(|p| p.id == id) {
            p.id = new_id;
        }
    });
    new_id
}

fn range(b: &PackedBlob) -> std::ops::Range<usize> {
    b.offset as usize..(b.offset + b.stored_len) as usize
}

fn expect(files: &[(String, Vec<u8>)], fates: [Fate; 3]) -> Expected {
    files
        .iter()
        .zip(fates)
        .map(|((name, content), fate)| {
            let want = Want {
                content: content.clone(),
                fate,
            };
            (name.clone(), want)
        })
        .collect()
}

use Fate::{Damaged, Intact, Unreachable};

// 0 snapshots, 1 ls, 2 restore, 3 check, 4 check --read-data, 5 copy, 6 prune, 7 mount,
// 8 check --read-data of the copy (-1: the copy fails).
const CASES: &[Case] = &[
    Case {
        // The index rewritten as a version-1 (plaintext-style) record, validly sealed.
        name: "sealed-old-style-index",
        build: Build::Sealed(|repo| {
            let files = two_backups(repo);
            let r = unlocked(repo, PASSWORD);
            let scheme = r.scheme().unwrap();
            for (path, index) in index_files(repo, scheme) {
                let v1 = IndexV1 {
                    packs: index
                        .packs
                        .into_iter()
                        .map(|p| IndexedPackV1 {
                            id: p.id,
                            len: p.len,
                            blobs: p.blobs,
                        })
                        .collect(),
                    supersedes: index.supersedes,
                };
                let bytes = codec::seal_with(FileKind::Index, &IndexFile::V1(v1), scheme.payload())
                    .unwrap();
                replace_index(repo, &path, &bytes);
            }
            expect(&files, [Unreachable; 3])
        }),
        codes: [11, 11, 11, 11, 11, 11, 11, 11, -1],
    },
    Case {
        // A pack names a session its index file does not hold.
        name: "sealed-session-out-of-range",
        build: Build::Sealed(|repo| {
            let files = two_backups(repo);
            let r = unlocked(repo, PASSWORD);
            edit_index(repo, r.scheme().unwrap(), |index| {
                let past = u32::try_from(index.sessions.len()).unwrap();
                for p in &mut index.packs {
                    p.session = past;
                }
            });
            expect(&files, [Unreachable; 3])
        }),
        codes: [11, 11, 11, 11, 11, 11, 11, 11, -1],
    },
    Case {
        // A backup-only host (which holds the index key) points a's id at b's bytes.
        name: "sealed-forged-entry-from-a-backup-only-key",
        build: Build::Sealed(|repo| {
            let files = two_backups(repo);
            let r = unlocked(repo, BACKUP_ONLY);
            let scheme = r.scheme().unwrap();
            let (_, a) = place(repo, scheme, &files[0].1);
            let (_, b) = place(repo, scheme, &files[1].1);
            edit_index(repo, scheme, |index| {
                for p in &mut index.packs {
                    for blob in p.blobs.iter_mut().filter(|x| x.id == a.id) {
                        *blob = PackedBlob { id: a.id, ..b };
                    }
                }
            });
            expect(&files, [Damaged, Intact, Intact])
        }),
        codes: [0, 0, 11, 11, 11, 11, 0, 0, -1],
    },
    Case {
        // a's and b's sealed bytes trade places in their pack (renamed to its new hash).
        name: "sealed-pair-swapped",
        build: Build::Sealed(|repo| {
            let files = two_backups(repo);
            let r = unlocked(repo, PASSWORD);
            let scheme = r.scheme().unwrap();
            let (pack, a) = place(repo, scheme, &files[0].1);
            let (_, b) = place(repo, scheme, &files[1].1);
            assert_eq!(a.stored_len, b.stored_len);
            edit_pack(repo, scheme, pack, |bytes| {
                let sealed_a = bytes[range(&a)].to_vec();
                bytes.copy_within(range(&b), a.offset as usize);
                bytes[range(&b)].copy_from_slice(&sealed_a);
            });
            expect(&files, [Damaged, Damaged, Intact])
        }),
        codes: [0, 0, 11, 0, 11, 11, 0, 0, -1],
    },
    Case {
        // c's sealed bytes (second session) moved into the first backup's pack, over a's,
        // and the index sends c there.
        name: "sealed-blob-moved-between-packs",
        build: Build::Sealed(|repo| {
            let files = two_backups(repo);
            let r = unlocked(repo, PASSWORD);
            let scheme = r.scheme().unwrap();
            let (first, a) = place(repo, scheme, &files[0].1);
            let (second, c) = place(repo, scheme, &files[2].1);
            assert_ne!(first, second);
            assert_eq!(a.stored_len, c.stored_len);
            let sealed_c =
                fs::read(repo.join(layout::pack_path(&second))).unwrap()[range(&c)].to_vec();
            let first = edit_pack(repo, scheme, first, |bytes| {
                bytes[range(&a)].copy_from_slice(&sealed_c);
            });
            edit_index(repo, scheme, |index| {
                for p in &mut index.packs {
                    p.blobs.retain(|x| x.id != c.id);
                    if p.id == first {
                        p.blobs.push(PackedBlob { id: c.id, ..a });
                    }
                }
            });
            expect(&files, [Damaged, Intact, Damaged])
        }),
        codes: [0, 0, 11, 11, 11, 11, 0, 0, -1],
    },
];

#[test]
fn altered_encrypted_repositories_give_errors_never_wrong_bytes() {
    exercise_all(CASES, false);
}

#[test]
fn altered_encrypted_repositories_through_the_mount() {
    if super::mount::can_mount("altered_encrypted_repositories_through_the_mount") {
        exercise_all(CASES, true);
    }
}
