//! Key files (`keys/<id>`): the repository's master key wrapped by a key derived from one
//! passphrase with Argon2id. A plaintext envelope (kind 6), since it must be read before
//! anything can be decrypted; its KDF parameters are bounded so a hostile key file cannot make
//! a reader allocate or compute without limit. Who made the key (host and user) is sealed
//! with the repository's metadata key in key files written now (record V2), so only a key holder reads it.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec::{self, FileKind};
use super::crypto::{KEY_LEN, NONCE_LEN};

/// Largest key file accepted.
pub const MAX_KEY_FILE_LEN: usize = 64 * 1024;
/// Most Argon2 memory a key file may ask for (KiB): 1 GiB.
pub const MAX_KDF_MEMORY_KIB: u32 = 1024 * 1024;
/// Most Argon2 passes a key file may ask for.
pub const MAX_KDF_TIME: u32 = 64;
/// Most Argon2 lanes a key file may ask for.
pub const MAX_KDF_LANES: u32 = 64;

/// Most bytes of a sealed maker (host and user names, nonce and tag).
pub const MAX_SEALED_MAKER_LEN: usize = 4096;

/// The versioned payload of a key file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum KeyFileRecord {
    /// What chronofs wrote before December 2026: host and user in the clear.
    V1(KeyFile),
    /// What chronofs writes: host and user sealed.
    V2(SealedKeyFile),
}

/// A key file as [`KeyFileRecord::V2`] stores it: as [`KeyFile`], with its maker sealed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedKeyFile {
    /// When the key was made, ns since the Unix epoch.
    pub created_ns: i64,
    /// A backup-only key.
    pub backup_only: bool,
    /// The passphrase's key derivation.
    pub kdf: Kdf,
    /// Argon2 salt.
    pub salt: [u8; KEY_LEN],
    /// AES-256-GCM-SIV nonce of `wrapped`.
    pub nonce: [u8; NONCE_LEN],
    /// The sealed master key record.
    pub wrapped: Vec<u8>,
    /// Host and user names, sealed with the metadata key (see `crate::crypto::kdf`).
    pub maker: Vec<u8>,
}

/// Argon2id (version 0x13) parameters.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Kdf {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub time: u32,
    /// Lanes.
    pub lanes: u32,
}

/// One key file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyFile {
    /// When the key was made, ns since the Unix epoch.
    pub created_ns: i64,
    /// Host name where it was made (empty when sealed: see `sealed_maker`).
    pub hostname: String,
    /// User who made it (empty when sealed).
    pub username: String,
    /// A backup-only key: it can add snapshots but read no content.
    pub backup_only: bool,
    /// The passphrase's key derivation.
    pub kdf: Kdf,
    /// Argon2 salt.
    pub salt: [u8; KEY_LEN],
    /// AES-256-GCM-SIV nonce of `wrapped`.
    pub nonce: [u8; NONCE_LEN],
    /// The sealed [`super::crypto::MasterKey`] record (associated data:
    /// [`super::crypto::key_aad`]).
    pub wrapped: Vec<u8>,
    /// Host and user, sealed (record V2); `None` in a V1 file, whose `hostname` and
    /// `username` are in the clear. Not part of the V1 encoding.
    #[serde(skip)]
    pub sealed_maker: Option<Vec<u8>>,
}

impl KeyFile {
    /// Encodes into a plaintext envelope.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let record = match &self.sealed_maker {
            None => KeyFileRecord::V1(self.clone()),
            Some(maker) => KeyFileRecord::V2(SealedKeyFile {
                created_ns: self.created_ns,
                backup_only: self.backup_only,
                kdf: self.kdf,
                salt: self.salt,
                nonce: self.nonce,
                wrapped: self.wrapped.clone(),
                maker: maker.clone(),
            }),
        };
        codec::seal(FileKind::Key, &record)
    }

    /// Decodes a key file and checks its KDF parameters are within bounds.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let k = match codec::open(FileKind::Key, bytes, MAX_KEY_FILE_LEN)? {
            KeyFileRecord::V1(k) => KeyFile {
                sealed_maker: None,
                ..k
            },
            KeyFileRecord::V2(s) => {
                if s.maker.len() > MAX_SEALED_MAKER_LEN {
                    return Err(FormatError::Invalid(format!(
                        "sealed maker of {} bytes (at most {MAX_SEALED_MAKER_LEN})",
                        s.maker.len()
                    )));
                }
                KeyFile {
                    created_ns: s.created_ns,
                    hostname: String::new(),
                    username: String::new(),
                    backup_only: s.backup_only,
                    kdf: s.kdf,
                    salt: s.salt,
                    nonce: s.nonce,
                    wrapped: s.wrapped,
                    sealed_maker: Some(s.maker),
                }
            }
        };
        let Kdf {
            memory_kib,
            time,
            lanes,
        } = k.kdf;
        if !(8..=MAX_KDF_MEMORY_KIB).contains(&memory_kib)
            || !(1..=MAX_KDF_TIME).contains(&time)
            || !(1..=MAX_KDF_LANES).contains(&lanes)
            || memory_kib < 8 * lanes
        {
            return Err(FormatError::Invalid(format!(
                "Argon2id parameters out of bounds: {memory_kib} KiB, {time} passes, {lanes} lanes"
            )));
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let mut k = KeyFile {
            created_ns: 1,
            hostname: "h".into(),
            username: "u".into(),
            backup_only: false,
            kdf: Kdf {
                memory_kib: 65536,
                time: 3,
                lanes: 1,
            },
            salt: [7; KEY_LEN],
            nonce: [8; NONCE_LEN],
            wrapped: vec![9; 100],
            sealed_maker: None,
        };
        assert_eq!(KeyFile::decode(&k.encode().unwrap()).unwrap(), k);
        // Version 3: the maker sealed, host and user not stored.
        let mut sealed = k.clone();
        sealed.hostname = String::new();
        sealed.username = String::new();
        sealed.sealed_maker = Some(vec![5; 60]);
        let bytes = sealed.encode().unwrap();
        assert_eq!(KeyFile::decode(&bytes).unwrap(), sealed);
        let mut leaky = sealed.clone();
        leaky.hostname = "h".into();
        assert_eq!(
            KeyFile::decode(&leaky.encode().unwrap()).unwrap(),
            sealed,
            "a sealed key file never stores the names in the clear"
        );
        sealed.sealed_maker = Some(vec![5; MAX_SEALED_MAKER_LEN + 1]);
        assert!(KeyFile::decode(&sealed.encode().unwrap()).is_err());
        k.kdf.memory_kib = u32::MAX;
        assert!(KeyFile::decode(&k.encode().unwrap()).is_err());
        k.kdf.memory_kib = 65536;
        k.kdf.time = 0;
        assert!(KeyFile::decode(&k.encode().unwrap()).is_err());
    }
}
