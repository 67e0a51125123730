//! `chronofs umount`: unmount a mounted repository (also clears a mount left stale by a mount
//! process that was killed).

use std::path::PathBuf;

use anyhow::Result;
use chronofs::Error;
use chronofs::fuse::mountpoint::{self, MountState};

use super::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The mount point.
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: PathBuf,
    /// Detach now even if busy; the kernel finishes once the last file is closed.
    #[arg(short, long)]
    lazy: bool,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let path = mountpoint::absolute(&a.mountpoint)?;
    match mountpoint::probe(&path)? {
        MountState::Free => {
            Err(Error::Mount(format!("nothing is mounted on {}", path.display())).into())
        }
        MountState::Stale => {
            let note = mountpoint::clear_stale(&path)?;
            if !ctx.quiet {
                eprintln!("chronofs: {note}");
            }
            Ok(0)
        }
        MountState::Mounted(fstype) if !fstype.starts_with("fuse") => Err(Error::Refused(format!(
            "{} is a {fstype} mount, not a chronofs mount; not touching it",
            path.display()
        ))
        .into()),
        MountState::Mounted(_) => {
            mountpoint::unmount(&path, a.lazy)?;
            Ok(0)
        }
    }
}
