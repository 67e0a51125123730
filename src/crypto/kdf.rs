//! Passphrases to key files and back: Argon2id derives a key-encryption key from the passphrase
//! and the key file's salt, and AES-256-GCM-SIV wraps the master key with it, bound to the
//! repository's id and the key's kind. Who made the key (host and user) is sealed with the
//! master key's metadata key, so any key holder can list it and nobody else.

use aes_gcm_siv::Aes256GcmSiv;
use aes_gcm_siv::aead::KeyInit;
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::format::FormatError;
use crate::format::crypto::{KEY_LEN, MasterKey, NONCE_LEN, key_aad};
use crate::format::id::Id;
use crate::format::keyfile::{Kdf, KeyFile};

/// Default Argon2id cost: 128 MiB, 3 passes, 1 lane (about half a second on one core of a
/// current server).
pub const DEFAULT_KDF: Kdf = Kdf {
    memory_kib: 128 * 1024,
    time: 3,
    lanes: 1,
};

/// Who made a key, for `key list`.
#[derive(Clone, Debug, Default)]
pub struct Maker {
    /// When, ns since the Unix epoch.
    pub created_ns: i64,
    /// Host name.
    pub hostname: String,
    /// User name.
    pub username: String,
}

/// Derives the key-encryption key of `passphrase` under `kdf` and `salt`.
fn derive(
    passphrase: &[u8],
    kdf: Kdf,
    salt: &[u8; KEY_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, FormatError> {
    let params = Params::new(kdf.memory_kib, kdf.time, kdf.lanes, Some(KEY_LEN))
        .map_err(|e| FormatError::Invalid(format!("Argon2id parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut *out)
        .map_err(|e| FormatError::Invalid(format!("Argon2id: {e}")))?;
    Ok(out)
}

/// Wraps `master` under `passphrase` into a new key file of repository `repo_id`. A master key
/// without its decapsulation key makes a backup-only key file.
///
/// # Errors
/// Bad KDF parameters, or no random numbers.
pub fn wrap(
    master: &MasterKey,
    passphrase: &[u8],
    kdf: Kdf,
    repo_id: &Id,
    maker: Maker,
) -> Result<KeyFile, FormatError> {
    let mut salt = [0u8; KEY_LEN];
    super::random(&mut salt)?;
    let kek = derive(passphrase, kdf, &salt)?;
    let backup_only = master.kem_secret.is_none();
    let plain = Zeroizing::new(master.encode()?);
    let sealed = super::seal(
        &Aes256GcmSiv::new(&(*kek).into()),
        &key_aad(repo_id, backup_only),
        &plain,
    )?;
    let (nonce, wrapped) = sealed.split_at(NONCE_LEN);
    let sealed_maker = seal_maker(master, repo_id, &maker)?;
    Ok(KeyFile {
        created_ns: maker.created_ns,
        hostname: String::new(),
        username: String::new(),
        backup_only,
        kdf,
        salt,
        nonce: nonce
            .try_into()
            .map_err(|_| FormatError::Encode("nonce".into()))?,
        wrapped: wrapped.to_vec(),
        sealed_maker: Some(sealed_maker),
    })
}

/// The associated data of a sealed maker: what it is and the repository it belongs to.
fn maker_aad(repo_id: &Id) -> Vec<u8> {
    [&b"chronofs key maker"[..], &repo_id.0].concat()
}

/// Host and user of `maker`, sealed with `master`'s metadata key.
fn seal_maker(master: &MasterKey, repo_id: &Id, maker: &Maker) -> Result<Vec<u8>, FormatError> {
    let plain = postcard::to_allocvec(&(&maker.hostname, &maker.username))
        .map_err(|e| FormatError::Encode(e.to_string()))?;
    super::seal(
        &Aes256GcmSiv::new(&master.meta_key.into()),
        &maker_aad(repo_id),
        &plain,
    )
}

/// Host and user who made `file`: opened with `master`'s metadata key (record V2), or as a
/// V1 file stores them. `None` if the sealed names do not open with this key.
#[must_use]
pub fn maker_of(file: &KeyFile, master: &MasterKey, repo_id: &Id) -> Option<(String, String)> {
    let Some(sealed) = &file.sealed_maker else {
        return Some((file.hostname.clone(), file.username.clone()));
    };
    let plain = super::open(
        &Aes256GcmSiv::new(&master.meta_key.into()),
        &maker_aad(repo_id),
        sealed,
    )
    .ok()?;
    postcard::from_bytes(&plain).ok()
}

/// Unwraps a key file with `passphrase`; `None` when the passphrase is not this key's.
///
/// # Errors
/// The key file's parameters are unusable, or it unwraps to something that is not a master
/// key of its kind (damage that authenticated anyway cannot happen without the passphrase).
pub fn unwrap(
    file: &KeyFile,
    passphrase: &[u8],
    repo_id: &Id,
) -> Result<Option<MasterKey>, FormatError> {
    let kek = derive(passphrase, file.kdf, &file.salt)?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + file.wrapped.len());
    sealed.extend_from_slice(&file.nonce);
    sealed.extend_from_slice(&file.wrapped);
    let Ok(plain) = super::open(
        &Aes256GcmSiv::new(&(*kek).into()),
        &key_aad(repo_id, file.backup_only),
        &sealed,
    ) else {
        return Ok(None);
    };
    let plain = Zeroizing::new(plain);
    let master = MasterKey::decode(&plain)?;
    if master.kem_secret.is_none() != file.backup_only {
        return Err(FormatError::Invalid(
            "the key's kind does not match its contents".into(),
        ));
    }
    Ok(Some(master))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Kdf = Kdf {
        memory_kib: 64,
        time: 1,
        lanes: 1,
    };

    #[test]
    fn wrap_unwrap_wrong_passphrase_and_other_repository() {
        let master = super::super::generate_master_key().unwrap();
        let repo = Id::hash(b"repo");
        let file = wrap(&master, b"correct horse", FAST, &repo, Maker::default()).unwrap();
        assert!(!file.backup_only);
        let back = unwrap(&file, b"correct horse", &repo).unwrap().unwrap();
        assert!(back == master);
        assert!(unwrap(&file, b"wrong", &repo).unwrap().is_none());
        assert!(
            unwrap(&file, b"correct horse", &Id::hash(b"other"))
                .unwrap()
                .is_none()
        );
        let mut flipped = file.clone();
        flipped.backup_only = true;
        assert!(unwrap(&flipped, b"correct horse", &repo).unwrap().is_none());
        let mut limited = master.clone();
        limited.kem_secret = None;
        let file = wrap(&limited, b"b", FAST, &repo, Maker::default()).unwrap();
        assert!(file.backup_only);
        assert!(
            unwrap(&file, b"b", &repo)
                .unwrap()
                .unwrap()
                .kem_secret
                .is_none()
        );
    }

    #[test]
    fn who_made_a_key_is_sealed_and_opens_with_any_key_of_the_repository() {
        let master = super::super::generate_master_key().unwrap();
        let repo = Id::hash(b"repo");
        let maker = Maker {
            created_ns: 5,
            hostname: "web-server-17".into(),
            username: "backup-operator".into(),
        };
        let file = wrap(&master, b"pw", FAST, &repo, maker).unwrap();
        let bytes = file.encode().unwrap();
        for name in [&b"web-server-17"[..], b"backup-operator"] {
            assert!(
                !bytes.windows(name.len()).any(|w| w == name),
                "a name is in the clear"
            );
        }
        let read = KeyFile::decode(&bytes).unwrap();
        let names = Some(("web-server-17".to_string(), "backup-operator".to_string()));
        assert_eq!(maker_of(&read, &master, &repo), names);
        let mut backup_only = master.clone();
        backup_only.kem_secret = None;
        assert_eq!(
            maker_of(&read, &backup_only, &repo),
            names,
            "a backup-only key reads it"
        );
        let other = super::super::generate_master_key().unwrap();
        assert_eq!(
            maker_of(&read, &other, &repo),
            None,
            "another repository's key does not"
        );
        assert_eq!(maker_of(&read, &master, &Id::hash(b"elsewhere")), None);
        let mut damaged = read.clone();
        if let Some(m) = damaged.sealed_maker.as_mut() {
            m[20] ^= 1;
        }
        assert_eq!(maker_of(&damaged, &master, &repo), None);
        assert!(unwrap(&read, b"pw", &repo).unwrap().unwrap() == master);
    }
}
