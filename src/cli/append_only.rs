//! `chronofs append-only`: show or change whether the repository refuses deletions.

use anyhow::Result;
use chronofs::repo::lock::LockKind;

use super::Context;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Setting {
    /// Refuse forget, prune and every rewrite.
    On,
    /// Allow them again.
    Off,
    /// Print the current setting.
    Status,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// on, off or status.
    #[arg(value_enum, default_value = "status")]
    setting: Setting,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let mut repo = ctx.open_unindexed()?;
    let on = match a.setting {
        Setting::Status => {
            outln!(
                "append-only: {}",
                if repo.config().append_only {
                    "on"
                } else {
                    "off"
                }
            )?;
            return Ok(0);
        }
        Setting::On => true,
        Setting::Off => false,
    };
    let lock = ctx.lock(&repo, LockKind::Exclusive, "append-only")?;
    repo.set_append_only(on)?;
    drop(lock);
    if !ctx.quiet {
        outln!(
            "append-only is now {} for {}",
            if on { "on" } else { "off" },
            repo.location().display()
        )?;
        if on {
            outln!(
                "forget and prune now refuse; protect the config and data with file \
                 permissions too (see README, \"Append-only repositories\")"
            )?;
        }
    }
    Ok(0)
}
