//! chronofs: a versioned backup filesystem.
pub mod error;
pub mod format;
pub use error::{Error, Result};
