//! CSV of the bench's cells, for spreadsheets and plotting tools: one header line, one line per cell.
//!
//! Written by hand rather than with a CSV crate: every field is a number, a fixed name or the error
//! list, which is joined with `;` and `=` so that no field ever needs quoting. Never writes the file
//! itself: `racelab bench` does, once every cell has run.

use std::fmt::Write;

use super::bench::BenchReport;

/// The columns, in order.
pub const HEADER: [&str; 15] = [
    "strategy",
    "workers",
    "throughput_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "acknowledged",
    "actual",
    "lost",
    "failed",
    "retries",
    "retries_per_increment",
    "invariant_holds",
    "errors",
];

/// The whole file; `lost` is empty when it could not be counted, `errors` reads `kind=n;kind=n`.
pub fn bench_csv(report: &BenchReport) -> String {
    let mut out = HEADER.join(",");
    out.push('\n');
    for c in &report.cells {
        let lost = c.lost.map(|l| l.to_string()).unwrap_or_default();
        let actual = c.actual.map(|a| a.to_string()).unwrap_or_default();
        let errors: Vec<String> = c.errors.iter().map(|(kind, n)| format!("{kind}={n}")).collect();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{},{},{:.1},{},{},{},{},{},{},{},{},{},{:.4},{},{}",
            c.strategy.name(),
            c.workers,
            c.throughput_per_s,
            c.latency_ms.p50,
            c.latency_ms.p95,
            c.latency_ms.p99,
            c.latency_ms.max,
            c.acknowledged,
            actual,
            lost,
            c.failed,
            c.retries,
            c.retries_per_increment,
            c.invariant_holds,
            errors.join(";"),
        );
    }
    out
}
