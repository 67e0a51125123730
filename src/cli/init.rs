//! `chronofs init`: create a repository.

use anyhow::{Context as _, Result};
use chronofs::format::config::{ChunkerParams, DEFAULT_COMPRESSION_LEVEL, DEFAULT_PACK_TARGET};
use chronofs::repo::keys::NewKey;
use chronofs::repo::{InitOptions, Repository};
use chronofs::storage::location::Location;
use zeroize::Zeroizing;

use super::{Context, key::KdfArgs, password};

/// `--encryption`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Encryption {
    /// AES-256-GCM-SIV with keyed ids, sessions sealed to an X-Wing key (format version 2).
    Aes256gcmsiv,
    /// None: anyone who can read the repository reads the backups (format version 1).
    None,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// zstd compression level for stored data (0 = no compression, 1-19).
    #[arg(long, default_value_t = DEFAULT_COMPRESSION_LEVEL, value_name = "N")]
    compression_level: i32,
    /// Minimum chunk size in bytes.
    #[arg(long, default_value_t = ChunkerParams::default().min_size, value_name = "BYTES")]
    chunk_min: u32,
    /// Average chunk size in bytes.
    #[arg(long, default_value_t = ChunkerParams::default().avg_size, value_name = "BYTES")]
    chunk_avg: u32,
    /// Maximum chunk size in bytes.
    #[arg(long, default_value_t = ChunkerParams::default().max_size, value_name = "BYTES")]
    chunk_max: u32,
    /// Target pack file size in MiB.
    #[arg(long, default_value_t = DEFAULT_PACK_TARGET / (1024 * 1024), value_name = "MIB")]
    pack_size: u32,
    /// Make the repository append-only: forget and prune refuse (see README).
    #[arg(long)]
    append_only: bool,
    /// Let the repository directory's group read the backups (directories 0750, files 0640),
    /// for a deliberate backup group; by default only the owner can (0700, 0600).
    #[arg(long)]
    group_readable: bool,
    /// Encrypt everything stored (the passphrase comes from CHRONOFS_PASSWORD,
    /// --password-file, --password-command, or is asked twice). `none` stores the backups in
    /// the clear.
    #[arg(
        long,
        value_enum,
        default_value = "aes256gcmsiv",
        value_name = "CIPHER"
    )]
    encryption: Encryption,
    /// Take the chunker parameters and the id key of this encrypted repository, so that
    /// copies between the two keep their ids and deduplicate (its passphrase: the
    /// --from-password-* options, CHRONOFS_FROM_PASSWORD, or the new one).
    #[arg(long, value_name = "REPO")]
    copy_settings_from: Option<Location>,
    /// Read the --copy-settings-from repository's passphrase from FILE.
    #[arg(long, value_name = "FILE", env = "CHRONOFS_FROM_PASSWORD_FILE")]
    from_password_file: Option<std::path::PathBuf>,
    /// Run CMD (with `sh -c`) for the --copy-settings-from repository's passphrase.
    #[arg(long, value_name = "CMD", env = "CHRONOFS_FROM_PASSWORD_COMMAND")]
    from_password_command: Option<String>,
    #[command(flatten)]
    kdf: KdfArgs,
}

pub fn run(ctx: &Context, a: &Args) -> Result<u8> {
    let path = ctx.repo_path()?;
    let mut chunker = ChunkerParams {
        min_size: a.chunk_min,
        avg_size: a.chunk_avg,
        max_size: a.chunk_max,
        ..ChunkerParams::default()
    };
    let encryption = match a.encryption {
        Encryption::None => {
            if a.copy_settings_from.is_some() {
                anyhow::bail!(chronofs::Error::InvalidInput(
                    "--copy-settings-from takes the settings of an encrypted repository; it \
                     needs --encryption aes256gcmsiv"
                        .into()
                ));
            }
            None
        }
        Encryption::Aes256gcmsiv => {
            let source = ctx.password_source(path);
            let pass = if source.given() {
                let p = source.get()?;
                if p.is_empty() {
                    anyhow::bail!(chronofs::Error::Key("the passphrase is empty".into()));
                }
                p
            } else {
                password::new_passphrase(None, &path.display().to_string())?
            };
            let mut new = NewKey {
                kdf: a.kdf.kdf(),
                ..NewKey::new(pass)
            };
            if let Some(other) = &a.copy_settings_from {
                let from_source = password::Source {
                    file: a.from_password_file.clone(),
                    command: a.from_password_command.clone(),
                    env: "CHRONOFS_FROM_PASSWORD",
                    label: other.to_string(),
                };
                let new_pass = new.passphrase.clone();
                let from = super::open_with(other, |_| {
                    if from_source.given() {
                        from_source.get()
                    } else {
                        Ok(new_pass)
                    }
                })
                .with_context(|| format!("--copy-settings-from {}", other.display()))?;
                let Some((master, _)) = from.master_key() else {
                    anyhow::bail!(chronofs::Error::InvalidInput(format!(
                        "{} is not encrypted: there is no id key to share",
                        other.display()
                    )));
                };
                new.id_key = Some(Zeroizing::new(master.id_key));
                chunker = from.config().chunker;
            }
            Some(new)
        }
    };
    let options = InitOptions {
        chunker,
        compression_level: a.compression_level,
        pack_target_size: a.pack_size.saturating_mul(1024 * 1024),
        append_only: a.append_only,
        group_readable: a.group_readable,
        encryption,
    };
    let repo =
        Repository::init_at(path, &options).with_context(|| format!("init {}", path.display()))?;
    if !ctx.quiet {
        outln!(
            "created {} chronofs repository {} at {}",
            if repo.encrypted() {
                "encrypted"
            } else {
                "unencrypted"
            },
            repo.config().repo_id.short(),
            path.display()
        )?;
    }
    Ok(0)
}
