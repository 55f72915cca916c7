//! The HTTP service, tested as its clients see it: a real server on port 0 and a real HTTP client, on
//! PostgreSQL, MariaDB and SQLite; the shutdown and leak tests run the real binary as a child process.
//!
//! ```sh
//! cargo nextest run -p racelab --test app http::      # TEST_LOG=1 to see the server's log
//! ```

mod combining;
mod docs;
mod endpoints;
mod errors;
mod experiments;
mod experiments_spec;
mod experiments_workloads;
mod galera;
mod hardening;
mod html_pages;
mod likes;
mod limits_edge;
mod outage;
mod params;
mod pgha;
mod posts;
mod process;
mod ready;
mod runs;
mod shutdown;
mod slow_heads;
