//! Standard output of the commands: what they print for their reader, line by line.
//!
//! The one place a command writes to standard output, so that a reader that went away (`racelab lab |
//! head -1`) ends the command quietly everywhere. Never writes logs or errors here: those go to stderr.

use std::io::Write;

use super::failure::Failure;

/// Prints `text` as it is (no newline added) on standard output: output that must be byte for byte
/// another program's. Errors as [`say`]'s.
pub fn write(text: impl std::fmt::Display) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match write!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::closed_pipe(err)),
        Err(err) => Err(Failure::runtime(format!("cannot write to standard output: {err}")).because(err)),
    }
}

/// Prints `text` and a newline on standard output. A reader that went away is not an error worth a
/// message (see [`Failure::closed_pipe`]); any other write error is.
pub fn say(text: impl std::fmt::Display) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::closed_pipe(err)),
        Err(err) => Err(Failure::runtime(format!("cannot write to standard output: {err}")).because(err)),
    }
}
