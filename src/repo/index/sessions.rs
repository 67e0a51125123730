//! The session keys a process has met, numbered once for its whole life: a blob's location
//! names its session by number, and the number stays valid across index reloads.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::format::crypto::SessionKey;

/// A blob location's session number for a plaintext blob.
pub const NO_SESSION: u32 = u32::MAX;

/// Session keys by number; numbers are never reused or removed.
#[derive(Debug, Default)]
pub struct SessionTable {
    inner: RwLock<Keys>,
}

/// The keys in order, and each key's number.
#[derive(Debug, Default)]
struct Keys {
    by_number: Vec<Arc<SessionKey>>,
    numbers: HashMap<Arc<SessionKey>, u32>,
}

impl SessionTable {
    /// The number of `key`, adding it if new.
    pub fn intern(&self, key: &SessionKey) -> u32 {
        if let Some(&n) = self.read().numbers.get(key) {
            return n;
        }
        let mut w = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&n) = w.numbers.get(key) {
            return n;
        }
        let n = u32::try_from(w.by_number.len()).unwrap_or(NO_SESSION - 1);
        let key = Arc::new(key.clone());
        w.by_number.push(Arc::clone(&key));
        w.numbers.insert(key, n);
        n
    }

    /// The key numbered `n` (`None` for [`NO_SESSION`]).
    #[must_use]
    pub fn get(&self, n: u32) -> Option<Arc<SessionKey>> {
        self.read().by_number.get(n as usize).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
