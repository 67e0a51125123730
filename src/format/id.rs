//! Typed 32-byte identifiers (blake3 digests) for every kind of repository object.
//!
//! Each kind has its own newtype so a tree id cannot be passed where a chunk id is expected.
//! On disk (postcard) an id is its 32 raw bytes; in JSON it is 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Length of every id in bytes.
pub const ID_LEN: usize = 32;

/// A raw 32-byte id; the typed ids below wrap it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; ID_LEN]);

impl Id {
    /// The blake3 digest of `data`.
    #[must_use]
    pub fn hash(data: &[u8]) -> Self {
        Id(*blake3::hash(data).as_bytes())
    }

    /// Lowercase hex of all 32 bytes.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(ID_LEN * 2);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// The first 8 hex digits, as shown in listings.
    #[must_use]
    pub fn short(&self) -> String {
        self.to_hex()[..8].to_string()
    }

    /// Compares the id's first `prefix.len()` hex digits with `prefix`, as strings are
    /// compared (without building the id's hex); a prefix longer than the id is greater.
    #[must_use]
    pub fn cmp_hex_prefix(&self, prefix: &[u8]) -> std::cmp::Ordering {
        for (i, &p) in prefix.iter().enumerate() {
            let Some(&byte) = self.0.get(i / 2) else {
                return std::cmp::Ordering::Less;
            };
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0xf };
            match HEX[usize::from(nibble)].cmp(&p) {
                std::cmp::Ordering::Equal => {}
                other => return other,
            }
        }
        std::cmp::Ordering::Equal
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Id {
    /// The id whose 64 hex digits are `b` (either case), if they are.
    #[must_use]
    pub fn from_hex(b: &[u8]) -> Option<Id> {
        if b.len() != ID_LEN * 2 {
            return None;
        }
        let mut out = [0u8; ID_LEN];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Id(out))
    }
}

impl FromStr for Id {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != ID_LEN * 2 {
            return Err(format!("an id has 64 hex digits, {s:?} has {}", b.len()));
        }
        Id::from_hex(b).ok_or_else(|| format!("{s:?} is not hex"))
    }
}

/// The value of each hex digit, [`NOT_HEX`] for other bytes: listings parse a name per
/// file, a million of them in a large repository's `snapshots/`.
const HEX_VALUE: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};
const NOT_HEX: u8 = 0xff;

fn hex_val(c: u8) -> Option<u8> {
    let v = HEX_VALUE[usize::from(c)];
    (v != NOT_HEX).then_some(v)
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            struct HexVisitor;
            impl Visitor<'_> for HexVisitor {
                type Value = Id;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("64 hex digits")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                    v.parse().map_err(E::custom)
                }
            }
            d.deserialize_str(HexVisitor)
        } else {
            <[u8; ID_LEN]>::deserialize(d).map(Id)
        }
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Id);

        impl $name {
            /// The untyped id.
            #[must_use]
            pub fn id(&self) -> Id {
                self.0
            }
            /// Lowercase hex of the id.
            #[must_use]
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            /// The first 8 hex digits.
            #[must_use]
            pub fn short(&self) -> String {
                self.0.short()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.short())
            }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

typed_id!(
    /// A blob (data chunk or tree) in the index: blake3 of its uncompressed bytes.
    BlobId
);
typed_id!(
    /// A data chunk: blake3 of the chunk's bytes.
    ChunkId
);
typed_id!(
    /// A tree blob (one directory's listing): blake3 of its encoded bytes.
    TreeId
);
typed_id!(
    /// A pack file: blake3 of the whole file.
    PackId
);
typed_id!(
    /// An index file: blake3 of the whole file.
    IndexId
);
typed_id!(
    /// A snapshot file: blake3 of the whole file.
    SnapshotId
);
typed_id!(
    /// One writing process (a backup, a copy, a check): random, named in its lock file and in
    /// the snapshot it commits, so that a prune can revoke a writer that went silent and
    /// readers can tell which snapshots that writer committed.
    WriterId
);

impl From<ChunkId> for BlobId {
    fn from(c: ChunkId) -> Self {
        BlobId(c.0)
    }
}

impl From<TreeId> for BlobId {
    fn from(t: TreeId) -> Self {
        BlobId(t.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_prefixes_compare_as_the_hex_strings_do() {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let id = Id::hash(b"x");
        let hex = id.to_hex();
        for len in [0, 1, 2, 7, 8, 9, 64] {
            assert_eq!(id.cmp_hex_prefix(&hex.as_bytes()[..len]), Equal, "{len}");
        }
        let mut above = hex.as_bytes()[..8].to_vec();
        let mut below = above.clone();
        above[7] = b'g';
        below[7] = b'/';
        assert_eq!(id.cmp_hex_prefix(&above), Less);
        assert_eq!(id.cmp_hex_prefix(&below), Greater);
        assert_eq!(
            id.cmp_hex_prefix(&[b'0'; 65]),
            hex.as_str().cmp(&"0".repeat(65))
        );
        assert_eq!(Id([0; 32]).cmp_hex_prefix(&[b'0'; 65]), Less);
    }

    #[test]
    fn hex_round_trip() {
        let id = Id::hash(b"chronofs");
        let back: Id = id.to_hex().parse().unwrap();
        assert_eq!(id, back);
        assert_eq!(id.short().len(), 8);
        assert!("zz".parse::<Id>().is_err());
        assert!("g".repeat(64).parse::<Id>().is_err());
    }

    #[test]
    fn json_is_hex_and_postcard_is_raw() {
        let id = SnapshotId(Id::hash(b"x"));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        assert_eq!(serde_json::from_str::<SnapshotId>(&json).unwrap(), id);
        let bin = postcard::to_stdvec(&id).unwrap();
        assert_eq!(bin.len(), 32);
        assert_eq!(postcard::from_bytes::<SnapshotId>(&bin).unwrap(), id);
    }
}
