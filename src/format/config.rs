//! The repository `config` file: identity, format version and the parameters every writer must
//! share (chunker, compression, pack size), so that two writers chunk identically and dedup.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::codec::{self, FileKind};
use super::id::Id;

/// Largest valid config file.
pub const MAX_CONFIG_LEN: usize = 64 * 1024;

/// The versioned envelope payload of `config`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ConfigFile {
    /// Format version 1.
    V1(Config),
}

/// Repository-wide settings, fixed at `init`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    /// Random id chosen at `init`; tells repositories apart (e.g. for copies).
    pub repo_id: Id,
    /// Content-defined chunking parameters.
    pub chunker: ChunkerParams,
    /// zstd compression level for blobs (1–19; 0 disables compression).
    pub compression_level: i32,
    /// Writers close a pack once it reaches this many bytes.
    pub pack_target_size: u32,
    /// `"none"` (format version 1) or `"aes256gcmsiv-xwing"` (version 2, encrypted).
    pub cipher: String,
    /// Append-only repositories refuse to delete or rewrite files.
    pub append_only: bool,
    /// Creation time, nanoseconds since the Unix epoch (UTC).
    pub created_ns: i64,
}

/// Content-defined chunking parameters (FastCDC 2020, as implemented by `fastcdc` 5.0.0).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    /// Minimum chunk size in bytes.
    pub min_size: u32,
    /// Target average chunk size in bytes.
    pub avg_size: u32,
    /// Maximum chunk size in bytes.
    pub max_size: u32,
    /// FastCDC normalization level (0–3).
    pub normalization: u8,
    /// Gear table seed (0 = the published table). An encrypted repository writes 0 here and
    /// seeds the table from its id key instead.
    pub seed: u64,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
            normalization: 1,
            seed: 0,
        }
    }
}

/// Default zstd level: fast (several hundred MB/s per core) with most of the gain.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;
/// Default pack size target.
pub const DEFAULT_PACK_TARGET: u32 = 32 * 1024 * 1024;
/// Smallest and largest pack targets accepted.
pub const PACK_TARGET_RANGE: (u32, u32) = (1024 * 1024, 512 * 1024 * 1024);

impl ChunkerParams {
    /// Checks the limits `fastcdc` 5.0.0 requires (it only debug-asserts them).
    ///
    /// # Errors
    /// [`FormatError::Invalid`] naming the bad parameter.
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = |m: String| Err(FormatError::Invalid(m));
        let (min, avg, max) = (self.min_size, self.avg_size, self.max_size);
        if !(64..=1_048_576).contains(&min) {
            return bad(format!("chunk min size {min} outside 64..=1048576"));
        }
        if !(256..=4_194_304).contains(&avg) {
            return bad(format!("chunk average size {avg} outside 256..=4194304"));
        }
        if !(1024..=16_777_216).contains(&max) {
            return bad(format!("chunk max size {max} outside 1024..=16777216"));
        }
        if min % 2 != 0 || avg % 2 != 0 || max % 2 != 0 {
            return bad("chunk sizes must be even".into());
        }
        if !(min <= avg && avg <= max) {
            return bad(format!(
                "chunk sizes must satisfy min <= avg <= max ({min}, {avg}, {max})"
            ));
        }
        if self.normalization > 3 {
            return bad(format!(
                "normalization level {} outside 0..=3",
                self.normalization
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Whether the repository is encrypted (format version 2).
    #[must_use]
    pub fn encrypted(&self) -> bool {
        self.cipher == super::crypto::CIPHER_NAME
    }

    /// Encodes into an envelope.
    ///
    /// # Errors
    /// Only on an encoding bug.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        codec::seal(FileKind::Config, &ConfigFile::V1(self.clone()))
    }

    /// Decodes and validates a config file.
    ///
    /// # Errors
    /// [`FormatError`] describing the problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let ConfigFile::V1(config) = codec::open(FileKind::Config, bytes, MAX_CONFIG_LEN)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field's range.
    ///
    /// # Errors
    /// [`FormatError::Invalid`] or [`FormatError::Unsupported`] naming the bad field.
    pub fn validate(&self) -> Result<(), FormatError> {
        self.chunker.validate()?;
        if !(0..=19).contains(&self.compression_level) {
            return Err(FormatError::Invalid(format!(
                "compression level {} outside 0..=19",
                self.compression_level
            )));
        }
        let (lo, hi) = PACK_TARGET_RANGE;
        if !(lo..=hi).contains(&self.pack_target_size) {
            return Err(FormatError::Invalid(format!(
                "pack target size {} outside {lo}..={hi}",
                self.pack_target_size
            )));
        }
        if self.cipher != super::crypto::CIPHER_NONE && self.cipher != super::crypto::CIPHER_NAME {
            return Err(FormatError::Unsupported(format!(
                "cipher {:?}",
                self.cipher
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            repo_id: Id::hash(b"r"),
            chunker: ChunkerParams::default(),
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            pack_target_size: DEFAULT_PACK_TARGET,
            cipher: "none".into(),
            append_only: false,
            created_ns: 0,
        }
    }

    #[test]
    fn default_is_valid_and_bad_values_are_rejected() {
        sample().validate().unwrap();
        let mut c = sample();
        c.chunker.min_size = 3;
        assert!(c.validate().is_err());
        let mut c = sample();
        c.chunker.avg_size = c.chunker.max_size * 2;
        assert!(c.validate().is_err());
        let mut c = sample();
        c.compression_level = 40;
        assert!(c.validate().is_err());
        let mut c = sample();
        c.cipher = "aes".into();
        assert!(matches!(c.validate(), Err(FormatError::Unsupported(_))));
    }
}
