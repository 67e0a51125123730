//! `ByteString`: an arbitrary byte string (file names, symlink targets, paths, xattr values).
//!
//! Unix names are bytes, not text, so they are stored exactly as the kernel gave them and never
//! decoded as UTF-8. On disk a `ByteString` is postcard bytes (varint length, then the bytes). In
//! JSON (debug output only) it is a string when the bytes are valid UTF-8, else an object
//! `{"hex": "…"}`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// Raw bytes that are usually, but not necessarily, text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ByteString(pub Vec<u8>);

impl ByteString {
    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as an `OsStr` (lossless on Unix).
    #[must_use]
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    /// The bytes as a `Path` (lossless on Unix).
    #[must_use]
    pub fn as_path(&self) -> &Path {
        Path::new(self.as_os_str())
    }

    /// Text for messages: lossy, with invalid bytes shown as U+FFFD.
    #[must_use]
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl From<&[u8]> for ByteString {
    fn from(b: &[u8]) -> Self {
        ByteString(b.to_vec())
    }
}
impl From<Vec<u8>> for ByteString {
    fn from(b: Vec<u8>) -> Self {
        ByteString(b)
    }
}
impl From<&str> for ByteString {
    fn from(s: &str) -> Self {
        ByteString(s.as_bytes().to_vec())
    }
}
impl From<&OsStr> for ByteString {
    fn from(s: &OsStr) -> Self {
        ByteString(s.as_bytes().to_vec())
    }
}
impl From<OsString> for ByteString {
    fn from(s: OsString) -> Self {
        ByteString(s.into_vec())
    }
}
impl From<&Path> for ByteString {
    fn from(p: &Path) -> Self {
        ByteString::from(p.as_os_str())
    }
}
impl From<PathBuf> for ByteString {
    fn from(p: PathBuf) -> Self {
        ByteString::from(p.into_os_string())
    }
}

impl fmt::Debug for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_os_str())
    }
}

impl fmt::Display for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lossy())
    }
}

impl Serialize for ByteString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut m = s.serialize_map(Some(1))?;
                let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
                m.serialize_entry("hex", &hex)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ByteString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = ByteString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteString, E> {
                Ok(ByteString(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteString, E> {
                Ok(ByteString(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteString, E> {
                Ok(ByteString(v.as_bytes().to_vec()))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(BytesVisitor)
        } else {
            d.deserialize_byte_buf(BytesVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_round_trips_through_postcard() {
        let b = ByteString(vec![0xff, b'a', 0x80, 0]);
        let enc = postcard::to_stdvec(&b).unwrap();
        assert_eq!(enc, vec![4, 0xff, b'a', 0x80, 0]);
        assert_eq!(postcard::from_bytes::<ByteString>(&enc).unwrap(), b);
    }

    #[test]
    fn json_shows_text_or_hex() {
        assert_eq!(
            serde_json::to_string(&ByteString::from("héllo")).unwrap(),
            "\"héllo\""
        );
        assert_eq!(
            serde_json::to_string(&ByteString(vec![0xff])).unwrap(),
            "{\"hex\":\"ff\"}"
        );
    }
}
