//! `chronofs key list | add | remove | passwd`: the passphrases of an encrypted repository.
//! Each passphrase is a key file wrapping the same master key; `--backup-only` keys can add
//! snapshots but read nothing.

use std::path::PathBuf;

use anyhow::Result;
use chronofs::crypto::kdf::DEFAULT_KDF;
use chronofs::format::keyfile::Kdf;
use chronofs::repo::keys::{self, NewKey};

use super::{Context, password, quote, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

/// The cost of guessing a passphrase (Argon2id), kept in each key file.
#[derive(clap::Args, Debug, Clone)]
pub struct KdfArgs {
    /// Argon2id memory per guess (default 128M). Lower it only for tests or tiny machines.
    #[arg(long, value_name = "SIZE", value_parser = ui::parse_size)]
    kdf_memory: Option<u64>,
    /// Argon2id passes (default 3).
    #[arg(long, value_name = "N")]
    kdf_time: Option<u32>,
}

impl KdfArgs {
    /// The parameters to use.
    pub fn kdf(&self) -> Kdf {
        Kdf {
            memory_kib: self.kdf_memory.map_or(DEFAULT_KDF.memory_kib, |b| {
                u32::try_from(b / 1024).unwrap_or(u32::MAX)
            }),
            time: self.kdf_time.unwrap_or(DEFAULT_KDF.time),
            lanes: DEFAULT_KDF.lanes,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// List the key files: id, kind, who made them and when.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a passphrase (a new key file).
    Add {
        /// A backup-only key: it can add snapshots (with full deduplication) but cannot read
        /// any file, tree or snapshot, its own included.
        #[arg(long)]
        backup_only: bool,
        /// Read the new passphrase from FILE (otherwise it is asked twice on the terminal).
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Remove a key file (not the one in use, nor the last full key).
    Remove {
        /// The key's id or a unique prefix of it (see `key list`).
        id: String,
    },
    /// Change the passphrase of the key in use.
    Passwd {
        /// Read the new passphrase from FILE (otherwise it is asked twice on the terminal).
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let repo = ctx.open_unindexed()?;
    if !repo.encrypted() {
        anyhow::bail!(chronofs::Error::InvalidInput(format!(
            "{} is not encrypted: it has no keys",
            repo.location().display()
        )));
    }
    let label = repo.location().display().to_string();
    let current = repo.master_key().map(|(_, id)| id.to_string());
    match &a.action {
        Action::List { json } => {
            let mut rows = Vec::new();
            for (id, file) in keys::list(&repo)? {
                let used = current.as_deref() == Some(id.as_str());
                match file {
                    Ok(f) => {
                        let maker = keys::maker(&repo, &f);
                        rows.push(serde_json::json!({
                            "id": id,
                            "current": used,
                            "backup_only": f.backup_only,
                            "hostname": maker.as_ref().map(|(host, _)| host),
                            "username": maker.as_ref().map(|(_, user)| user),
                            "created": chronofs::format::snapshot::rfc3339(f.created_ns),
                            "kdf": {"memory_kib": f.kdf.memory_kib, "time": f.kdf.time, "lanes": f.kdf.lanes},
                        }));
                    }
                    Err(e) => rows.push(serde_json::json!({"id": id, "error": e.to_string()})),
                }
            }
            if *json {
                outln!("{}", serde_json::to_string_pretty(&rows)?)?;
                return Ok(0);
            }
            for r in &rows {
                let id = short(r["id"].as_str().unwrap_or_default());
                if let Some(e) = r["error"].as_str() {
                    outln!("  {id}  damaged: {}", quote::text(e))?;
                    continue;
                }
                outln!(
                    "{} {}  {:<11}  {}@{}  {}",
                    if r["current"] == true { "*" } else { " " },
                    id,
                    if r["backup_only"] == true {
                        "backup-only"
                    } else {
                        "full"
                    },
                    quote::text(r["username"].as_str().unwrap_or("?")),
                    quote::text(r["hostname"].as_str().unwrap_or("?")),
                    r["created"].as_str().unwrap_or_default()
                )?;
            }
        }
        Action::Add {
            backup_only,
            new_password_file,
            kdf,
        } => {
            let new = NewKey {
                backup_only: *backup_only,
                kdf: kdf.kdf(),
                ..NewKey::new(password::new_passphrase(
                    new_password_file.as_deref(),
                    &label,
                )?)
            };
            let id = keys::add(&repo, &new)?;
            if !ctx.quiet {
                outln!(
                    "added {} key {}",
                    if *backup_only { "backup-only" } else { "full" },
                    short(&id)
                )?;
            }
        }
        Action::Remove { id } => {
            let removed = keys::remove(&repo, id)?;
            if !ctx.quiet {
                outln!("removed key {}", short(&removed))?;
            }
        }
        Action::Passwd {
            new_password_file,
            kdf,
        } => {
            let new = NewKey {
                kdf: kdf.kdf(),
                ..NewKey::new(password::new_passphrase(
                    new_password_file.as_deref(),
                    &label,
                )?)
            };
            let id = keys::passwd(&repo, &new)?;
            if !ctx.quiet {
                let old = current.unwrap_or_default();
                outln!(
                    "changed the passphrase: key {} replaces {}",
                    short(&id),
                    short(&old)
                )?;
            }
        }
    }
    Ok(0)
}

/// The first 8 hex digits of a key id.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
