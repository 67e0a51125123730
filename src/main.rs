//! The `chronofs` binary: parses the command line, runs the command, and maps errors to exit
//! codes (see `chronofs::error::exit`). All logic lives in the library.

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
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
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
