//! `chronofs generate` (hidden): writes the man pages and shell completions from the command
//! definitions, so the documentation cannot drift from the options. The generated files are
//! checked in (`man/`, `packaging/completions/`) and a test fails when they are stale:
//!
//! ```sh
//! cargo run -- generate man man/ && cargo run -- generate completions packaging/completions/
//! ```

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to write.
    #[arg(value_enum)]
    what: What,
    /// The directory to write it into.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum What {
    /// chronofs.1 and one page per command (chronofs-backup.1, …).
    Man,
    /// bash, zsh and fish completions.
    Completions,
}

pub fn run(a: &Args) -> Result<u8> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let cmd = super::Cli::command();
    match a.what {
        What::Man => clap_mangen::generate_to(cmd, &a.dir),
        What::Completions => [Shell::Bash, Shell::Zsh, Shell::Fish]
            .into_iter()
            .try_for_each(|shell| {
                clap_complete::generate_to(shell, &mut cmd.clone(), "chronofs", &a.dir).map(drop)
            }),
    }
    .with_context(|| format!("writing into {}", a.dir.display()))?;
    Ok(0)
}
