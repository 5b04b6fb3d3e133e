//! The `kiln` binary: parse, dispatch, and turn errors into a message and an exit code (2 for
//! bad input, 1 for a run that failed or any other failure).

use std::process::ExitCode;

fn main() -> ExitCode {
    match kiln::cli::run() {
        Ok(code) => code,
        Err(err) => {
            use std::io::Write;
            // Never panic on a closed stderr: the exit code still tells.
            let _ = writeln!(std::io::stderr(), "kiln: {err:#}");
            ExitCode::from(kiln::cli::exit_code(&err))
        }
    }
}
