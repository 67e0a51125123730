//! The `chronofs` binary: parses the command line, runs the command, and maps errors to exit
//! codes (see `chronofs::error::exit`). All logic lives in the library.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    chronofs::sys::raise_open_file_limit();
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // A closed pipe (`chronofs ls … | head`) is not an error.
            // JSON output wraps the I/O error in serde_json's.
            let broken_pipe = |c: &(dyn std::error::Error + 'static)| {
                c.downcast_ref::<std::io::Error>()
                    .map(std::io::Error::kind)
                    .or_else(|| {
                        c.downcast_ref::<serde_json::Error>()
                            .and_then(serde_json::Error::io_error_kind)
                    })
                    == Some(std::io::ErrorKind::BrokenPipe)
            };
            if err.chain().any(broken_pipe) {
                return ExitCode::SUCCESS;
            }
            // Messages name files and snapshots from the repository: never raw to a terminal.
            eprintln!("chronofs: error: {}", cli::quote::text(&format!("{err:#}")));
            let code = err
                .chain()
                .find_map(|c| c.downcast_ref::<chronofs::Error>())
                .map_or(chronofs::error::exit::FATAL, chronofs::Error::exit_code);
            ExitCode::from(code)
        }
    }
}
