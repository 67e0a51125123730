//! The scan ahead of a backup that has no parent snapshot to tell its totals: a thread walks
//! the sources as the backup will (the same exclusions, one file system if asked), counting
//! regular files and their bytes, so that progress can show a percentage and an ETA while
//! the backup reads. It only lists and stats, through [`DirFd`] as the walk does (directories
//! opened with `O_NOATIME`, so their access times stay as they were, and no path length
//! limit), reports what it has counted so far while it runs, and stops early when the backup
//! ends first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::exclude::Excludes;
use crate::dirfd::DirFd;
use crate::progress::Progress;

/// How often (in entries) the counts so far are published.
const PUBLISH_EVERY: u64 = 1024;

/// Counts the regular files under `sources` (absolute paths) and their sizes into
/// `progress`: as it goes, then as the expected totals once done. Unreadable directories
/// are passed over (the backup reports them). Returns early, setting no totals, once `stop`
/// is set.
pub(super) fn scan(
    sources: &[PathBuf],
    excludes: &Excludes,
    one_file_system: bool,
    progress: &Progress,
    stop: &AtomicBool,
) {
    // Only for a display: it runs on what the backup leaves of the cores.
    crate::sys::lower_thread_priority();
    let (mut files, mut bytes, mut seen) = (0u64, 0u64, 0u64);
    progress.scanned(0, 0);
    for source in sources {
        let (top, dev) = match open_source(source) {
            Some(Source::File(size)) => {
                (files, bytes) = (files + 1, bytes + size);
                continue;
            }
            Some(Source::Dir(d, dev)) => (d, dev),
            None => continue,
        };
        walk(
            vec![top],
            dev,
            excludes,
            one_file_system,
            stop,
            &mut |n, b| {
                (files, bytes, seen) = (files + n, bytes + b, seen + 1);
                if seen.is_multiple_of(PUBLISH_EVERY) {
                    progress.scanned(files, bytes);
                }
            },
        );
    }
    if !stop.load(Ordering::Relaxed) {
        progress.expect(files, bytes);
    }
}

/// A source, opened.
enum Source {
    /// A regular file of this size.
    File(u64),
    /// A directory, and the device of its file system.
    Dir(DirFd, u64),
}

/// Opens source `path` (absolute) without following a final symlink; `None` for what the
/// scan passes over (gone, unreadable, or neither a file nor a directory).
fn open_source(path: &Path) -> Option<Source> {
    let Some(name) = path.file_name() else {
        // `/` itself.
        let root = DirFd::open(path).ok()?;
        let dev = root.stat_self().ok()?.dev;
        return Some(Source::Dir(root, dev));
    };
    let parent = DirFd::open(path.parent().unwrap_or(Path::new("/"))).ok()?;
    let st = parent.stat(name).ok()?;
    if st.is_file() {
        Some(Source::File(st.size))
    } else if st.is_dir() {
        Some(Source::Dir(parent.open_dir(name).ok()?, st.dev))
    } else {
        None
    }
}

/// Walks the directories of `dirs` and those below them, calling `count(files, bytes)` for
/// each entry (a regular file counts 1 and its size); with `one_file_system`, directories of
/// another device than `dev` are not entered.
fn walk(
    mut dirs: Vec<DirFd>,
    dev: u64,
    excludes: &Excludes,
    one_file_system: bool,
    stop: &AtomicBool,
    count: &mut dyn FnMut(u64, u64),
) {
    while let Some(dir) = dirs.pop() {
        let Ok(names) = dir.names() else { continue };
        for name in names {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if excludes.is_excluded(&dir.entry_path(&name), &name) {
                continue;
            }
            let Ok(st) = dir.stat(&name) else { continue };
            if st.is_file() {
                count(1, st.size);
                continue;
            }
            count(0, 0);
            if st.is_dir()
                && !(one_file_system && st.dev != dev)
                && let Ok(d) = dir.open_dir(&name)
            {
                dirs.push(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_and_bytes_as_the_walk_would_and_leaves_access_times_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/one"), vec![0; 100]).unwrap();
        std::fs::write(root.join("a/b/two"), vec![0; 50]).unwrap();
        std::fs::write(root.join("a/b/skip.tmp"), vec![0; 1000]).unwrap();
        std::os::unix::fs::symlink("one", root.join("a/link")).unwrap();
        std::fs::write(root.join("alone"), vec![0; 7]).unwrap();
        let excludes = Excludes::new(&["*.tmp".into()], &[]).unwrap();
        // An access time older than the modification time: listing the directory without
        // O_NOATIME would move it (relatime), and the backup beside records it.
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
        std::fs::File::open(root.join("a/b"))
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_accessed(old))
            .unwrap();
        let progress = Progress::default();
        let sources = [root.join("a"), root.join("alone")];
        scan(
            &sources,
            &excludes,
            false,
            &progress,
            &AtomicBool::new(false),
        );
        let v = progress.view();
        assert_eq!((v.expected_files, v.expected_bytes), (3, 157));
        assert!(!v.scanning);
        let atime = std::fs::metadata(root.join("a/b"))
            .unwrap()
            .accessed()
            .unwrap();
        assert_eq!(atime, old, "the scan left the access time alone");
        // Stopped: no totals.
        let stopped = Progress::default();
        scan(&sources, &excludes, false, &stopped, &AtomicBool::new(true));
        assert_eq!(stopped.view().expected_files, 0);
    }
}
