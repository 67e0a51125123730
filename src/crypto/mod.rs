//! The one place where repository objects are sealed and opened (format version 2).
//!
//! - Blob ids are `blake3::keyed_hash(id_key, raw)`, and the chunker's gear table is seeded from
//!   the same key, so neither ids nor cut points say anything about content to someone without
//!   the key.
//! - Every writer process opens a *session*: a random data key, obtained by X-Wing
//!   encapsulation to the repository's public key (the KEM ciphertext is the session key that
//!   packs and snapshots carry). Blobs and snapshots are sealed with AES-256-GCM-SIV under
//!   the session's data key. Only a full key, which holds the X-Wing decapsulation key, can
//!   open a session; a backup-only key can make sessions but open none.
//! - Index files, pack trailers and lock files (what every writer must read) are sealed with the
//!   meta key, which backup-only keys hold too.
//!
//! The byte layout is in [`crate::format::crypto`] and docs/FORMAT.md, "Encryption". All
//! primitives come from RustCrypto crates (`aes-gcm-siv`, `x-wing`, `argon2`); keys are
//! zeroized when dropped.

pub mod kdf;
pub mod scheme;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use x_wing::{Decapsulate, DecapsulationKey, Encapsulate, EncapsulationKey, KeyExport};
use zeroize::{Zeroize, Zeroizing};

use crate::format::FormatError;
use crate::format::codec::{Cipher, FileKind, PayloadCipher};
use crate::format::crypto::{
    self as layout, KEM_CIPHERTEXT_LEN, KEY_LEN, MasterKey, NONCE_LEN, SessionKey,
};
use crate::format::id::{BlobId, Id};
use crate::format::pack::BlobKind;
use crate::format::snapshot_catalog::{Keys as CatalogKeys, LocalSeal};

pub use self::scheme::Scheme;

/// Fills `buf` from the operating system's random source.
///
/// # Errors
/// The OS refused (no entropy source): nothing secret may be made then.
pub fn random(buf: &mut [u8]) -> Result<(), FormatError> {
    getrandom::fill(buf).map_err(|e| FormatError::Encode(format!("no random numbers: {e}")))
}

/// A new random master key: id key, meta key, and an X-Wing key pair.
///
/// # Errors
/// No random numbers.
pub fn generate_master_key() -> Result<MasterKey, FormatError> {
    let mut id_key = [0u8; KEY_LEN];
    let mut meta_key = [0u8; KEY_LEN];
    let mut seed = [0u8; KEY_LEN];
    random(&mut id_key)?;
    random(&mut meta_key)?;
    random(&mut seed)?;
    let kem_public = public_of(&seed);
    Ok(MasterKey {
        id_key,
        meta_key,
        kem_public,
        kem_secret: Some(seed),
    })
}

/// The X-Wing encapsulation key of a decapsulation key seed.
fn public_of(seed: &[u8; KEY_LEN]) -> Vec<u8> {
    use x_wing::Decapsulator as _;
    DecapsulationKey::from(*seed)
        .encapsulation_key()
        .to_bytes()
        .to_vec()
}

/// A writer's session: its sealed key (stored in packs and snapshots) and its data key.
struct WriterSession {
    sealed: SessionKey,
    data_key: Zeroizing<[u8; KEY_LEN]>,
}

/// An unlocked repository key: everything needed to seal, and (for a full key) to open.
pub struct Crypto {
    id_key: Zeroizing<[u8; KEY_LEN]>,
    meta: Aes256GcmSiv,
    public: EncapsulationKey,
    secret: Option<DecapsulationKey>,
    /// Data keys of sessions opened so far, by the fingerprint of their sealed key.
    opened: Mutex<HashMap<Id, Zeroizing<[u8; KEY_LEN]>>>,
    writer: OnceLock<WriterSession>,
    /// Seals the snapshot records kept in this client's cache, and keys their table's tags;
    /// only a full key has them.
    cache: Option<(Aes256GcmSiv, Zeroizing<[u8; KEY_LEN]>)>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("backup_only", &self.secret.is_none())
            .finish_non_exhaustive()
    }
}

impl Crypto {
    /// Takes the keys out of an unwrapped master key (which is zeroized when dropped).
    ///
    /// # Errors
    /// The public key is not an X-Wing encapsulation key.
    pub fn new(key: &MasterKey) -> Result<Crypto, FormatError> {
        let public = EncapsulationKey::try_from(key.kem_public.as_slice())
            .map_err(|_| FormatError::Invalid("the master key's public key is invalid".into()))?;
        let secret = key.kem_secret.map(DecapsulationKey::from);
        if let Some(s) = &secret {
            use x_wing::Decapsulator as _;
            if s.encapsulation_key() != &public {
                return Err(FormatError::Invalid(
                    "the master key's key pair does not match".into(),
                ));
            }
        }
        Ok(Crypto {
            id_key: Zeroizing::new(key.id_key),
            meta: Aes256GcmSiv::new(&key.meta_key.into()),
            public,
            secret,
            opened: Mutex::new(HashMap::new()),
            writer: OnceLock::new(),
            cache: key.kem_secret.as_ref().map(|seed| {
                let k = Zeroizing::new(blake3::derive_key(layout::context::LOCAL_RECORDS, seed));
                let tag = blake3::derive_key(layout::context::LOCAL_RECORDS_TAG, seed);
                (Aes256GcmSiv::new(&(*k).into()), Zeroizing::new(tag))
            }),
        })
    }

    /// Whether this key can only add snapshots.
    #[must_use]
    pub fn backup_only(&self) -> bool {
        self.secret.is_none()
    }

    /// A blob's id: the keyed blake3 of its raw bytes.
    #[must_use]
    pub fn blob_id(&self, raw: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id_key, raw).as_bytes())
    }

    /// A streaming hasher for keyed blob ids.
    #[must_use]
    pub fn id_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.id_key)
    }

    /// The FastCDC gear seed derived from the id key.
    #[must_use]
    pub fn chunker_seed(&self) -> u64 {
        let mut k = blake3::derive_key(layout::context::CHUNKER_SEED, &*self.id_key);
        let seed = u64::from_le_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]]);
        k.zeroize();
        seed
    }

    /// The key that tags the pages of this repository's local index (a client's cache).
    #[must_use]
    pub fn local_index_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(blake3::derive_key(
            layout::context::LOCAL_INDEX,
            &*self.id_key,
        ))
    }

    /// The keys of the snapshot records this client keeps in its cache: AES-256-GCM-SIV and
    /// a tag key, derived from the secret only a full key holds, so that a copy of the cache
    /// shows nothing to whoever lacks that key. `None` with a backup-only key.
    #[must_use]
    pub fn cache_keys(&self) -> Option<CatalogKeys<'_>> {
        self.cache.as_ref().map(|(cipher, tag)| CatalogKeys {
            seal: Box::new(CacheSeal { cipher }),
            tag_key: tag.clone(),
        })
    }

    /// Whether `other` computes the same blob ids and cut points (copies between the two
    /// deduplicate and keep their ids).
    #[must_use]
    pub fn same_ids(&self, other: &Crypto) -> bool {
        *self.id_key == *other.id_key
    }

    /// This process's writer session (made on first use).
    fn writer(&self) -> Result<&WriterSession, FormatError> {
        if let Some(w) = self.writer.get() {
            return Ok(w);
        }
        let (ct, shared) = self.public.encapsulate();
        let data_key = Zeroizing::new(blake3::derive_key(
            layout::context::SESSION_KEY,
            shared.as_slice(),
        ));
        let session = WriterSession {
            sealed: SessionKey(ct.to_vec()),
            data_key,
        };
        Ok(self.writer.get_or_init(|| session))
    }

    /// The session key this process seals with.
    ///
    /// # Errors
    /// No random numbers.
    pub fn writer_session(&self) -> Result<SessionKey, FormatError> {
        Ok(self.writer()?.sealed.clone())
    }

    /// The data key of `session`, opened with the decapsulation key (cached).
    fn session_key(&self, session: &SessionKey) -> Result<Zeroizing<[u8; KEY_LEN]>, FormatError> {
        if let Some(w) = self.writer.get()
            && w.sealed == *session
        {
            if self.secret.is_none() {
                return Err(FormatError::BackupOnly);
            }
            return Ok(w.data_key.clone());
        }
        let secret = self.secret.as_ref().ok_or(FormatError::BackupOnly)?;
        let fingerprint = session.fingerprint();
        let mut opened = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = opened.get(&fingerprint) {
            return Ok(k.clone());
        }
        session.validate()?;
        let shared = secret
            .decapsulate_slice(&session.0)
            .map_err(|_| FormatError::Invalid("a session key of the wrong length".into()))?;
        let key = Zeroizing::new(blake3::derive_key(
            layout::context::SESSION_KEY,
            shared.as_slice(),
        ));
        opened.insert(fingerprint, key.clone());
        Ok(key)
    }

    /// Seals a blob's stored (compressed or raw) bytes with this process's session.
    ///
    /// # Errors
    /// No random numbers.
    pub fn seal_blob(
        &self,
        kind: BlobKind,
        id: &BlobId,
        stored: &[u8],
    ) -> Result<Vec<u8>, FormatError> {
        let w = self.writer()?;
        let cipher = Aes256GcmSiv::new(&(*w.data_key).into());
        seal(&cipher, &crate::format::pack::blob_aad(kind, id), stored)
    }

    /// Opens a sealed blob of pack session `session`.
    ///
    /// # Errors
    /// [`FormatError::BackupOnly`] without the decapsulation key; [`FormatError::Unauthentic`]
    /// if the bytes are not the blob `id` of kind `kind` sealed in that session.
    pub fn open_blob(
        &self,
        kind: BlobKind,
        id: &BlobId,
        session: &SessionKey,
        sealed: &[u8],
    ) -> Result<Vec<u8>, FormatError> {
        let key = self.session_key(session)?;
        let cipher = Aes256GcmSiv::new(&(*key).into());
        open(&cipher, &crate::format::pack::blob_aad(kind, id), sealed)
            .map_err(|()| FormatError::Unauthentic(format!("blob {}", id.short())))
    }
}

/// `nonce || ciphertext || tag` of `plain` under `cipher` with a random nonce.
/// The seal of [`Crypto::cache_keys`].
pub struct CacheSeal<'c> {
    cipher: &'c Aes256GcmSiv,
}

impl LocalSeal for CacheSeal<'_> {
    fn kind(&self) -> u8 {
        crate::format::snapshot_catalog::SEAL_AEAD
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, FormatError> {
        seal(self.cipher, aad, plain)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, FormatError> {
        open(self.cipher, aad, sealed)
            .map_err(|()| FormatError::Unauthentic("a record of the local cache".into()))
    }
}

fn seal(cipher: &Aes256GcmSiv, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let ct = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: plain, aad })
        .map_err(|_| FormatError::Encode("encryption failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// The inverse of [`seal`]; `Err(())` when the bytes are not authentic.
fn open(cipher: &Aes256GcmSiv, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, ()> {
    if sealed.len() < NONCE_LEN + layout::TAG_LEN {
        return Err(());
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| ())?;
    cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .map_err(|_| ())
}

/// Which key seals an envelope of `kind`: the session's data key for content (snapshots), the
/// meta key for what writers read (index files, pack trailers, locks).
fn is_content(kind: FileKind) -> bool {
    matches!(kind, FileKind::Snapshot)
}

impl PayloadCipher for Crypto {
    fn cipher(&self) -> Cipher {
        Cipher::Aes256GcmSiv
    }

    fn seal_payload(
        &self,
        kind: FileKind,
        header: &[u8],
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, FormatError> {
        match kind {
            FileKind::Config | FileKind::Key => Err(FormatError::Encode(
                "config and key files are never encrypted".into(),
            )),
            k if is_content(k) => {
                let w = self.writer()?;
                let cipher = Aes256GcmSiv::new(&(*w.data_key).into());
                let sealed = seal(&cipher, header, &payload)?;
                let mut out = Vec::with_capacity(KEM_CIPHERTEXT_LEN + sealed.len());
                out.extend_from_slice(&w.sealed.0);
                out.extend_from_slice(&sealed);
                Ok(out)
            }
            _ => seal(&self.meta, header, &payload),
        }
    }

    fn open_payload(
        &self,
        kind: FileKind,
        header: &[u8],
        stored: &[u8],
    ) -> Result<Vec<u8>, FormatError> {
        let unauthentic = || FormatError::Unauthentic("envelope payload".into());
        if is_content(kind) {
            if stored.len() < KEM_CIPHERTEXT_LEN {
                return Err(unauthentic());
            }
            let (session, sealed) = stored.split_at(KEM_CIPHERTEXT_LEN);
            let key = self.session_key(&SessionKey(session.to_vec()))?;
            let cipher = Aes256GcmSiv::new(&(*key).into());
            open(&cipher, header, sealed).map_err(|()| unauthentic())
        } else {
            open(&self.meta, header, stored).map_err(|()| unauthentic())
        }
    }

    fn blob_overhead(&self) -> u32 {
        layout::BLOB_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec;

    fn full() -> Crypto {
        Crypto::new(&generate_master_key().unwrap()).unwrap()
    }

    #[test]
    fn cache_records_need_the_full_key_of_this_repository_and_their_own_id() {
        let key = generate_master_key().unwrap();
        let c = Crypto::new(&key).unwrap();
        let keys = c.cache_keys().unwrap();
        let seal = &keys.seal;
        let sealed = seal.seal(b"id one", b"record").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"record"),
            "sealed in the clear"
        );
        assert_eq!(seal.open(b"id one", &sealed).unwrap(), b"record");
        // The same key loaded again opens it (another process of the same host).
        let c2 = Crypto::new(&key).unwrap();
        let again = c2.cache_keys().unwrap();
        assert!(again.seal.open(b"id one", &sealed).is_ok());
        assert_eq!(*again.tag_key, *keys.tag_key);
        assert!(seal.open(b"id two", &sealed).is_err());
        let c3 = full();
        let other = c3.cache_keys().unwrap();
        assert!(other.seal.open(b"id one", &sealed).is_err());
        assert_ne!(*other.tag_key, *keys.tag_key);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(seal.open(b"id one", &bad).is_err(), "{i}");
        }
        // A backup-only key has no catalog key.
        let backup_only = MasterKey {
            id_key: key.id_key,
            meta_key: key.meta_key,
            kem_public: key.kem_public.clone(),
            kem_secret: None,
        };
        assert!(Crypto::new(&backup_only).unwrap().cache_keys().is_none());
    }

    #[test]
    fn blobs_round_trip_and_are_bound_to_kind_and_id() {
        let c = full();
        let raw = b"hello hello";
        let id = BlobId(c.blob_id(raw));
        assert_ne!(id.0, Id::hash(raw), "ids are keyed");
        let sealed = c.seal_blob(BlobKind::Data, &id, raw).unwrap();
        assert_eq!(sealed.len(), raw.len() + layout::BLOB_OVERHEAD as usize);
        let s = c.writer_session().unwrap();
        assert_eq!(c.open_blob(BlobKind::Data, &id, &s, &sealed).unwrap(), raw);
        assert!(c.open_blob(BlobKind::Tree, &id, &s, &sealed).is_err());
        let other = BlobId(c.blob_id(b"x"));
        assert!(c.open_blob(BlobKind::Data, &other, &s, &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(c.open_blob(BlobKind::Data, &id, &s, &bad).is_err(), "{i}");
        }
        // Another process (a new session of the same key) opens it too.
        let key2 = full();
        assert!(key2.open_blob(BlobKind::Data, &id, &s, &sealed).is_err());
    }

    #[test]
    fn backup_only_seals_but_cannot_open() {
        let mut master = generate_master_key().unwrap();
        let reader = Crypto::new(&master).unwrap();
        master.kem_secret = None;
        let writer = Crypto::new(&master).unwrap();
        assert!(writer.backup_only() && !reader.backup_only());
        assert_eq!(writer.blob_id(b"a"), reader.blob_id(b"a"));
        assert_eq!(writer.chunker_seed(), reader.chunker_seed());
        let id = BlobId(writer.blob_id(b"secret"));
        let sealed = writer.seal_blob(BlobKind::Tree, &id, b"secret").unwrap();
        let s = writer.writer_session().unwrap();
        assert_eq!(
            writer.open_blob(BlobKind::Tree, &id, &s, &sealed),
            Err(FormatError::BackupOnly)
        );
        assert_eq!(
            reader.open_blob(BlobKind::Tree, &id, &s, &sealed).unwrap(),
            b"secret"
        );
        let env = codec::seal_with(FileKind::Snapshot, &"names".to_string(), &writer).unwrap();
        assert_eq!(
            codec::open_with::<String>(FileKind::Snapshot, &env, 1 << 20, &writer),
            Err(FormatError::BackupOnly)
        );
        assert_eq!(
            codec::open_with::<String>(FileKind::Snapshot, &env, 1 << 20, &reader).unwrap(),
            "names"
        );
        // Meta objects are readable by both.
        let idx = codec::seal_with(FileKind::Index, &7u32, &reader).unwrap();
        assert_eq!(
            codec::open_with::<u32>(FileKind::Index, &idx, 1 << 20, &writer).unwrap(),
            7
        );
    }

    #[test]
    fn envelopes_are_bound_to_their_kind_and_cipher() {
        let c = full();
        let env = codec::seal_with(FileKind::Index, &"x".to_string(), &c).unwrap();
        let mut as_lock = env.clone();
        as_lock[8] = FileKind::Lock as u8;
        assert!(codec::open_with::<String>(FileKind::Lock, &as_lock, 1 << 20, &c).is_err());
        let plain = codec::seal(FileKind::Index, &"x".to_string()).unwrap();
        assert!(codec::open_with::<String>(FileKind::Index, &plain, 1 << 20, &c).is_err());
        assert!(codec::open::<String>(FileKind::Index, &env, 1 << 20).is_err());
        // Another repository's key opens nothing.
        assert!(codec::open_with::<String>(FileKind::Index, &env, 1 << 20, &full()).is_err());
    }
}
