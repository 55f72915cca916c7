//! The racelab app's integration tests, one binary: the HTTP service as its clients see it (`http`),
//! and the `racelab` binary as a user runs it (`cli`, `bench`, `anomalies`, `lab_nodes`,
//! `lab_on_galera`), on real PostgreSQL, MariaDB and SQLite. One binary links sqlx and its three drivers
//! once, where a binary per file linked them each time. The page in a real browser is a binary of its
//! own (`browser_main.rs`, `--test browser`): it needs Chromium, and shares `support` with this one.
//!
//! ```sh
//! cargo nextest run -p racelab --test app                            # every test here
//! cargo nextest run -p racelab --test app -E 'not test(/galera/)'    # without a Galera cluster
//! ```

mod support;

mod anomalies;
mod bench;
mod cli;
mod first_hour;
mod http;
mod lab_nodes;
mod lab_on_galera;
mod lab_workloads;
mod matrix;
mod spec;
