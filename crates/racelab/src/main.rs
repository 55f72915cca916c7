//! racelab: show, measure and prevent lost updates.
//!
//! Only boots: reads `.env`, parses the command line, starts the async runtime and hands over to
//! [`racelab::cli::run`]. Holds no logic of its own, so tests and the binary run the same code.
//!
//! ```sh
//! cargo run --release -- lab                      # every strategy on the embedded SQLite default
//! cargo run --release -- serve --bind 127.0.0.1:8000
//! curl http://127.0.0.1:8000/test-db/2th
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    // A .env file is read when present (the FastAPI original used one); real environment variables
    // win. The commands say which settings it gave.
    let dotenv = match racelab::config::load_dotenv() {
        Ok(dotenv) => dotenv,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let cli = match racelab::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(racelab::cli::run(cli, dotenv))
}
