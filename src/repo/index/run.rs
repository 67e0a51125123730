//! Reading one local index run (docs/FORMAT.md, "Local index runs"): its header and fence at
//! open, then single pages on demand, each checked against its tag before use and kept,
//! checked, in a page cache the runs of one index share.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::format::crypto::SessionKey;
use crate::format::index_run::{
    self as fmt, ENTRY_LEN, FENCE_LEN, MAGIC, PACK_LEN, PAGE, PAGE_BODY, RunEntry, RunHeader,
    RunPack, Sections, TAG, TRAILER,
};

/// Why a run cannot be used. The caller drops the run and rebuilds it from its sources.
#[derive(Debug, thiserror::Error)]
#[error("local index run {}: {reason}", path.display())]
pub struct RunDamage {
    /// The run file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// Pages kept in memory, after their check, by the runs of one index: a lookup reads an
/// entry page and a pack page, and a restore or a mount's reads look up many blobs whose
/// entries share pages (the pack pages above all); reading and checking each page every time
/// cost a system call and a keyed hash of 4 KiB per page.
const CACHED_PAGES: usize = 2048;

/// A page in memory, by run id and page number.
type Pages = LruCache<([u8; 16], u64), Arc<[u8; PAGE]>>;

/// Checked pages of the runs of one index, by run id and page number (at most 2,048 pages:
/// 8 MiB).
#[derive(Debug)]
pub struct PageCache {
    pages: Mutex<Pages>,
}

impl PageCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Arc<PageCache> {
        Arc::new(PageCache {
            pages: Mutex::new(LruCache::unbounded()),
        })
    }

    fn get(&self, key: &([u8; 16], u64)) -> Option<Arc<[u8; PAGE]>> {
        self.lock().get(key).map(Arc::clone)
    }

    fn put(&self, key: ([u8; 16], u64), page: Arc<[u8; PAGE]>) {
        let mut pages = self.lock();
        if pages.len() >= CACHED_PAGES {
            pages.pop_lru();
        }
        pages.put(key, page);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pages> {
        self.pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An open run: its header and fence in memory, its pages on disk (and, once read, in the
/// index's page cache if it has one).
#[derive(Debug)]
pub struct Run {
    file: File,
    path: PathBuf,
    key: zeroize::Zeroizing<[u8; 32]>,
    header: RunHeader,
    sections: Sections,
    session_len: usize,
    /// The first eight bytes of the first blob id of every entry page.
    fence: Vec<u64>,
    /// Where checked pages are kept (none while a run is merged: read once, in order).
    cache: Option<Arc<PageCache>>,
}

impl Run {
    /// Opens the run at `path`, checks its header (tag, counts, length) and reads its fence.
    ///
    /// # Errors
    /// [`RunDamage`] for a missing, truncated, altered or malformed file.
    pub fn open(path: &Path, key: &[u8; 32], session_len: usize) -> Result<Run, RunDamage> {
        let damage = |reason: String| RunDamage {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| damage(e.to_string()))?;
        let len = file.metadata().map_err(|e| damage(e.to_string()))?.len();
        if len < TRAILER as u64 {
            return Err(damage(format!("{len} bytes is too short")));
        }
        let mut tail = [0u8; 16];
        file.read_exact_at(&mut tail, len - 16)
            .map_err(|e| damage(e.to_string()))?;
        if &tail[8..] != MAGIC {
            return Err(damage("bad magic bytes".into()));
        }
        let mut header_len = [0u8; 8];
        header_len.copy_from_slice(&tail[..8]);
        let header_len = u64::from_le_bytes(header_len);
        if header_len > fmt::MAX_HEADER_LEN || header_len + TRAILER as u64 > len {
            return Err(damage(format!("a header of {header_len} bytes")));
        }
        let body_end = len - TRAILER as u64 - header_len;
        let mut head = vec![0u8; header_len as usize + TAG];
        file.read_exact_at(&mut head, body_end)
            .map_err(|e| damage(e.to_string()))?;
        let (bytes, tag) = head.split_at(header_len as usize);
        if fmt::header_tag(key, bytes) != tag {
            return Err(damage("the header fails its check".into()));
        }
        let header = RunHeader::decode(bytes).map_err(|e| damage(e.to_string()))?;
        let sections = header.sections(session_len);
        if sections.pages.checked_mul(PAGE as u64) != Some(body_end) {
            return Err(damage(format!(
                "{body_end} bytes of pages, the header implies {} pages (truncated?)",
                sections.pages
            )));
        }
        if header.sessions > 0 && session_len == 0 {
            return Err(damage("sessions in a plaintext repository".into()));
        }
        let mut run = Run {
            file,
            path: path.to_path_buf(),
            key: zeroize::Zeroizing::new(*key),
            header,
            sections,
            session_len,
            fence: Vec::new(),
            cache: None,
        };
        run.fence = run.read_fence()?;
        Ok(run)
    }

    fn read_fence(&self) -> Result<Vec<u64>, RunDamage> {
        let n = self.sections.entry_pages;
        let mut fence = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        let per = fmt::per_page(FENCE_LEN) as u64;
        for page in 0..fmt::pages_for(n, FENCE_LEN) {
            let body = self.page(self.sections.fence + page)?;
            let count = (n - page * per).min(per) as usize;
            for r in body[..count * FENCE_LEN].chunks_exact(FENCE_LEN) {
                let mut b = [0u8; 8];
                b.copy_from_slice(r);
                fence.push(u64::from_le_bytes(b));
            }
        }
        if fence.windows(2).any(|w| w[0] > w[1]) {
            return Err(self.damage("the fence is not sorted".into()));
        }
        Ok(fence)
    }

    /// The header.
    #[must_use]
    pub fn header(&self) -> &RunHeader {
        &self.header
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn damage(&self, reason: String) -> RunDamage {
        RunDamage {
            path: self.path.clone(),
            reason,
        }
    }

    /// Keeps the pages this run reads, once checked, in `cache`.
    pub fn share_pages(&mut self, cache: Arc<PageCache>) {
        self.cache = Some(cache);
    }

    /// Page `n`, checked against its tag (from the cache if it was read before).
    fn page(&self, n: u64) -> Result<Arc<[u8; PAGE]>, RunDamage> {
        let key = (self.header.run, n);
        if let Some(page) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(page);
        }
        let mut buf = Box::new([0u8; PAGE]);
        self.file
            .read_exact_at(&mut buf[..], n * PAGE as u64)
            .map_err(|e| self.damage(format!("page {n}: {e}")))?;
        let (body, tag) = buf.split_at(PAGE_BODY);
        if fmt::page_tag(&self.key, &self.header.run, n, body) != tag {
            return Err(self.damage(format!("page {n} fails its check")));
        }
        let page: Arc<[u8; PAGE]> = Arc::from(buf);
        if let Some(c) = &self.cache {
            c.put(key, Arc::clone(&page));
        }
        Ok(page)
    }

    /// Entries of entry page `page`.
    pub fn entry_page(&self, page: u64) -> Result<Vec<RunEntry>, RunDamage> {
        let per = fmt::per_page(ENTRY_LEN) as u64;
        let count = self.header.entries.saturating_sub(page * per).min(per) as usize;
        let body = self.page(page)?;
        let entries: Vec<RunEntry> = body[..count * ENTRY_LEN]
            .chunks_exact(ENTRY_LEN)
            .map(RunEntry::from_bytes)
            .collect();
        if entries.windows(2).any(|w| w[0].id > w[1].id) {
            return Err(self.damage(format!("entry page {page} is not sorted")));
        }
        if entries.first().map(RunEntry::prefix) != self.fence.get(page as usize).copied() {
            return Err(self.damage(format!("entry page {page} disagrees with the fence")));
        }
        Ok(entries)
    }

    /// Every entry whose blob id is `id`.
    ///
    /// # Errors
    /// [`RunDamage`] for a page that fails its check or disagrees with the fence.
    pub fn find(&self, id: &[u8; 32]) -> Result<Vec<RunEntry>, RunDamage> {
        let target = fmt::prefix(id);
        // The first page whose first id is at or past the target's prefix; an equal id may
        // also end the page before it.
        let first = self.fence.partition_point(|&f| f < target);
        let mut found = Vec::new();
        let mut page = first.saturating_sub(1);
        while page < self.fence.len() {
            if page > first && self.fence[page] > target {
                break;
            }
            let entries = self.entry_page(page as u64)?;
            found.extend(entries.iter().filter(|e| &e.id == id));
            if entries.last().is_some_and(|e| &e.id > id) {
                break;
            }
            page += 1;
        }
        Ok(found)
    }

    /// Pack record `n`.
    ///
    /// # Errors
    /// [`RunDamage`] for a number out of range, a page that fails its check, or a record
    /// naming a source or session the run does not have.
    pub fn pack(&self, n: u32) -> Result<RunPack, RunDamage> {
        if u64::from(n) >= self.header.packs {
            return Err(self.damage(format!("pack {n} of {}", self.header.packs)));
        }
        let per = fmt::per_page(PACK_LEN) as u64;
        let (page, slot) = (u64::from(n) / per, (u64::from(n) % per) as usize);
        let body = self.page(self.sections.packs + page)?;
        self.checked(RunPack::from_bytes(&body[slot * PACK_LEN..]))
    }

    /// Session record `n`.
    ///
    /// # Errors
    /// As [`Self::pack`].
    pub fn session(&self, n: u32) -> Result<SessionKey, RunDamage> {
        if u64::from(n) >= self.header.sessions {
            return Err(self.damage(format!("session {n} of {}", self.header.sessions)));
        }
        let per = fmt::per_page(self.session_len) as u64;
        let (page, slot) = (u64::from(n) / per, (u64::from(n) % per) as usize);
        let body = self.page(self.sections.sessions + page)?;
        let at = slot * self.session_len;
        Ok(SessionKey(body[at..at + self.session_len].to_vec()))
    }

    /// All pack records, in order (for merging), a page at a time.
    ///
    /// # Errors
    /// As [`Self::pack`].
    pub fn packs(&self) -> impl Iterator<Item = Result<RunPack, RunDamage>> + '_ {
        let per = fmt::per_page(PACK_LEN) as u64;
        (0..fmt::pages_for(self.header.packs, PACK_LEN)).flat_map(move |page| {
            let count = (self.header.packs - page * per).min(per) as usize;
            let records: Vec<Result<RunPack, RunDamage>> =
                match self.page(self.sections.packs + page) {
                    Ok(body) => body[..count * PACK_LEN]
                        .chunks_exact(PACK_LEN)
                        .map(|b| self.checked(RunPack::from_bytes(b)))
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
            records
        })
    }

    /// `p` if it names a source and session the run has.
    fn checked(&self, p: RunPack) -> Result<RunPack, RunDamage> {
        if p.source as usize >= self.header.sources.len()
            || (p.session != fmt::NO_SESSION && u64::from(p.session) >= self.header.sessions)
        {
            return Err(self.damage(format!(
                "pack {} names a source or session out of range",
                p.id
            )));
        }
        Ok(p)
    }

    /// Entry pages in order (for merging).
    #[must_use]
    pub fn entry_pages(&self) -> u64 {
        self.sections.entry_pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_cache_keeps_the_most_recent_pages_up_to_its_bound() {
        let cache = PageCache::new();
        let page = Arc::new([0u8; PAGE]);
        let n = CACHED_PAGES as u64 + 10;
        for p in 0..n {
            cache.put(([1; 16], p), Arc::clone(&page));
        }
        assert_eq!(cache.lock().len(), CACHED_PAGES);
        assert!(cache.get(&([1; 16], 9)).is_none(), "the oldest went");
        assert!(cache.get(&([1; 16], 10)).is_some());
        assert!(cache.get(&([1; 16], n - 1)).is_some());
        assert!(cache.get(&([2; 16], n - 1)).is_none(), "pages are per run");
    }
}
