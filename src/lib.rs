//! chronofs: a versioned backup filesystem.
pub mod error;
pub mod format;
pub mod repo;
pub use error::{Error, Result};
