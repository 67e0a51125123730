//! `chronofs snapshots`: list snapshots with their dated names.

use std::io::Write;

use anyhow::Result;
use chronofs::snapshot;

use super::{Context, quote, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: super::select::SelectArgs,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open()?;
    let snapshot::Listing {
        snapshots: listed,
        unreadable: bad,
    } = snapshot::list_where(&repo, &a.select.filter())?;
    for e in &bad {
        eprintln!("chronofs: warning: {}", quote::text(&e.to_string()));
    }
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
