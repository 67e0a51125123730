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
use super::id::{Id, SnapshotId, WriterId};
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
    if ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(FormatError::Encode(
            "a snapshot listing out of order to save".into(),
        ));
    }
    encode_raw(MAGIC, keys, token, ids)
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
    let (token, ids) = decode_raw(MAGIC, keys, bytes)?;
    if !ascending(&ids) {
        return Err(FormatError::Invalid(
            "the snapshot listing's ids are out of order".into(),
        ));
    }
    Ok((token, ids))
}

/// The first eight bytes of a saved set table.
pub const SET_MAGIC: &[u8; 8] = b"CFSSSTB2";

/// What a client keeps of a snapshot set it has read (`snapshots/<set>`): its writer, the sets
/// it replaces and its members' ids, so that later listings expand it without reading it
/// again. The same layout as a saved listing, with the token holding the set's id and how
/// many of the ids after the first are replaced sets; the first id is the writer, the rest
/// are members; each part ascends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTable {
    /// The set's id (the name of its file).
    pub set: SnapshotId,
    /// The maintenance process that wrote it.
    pub writer: WriterId,
    /// Sets it replaces, ascending.
    pub supersedes: Vec<SnapshotId>,
    /// Its members' ids, ascending.
    pub members: Vec<SnapshotId>,
}

impl SetTable {
    /// Encodes the table.
    ///
    /// # Errors
    /// A part out of order, or too many ids.
    pub fn encode(&self, keys: &Keys<'_>) -> Result<Vec<u8>, FormatError> {
        if !ascending(&self.supersedes) || !ascending(&self.members) {
            return Err(FormatError::Encode("a set table out of order".into()));
        }
        let mut token = [0u8; TOKEN_LEN];
        token[..32].copy_from_slice(&self.set.0.0);
        token[32..40].copy_from_slice(&(self.supersedes.len() as u64).to_le_bytes());
        let ids: Vec<SnapshotId> = std::iter::once(SnapshotId(self.writer.0))
            .chain(self.supersedes.iter().copied())
            .chain(self.members.iter().copied())
            .collect();
        encode_raw(SET_MAGIC, keys, &token, &ids)
    }

    /// Decodes and checks a table: as a saved listing, plus zeros where the token has no
    /// field, a writer, a count of replaced sets within the ids, and each part ascending.
    ///
    /// # Errors
    /// [`FormatError`] naming what is wrong.
    pub fn decode(keys: &Keys<'_>, bytes: &[u8]) -> Result<SetTable, FormatError> {
        let (token, mut ids) = decode_raw(SET_MAGIC, keys, bytes)?;
        let mut n = [0u8; 8];
        n.copy_from_slice(&token[32..40]);
        let n = usize::try_from(u64::from_le_bytes(n)).unwrap_or(usize::MAX);
        if token[40..] != [0; 8] || ids.is_empty() || n > ids.len() - 1 {
            return Err(FormatError::Invalid(
                "a set table's header is out of bounds".into(),
            ));
        }
        let writer = WriterId(ids.remove(0).0);
        let members = ids.split_off(n);
        if !ascending(&ids) || !ascending(&members) {
            return Err(FormatError::Invalid(
                "a set table's ids are out of order".into(),
            ));
        }
        let mut set = [0u8; 32];
        set.copy_from_slice(&token[..32]);
        Ok(SetTable {
            set: SnapshotId(Id(set)),
            writer,
            supersedes: ids,
            members,
        })
    }
}

fn ascending(ids: &[SnapshotId]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

/// `[magic][seal kind][zeros 7][token][count u64][ids][tag]`.
fn encode_raw(
    magic: &[u8; 8],
    keys: &Keys<'_>,
    token: &[u8; TOKEN_LEN],
    ids: &[SnapshotId],
) -> Result<Vec<u8>, FormatError> {
    if ids.len() as u64 > MAX_IDS {
        return Err(FormatError::Encode(
            "a snapshot listing too long to save".into(),
        ));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + ids.len() * 32 + TAG_LEN);
    out.extend_from_slice(magic);
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

/// The token and ids of [`encode_raw`]'s output, after checking its magic and kind, its
/// length against its count and its tag.
fn decode_raw(
    magic: &[u8; 8],
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
    if &body[..8] != magic || body[8] != keys.seal.kind() || body[9..16] != [0; 7] {
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
    let ids = body[HEADER_LEN..]
        .chunks_exact(32)
        .map(|raw| {
            let mut id = [0u8; 32];
            id.copy_from_slice(raw);
            SnapshotId(Id(id))
        })
        .collect();
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

    #[test]
    fn set_tables_round_trip_and_refuse_damage_disorder_and_a_listing() {
        let k = keys(1);
        let t = SetTable {
            set: SnapshotId(Id([0xee; 32])),
            writer: WriterId(Id([0xdd; 32])),
            supersedes: ids(2),
            members: ids(6)[2..].to_vec(),
        };
        let bytes = t.encode(&k).unwrap();
        assert_eq!(SetTable::decode(&k, &bytes).unwrap(), t);
        assert_every_flip_and_cut_refused(&bytes, |b| SetTable::decode(&k, b).is_err());
        assert!(SetTable::decode(&keys(2), &bytes).is_err());
        // A saved listing is not a set table, nor the reverse.
        let listing = encode(&k, &[0; TOKEN_LEN], &ids(3)).unwrap();
        assert!(SetTable::decode(&k, &listing).is_err());
        assert!(decode(&k, &bytes).is_err());
        // Out of order within a part.
        let backwards = SetTable {
            members: vec![ids(2)[1], ids(2)[0]],
            ..t.clone()
        };
        assert!(backwards.encode(&k).is_err());
        // The parts may interleave: replaced sets and members are separate lists.
        let interleaved = SetTable {
            supersedes: vec![ids(6)[5]],
            members: ids(3),
            ..t
        };
        let bytes = interleaved.encode(&k).unwrap();
        assert_eq!(SetTable::decode(&k, &bytes).unwrap(), interleaved);
    }
}
