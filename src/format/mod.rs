//! The on-disk format: types, constants, encode/decode and validation. No paths, no I/O.
//!
//! `docs/FORMAT.md` is the specification of what this module reads and writes; change both
//! together. A repository holds:
//! - `config`: [`config::Config`] in an envelope ([`codec`]);
//! - `data/XX/<pack id>`: pack files ([`pack`]) of compressed blobs: data chunks and trees;
//! - `index/<id>`: [`index::IndexFile`]s mapping blob ids to pack locations;
//! - `snapshots/<id>`: [`snapshot::Snapshot`]s, each naming a root [`tree::Tree`], and
//!   [`snapshot_set::SnapshotSet`]s that hold many snapshot files in one;
//! - `locks/<id>`: [`lock::Lock`]s held by running commands;
//! - `keys/<id>`: [`keyfile::KeyFile`]s of an encrypted repository ([`crypto`] has its layout);
//! - `fences/<id>`: [`fence::Fence`]s: writers a prune revoked;
//! - `maintenance/<id>`: [`run::Run`]s: the last prunes and checks.
//!
//! Every persisted record is a versioned enum (`…File::V1(…)`); new versions are added at the
//! end so older data stays readable.

pub mod bytes;
pub mod codec;
pub mod config;
pub mod crypto;
pub mod fence;
pub mod id;
pub mod index;
pub mod index_run;
pub mod keyfile;
pub mod lock;
pub mod pack;
pub mod run;
pub mod snapshot;
pub mod snapshot_catalog;
pub mod snapshot_listing;
pub mod snapshot_set;
pub mod tree;

/// The newest format version this program writes and reads: 1 is plaintext, 2 encrypted.
pub const FORMAT_VERSION: u16 = 2;

/// A decoding or validation failure. The caller adds which file it was.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// The file does not start with the expected magic bytes.
    #[error("bad magic bytes (not a chronofs file, or overwritten)")]
    BadMagic,
    /// The envelope holds another kind of record.
    #[error("holds record kind {found}, expected kind {expected}")]
    WrongKind {
        /// Expected kind byte.
        expected: u8,
        /// Kind byte found.
        found: u8,
    },
    /// Written by a newer (or broken) program.
    #[error("format version {0} is not supported (this program reads versions 1 and 2)")]
    Version(u16),
    /// A feature (cipher, compression) this program does not implement.
    #[error("unsupported {0}")]
    Unsupported(String),
    /// The file is shorter than its header says.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The file is larger than any valid file of its kind.
    #[error("{len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Actual length.
        len: u64,
        /// Allowed maximum.
        max: u64,
    },
    /// The payload checksum does not match.
    #[error("checksum mismatch (contents changed after writing)")]
    Checksum,
    /// postcard could not decode the payload.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// postcard could not encode (a bug).
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The record decoded but breaks a rule of the format.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Authenticated decryption failed: the bytes were changed, or belong elsewhere.
    #[error("does not decrypt: {0} (damaged, or not written for this repository)")]
    Unauthentic(String),
    /// Content sealed to the repository's full key, opened with a backup-only key.
    #[error("cannot be read with a backup-only key (it only adds snapshots)")]
    BackupOnly,
}
