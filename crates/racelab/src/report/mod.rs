//! Output for people and programs: terminal tables now; JSON, CSV and SVG charts beside them.

/// The bench's results as data, shared by every renderer below.
pub mod bench;
/// The table printed at the end of `racelab bench`.
pub mod bench_table;
/// SVG chart of a bench: throughput and p99 latency vs workers.
pub mod chart;
/// CSV of a bench, one line per cell.
pub mod csv;
pub mod table;
