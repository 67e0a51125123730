//! Regular files in the walk: reused from the parent snapshot when unchanged, shared between
//! the names of a hardlinked file, or queued for the pipeline's readers; and the files the
//! readers hand back, put into their directories.
//!
//! Hardlinks: names that share a source `(dev, ino)` are one file only while they also share
//! size, modification and change time. A name whose inode changed in between (rewritten
//! meanwhile, or an inode number reused by a new file during the backup) is read as a file of
//! its own and recorded with a link count of 1, so a snapshot never holds two different
//! files that claim to be one.

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::TrySendError;

use crate::dirfd::Stat;
use crate::error::{Error, Result};
use crate::format::bytes::ByteString;
use crate::format::id::{BlobId, TreeId};
use crate::format::tree::{Node, NodeKind, Piece, Timestamp, Tree};

use super::content::{self, ContentError, ContentStats};
use super::links::{Link, LinkState};
use super::meta;
use super::pipeline::{FileDone, FileJob, SourceKind};
use super::walk::{Frame, Walker};

impl Walker<'_> {
    /// A regular file: reused from the parent if unchanged, shared with a hardlink already
    /// seen, or queued for a reader.
    pub(super) fn file(
        &mut self,
        frame: &Frame<'_>,
        name: &OsStr,
        st: &Stat,
        parent: Option<&Node>,
    ) -> Result<()> {
        let path = frame.path.join(name);
        let x = self.read_xattrs(&frame.dir, name, &path);
        let mut node = meta::node(
            ByteString::from(name),
            st,
            NodeKind::File { content: vec![] },
            x,
            &mut self.owners,
        );
        let was_file = matches!(parent.map(|n| &n.kind), Some(NodeKind::File { .. }));
        let key = (st.dev, st.ino);
        let version = (st.size, st.mtime, st.ctime);
        let linked = st.nlink > 1
            && self
                .hardlinks
                .get(&key)
                .is_none_or(|l| l.version == version);
        if st.nlink > 1 && !linked {
            node.nlink = 1; // another file under an inode number seen before
        }
        if let Some(content) = self.unchanged_content(st, parent) {
            self.summary.files_unchanged += 1;
            self.summary.total_bytes += st.size;
            self.progress.file_done(st.size);
            if linked {
                self.hardlinks.entry(key).or_insert_with(|| Link {
                    version,
                    state: LinkState::Known(content.clone()),
                });
            }
            set_content(&mut node, content);
            self.pending.push(frame.h, node, false);
            return Ok(());
        }
        if linked {
            match self.hardlinks.get_mut(&key).map(|l| &mut l.state) {
                Some(LinkState::Known(content)) => {
                    let content = content.clone();
                    self.count_file(was_file, &content);
                    set_content(&mut node, content);
                    self.pending.push(frame.h, node, false);
                    return Ok(());
                }
                Some(LinkState::Reading(waiters)) => {
                    let slot = self.pending.push(frame.h, node, true);
                    waiters.push((slot, was_file));
                    return Ok(());
                }
                None => {
                    self.hardlinks.insert(
                        key,
                        Link {
                            version,
                            state: LinkState::Reading(Vec::new()),
                        },
                    );
                }
            }
        }
        let slot = self.pending.push(frame.h, node, true);
        self.submit(FileJob {
            dir: Arc::clone(&frame.dir),
            name: name.to_os_string(),
            path,
            slot,
            size: st.size,
            was_file,
            hardlink: linked.then_some(key),
            source: SourceKind::File,
        })
    }

    /// A block device backed up as its content: a regular file of the device's size, with the
    /// device node's permissions, owner and times. Always read whole: writes to a device
    /// change none of its node's times, so the parent snapshot cannot tell it is unchanged.
    /// `st` is the device node's status (through the symlink when `follow`).
    pub(super) fn device(
        &mut self,
        frame: &Frame<'_>,
        name: &OsStr,
        st: &Stat,
        parent: Option<&Node>,
        follow: bool,
    ) -> Result<()> {
        let path = frame.path.join(name);
        let x = if follow {
            Vec::new() // the symlink's own attributes are not the device's
        } else {
            self.read_xattrs(&frame.dir, name, &path)
        };
        let mut node = meta::node(
            ByteString::from(name),
            st,
            NodeKind::File { content: vec![] },
            x,
            &mut self.owners,
        );
        node.nlink = 1;
        let was_file = matches!(parent.map(|n| &n.kind), Some(NodeKind::File { .. }));
        let slot = self.pending.push(frame.h, node, true);
        self.submit(FileJob {
            dir: Arc::clone(&frame.dir),
            name: name.to_os_string(),
            path,
            slot,
            size: 0, // known once the reader opens it
            was_file,
            hardlink: None,
            source: SourceKind::Device { follow },
        })
    }

    /// Queues a file for the readers, taking in finished files while the queue is full.
    fn submit(&mut self, mut job: FileJob) -> Result<()> {
        loop {
            match self.lanes.jobs.try_send(job) {
                Ok(()) => {
                    self.in_flight += 1;
                    break;
                }
                Err(TrySendError::Full(j)) => {
                    job = j;
                    self.wait_one()?;
                }
                Err(TrySendError::Disconnected(_)) => return Err(Error::PipelineStopped),
            }
        }
        while let Ok(done) = self.lanes.done.try_recv() {
            self.finished(done)?;
        }
        Ok(())
    }

    /// Waits for one file to be read and files it.
    pub(super) fn wait_one(&mut self) -> Result<()> {
        let done = self.lanes.done.recv().map_err(|_| Error::PipelineStopped)?;
        self.finished(done)
    }

    /// Puts a file a reader finished into its directory (and every hardlink waiting for it).
    fn finished(&mut self, done: FileDone) -> Result<()> {
        self.in_flight -= 1;
        let FileDone { job, outcome } = done;
        let content = match outcome {
            Ok((pieces, stats)) => {
                self.summary.bytes_read += stats.bytes_read;
                self.summary.chunks_new += stats.chunks_new;
                let read: u64 = pieces.iter().map(Piece::len).sum();
                if read != job.size {
                    self.warn(&job.path, &format_args!("changed size while being read ({} bytes before, {read} read); the snapshot holds what was read", job.size));
                }
                Some(pieces)
            }
            Err(ContentError::Repo(e)) => return Err(e),
            Err(ContentError::Source(e)) => {
                self.warn(&job.path, &format_args!("read failed: {e}"));
                None
            }
        };
        let mut slots = vec![(job.slot, job.was_file)];
        if let Some(key) = job.hardlink
            && let Some(link) = self.hardlinks.get_mut(&key)
        {
            let waiting = std::mem::replace(&mut link.state, LinkState::Reading(Vec::new()));
            if let LinkState::Reading(waiters) = waiting {
                slots.extend(waiters);
            }
            match &content {
                Some(c) => link.state = LinkState::Known(c.clone()),
                None => {
                    self.hardlinks.remove(&key);
                }
            }
        }
        for (slot, was_file) in slots {
            match &content {
                Some(c) => {
                    self.count_file(was_file, c);
                    self.pending.fill(slot, |n| {
                        set_content(n, c.clone());
                        true
                    });
                }
                None => self.pending.fill(slot, |_| false),
            }
            self.settle(slot.dir)?;
        }
        Ok(())
    }

    fn count_file(&mut self, was_file: bool, content: &[Piece]) {
        if was_file {
            self.summary.files_changed += 1;
        } else {
            self.summary.files_new += 1;
        }
        let size = content.iter().map(Piece::len).sum::<u64>();
        self.summary.total_bytes += size;
        self.progress.file_done(size);
    }

    /// The parent's chunk list if size, mtime, ctime and inode are unchanged and every chunk is
    /// still indexed.
    fn unchanged_content(&self, st: &Stat, parent: Option<&Node>) -> Option<Vec<Piece>> {
        if self.force {
            return None;
        }
        let p = parent?;
        let NodeKind::File { content } = &p.kind else {
            return None;
        };
        let same = (p.size, p.ino, p.mtime, p.ctime) == (st.size, st.ino, st.mtime, st.ctime);
        let indexed = || {
            content.iter().all(|piece| match piece {
                Piece::Data { id, .. } => self.repo.has_blob(&BlobId::from(*id)),
                Piece::Hole { .. } => true,
            })
        };
        (same && indexed()).then(|| content.clone())
    }

    /// Stores a file read from a stream (stdin) as the single entry of a root tree.
    pub(super) fn stream_tree(
        &mut self,
        name: &str,
        source: &mut dyn io::Read,
    ) -> Result<(TreeId, u64)> {
        let mut stats = ContentStats::default();
        let mut pieces = Vec::new();
        let r = content::store_stream(
            source,
            &mut self.lanes.chunker,
            &self.lanes.sink,
            &mut pieces,
            &mut stats,
            self.progress,
        );
        self.summary.bytes_read += stats.bytes_read;
        self.summary.chunks_new += stats.chunks_new;
        match r {
            Ok(()) => {}
            Err(ContentError::Repo(e)) => return Err(e),
            Err(ContentError::Source(e)) => {
                return Err(Error::SourceFailed(format!(
                    "reading standard input failed: {e}"
                )));
            }
        }
        self.summary.files_new += 1;
        let size: u64 = pieces.iter().map(Piece::len).sum();
        self.summary.total_bytes += size;
        self.progress.file_done(size);
        let now = crate::repo::now_ns();
        let t = Timestamp {
            secs: now.div_euclid(1_000_000_000),
            nanos: u32::try_from(now.rem_euclid(1_000_000_000)).unwrap_or(0),
        };
        let uid = crate::sys::euid();
        let node = Node {
            name: ByteString::from(name),
            kind: NodeKind::File { content: pieces },
            mode: 0o600,
            uid,
            gid: 0,
            user: crate::sys::user_name(uid),
            group: None,
            size,
            mtime: t,
            atime: t,
            ctime: t,
            dev: 0,
            ino: 0,
            nlink: 1,
            xattrs: Vec::new(),
        };
        let tree = Tree {
            entries: vec![node],
        };
        Ok((self.store_tree(&tree)?, size))
    }
}

/// Sets a file node's content and the size that follows from it.
fn set_content(node: &mut Node, content: Vec<Piece>) {
    node.size = content.iter().map(Piece::len).sum();
    node.kind = NodeKind::File { content };
}
