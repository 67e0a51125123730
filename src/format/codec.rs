//! The envelope around every metadata file, and the one place that calls the serializer.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CHRONOFS"
//!      8     1  file kind (FileKind)
//!      9     2  format version, u16 little-endian
//!     11     1  cipher (0 = none, 1 = AES-256-GCM-SIV; see [`PayloadCipher`])
//!     12     1  payload compression (0 = none)
//!     13     3  reserved, zero (a reader refuses anything else)
//!     16     8  payload length in bytes, u64 little-endian
//!     24    32  blake3 of the payload bytes as stored
//!     56     …  payload: postcard encoding of the kind's versioned enum, as the cipher
//!               stores it (plain, or sealed: see docs/FORMAT.md, "Encryption")
//! ```
//!
//! The format fixes the layout; the cipher that seals and opens payloads is handed in as a
//! [`PayloadCipher`] (the crypto layer implements the encrypted one), so no key ever reaches
//! this module. A reader accepts only the cipher its repository uses: a plaintext file put into
//! an encrypted repository is rejected like any other damage.
//!
//! Decoding is bounded: the declared length must equal the bytes present and stay under the
//! caller's limit, the checksum must match before postcard sees a byte, and postcard only
//! allocates in proportion to the input it has actually read.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FORMAT_VERSION, FormatError};

/// Magic bytes at the start of every envelope.
pub const ENVELOPE_MAGIC: &[u8; 8] = b"CHRONOFS";
/// Size of the envelope header.
pub const HEADER_LEN: usize = 56;

/// What an envelope holds; written as one byte so a file cannot be read as the wrong kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FileKind {
    /// The repository `config` file.
    Config = 1,
    /// An index file under `index/`.
    Index = 2,
    /// A snapshot file under `snapshots/`.
    Snapshot = 3,
    /// The trailer at the end of a pack file.
    PackTrailer = 4,
    /// A lock file under `locks/`.
    Lock = 5,
    /// A key file under `keys/` (always plaintext: it holds the wrapped master key).
    Key = 6,
    /// A fence under `fences/`: writers a prune revoked, and what it accepted of theirs.
    Fence = 7,
    /// A run record under `maintenance/`: a prune or check, when, and how it ended.
    Run = 8,
    /// A snapshot set under `snapshots/`: snapshot files a prune gathered into one.
    SnapshotSet = 9,
}

/// The cipher byte of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cipher {
    /// Plaintext (format version 1).
    None = 0,
    /// AES-256-GCM-SIV (format version 2); see docs/FORMAT.md, "Encryption".
    Aes256GcmSiv = 1,
}

/// Length of the header fields an encrypted payload is bound to (magic, kind, version,
/// cipher, compression, reserved): the associated data of every sealed envelope payload.
pub const BOUND_HEADER_LEN: usize = 16;

/// Seals and opens envelope payloads and blobs. The format module defines where the bytes go;
/// an implementation decides what they are. [`Plain`] stores them as they are.
pub trait PayloadCipher: Send + Sync {
    /// The cipher byte written into envelopes, which readers require.
    fn cipher(&self) -> Cipher;
    /// Turns the postcard payload of an envelope of `kind` into its stored form; `header` is
    /// the envelope's first [`BOUND_HEADER_LEN`] bytes.
    ///
    /// # Errors
    /// A failure of the cipher (no key to seal with).
    fn seal_payload(
        &self,
        kind: FileKind,
        header: &[u8],
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, FormatError>;
    /// The inverse of [`Self::seal_payload`].
    ///
    /// # Errors
    /// The stored payload is not authentic, or this key may not open it.
    fn open_payload(
        &self,
        kind: FileKind,
        header: &[u8],
        stored: &[u8],
    ) -> Result<Vec<u8>, FormatError>;
    /// How many bytes a stored blob has beyond its (possibly compressed) bytes.
    fn blob_overhead(&self) -> u32;
}

/// The plaintext cipher of format version 1.
pub struct Plain;

impl PayloadCipher for Plain {
    fn cipher(&self) -> Cipher {
        Cipher::None
    }
    fn seal_payload(
        &self,
        _: FileKind,
        _: &[u8],
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, FormatError> {
        Ok(payload)
    }
    fn open_payload(&self, _: FileKind, _: &[u8], stored: &[u8]) -> Result<Vec<u8>, FormatError> {
        Ok(stored.to_vec())
    }
    fn blob_overhead(&self) -> u32 {
        0
    }
}

/// The format version an envelope sealed by `cipher` carries.
#[must_use]
pub fn version_of(cipher: Cipher) -> u16 {
    match cipher {
        Cipher::None => 1,
        Cipher::Aes256GcmSiv => FORMAT_VERSION,
    }
}

/// Encodes `value` with postcard inside a plaintext envelope of kind `kind`.
///
/// # Errors
/// Only if serialization fails, which for our types means a bug.
pub fn seal<T: Serialize>(kind: FileKind, value: &T) -> Result<Vec<u8>, FormatError> {
    seal_with(kind, value, &Plain)
}

/// Encodes `value` inside an envelope of kind `kind`, its payload sealed by `cipher`.
///
/// # Errors
/// Serialization (a bug) or cipher failures.
pub fn seal_with<T: Serialize>(
    kind: FileKind,
    value: &T,
    cipher: &dyn PayloadCipher,
) -> Result<Vec<u8>, FormatError> {
    let mut header = Vec::with_capacity(BOUND_HEADER_LEN);
    header.extend_from_slice(ENVELOPE_MAGIC);
    header.push(kind as u8);
    header.extend_from_slice(&version_of(cipher.cipher()).to_le_bytes());
    header.push(cipher.cipher() as u8);
    header.push(0); // payload compression: none
    header.extend_from_slice(&[0, 0, 0]);
    let payload = cipher.seal_payload(kind, &header, to_bytes(value)?)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(&payload).as_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Checks the plaintext envelope of `bytes` and decodes its payload as `T`.
///
/// `max_len` bounds the whole file; anything larger is rejected before decoding.
///
/// # Errors
/// [`FormatError`] describing the first problem found.
pub fn open<T: DeserializeOwned>(
    kind: FileKind,
    bytes: &[u8],
    max_len: usize,
) -> Result<T, FormatError> {
    open_with(kind, bytes, max_len, &Plain)
}

/// Checks the envelope of `bytes`, which must be sealed by `cipher`, and decodes its payload.
///
/// # Errors
/// [`FormatError`] describing the first problem found.
pub fn open_with<T: DeserializeOwned>(
    kind: FileKind,
    bytes: &[u8],
    max_len: usize,
    cipher: &dyn PayloadCipher,
) -> Result<T, FormatError> {
    if bytes.len() > max_len {
        return Err(FormatError::TooLarge {
            len: bytes.len() as u64,
            max: max_len as u64,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if &bytes[..8] != ENVELOPE_MAGIC {
        return Err(FormatError::BadMagic);
    }
    if bytes[8] != kind as u8 {
        return Err(FormatError::WrongKind {
            expected: kind as u8,
            found: bytes[8],
        });
    }
    let version = u16::from_le_bytes([bytes[9], bytes[10]]);
    if version == 0 || version > FORMAT_VERSION {
        return Err(FormatError::Version(version));
    }
    let expected = cipher.cipher();
    if bytes[11] != expected as u8 || version != version_of(expected) {
        return Err(FormatError::Unsupported(format!(
            "cipher {} in a format version {version} file, where this repository uses cipher {} \
             (version {})",
            bytes[11],
            expected as u8,
            version_of(expected)
        )));
    }
    if bytes[12] != 0 {
        return Err(FormatError::Unsupported(format!(
            "payload compression {}",
            bytes[12]
        )));
    }
    if bytes[13..16] != [0, 0, 0] {
        // What a later version might put there, this one cannot read.
        return Err(FormatError::Unsupported(format!(
            "reserved header bytes {:02x?}, which this version writes as zeros",
            &bytes[13..16]
        )));
    }
    let declared = u64::from_le_bytes(
        bytes[16..24]
            .try_into()
            .map_err(|_| FormatError::BadMagic)?,
    );
    let payload = &bytes[HEADER_LEN..];
    if declared != payload.len() as u64 {
        return Err(FormatError::Truncated(format!(
            "header declares {declared} payload bytes, file has {}",
            payload.len()
        )));
    }
    if blake3::hash(payload).as_bytes() != &bytes[24..56] {
        return Err(FormatError::Checksum);
    }
    let plain = cipher.open_payload(kind, &bytes[..BOUND_HEADER_LEN], payload)?;
    from_bytes(&plain)
}

/// Postcard-encodes `value` (no envelope): used for tree blobs, whose id is their hash.
///
/// # Errors
/// Only if serialization fails (a bug).
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, FormatError> {
    postcard::to_stdvec(value).map_err(|e| FormatError::Encode(e.to_string()))
}

/// Decodes postcard bytes, rejecting trailing garbage.
///
/// # Errors
/// [`FormatError::Decode`] if the bytes are not a valid `T`.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| FormatError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FormatError::Decode(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let v = vec![1u32, 2, 3];
        let sealed = seal(FileKind::Index, &v).unwrap();
        assert_eq!(
            open::<Vec<u32>>(FileKind::Index, &sealed, 1 << 20).unwrap(),
            v
        );
    }

    #[test]
    fn every_damage_is_an_error() {
        let sealed = seal(FileKind::Snapshot, &"hello".to_string()).unwrap();
        // Wrong kind.
        assert!(matches!(
            open::<String>(FileKind::Index, &sealed, 1 << 20),
            Err(FormatError::WrongKind { .. })
        ));
        // Every truncation.
        for n in 0..sealed.len() {
            assert!(
                open::<String>(FileKind::Snapshot, &sealed[..n], 1 << 20).is_err(),
                "len {n}"
            );
        }
        // Every single-bit flip.
        for i in 0..sealed.len() {
            let mut b = sealed.clone();
            b[i] ^= 0x01;
            assert!(
                open::<String>(FileKind::Snapshot, &b, 1 << 20).is_err(),
                "flip at {i}"
            );
        }
        // Size limit.
        assert!(matches!(
            open::<String>(FileKind::Snapshot, &sealed, 10),
            Err(FormatError::TooLarge { .. })
        ));
    }

    #[test]
    fn hostile_length_prefix_does_not_allocate() {
        // A postcard Vec claiming 2^60 elements with a valid envelope must fail, not allocate.
        let mut payload = Vec::new();
        payload.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut file = seal(FileKind::Index, &()).unwrap();
        file.truncate(HEADER_LEN);
        file[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        file[24..56].copy_from_slice(blake3::hash(&payload).as_bytes());
        file.extend_from_slice(&payload);
        assert!(open::<Vec<u64>>(FileKind::Index, &file, 1 << 20).is_err());
    }
}
