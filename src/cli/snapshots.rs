//! `chronofs snapshots`: list snapshots with their dated names.

use std::io::Write;

use std::collections::BTreeMap;

use anyhow::Result;
use chronofs::maintain::forget::{GroupBy, GroupKey};
use chronofs::snapshot::{self, Listed};

use super::{Context, quote, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: super::select::SelectArgs,
    /// Only the newest N snapshots of each host and source paths.
    #[arg(long, value_name = "N")]
    latest: Option<usize>,
}

/// The newest `n` of each group of `listed` (oldest first), by host and source paths, in
/// their order.
fn latest_per_group(listed: Vec<Listed>, n: usize) -> Vec<Listed> {
    let mut seen: BTreeMap<GroupKey, usize> = BTreeMap::new();
    let mut kept: Vec<Listed> = listed
        .into_iter()
        .rev()
        .filter(|l| {
            let count = seen.entry(GroupKey::of(l, GroupBy::default())).or_default();
            *count += 1;
            *count <= n
        })
        .collect();
    kept.reverse();
    kept
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let snapshot::Listing {
        snapshots: mut listed,
        unreadable: bad,
        ..
    } = snapshot::list_where(&repo, &a.select.filter())?;
    if let Some(n) = a.latest {
        listed = latest_per_group(listed, n);
    }
    super::warn_unreadable(&bad);
    let mut out = std::io::stdout().lock();
    if a.json {
        let items = listed
            .iter()
            .map(|l| {
                Ok(serde_json::json!({
                    "id": l.id, "name": l.name, "time": snapshot::rfc3339(l.snapshot.time_ns),
                    "snapshot": super::snapshot_json(&l.snapshot)?,
                }))
            })
            .collect::<Result<Vec<serde_json::Value>>>()?;
        serde_json::to_writer_pretty(&mut out, &items)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<8}  {:<28}  {:<16}  {:>10}  {:<12}  paths",
            "id", "name", "host", "size", "tags"
        )?;
        for l in &listed {
            let s = &l.snapshot;
            let paths: Vec<String> = s.paths.iter().map(|p| quote::bytes(p.as_bytes())).collect();
            writeln!(
                out,
                "{:<8}  {:<28}  {:<16}  {:>10}  {:<12}  {}",
                l.id.short(),
                l.name,
                quote::text(&s.hostname),
                ui::size(s.summary.total_bytes),
                quote::text(&s.tags.join(",")),
                paths.join(" ")
            )?;
        }
        if !ctx.quiet {
            writeln!(out, "{} snapshot(s)", listed.len())?;
        }
    }
    Ok(if bad.is_empty() {
        0
    } else {
        chronofs::error::exit::DAMAGED
    })
}
