//! Packs upload in parallel, in order with everything that depends on them.
//!
//! A pack committed through [`crate::storage::Storage::create_new`] is handed to a pool of
//! upload threads and the writer goes on filling the next one; at most as many packs as there
//! are connections are in flight (bounded memory). Every other write (an index file, a
//! snapshot, a replaced config) first waits until every pending pack is stored: so an index
//! file never reaches the server before the packs it names, nor a snapshot before its index,
//! which is the crash-safety order of a local repository. A failed upload is remembered and
//! fails that next write, so nothing that depends on the lost pack is ever written (after one
//! failure the writer stops, like redb's `PreviousIo`). Reads of a pack still in flight wait
//! for it.

use std::collections::HashSet;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{StorageUnavailable, is_storage_unavailable};

/// One pack to store.
struct Job {
    path: String,
    data: Vec<u8>,
}

/// What is in flight and whether anything failed.
#[derive(Default)]
struct State {
    pending: HashSet<String>,
    /// The first failure (sticky).
    failed: Option<Failure>,
}

/// A remembered upload failure, given again to every later write.
#[derive(Clone)]
struct Failure {
    kind: io::ErrorKind,
    message: String,
    /// Whether the store was unreachable or refused (exit code 19), as opposed to local trouble.
    unavailable: bool,
}

impl Failure {
    fn error(&self) -> io::Error {
        if self.unavailable {
            io::Error::new(self.kind, StorageUnavailable(self.message.clone()))
        } else {
            io::Error::new(self.kind, self.message.clone())
        }
    }
}

/// The upload pool of one storage.
pub struct Uploads {
    tx: Mutex<Option<SyncSender<Job>>>,
    state: Arc<(Mutex<State>, Condvar)>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    limit: usize,
}

/// Stores one object (the storage's PUT).
pub type Put = Arc<dyn Fn(&str, &[u8]) -> io::Result<()> + Send + Sync>;

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Uploads {
    /// A pool of `threads` uploaders calling `put`.
    pub fn new(threads: usize, put: Put) -> Uploads {
        let threads = threads.max(1);
        let (tx, rx) = sync_channel::<Job>(0);
        let rx = Arc::new(Mutex::new(rx));
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let mut workers = Vec::new();
        for n in 0..threads {
            let (rx, state, put) = (Arc::clone(&rx), Arc::clone(&state), Arc::clone(&put));
            let spawned = std::thread::Builder::new()
                .name(format!("s3-upload-{n}"))
                .spawn(move || work(&rx, &state, &put));
            if let Ok(h) = spawned {
                workers.push(h);
            }
        }
        Uploads {
            tx: Mutex::new((!workers.is_empty()).then_some(tx)),
            state,
            workers: Mutex::new(workers),
            limit: threads,
        }
    }

    /// Queues `data` for `path`, waiting while the pool is full; without a pool, stores it
    /// now.
    ///
    /// # Errors
    /// An earlier upload failed (nothing more is queued), or the direct store failed.
    pub fn submit(&self, path: &str, data: Vec<u8>, put: &Put) -> io::Result<()> {
        let (m, cv) = &*self.state;
        {
            let mut st = lock(m);
            while st.pending.len() >= self.limit && st.failed.is_none() {
                st = cv
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if let Some(f) = &st.failed {
                return Err(f.error());
            }
            st.pending.insert(path.to_string());
        }
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let job = Job {
            path: path.to_string(),
            data,
        };
        let unsent = match tx {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        // No worker to take it: store it here.
        let r = put(&unsent.path, &unsent.data);
        finish(&self.state, &unsent.path, r.as_ref().err());
        r
    }

    /// Waits until every queued upload is stored.
    ///
    /// # Errors
    /// The first upload that failed.
    pub fn barrier(&self) -> io::Result<()> {
        let (m, cv) = &*self.state;
        let mut st = lock(m);
        while !st.pending.is_empty() && st.failed.is_none() {
            st = cv
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        match &st.failed {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }

    /// Waits until `path` is stored if it is in flight.
    pub fn wait_for(&self, path: &str) {
        let (m, cv) = &*self.state;
        let mut st = lock(m);
        while st.pending.contains(path) {
            st = cv
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        // Closing the channel ends the workers once the queued packs are stored.
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let workers = std::mem::take(
            &mut *self
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for w in workers {
            let _ = w.join();
        }
    }
}

/// Marks `path` done, remembering the first failure.
fn finish(state: &(Mutex<State>, Condvar), path: &str, error: Option<&io::Error>) {
    let (m, cv) = state;
    let mut st = lock(m);
    st.pending.remove(path);
    if let Some(e) = error
        && st.failed.is_none()
    {
        st.failed = Some(Failure {
            kind: e.kind(),
            message: format!("storing {path}: {e}"),
            unavailable: is_storage_unavailable(e),
        });
    }
    cv.notify_all();
}

/// An upload thread: stores jobs until the channel closes.
fn work(rx: &Mutex<Receiver<Job>>, state: &(Mutex<State>, Condvar), put: &Put) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let r = put(&job.path, &job.data);
        finish(state, &job.path, r.as_ref().err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn uploads_run_in_parallel_and_a_failure_stops_later_writes() {
        let stored = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (s, c) = (Arc::clone(&stored), Arc::clone(&calls));
        let put: Put = Arc::new(move |path: &str, data: &[u8]| {
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            if path.ends_with("bad") {
                return Err(io::Error::other("server said no"));
            }
            s.lock().unwrap().push((path.to_string(), data.len()));
            Ok(())
        });
        let u = Uploads::new(3, Arc::clone(&put));
        for i in 0..6 {
            u.submit(&format!("data/{i}"), vec![0; i], &put).unwrap();
        }
        u.barrier().unwrap();
        assert_eq!(
            stored.lock().unwrap().len(),
            6,
            "all stored before the barrier returns"
        );
        u.submit("data/bad", vec![1], &put).unwrap();
        let err = u.barrier().unwrap_err();
        assert!(err.to_string().contains("data/bad"), "{err}");
        assert!(u.submit("data/later", vec![], &put).is_err(), "sticky");
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }
}
