//! The byte layout of encryption (format version 2): sizes, the associated data that binds each
//! sealed object to what it is, session keys, and the master key record that key files wrap.
//! No cryptography happens here (that is `crate::crypto`); this module only says where the
//! bytes go, so that docs/FORMAT.md, "Encryption", and the code agree.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec;
use super::id::Id;

/// The config's `cipher` value of an encrypted repository.
pub const CIPHER_NAME: &str = "aes256gcmsiv-xwing";
/// The config's `cipher` value of a plaintext repository.
pub const CIPHER_NONE: &str = "none";

/// AES-256-GCM-SIV nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-256-GCM-SIV tag length.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a blob: the nonce before it and the tag after it.
pub const BLOB_OVERHEAD: u32 = (NONCE_LEN + TAG_LEN) as u32;
/// Length of an X-Wing ciphertext (a session key sealed to the repository's public key).
pub const KEM_CIPHERTEXT_LEN: usize = 1120;
/// Length of an X-Wing encapsulation (public) key.
pub const KEM_PUBLIC_LEN: usize = 1216;
/// Length of every symmetric key and of the X-Wing decapsulation key seed.
pub const KEY_LEN: usize = 32;

/// Domain-separation contexts for `blake3::derive_key` (see docs/FORMAT.md).
pub mod context {
    /// Session data key from an X-Wing shared secret.
    pub const SESSION_KEY: &str = "chronofs 2026-12 session data key";
    /// FastCDC gear seed from the id key.
    pub const CHUNKER_SEED: &str = "chronofs 2026-12 chunker seed";
    /// Key of the tags of a client's local index (its cache), from the id key, or from the
    /// repository id in a plaintext repository.
    pub const LOCAL_INDEX: &str = "chronofs 2026-12 local index tag key";
    /// Key of the snapshot records in a client's cache: from the full key's X-Wing seed
    /// (AES-256-GCM-SIV), or from the repository id in a plaintext repository (a tag).
    pub const LOCAL_RECORDS: &str = "chronofs 2026-12 local snapshot records key";
    /// Key of the tags of a client's snapshot catalog tables (and of the host and group tags
    /// in them), from the same secrets as [`LOCAL_RECORDS`].
    pub const LOCAL_RECORDS_TAG: &str = "chronofs 2026-12 local snapshot table tag key";
}

/// A session's data key, sealed to the repository's public key: an X-Wing ciphertext. Every
/// writer (a backup, a copy, a prune's repacking) makes one session; its packs' blobs and its
/// snapshot are encrypted with the session's data key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct SessionKey(pub Vec<u8>);

impl SessionKey {
    /// Checks the length.
    ///
    /// # Errors
    /// [`FormatError::Invalid`] if it is not an X-Wing ciphertext's length.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.0.len() != KEM_CIPHERTEXT_LEN {
            return Err(FormatError::Invalid(format!(
                "a session key of {} bytes (expected {KEM_CIPHERTEXT_LEN})",
                self.0.len()
            )));
        }
        Ok(())
    }

    /// A short name for caches and messages: blake3 of the ciphertext.
    #[must_use]
    pub fn fingerprint(&self) -> Id {
        Id::hash(&self.0)
    }
}

/// The associated data of a wrapped master key: the repository's id and whether the key is
/// backup-only, so a key file can neither move to another repository nor change its kind.
#[must_use]
pub fn key_aad(repo_id: &Id, backup_only: bool) -> [u8; 45] {
    let mut aad = [0u8; 45];
    aad[..12].copy_from_slice(b"chronofs key");
    aad[12..44].copy_from_slice(&repo_id.0);
    aad[44] = u8::from(backup_only);
    aad
}

/// The secret a key file wraps.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum MasterKeyRecord {
    /// Format version 2.
    V1(MasterKey),
}

/// The repository's keys. A full key holds all of them; a backup-only key lacks
/// `kem_secret`, so it can seal session keys but open none. Zeroized when dropped.
#[derive(
    Clone, Serialize, Deserialize, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
pub struct MasterKey {
    /// Keys blob ids (`blake3::keyed_hash`) and, derived, the chunker's gear seed.
    pub id_key: [u8; KEY_LEN],
    /// Encrypts index files, pack trailers and lock files (what a writer must read).
    pub meta_key: [u8; KEY_LEN],
    /// The X-Wing encapsulation key session keys are sealed to.
    pub kem_public: Vec<u8>,
    /// The X-Wing decapsulation key seed; absent in a backup-only key.
    pub kem_secret: Option<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("backup_only", &self.kem_secret.is_none())
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// postcard bytes of the record (to be wrapped).
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        codec::to_bytes(&MasterKeyRecord::V1(self.clone()))
    }

    /// Decodes an unwrapped record and checks its lengths.
    ///
    /// # Errors
    /// [`FormatError`] if it is not a master key.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let MasterKeyRecord::V1(k) = codec::from_bytes(bytes)?;
        if k.kem_public.len() != KEM_PUBLIC_LEN {
            return Err(FormatError::Invalid(format!(
                "a public key of {} bytes",
                k.kem_public.len()
            )));
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_aad_binds_the_kind() {
        let r = Id::hash(b"r");
        assert_ne!(key_aad(&r, true), key_aad(&r, false));
    }

    #[test]
    fn master_key_round_trip_and_lengths() {
        let k = MasterKey {
            id_key: [1; 32],
            meta_key: [2; 32],
            kem_public: vec![3; KEM_PUBLIC_LEN],
            kem_secret: Some([4; 32]),
        };
        assert_eq!(MasterKey::decode(&k.encode().unwrap()).unwrap(), k);
        let mut short = k.clone();
        short.kem_public.pop();
        assert!(MasterKey::decode(&short.encode().unwrap()).is_err());
        assert!(
            !format!("{k:?}").contains('4'),
            "Debug never shows key bytes"
        );
        assert!(SessionKey(vec![0; 5]).validate().is_err());
        SessionKey(vec![0; KEM_CIPHERTEXT_LEN]).validate().unwrap();
    }
}
