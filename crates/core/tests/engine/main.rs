//! racelab-core's integration tests, one binary: each module tests one part of the engine against
//! real PostgreSQL, MariaDB and SQLite (the `galera` ones against a 3-node MariaDB Galera cluster).
//! One binary links sqlx and its three drivers once, where a binary per file linked them each time.
//!
//! ```sh
//! cargo nextest run -p racelab-core                           # every test (Galera ones need scripts/galera up)
//! cargo nextest run -p racelab-core -E 'not test(/galera/)'   # without a Galera cluster
//! ```

mod support;

mod anomalies;
mod anomalies_beside_others;
mod anomalies_galera;
mod error_model;
mod galera;
mod in_doubt;
mod likes;
mod migrations;
mod overflow;
mod pgha;
mod pool;
mod sharded;
mod spec_isolationtester;
mod spec_runner;
mod strategies;
mod trace;
mod user_table;
mod workload_booking;
mod workload_counter;
mod workload_galera;
mod workload_in_doubt;
mod workload_oncall;
mod workload_queue;
mod workload_stock;
mod workload_trace;
mod workload_transfer;
