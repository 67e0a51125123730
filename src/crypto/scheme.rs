//! What a repository's objects are sealed with: nothing (format version 1) or an unlocked key
//! (version 2). The repository engine asks its [`Scheme`] for blob ids, sealed blobs and the
//! envelope cipher, and never sees a key.

use std::sync::Arc;

use crate::format::FormatError;
use crate::format::codec::{PayloadCipher, Plain};
use crate::format::crypto::SessionKey;
use crate::format::id::{BlobId, Id};
use crate::format::pack::BlobKind;

use super::Crypto;

/// A repository's cipher.
#[derive(Clone, Debug)]
pub enum Scheme {
    /// Plaintext: plain blake3 ids, blobs stored as they are.
    Plain,
    /// Encrypted with an unlocked key.
    Encrypted(Arc<Crypto>),
}

impl Scheme {
    /// The envelope cipher.
    #[must_use]
    pub fn payload(&self) -> &dyn PayloadCipher {
        match self {
            Scheme::Plain => &Plain,
            Scheme::Encrypted(c) => &**c,
        }
    }

    /// The id of a blob with bytes `raw`.
    #[must_use]
    pub fn blob_id(&self, raw: &[u8]) -> BlobId {
        BlobId(match self {
            Scheme::Plain => Id::hash(raw),
            Scheme::Encrypted(c) => c.blob_id(raw),
        })
    }

    /// A hasher for ids of data streamed in pieces; `finish` gives the id.
    #[must_use]
    pub fn id_hasher(&self) -> blake3::Hasher {
        match self {
            Scheme::Plain => blake3::Hasher::new(),
            Scheme::Encrypted(c) => c.id_hasher(),
        }
    }

    /// The unlocked key, if the repository is encrypted.
    #[must_use]
    pub fn crypto(&self) -> Option<&Arc<Crypto>> {
        match self {
            Scheme::Plain => None,
            Scheme::Encrypted(c) => Some(c),
        }
    }

    /// The session key this process seals packs with (`None` in a plaintext repository).
    ///
    /// # Errors
    /// No random numbers.
    pub fn writer_session(&self) -> Result<Option<SessionKey>, FormatError> {
        self.crypto().map(|c| c.writer_session()).transpose()
    }

    /// Seals a blob's stored bytes (plaintext repositories store them as they are).
    ///
    /// # Errors
    /// No random numbers.
    pub fn seal_blob(
        &self,
        kind: BlobKind,
        id: &BlobId,
        stored: Vec<u8>,
    ) -> Result<Vec<u8>, FormatError> {
        match self {
            Scheme::Plain => Ok(stored),
            Scheme::Encrypted(c) => c.seal_blob(kind, id, &stored),
        }
    }

    /// Opens a stored blob of a pack sealed in `session`.
    ///
    /// # Errors
    /// Not authentic, a missing session key, or a backup-only key.
    pub fn open_blob(
        &self,
        kind: BlobKind,
        id: &BlobId,
        session: Option<&SessionKey>,
        stored: Vec<u8>,
    ) -> Result<Vec<u8>, FormatError> {
        match (self, session) {
            (Scheme::Plain, _) => Ok(stored),
            (Scheme::Encrypted(c), Some(s)) => c.open_blob(kind, id, s, &stored),
            (Scheme::Encrypted(_), None) => Err(FormatError::Invalid(format!(
                "blob {} is in a pack without a session key",
                id.short()
            ))),
        }
    }
}
