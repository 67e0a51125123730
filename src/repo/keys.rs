//! The key files of an encrypted repository (`keys/<id>`): making the first one at `init`,
//! unlocking with a passphrase, and `key list | add | remove | passwd`.
//!
//! Every key file wraps the same master key (a backup-only key file wraps it without the
//! decapsulation key), so adding or removing a passphrase never touches other files. Key files
//! are written like every other file (temp, fsync, rename) and named by their hash; a
//! passphrase change writes the new key file before it removes the old one, so a crash leaves
//! at least one working key.

use zeroize::Zeroizing;

use crate::crypto::kdf::{self, Maker};
use crate::error::{Error, Result};
use crate::format::crypto::{KEY_LEN, MasterKey};
use crate::format::id::Id;
use crate::format::keyfile::{Kdf, KeyFile, MAX_KEY_FILE_LEN};

use super::{Repository, layout};

/// A passphrase to make a key file for.
pub struct NewKey {
    /// The passphrase (zeroized when dropped).
    pub passphrase: Zeroizing<Vec<u8>>,
    /// Its Argon2id cost.
    pub kdf: Kdf,
    /// A backup-only key: it can add snapshots but read nothing.
    pub backup_only: bool,
    /// For `init --copy-settings-from`: the id key of the other repository, so that copies
    /// between the two keep their ids and deduplicate.
    pub id_key: Option<Zeroizing<[u8; KEY_LEN]>>,
}

impl NewKey {
    /// A full key for `passphrase` with the default cost.
    #[must_use]
    pub fn new(passphrase: Zeroizing<Vec<u8>>) -> Self {
        NewKey {
            passphrase,
            kdf: kdf::DEFAULT_KDF,
            backup_only: false,
            id_key: None,
        }
    }
}

/// The first master key of a new repository.
///
/// # Errors
/// No random numbers.
pub fn first_master_key(new: &NewKey) -> Result<MasterKey> {
    let mut master = crate::crypto::generate_master_key()
        .map_err(|e| Error::Key(format!("cannot make a key: {e}")))?;
    if let Some(id_key) = &new.id_key {
        master.id_key = **id_key;
    }
    Ok(master)
}

fn key_path(id: &str) -> String {
    format!("{}/{id}", layout::KEY_DIR)
}

/// Wraps `master` (without its decapsulation key if `new.backup_only`) under `new`'s
/// passphrase and writes the key file; returns its name.
///
/// # Errors
/// Bad KDF parameters, or I/O errors.
pub fn write_key_file(repo: &Repository, master: &MasterKey, new: &NewKey) -> Result<String> {
    let mut master = master.clone();
    if new.backup_only {
        master.kem_secret = None;
    }
    let maker = Maker {
        created_ns: super::now_ns(),
        hostname: crate::sys::hostname(),
        username: crate::sys::user_name(crate::sys::euid()).unwrap_or_default(),
    };
    let file = kdf::wrap(
        &master,
        &new.passphrase,
        new.kdf,
        &repo.config.repo_id,
        maker,
    )
    .map_err(|e| Error::Key(format!("cannot make a key file: {e}")))?;
    let bytes = file
        .encode()
        .map_err(|e| Error::corrupt("<new key>", e.to_string()))?;
    let id = Id::hash(&bytes).to_hex();
    let path = key_path(&id);
    repo.storage
        .write(&path, &bytes)
        .map_err(|e| Error::repo_io("writing", path, e))?;
    Ok(id)
}

/// Every key file: its name and its contents, or why it cannot be read.
///
/// # Errors
/// The key directory cannot be listed.
pub fn list(repo: &Repository) -> Result<Vec<(String, Result<KeyFile>)>> {
    let names = repo.list_ids(layout::KEY_DIR)?;
    Ok(names
        .into_iter()
        .map(|name| {
            let path = key_path(&name);
            let file = repo
                .read_verified(&path, &name, MAX_KEY_FILE_LEN)
                .and_then(|b| {
                    KeyFile::decode(&b).map_err(|e| Error::corrupt(&path, e.to_string()))
                });
            (name, file)
        })
        .collect())
}

/// Host and user who made key `file` (sealed in V2 key files: opened with the unlocked key);
/// `None` if the repository is not unlocked or the names do not open.
#[must_use]
pub fn maker(repo: &Repository, file: &KeyFile) -> Option<(String, String)> {
    let (master, _) = repo.master_key()?;
    kdf::maker_of(file, master, &repo.config.repo_id)
}

/// Finds the key file `passphrase` opens and unwraps the master key.
///
/// # Errors
/// [`Error::Key`] naming what was tried when nothing opens.
pub fn open(repo: &Repository, passphrase: &[u8]) -> Result<(MasterKey, String)> {
    let keys = list(repo).map_err(|e| match e {
        Error::RepoIo { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
            Error::Key("the repository is encrypted but has no keys/ directory".into())
        }
        e => e,
    })?;
    if keys.is_empty() {
        return Err(Error::Key(
            "the repository is encrypted but keys/ holds no key file".into(),
        ));
    }
    let mut damaged = Vec::new();
    for (name, file) in &keys {
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                damaged.push(e.to_string());
                continue;
            }
        };
        match kdf::unwrap(file, passphrase, &repo.config.repo_id) {
            Ok(Some(master)) => return Ok((master, name.clone())),
            Ok(None) => {}
            Err(e) => damaged.push(format!("{}: {e}", key_path(name))),
        }
    }
    let mut msg = format!(
        "wrong passphrase: it opens none of the {} key files of {}",
        keys.len(),
        repo.location.display()
    );
    if !damaged.is_empty() {
        msg.push_str(&format!(
            " ({} damaged: {})",
            damaged.len(),
            damaged.join("; ")
        ));
    }
    Err(Error::Key(msg))
}

/// The unlocked master key, or an error saying the repository has none.
fn unlocked(repo: &Repository) -> Result<(&MasterKey, &str)> {
    repo.master_key().ok_or_else(|| {
        Error::InvalidInput(format!(
            "{} is not encrypted: it has no keys",
            repo.location.display()
        ))
    })
}

/// Adds a key file for `new`'s passphrase. A backup-only key can only add backup-only keys.
///
/// # Errors
/// [`Error::BackupOnly`] for a full key added with a backup-only key; I/O errors.
pub fn add(repo: &Repository, new: &NewKey) -> Result<String> {
    let (master, _) = unlocked(repo)?;
    if master.kem_secret.is_none() && !new.backup_only {
        return Err(Error::BackupOnly("adding a full key".into()));
    }
    write_key_file(repo, master, new)
}

/// Resolves a key file name or unique prefix.
fn resolve(repo: &Repository, prefix: &str) -> Result<String> {
    let matches: Vec<String> = repo
        .list_ids(layout::KEY_DIR)?
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::NotFound(format!("no key file matches {prefix:?}"))),
        _ => Err(Error::InvalidInput(format!(
            "{prefix:?} matches {} key files; give more digits",
            matches.len()
        ))),
    }
}

/// Removes key file `prefix`. The key in use cannot be removed (use `passwd`), nor the last
/// full key, without which nothing could be read again.
///
/// # Errors
/// [`Error::Refused`] for those; [`Error::NotFound`] for no match.
pub fn remove(repo: &Repository, prefix: &str) -> Result<String> {
    let (_, current) = unlocked(repo)?;
    let name = resolve(repo, prefix)?;
    if name == current {
        return Err(Error::Refused(format!(
            "key {} is the one this command was unlocked with; unlock with another key to \
             remove it, or change its passphrase with `chronofs key passwd`",
            &name[..8]
        )));
    }
    let others_full = list(repo)?
        .into_iter()
        .filter(|(n, f)| *n != name && f.as_ref().is_ok_and(|f| !f.backup_only))
        .count();
    let is_full = list(repo)?
        .into_iter()
        .any(|(n, f)| n == name && f.as_ref().is_ok_and(|f| !f.backup_only));
    if is_full && others_full == 0 {
        return Err(Error::Refused(format!(
            "key {} is the last full key: without it nothing in the repository could be read",
            &name[..8]
        )));
    }
    repo.remove_if_present(&key_path(&name))?;
    Ok(name)
}

/// Changes the passphrase of the key in use: writes a key file for `new` of the same kind,
/// then removes the old one. Returns the new key file's name.
///
/// # Errors
/// I/O errors (the old key then still works).
pub fn passwd(repo: &Repository, new: &NewKey) -> Result<String> {
    let (master, current) = unlocked(repo)?;
    let new = NewKey {
        passphrase: new.passphrase.clone(),
        kdf: new.kdf,
        backup_only: master.kem_secret.is_none(),
        id_key: None,
    };
    let id = write_key_file(repo, master, &new)?;
    repo.remove_if_present(&key_path(current))?;
    Ok(id)
}
