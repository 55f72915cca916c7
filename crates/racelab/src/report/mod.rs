//! Output for people and programs: terminal tables, and the bench's JSON, CSV and SVG chart.
//!
//! Renders only: never connects, runs or prints anything (the subcommands in `cli` do), and never
//! decides a verdict the core has not (the one judgement here, whether a bench cell kept
//! `actual == acknowledged`, is made once in [`bench`] for every output).

/// The matrix of `racelab anomalies`: case x isolation level, beside Hermitage's results.
pub mod anomalies;
/// The bench's results as data, shared by every renderer below.
pub mod bench;
/// The table printed at the end of `racelab bench`.
pub mod bench_table;
/// SVG chart of a bench: throughput and p99 latency vs workers.
pub mod chart;
/// CSV of a bench, one line per cell.
pub mod csv;
/// The tables of `racelab lab`: compact, wide and per node.
pub mod table;
/// Text layout every table shares: the 80-column width, wrapping, notes, short figures and names.
pub mod text;
/// The table of one workload of `racelab lab --workload`: its invariant, figures and verdicts.
/// The workload matrix as Markdown (`racelab matrix`, docs/workloads.md).
pub mod workload_matrix;
pub mod workload_table;
