//! The `kiln` binary: parse, dispatch, and turn errors into a message and an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match kiln::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln: {err:#}");
            ExitCode::from(kiln::cli::EXIT_USAGE)
        }
    }
}
