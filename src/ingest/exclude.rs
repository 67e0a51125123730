//! Exclude patterns (`--exclude GLOB`, `--exclude-file F`).
//!
//! A pattern containing `/` is matched against the whole absolute path; one without `/` is
//! matched against each entry's name, at any depth (so `*.tmp` and `.cache` work as expected).
//! `*` does not cross `/`; `**` does. An excluded directory is not descended into.

use std::ffi::OsStr;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Compiled exclude patterns.
#[derive(Debug)]
pub struct Excludes {
    by_path: GlobSet,
    by_name: GlobSet,
}

fn compile(pattern: &str) -> Result<Glob> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| Error::InvalidInput(format!("bad exclude pattern {pattern:?}: {e}")))
}

impl Excludes {
    /// Compiles `patterns` plus the patterns in each file of `files` (one per line; blank
    /// lines and lines starting with `#` are ignored).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad pattern, [`Error::PathIo`] for an unreadable file.
    pub fn new(patterns: &[String], files: &[std::path::PathBuf]) -> Result<Self> {
        let mut all: Vec<String> = patterns.to_vec();
        for f in files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::path_io("reading exclude file", f, e))?;
            all.extend(
                text.lines()
                    .map(str::trim_end)
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .map(String::from),
            );
        }
        let (mut by_path, mut by_name) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for p in &all {
            let p = p.trim_end_matches('/');
            if p.contains('/') {
                by_path.add(compile(p)?);
            } else {
                by_name.add(compile(p)?);
            }
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| Error::InvalidInput(e.to_string()));
        Ok(Excludes {
            by_path: build(by_path)?,
            by_name: build(by_name)?,
        })
    }

    /// Whether the entry at absolute `path` with final component `name` is excluded.
    #[must_use]
    pub fn is_excluded(&self, path: &Path, name: &OsStr) -> bool {
        self.by_name.is_match(Path::new(name)) || self.by_path.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_path_patterns() {
        let e = Excludes::new(
            &["*.tmp".into(), "/data/cache".into(), "/srv/**/logs".into()],
            &[],
        )
        .unwrap();
        let ex = |p: &str| e.is_excluded(Path::new(p), Path::new(p).file_name().unwrap());
        assert!(ex("/home/a/x.tmp"));
        assert!(ex("/data/cache"));
        assert!(!ex("/data/cache2"));
        assert!(!ex("/other/data/cache"));
        assert!(ex("/srv/a/b/logs"));
        assert!(!ex("/home/a/x.txt"));
        assert!(Excludes::new(&["[".into()], &[]).is_err());
    }
}
