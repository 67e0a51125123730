//! `chronofs cat`: print repository objects as JSON, for debugging.

use anyhow::Result;
use chronofs::format::id::{Id, IndexId, TreeId};
use chronofs::format::index::Index;
use chronofs::repo::layout;

use super::Context;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Object {
    /// The repository config.
    Config,
    /// A snapshot (SNAP: `latest`, dated name or id prefix).
    Snapshot,
    /// A tree blob (full id).
    Tree,
    /// An index file (full id).
    Index,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to print.
    #[arg(value_enum)]
    object: Object,
    /// Which one (not needed for config).
    #[arg(value_name = "ID")]
    id: Option<String>,
}

fn need_id(a: &Args) -> Result<&str> {
    a.id.as_deref().ok_or_else(|| {
        anyhow::Error::new(chronofs::Error::InvalidInput(
            format!("cat {:?} needs an ID", a.object).to_lowercase(),
        ))
    })
}

fn parse_id(s: &str) -> Result<Id> {
    s.parse()
        .map_err(|e: String| anyhow::Error::new(chronofs::Error::InvalidInput(e)))
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let value = match a.object {
        Object::Config => serde_json::to_value(repo.config())?,
        Object::Snapshot => {
            let l = super::resolve_snapshot(&repo, need_id(a)?)?;
            serde_json::json!({"id": l.id, "name": l.name, "snapshot": super::snapshot_json(&l.snapshot)?})
        }
        Object::Tree => serde_json::to_value(repo.read_tree(&TreeId(parse_id(need_id(a)?)?))?)?,
        Object::Index => {
            let id = IndexId(parse_id(need_id(a)?)?);
            let path = layout::index_path(&id);
            let bytes = repo
                .storage()
                .read(&path, chronofs::format::index::MAX_INDEX_LEN as u64)
                .map_err(|e| chronofs::Error::repo_io("reading", &path, e))?;
            serde_json::to_value(
                Index::decode(&bytes, repo.scheme()?.payload())
                    .map_err(|e| chronofs::Error::corrupt(&path, e.to_string()))?,
            )?
        }
    };
    outln!("{}", serde_json::to_string_pretty(&value)?)?;
    Ok(0)
}
