//! [`BlockCache`]: ranged reads of a remote backend in aligned blocks, kept in a byte-bounded
//! LRU, so that reading the blobs of a pack one after another (a restore, a directory walk, a
//! file read through the mount) costs one request per block instead of one per blob, and the
//! next blobs are already there (read-ahead).
//!
//! Packs are written once and never change under their name, so a cached block can only hold
//! the bytes the name promises; every blob read from it is still verified by the repository
//! (hash or AEAD tag), so a damaged block gives an error, never wrong bytes. Everything but
//! ranged reads passes straight through to the wrapped backend.

use std::collections::HashMap;
use std::io;
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex};

use lru::LruCache;

use super::{Storage, forward};

/// Size of a cached block (and of the ranged requests behind it).
pub const BLOCK: u64 = 4 << 20;

/// Cached blocks by file and block number.
type Blocks = LruCache<(String, u64), Arc<Vec<u8>>>;

/// The outcome of one block read, shared with the readers that waited for it.
type Outcome = Result<Arc<Vec<u8>>, (io::ErrorKind, String)>;

/// A block being read: the first reader fetches, later ones wait (single flight), so
/// readers racing through the same pack (a restore's workers, the mount's prefetchers)
/// never fetch a block twice.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

/// A backend whose ranged reads go through a cache of aligned blocks.
pub struct BlockCache<S> {
    inner: S,
    blocks: Mutex<Blocks>,
    flights: Mutex<HashMap<(String, u64), Arc<Flight>>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for BlockCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> BlockCache<S> {
    /// Wraps `inner`, keeping at most `capacity_bytes` of blocks.
    pub fn new(inner: S, capacity_bytes: u64) -> Self {
        let blocks = usize::try_from((capacity_bytes / BLOCK).max(1)).unwrap_or(1);
        BlockCache {
            inner,
            blocks: Mutex::new(LruCache::new(
                NonZeroUsize::new(blocks).unwrap_or(NonZeroUsize::MIN),
            )),
            flights: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Blocks> {
        self.blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Block `index` of `path`: cached, being read by another thread (then waited for), or
    /// read here (shorter at the end of the file).
    fn block(&self, path: &str, index: u64) -> io::Result<Arc<Vec<u8>>> {
        let key = (path.to_string(), index);
        if let Some(b) = self.cache().get(&key) {
            return Ok(Arc::clone(b));
        }
        let (flight, leader) = {
            let mut flights = self
                .flights
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match flights.get(&key) {
                Some(f) => (Arc::clone(f), false),
                None => {
                    let f = Arc::new(Flight::default());
                    flights.insert(key.clone(), Arc::clone(&f));
                    (f, true)
                }
            }
        };
        if !leader {
            let mut outcome = flight
                .outcome
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while outcome.is_none() {
                outcome = flight
                    .done
                    .wait(outcome)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            return match outcome.as_ref() {
                Some(Ok(b)) => Ok(Arc::clone(b)),
                Some(Err((kind, msg))) => Err(io::Error::new(*kind, msg.clone())),
                None => Err(io::Error::other("block read vanished")),
            };
        }
        let mut buf = vec![0u8; BLOCK as usize];
        let read = self.inner.read_up_to(path, index * BLOCK, &mut buf);
        let result = read.map(|n| {
            buf.truncate(n);
            let block = Arc::new(buf);
            self.cache().put(key.clone(), Arc::clone(&block));
            block
        });
        *flight
            .outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(match &result {
            Ok(b) => Ok(Arc::clone(b)),
            Err(e) => Err((e.kind(), e.to_string())),
        });
        flight.done.notify_all();
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        result
    }
}

impl<S: Storage> Storage for BlockCache<S> {
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let block = self.block(path, pos / BLOCK)?;
            let within = usize::try_from(pos % BLOCK).unwrap_or(usize::MAX);
            let available = block.len().saturating_sub(within);
            if available == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{path} ends before byte {}", offset + buf.len() as u64),
                ));
            }
            let n = available.min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&block[within..within + n]);
            done += n;
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.cache().clear();
        self.inner.remove(path)
    }

    fn remove_all(&self, paths: &[String]) -> io::Result<()> {
        self.cache().clear();
        self.inner.remove_all(paths)
    }

    forward!(
        read,
        read_up_to,
        len,
        privacy_warning,
        write,
        replace,
        create_new,
        list,
        list_times,
        list_token,
        create_dir,
        traffic
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    #[test]
    fn reads_across_blocks_match_and_stop_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalStorage::new(dir.path());
        local.create_dir("data").unwrap();
        let bytes: Vec<u8> = (0..(BLOCK * 2 + 1000)).map(|i| (i % 251) as u8).collect();
        local.write("data/p", &bytes).unwrap();
        let c = BlockCache::new(local, BLOCK * 2);
        for (off, len) in [
            (0u64, 10usize),
            (BLOCK - 5, 10),
            (BLOCK * 2 + 990, 10),
            (1, 8_000_000),
        ] {
            let mut buf = vec![0u8; len];
            c.read_at("data/p", off, &mut buf).unwrap();
            assert_eq!(buf, bytes[off as usize..off as usize + len]);
        }
        let mut buf = vec![0u8; 20];
        assert_eq!(
            c.read_at("data/p", BLOCK * 2 + 990, &mut buf)
                .unwrap_err()
                .kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
