//! `chronofs mount`: serve the repository over FUSE, every snapshot a dated directory.
//!
//! Without `--foreground` the command starts a copy of itself in the background (detached from
//! the terminal) and returns once the mount answers requests, so a script can use it on the
//! next line; errors of the background process (no repository, mount point busy) are printed
//! and returned as this command's exit code.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};
use chronofs::fuse::{self, MountOptions};
use chronofs::storage::location::Location;

use super::{Context, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to mount on (must exist).
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: PathBuf,
    /// Stay in the foreground; Ctrl-C or SIGTERM unmounts and exits.
    #[arg(short, long)]
    foreground: bool,
    /// Let other users in too (the stored modes and owners still decide what they may read;
    /// non-root users need `user_allow_other` in /etc/fuse.conf).
    #[arg(long)]
    allow_other: bool,
    /// Memory for decompressed file data, e.g. 64M or 1G.
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = ui::parse_size)]
    cache_size: u64,
    /// Threads serving requests.
    #[arg(long, value_name = "N", default_value_t = 4)]
    threads: usize,
    /// Keep answering extended-attribute queries even when no snapshot holds extended
    /// attributes or ACLs. Without it, a mount by root tells the kernel once that there are
    /// none (which makes `ls -l` much faster), and replaces its connection with a new one when
    /// a snapshot that holds some arrives (other users' mounts never tell the kernel).
    #[arg(long)]
    keep_xattrs: bool,
    /// Internal (tests): inodes the kernel may hold before it is asked to drop some.
    #[arg(long, hide = true, value_name = "N")]
    max_inodes: Option<usize>,
    /// Where the background process writes errors it meets (default: discarded).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Internal: this is the background process started by `mount`.
    #[arg(long, hide = true)]
    daemon_child: bool,
}

/// The line the background process prints when the mount is ready.
const READY: &str = "chronofs-mount-ready";

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.repo_path()?.clone();
    if !a.foreground && !a.daemon_child {
        return start_background(ctx, a, &repo);
    }
    let options = MountOptions {
        cache_bytes: usize::try_from(a.cache_size).unwrap_or(usize::MAX),
        threads: a.threads,
        allow_other: a.allow_other,
        keep_xattrs: a.keep_xattrs,
        max_inodes: a.max_inodes.unwrap_or(MountOptions::default().max_inodes),
        ..MountOptions::default()
    };
    // Opened (and unlocked) before the background process leaves the terminal.
    let repository = ctx.open_unindexed()?;
    if a.daemon_child {
        chronofs::sys::detach_from_terminal();
    }
    let quiet = ctx.quiet;
    let mut warn = |m: &str| eprintln!("chronofs: warning: {}", super::quote::text(m));
    let log = a.log.clone();
    let daemon = a.daemon_child;
    let mp = a.mountpoint.clone();
    let on_ready = move || {
        if daemon {
            let _ = outln!("{READY}");
            let _ = std::io::stdout().flush();
            let sink = match &log {
                Some(p) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p),
                None => std::fs::OpenOptions::new().write(true).open("/dev/null"),
            };
            if let Ok(f) = sink {
                let _ = chronofs::sys::redirect_stdout_stderr(&f);
            }
        } else if !quiet {
            eprintln!(
                "chronofs: mounted on {}; press Ctrl-C (or run `chronofs umount {}`) to unmount",
                mp.display(),
                mp.display()
            );
        }
    };
    fuse::serve(repository, &a.mountpoint, &options, &mut warn, on_ready)
        .with_context(|| format!("mounting {}", a.mountpoint.display()))?;
    Ok(0)
}

/// Starts `chronofs mount --daemon-child …` and waits until it is ready or has failed.
fn start_background(ctx: &Context, a: &Args, repo: &Location) -> Result<u8> {
    // An encrypted repository's passphrase is found here, where a terminal may ask for it,
    // and handed to the background process on its standard input; that process unlocks the
    // repository (once) and reports a wrong passphrase like any other failure.
    let pass = if chronofs::repo::Repository::open_unindexed_at(repo)?.encrypted() {
        Some(ctx.password_source(repo).get()?)
    } else {
        None
    };
    let exe = std::env::current_exe().context("finding the chronofs executable")?;
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut cmd = Command::new(exe);
    let repo_arg: std::ffi::OsString = match repo.local() {
        Some(p) => abs(p).into_os_string(),
        None => repo.to_string().into(),
    };
    cmd.arg("--repo")
        .arg(repo_arg)
        .args(super::cache_args())
        .arg("mount")
        .arg(abs(&a.mountpoint))
        .arg("--daemon-child")
        .arg("--cache-size")
        .arg(a.cache_size.to_string())
        .arg("--threads")
        .arg(a.threads.to_string());
    if a.allow_other {
        cmd.arg("--allow-other");
    }
    if a.keep_xattrs {
        cmd.arg("--keep-xattrs");
    }
    if let Some(n) = a.max_inodes {
        cmd.arg("--max-inodes").arg(n.to_string());
    }
    if let Some(l) = &a.log {
        cmd.arg("--log").arg(abs(l));
    }
    if pass.is_some() {
        cmd.arg("--password-file").arg("/dev/stdin");
    }
    let mut child = cmd
        .stdin(if pass.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the background mount process")?;
    if let (Some(p), Some(mut stdin)) = (&pass, child.stdin.take()) {
        // The child reads it to the end: write it and close the pipe.
        let _ = stdin.write_all(p);
    }
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if line.trim() == READY {
        // The background process closed its end of stderr once ready: pass on its notes.
        let mut notes = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut notes);
        }
        eprint!("{notes}");
        if !ctx.quiet {
            eprintln!(
                "chronofs: mounted {} on {} (unmount with `chronofs umount {}`)",
                repo.display(),
                a.mountpoint.display(),
                a.mountpoint.display()
            );
        }
        return Ok(0);
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child
        .wait()
        .context("waiting for the background mount process")?;
    eprint!("{err}");
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .filter(|c| *c != 0)
        .unwrap_or(chronofs::error::exit::MOUNT))
}
