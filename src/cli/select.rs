//! `--host`, `--tag` and `--path`: which snapshots a command works on, the same for every
//! command that takes them (`snapshots`, `forget`, `copy`, `find`, `versions`, `status`).

use chronofs::format::bytes::ByteString;
use chronofs::snapshot::filter::Filter;

#[derive(clap::Args, Debug, Default)]
pub struct SelectArgs {
    /// Only snapshots of this host. Repeatable.
    #[arg(long, value_name = "HOST")]
    host: Vec<String>,
    /// Only snapshots that have all of these tags. Repeatable (any list matches).
    #[arg(long, value_name = "TAG[,TAG...]")]
    tag: Vec<String>,
    /// Only snapshots of exactly these source paths (absolute; the stdin name for a stream).
    /// Repeatable: give every path of the snapshots meant.
    #[arg(long, value_name = "PATH")]
    path: Vec<std::path::PathBuf>,
}

impl SelectArgs {
    /// The selection.
    pub fn filter(&self) -> Filter {
        Filter {
            hosts: self.host.clone(),
            paths: self
                .path
                .iter()
                .map(|p| ByteString::from(p.as_path()))
                .collect(),
            tags: tag_lists(&self.tag),
        }
    }
}

/// Comma-separated tag lists, each as its tags.
pub fn tag_lists(lists: &[String]) -> Vec<Vec<String>> {
    lists
        .iter()
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}
