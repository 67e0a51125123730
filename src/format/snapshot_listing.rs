//! The saved listing of a repository's `snapshots/` directory in a client's cache, next to
//! the snapshot catalog: the sorted ids a listing gave, and the storage's token of the
//! directory taken just before it ([`crate::storage::ListToken`]). While the directory's token
//! is the same, so are its files, and a command takes the ids from here instead of reading a
//! directory of a million names again. Layout (docs/FORMAT.md, "Snapshot catalog"):
//!
//! ```text
//! [magic 8][seal kind 1][zeros 7][token 48][count u64] [count ids of 32 bytes, ascending] [tag 32]
//! ```
//!
//! The tag is keyed blake3 under the catalog's tag key over everything before it: a listing
//! altered, cut or copied from another repository's cache is refused, and the directory is
//! listed again.

use super::FormatError;
use super::id::{Id, SnapshotId};
use super::snapshot_catalog::Keys;

/// The first eight bytes of a saved listing.
pub const MAGIC: &[u8; 8] = b"CFSSLST1";
/// Bytes of the directory's token.
pub const TOKEN_LEN: usize = 48;
/// Bytes before the ids.
pub const HEADER_LEN: usize = 16 + TOKEN_LEN + 8;
/// Bytes of the tag.
pub const TAG_LEN: usize = 32;
/// The most ids a saved listing may hold (a file of 8 GiB).
pub const MAX_IDS: u64 = 1 << 28;

/// The largest file a reader accepts.
#[must_use]
pub fn max_len() -> u64 {
    HEADER_LEN as u64 + MAX_IDS * 32 + TAG_LEN as u64
}

/// A saved listing of `ids` (sorted, without repeats), taken under `token`.
///
/// # Errors
/// Ids out of order or too many.
pub fn encode(
    keys: &Keys<'_>,
    token: &[u8; TOKEN_LEN],
    ids: &[SnapshotId],
) -> Result<Vec<u8>, FormatError> {
    if ids.len() as u64 > MAX_IDS || ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(FormatError::Encode(
            "a snapshot listing out of order or too long to save".into(),
        ));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + ids.len() * 32 + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(keys.seal.kind());
    out.extend_from_slice(&[0; 7]);
    out.extend_from_slice(token);
    out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.0.0);
    }
    let tag = blake3::keyed_hash(&keys.tag_key, &out);
    out.extend_from_slice(tag.as_bytes());
    Ok(out)
}

/// The token and the ids of a saved listing, checked: its kind, its length against its
/// count, its tag, and that the ids ascend.
///
/// # Errors
/// [`FormatError`] naming what is wrong.
pub fn decode(
    keys: &Keys<'_>,
    bytes: &[u8],
) -> Result<([u8; TOKEN_LEN], Vec<SnapshotId>), FormatError> {
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(FormatError::Truncated(format!(
            "a snapshot listing of {} bytes",
            bytes.len()
        )));
    }
    let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    if &body[..8] != MAGIC || body[8] != keys.seal.kind() || body[9..16] != [0; 7] {
        return Err(FormatError::Invalid(
            "not a snapshot listing of this repository's kind".into(),
        ));
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&body[16 + TOKEN_LEN..HEADER_LEN]);
    let count = u64::from_le_bytes(count);
    if count > MAX_IDS || (body.len() - HEADER_LEN) as u64 != count * 32 {
        return Err(FormatError::Invalid(format!(
            "a snapshot listing of {count} ids in {} bytes",
            bytes.len()
        )));
    }
    // blake3::Hash compares in constant time.
    if blake3::keyed_hash(&keys.tag_key, body) != blake3::Hash::from_slice(tag).map_err(bad)? {
        return Err(FormatError::Invalid(
            "the snapshot listing's tag does not match (damaged or altered)".into(),
        ));
    }
    let mut token = [0u8; TOKEN_LEN];
    token.copy_from_slice(&body[16..16 + TOKEN_LEN]);
    let mut ids = Vec::with_capacity(count as usize);
    for raw in body[HEADER_LEN..].chunks_exact(32) {
        let mut id = [0u8; 32];
        id.copy_from_slice(raw);
        let id = SnapshotId(Id(id));
        if ids.last().is_some_and(|l| *l >= id) {
            return Err(FormatError::Invalid(
                "the snapshot listing's ids are out of order".into(),
            ));
        }
        ids.push(id);
    }
    Ok((token, ids))
}

fn bad(_: impl std::fmt::Debug) -> FormatError {
    FormatError::Invalid("a snapshot listing's tag of the wrong length".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot_catalog::test_support::{assert_every_flip_and_cut_refused, keys};

    fn ids(n: u8) -> Vec<SnapshotId> {
        (0..n).map(|i| SnapshotId(Id([i; 32]))).collect()
    }

    #[test]
    fn round_trips_and_refuses_every_flipped_byte_and_every_cut() {
        let k = keys(1);
        let token = [7u8; TOKEN_LEN];
        let bytes = encode(&k, &token, &ids(5)).unwrap();
        assert_eq!(decode(&k, &bytes).unwrap(), (token, ids(5)));
        assert_every_flip_and_cut_refused(&bytes, |b| decode(&k, b).is_err());
        // Another repository's key.
        let err = decode(&keys(2), &bytes).unwrap_err().to_string();
        assert!(err.contains("tag does not match"), "{err}");
    }

    #[test]
    fn ids_out_of_order_are_refused_even_under_a_good_tag() {
        let k = keys(1);
        let mut bytes = encode(&k, &[0; TOKEN_LEN], &ids(3)).unwrap();
        // Swap the first two ids and tag it again: only a key holder could, and it is still
        // refused.
        let (a, b) = (HEADER_LEN, HEADER_LEN + 32);
        let first: Vec<u8> = bytes[a..b].to_vec();
        bytes.copy_within(b..b + 32, a);
        bytes[b..b + 32].copy_from_slice(&first);
        let end = bytes.len() - TAG_LEN;
        let tag = blake3::keyed_hash(&k.tag_key, &bytes[..end]);
        bytes[end..].copy_from_slice(tag.as_bytes());
        let err = decode(&k, &bytes).unwrap_err().to_string();
        assert!(err.contains("out of order"), "{err}");
        assert!(encode(&k, &[0; TOKEN_LEN], &[ids(2)[1], ids(2)[0]]).is_err());
    }
}
