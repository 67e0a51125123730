//! The envelope around every metadata file, and the one place that calls the serializer.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CHRONOFS"
//!      8     1  file kind (FileKind)
//!      9     2  format version, u16 little-endian
//!     11     1  cipher (0 = none)
//!     12     1  payload compression (0 = none)
//!     13     3  reserved, zero
//!     16     8  payload length in bytes, u64 little-endian
//!     24    32  blake3 of the payload bytes as stored
//!     56     …  payload: postcard encoding of the kind's versioned enum
//! ```
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
}

/// The cipher named in every envelope. Only `None` exists today; an encrypted repository will
/// add a variant here and in the config without changing the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cipher {
    /// Plaintext.
    None = 0,
}

/// Encodes `value` with postcard inside an envelope of kind `kind`.
///
/// # Errors
/// Only if serialization fails, which for our types means a bug.
pub fn seal<T: Serialize>(kind: FileKind, value: &T) -> Result<Vec<u8>, FormatError> {
    let payload = to_bytes(value)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(ENVELOPE_MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(Cipher::None as u8);
    out.push(0); // payload compression: none
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(&payload).as_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Checks the envelope of `bytes` and decodes its payload as `T`.
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
    if bytes[11] != Cipher::None as u8 {
        return Err(FormatError::Unsupported(format!("cipher {}", bytes[11])));
    }
    if bytes[12] != 0 {
        return Err(FormatError::Unsupported(format!(
            "payload compression {}",
            bytes[12]
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
    from_bytes(payload)
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
            if (13..16).contains(&i) {
                continue; // reserved bytes are ignored
            }
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
