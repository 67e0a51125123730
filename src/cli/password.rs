//! Where passphrases come from: `--password-file FILE`, `--password-command CMD`, the
//! environment variable `CHRONOFS_PASSWORD`, or a prompt on the terminal; never a
//! command-line argument (other users can read those in `ps`). The same sources exist for a
//! second repository (`copy --to`, `init --copy-settings-from`) under other names, and a new
//! passphrase (`key add`, `key passwd`) comes from `--new-password-file` or a prompt.
//! Passphrases live in zeroized buffers and are never printed.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;
use chronofs::Error;
use zeroize::Zeroizing;

/// A passphrase.
pub type Passphrase = Zeroizing<Vec<u8>>;

/// How to find one repository's passphrase.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// A file holding it (one trailing newline is removed).
    pub file: Option<PathBuf>,
    /// A command that prints it.
    pub command: Option<String>,
    /// The environment variable to look in.
    pub env: &'static str,
    /// What to call the repository in the prompt.
    pub label: String,
}

/// The global options for the main repository's passphrase.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Args {
    /// Read the repository's passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it,
    /// --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "CHRONOFS_PASSWORD_FILE"
    )]
    pub password_file: Option<PathBuf>,
    /// Run CMD (with `sh -c`) and use what it prints as the passphrase (also
    /// CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`.
    #[arg(
        long,
        global = true,
        value_name = "CMD",
        env = "CHRONOFS_PASSWORD_COMMAND"
    )]
    pub password_command: Option<String>,
}

impl Args {
    /// The source these options describe.
    #[must_use]
    pub fn source(&self, repo: &impl std::fmt::Display) -> Source {
        Source {
            file: self.password_file.clone(),
            command: self.password_command.clone(),
            env: "CHRONOFS_PASSWORD",
            label: repo.to_string(),
        }
    }
}

/// Strips one trailing newline (`\n` or `\r\n`), as files and commands end their output.
fn chomp(mut v: Vec<u8>) -> Passphrase {
    if v.last() == Some(&b'\n') {
        v.pop();
        if v.last() == Some(&b'\r') {
            v.pop();
        }
    }
    Zeroizing::new(v)
}

fn key_error(msg: String) -> anyhow::Error {
    anyhow::Error::new(Error::Key(msg))
}

/// Reads a passphrase file.
pub fn from_file(path: &Path) -> Result<Passphrase> {
    let mut buf = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| key_error(format!("reading passphrase file {}: {e}", path.display())))?;
    Ok(chomp(std::mem::take(&mut *buf)))
}

/// Runs a passphrase command.
fn from_command(cmd: &str) -> Result<Passphrase> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| key_error(format!("running the passphrase command: {e}")))?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(key_error(format!(
            "the passphrase command failed ({})",
            out.status
        )));
    }
    Ok(chomp(stdout.to_vec()))
}

/// Asks on the terminal (without echo).
fn prompt(text: &str) -> Result<Passphrase> {
    rpassword::prompt_password(text)
        .map(|s| Zeroizing::new(s.into_bytes()))
        .map_err(|e| key_error(format!("cannot ask for the passphrase on a terminal: {e}")))
}

/// Whether a terminal is there to ask on.
fn have_terminal() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

impl Source {
    /// Whether anything but a prompt was given.
    #[must_use]
    pub fn given(&self) -> bool {
        self.file.is_some() || self.command.is_some() || std::env::var_os(self.env).is_some()
    }

    /// The passphrase: from the file, the command, the environment, or the terminal.
    ///
    /// # Errors
    /// [`Error::Key`] when none is available or a source fails.
    pub fn get(&self) -> Result<Passphrase> {
        if let Some(f) = &self.file {
            return from_file(f);
        }
        if let Some(c) = &self.command {
            return from_command(c);
        }
        if let Some(v) = std::env::var_os(self.env) {
            use std::os::unix::ffi::OsStringExt as _;
            return Ok(Zeroizing::new(v.into_vec()));
        }
        if have_terminal() {
            return prompt(&format!("passphrase for {}: ", self.label));
        }
        Err(key_error(format!(
            "{} is encrypted and no passphrase was given: set {}, or use --password-file or \
             --password-command",
            self.label, self.env
        )))
    }
}

/// A new passphrase: from `file`, or asked twice on the terminal. Empty ones are refused.
///
/// # Errors
/// [`Error::Key`] when none is available, the two entries differ, or it is empty.
pub fn new_passphrase(file: Option<&Path>, label: &str) -> Result<Passphrase> {
    let pass = match file {
        Some(f) => from_file(f)?,
        None if have_terminal() => {
            let a = prompt(&format!("new passphrase for {label}: "))?;
            let b = prompt("enter it again: ")?;
            if a != b {
                return Err(key_error("the two passphrases differ".into()));
            }
            a
        }
        None => {
            return Err(key_error(
                "a new passphrase is needed: give --new-password-file FILE, or run on a terminal"
                    .into(),
            ));
        }
    };
    if pass.is_empty() {
        return Err(key_error("the passphrase is empty".into()));
    }
    Ok(pass)
}
