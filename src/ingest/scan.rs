//! The scan ahead of a backup that has no parent snapshot to tell its totals: a thread walks
//! the sources as the backup will (the same exclusions, one file system if asked), counting
//! regular files and their bytes, so that progress can show a percentage and an ETA while
//! the backup reads. It only stats (no file is opened), reports what it has counted so far
//! while it runs, and stops early when the backup ends first.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::exclude::Excludes;
use crate::progress::Progress;

/// How often (in entries) the counts so far are published.
const PUBLISH_EVERY: u64 = 1024;

/// Counts the regular files under `sources` (absolute paths) and their sizes into
/// `progress`: as it goes, then as the expected totals once done. Unreadable directories
/// are passed over (the backup reports them). Returns early, setting nothing, once `stop`
/// is set.
pub(super) fn scan(
    sources: &[PathBuf],
    excludes: &Excludes,
    one_file_system: bool,
    progress: &Progress,
    stop: &AtomicBool,
) {
    let (mut files, mut bytes, mut seen) = (0u64, 0u64, 0u64);
    progress.scanned(0, 0);
    for source in sources {
        let Ok(top) = std::fs::symlink_metadata(source) else {
            continue;
        };
        let mut dirs = Vec::new();
        if top.is_dir() {
            dirs.push(source.clone());
        } else if top.is_file() {
            files += 1;
            bytes += top.len();
        }
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let path = e.path();
                if excludes.is_excluded(&path, &e.file_name()) {
                    continue;
                }
                let Ok(m) = e.metadata() else { continue };
                if m.is_file() {
                    files += 1;
                    bytes += m.len();
                } else if m.is_dir() && !(one_file_system && m.dev() != top.dev()) {
                    dirs.push(path);
                }
                seen += 1;
                if seen.is_multiple_of(PUBLISH_EVERY) {
                    progress.scanned(files, bytes);
                }
            }
        }
    }
    progress.expect(files, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_and_bytes_as_the_walk_would() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/one"), vec![0; 100]).unwrap();
        std::fs::write(root.join("a/b/two"), vec![0; 50]).unwrap();
        std::fs::write(root.join("a/b/skip.tmp"), vec![0; 1000]).unwrap();
        std::os::unix::fs::symlink("one", root.join("a/link")).unwrap();
        std::fs::write(root.join("alone"), vec![0; 7]).unwrap();
        let excludes = Excludes::new(&["*.tmp".into()], &[]).unwrap();
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
        // Stopped: nothing is set.
        let stopped = Progress::default();
        scan(&sources, &excludes, false, &stopped, &AtomicBool::new(true));
        assert_eq!(stopped.view().expected_files, 0);
    }
}
