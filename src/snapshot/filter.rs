//! Which snapshots a command works on, by host, source paths and tags: one definition for the
//! `--host`/`--path`/`--tag` of `snapshots`, `forget`, `copy`, `find`, `versions` and
//! `status`, and the backup's choice of a parent (same host, same paths).

use crate::format::bytes::ByteString;
use crate::format::snapshot::Snapshot;

/// A selection of snapshots; an empty field selects all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Snapshots of any of these hosts.
    pub hosts: Vec<String>,
    /// Snapshots of exactly these source paths (in any order).
    pub paths: Vec<ByteString>,
    /// Snapshots that carry all the tags of any one of these lists.
    pub tags: Vec<Vec<String>>,
}

impl Filter {
    /// Whether `s` is selected.
    #[must_use]
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && (self.paths.is_empty() || same_paths(&self.paths, &s.paths))
            && (self.tags.is_empty()
                || self
                    .tags
                    .iter()
                    .any(|list| list.iter().all(|t| s.tags.contains(t))))
    }
}

/// Whether `a` and `b` name the same paths, whatever their order.
fn same_paths(a: &[ByteString], b: &[ByteString]) -> bool {
    fn sorted(v: &[ByteString]) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = v.iter().map(ByteString::as_bytes).collect();
        v.sort_unstable();
        v
    }
    a.len() == b.len() && sorted(a) == sorted(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::{Id, TreeId};
    use crate::format::snapshot::Summary;

    fn snap(host: &str, paths: &[&str], tags: &[&str]) -> Snapshot {
        Snapshot {
            time_ns: 0,
            hostname: host.into(),
            username: "u".into(),
            paths: paths.iter().map(|p| ByteString::from(*p)).collect(),
            tags: tags.iter().map(|t| (*t).to_string()).collect(),
            root: TreeId(Id::hash(b"root")),
            parent: None,
            program_version: String::new(),
            stdin: false,
            summary: Summary::default(),
            contents: None,
            commit: None,
            consistency: None,
        }
    }

    #[test]
    fn each_field_selects_and_an_empty_one_selects_all() {
        let s = snap("web", &["/etc", "/home"], &["daily", "db"]);
        assert!(Filter::default().matches(&s));
        let hosts = |h: &[&str]| Filter {
            hosts: h.iter().map(|h| (*h).to_string()).collect(),
            ..Filter::default()
        };
        assert!(hosts(&["web"]).matches(&s));
        assert!(!hosts(&["db"]).matches(&s));
        assert!(hosts(&[]).matches(&s));
        let paths = |p: &[&str]| Filter {
            paths: p.iter().map(|p| ByteString::from(*p)).collect(),
            ..Filter::default()
        };
        assert!(paths(&["/home", "/etc"]).matches(&s), "any order");
        assert!(!paths(&["/etc"]).matches(&s), "exactly these paths");
        assert!(!paths(&["/etc", "/home", "/var"]).matches(&s));
        assert!(!paths(&["/etc", "/etc"]).matches(&s));
        let tags = |lists: &[&[&str]]| Filter {
            tags: lists
                .iter()
                .map(|l| l.iter().map(|t| (*t).to_string()).collect())
                .collect(),
            ..Filter::default()
        };
        assert!(tags(&[&["daily", "db"]]).matches(&s));
        assert!(!tags(&[&["daily", "weekly"]]).matches(&s), "all of a list");
        assert!(tags(&[&["weekly"], &["db"]]).matches(&s), "any list");
        let both = Filter {
            hosts: vec!["web".into(), "db".into()],
            ..paths(&["/etc"])
        };
        assert!(!both.matches(&s), "every field must select");
    }
}
