//! A byte-bounded LRU cache with single-flight loading, for decompressed chunks and decoded
//! trees. When several threads want the same missing entry (the kernel's readahead and a
//! reader, or eight readers of one file), one loads it and the others wait for that result
//! instead of decompressing the same chunk again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use lru::LruCache;

use crate::error::Error;

/// A load's outcome, shared with every thread that waited for it.
pub type Shared<V> = Result<V, Arc<Error>>;

type Slot<V> = Arc<OnceLock<Shared<V>>>;

struct State<K: Hash + Eq, V> {
    lru: LruCache<K, (V, usize)>,
    bytes: usize,
    inflight: HashMap<K, Slot<V>>,
}

/// The cache: at most `capacity` bytes of values (by the weights their loaders report), but
/// always at least the most recent entry.
pub struct Cache<K: Hash + Eq, V> {
    state: Mutex<State<K, V>>,
    capacity: usize,
}

impl<K: Hash + Eq + Copy, V: Clone> Cache<K, V> {
    /// An empty cache holding up to `capacity` bytes.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Cache {
            state: Mutex::new(State {
                lru: LruCache::unbounded(),
                bytes: 0,
                inflight: HashMap::new(),
            }),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `key` is cached or being loaded.
    #[must_use]
    pub fn has(&self, key: &K) -> bool {
        let st = self.lock();
        st.lru.contains(key) || st.inflight.contains_key(key)
    }

    /// The cached value, or the result of `load` (value and weight in bytes), run once however
    /// many threads ask at the same time. Errors are not cached: the next request retries.
    ///
    /// # Errors
    /// The loader's error, shared.
    pub fn get_or_load(
        &self,
        key: K,
        load: impl FnOnce() -> Result<(V, usize), Error>,
    ) -> Shared<V> {
        let slot = {
            let mut st = self.lock();
            if let Some((v, _)) = st.lru.get(&key) {
                return Ok(v.clone());
            }
            Arc::clone(
                st.inflight
                    .entry(key)
                    .or_insert_with(|| Arc::new(OnceLock::new())),
            )
        };
        let mut loaded: Option<usize> = None;
        let result = slot
            .get_or_init(|| match load() {
                Ok((v, weight)) => {
                    loaded = Some(weight.max(1));
                    Ok(v)
                }
                Err(e) => {
                    loaded = Some(0);
                    Err(Arc::new(e))
                }
            })
            .clone();
        if let Some(weight) = loaded {
            let mut st = self.lock();
            st.inflight.remove(&key);
            if let Ok(v) = &result {
                if let Some((_, old)) = st.lru.put(key, (v.clone(), weight)) {
                    st.bytes -= old;
                }
                st.bytes += weight;
                while st.bytes > self.capacity && st.lru.len() > 1 {
                    match st.lru.pop_lru() {
                        Some((_, (_, w))) => st.bytes -= w,
                        None => break,
                    }
                }
            }
        }
        result
    }

    /// Bytes currently cached.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn bounded_by_bytes_and_single_flight() {
        let cache: Cache<u32, Arc<Vec<u8>>> = Cache::new(100);
        for k in 0..10u32 {
            let v = cache
                .get_or_load(k, || Ok((Arc::new(vec![0; 40]), 40)))
                .unwrap();
            assert_eq!(v.len(), 40);
        }
        assert!(cache.bytes() <= 100);
        assert!(cache.has(&9) && !cache.has(&0));

        let loads = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    cache
                        .get_or_load(99, || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok((Arc::new(vec![1; 10]), 10))
                        })
                        .unwrap();
                });
            }
        });
        assert_eq!(loads.load(Ordering::SeqCst), 1);

        let err = cache.get_or_load(7, || Err(Error::NotFound("x".into())));
        assert!(err.is_err());
        // Errors are retried.
        assert!(cache.get_or_load(7, || Ok((Arc::new(vec![]), 0))).is_ok());
    }
}
