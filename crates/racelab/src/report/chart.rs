//! The bench chart: one SVG with two panels, throughput vs workers and p99 latency vs workers, one line
//! per strategy, and a legend beside them.
//!
//! One file rather than two, so that the README can show both views with one image and they cannot
//! drift apart. Drawn with plotters' SVG backend only: no font library, no bitmap, nothing downloaded.
//! Workers are on a log2 axis (1, 2, 4, ... 64 are evenly spaced) with a tick at each measured count;
//! p99 latency is on a log10 axis because contended strategies are orders of magnitude slower.
//! Each strategy keeps its colour from run to run (its position among all strategy names). A cell
//! where increments failed (gave up with an error) is ringed in red on both panels, and the legend
//! says so: its throughput counts only what was acknowledged, and a line alone would hide that.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::prelude::*;
use racelab_core::Strategy;

use super::bench::BenchReport;

/// Size of the whole picture, in SVG pixels.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 560;
const LEGEND_WIDTH: u32 = 210;

/// Tableau 10: distinct, readable on white, and kind to the common forms of colour blindness.
const PALETTE: [RGBColor; 11] = [
    RGBColor(0x7f, 0x7f, 0x7f), // naive: grey, it is the counter-example
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x00, 0x5f, 0x73), // sharded: one colour per strategy, none shared with naive's grey
];

/// Drawing the chart failed: plotters' backend or layout error, kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart: {source}")]
pub struct ChartError {
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl ChartError {
    fn from_plotters(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { source: Box::new(err) }
    }
}

/// The colour of a strategy: fixed by its name, so two charts of different runs agree.
pub fn colour(strategy: Strategy) -> RGBColor {
    let index = Strategy::names().iter().position(|n| *n == strategy.name()).unwrap_or(0);
    PALETTE[index % PALETTE.len()]
}

/// What a strategy is called in the legend.
fn legend_label(strategy: Strategy) -> String {
    match strategy {
        Strategy::Naive => "naive (loses updates)".to_owned(),
        Strategy::VersionedNoRetry => "versioned-no-retry (drops increments)".to_owned(),
        other => other.name().to_owned(),
    }
}

/// The ring drawn around a point whose cell had failed increments.
const FAILED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// The ring's radius, in SVG pixels: clear of the point (3) it surrounds.
const FAILED_RADIUS: i32 = 8;

/// One line: a strategy's points as (log2 workers, value), ascending in workers, and the points
/// whose cell had failed increments.
struct Series {
    strategy: Strategy,
    points: Vec<(f64, f64)>,
    failed: Vec<(f64, f64)>,
}

fn series(report: &BenchReport, value: impl Fn(&super::bench::BenchCell) -> f64) -> Vec<Series> {
    report
        .strategies()
        .into_iter()
        .map(|strategy| {
            let mut cells: Vec<_> = report.cells.iter().filter(|c| c.strategy == strategy).collect();
            cells.sort_by_key(|c| c.workers);
            let point = |c: &&super::bench::BenchCell| ((c.workers as f64).log2(), value(c));
            let points = cells.iter().map(point).collect();
            let failed = cells.iter().filter(|c| c.failed > 0).map(point).collect();
            Series { strategy, points, failed }
        })
        .collect()
}

/// Draws the whole chart and returns the SVG document.
pub fn bench_chart(report: &BenchReport) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, report)?;
        root.present().map_err(ChartError::from_plotters)?;
    }
    Ok(svg)
}

fn draw<DB: DrawingBackend<ErrorType: 'static>>(
    root: &DrawingArea<DB, Shift>,
    report: &BenchReport,
) -> Result<(), ChartError> {
    root.fill(&WHITE).map_err(ChartError::from_plotters)?;
    let title = format!("racelab bench on {}: increments of one hot row", report.server_name());
    let body = root.titled(&title, ("sans-serif", 24)).map_err(ChartError::from_plotters)?;
    let (body, footer) = body.split_vertically(HEIGHT - 40 - 30);
    let caption = format!(
        "{} | racelab {} | {} s measured after {} s warm-up per cell | each worker on its own connection | \
         a fresh row per cell",
        report.server_name(),
        env!("CARGO_PKG_VERSION"),
        report.duration_s,
        report.warmup_s,
    );
    footer
        .draw_text(&caption, &("sans-serif", 14).into_font().color(&BLACK.mix(0.7)), (12, 8))
        .map_err(ChartError::from_plotters)?;
    let (panels, legend) = body.split_horizontally(WIDTH - LEGEND_WIDTH);
    let (left, right) = panels.split_horizontally((WIDTH - LEGEND_WIDTH) / 2);

    let x_axis = WorkerAxis::new(report);
    let throughput = series(report, |c| c.throughput_per_s);
    let y_max = throughput.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let y_range = 0.0..(y_max * 1.1).max(1.0);
    panel(&left, "Throughput vs workers", "acknowledged increments per second", x_axis.clone(), y_range, &throughput)?;

    let p99 = series(report, |c| c.latency_ms.p99.max(0.001));
    let (lo, hi) = p99
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y_axis = if hi <= 0.0 { LatencyAxis::new(0.01, 1.0) } else { LatencyAxis::new(lo / 1.3, hi * 1.3) };
    panel(&right, "p99 latency vs workers", "p99 latency of one increment, ms (log scale)", x_axis, y_axis, &p99)?;
    draw_legend(&legend, &throughput)
}

/// The x axis: log2 of the worker counts, padded on each side, with a tick at each measured count
/// (plotters' own key points would fall between them, and `WithKeyPoints` over `f64` cannot be
/// formatted).
#[derive(Debug, Clone)]
struct WorkerAxis {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl WorkerAxis {
    fn new(report: &BenchReport) -> Self {
        let ticks: Vec<f64> = report.worker_counts().iter().map(|w| (*w as f64).log2()).collect();
        let first = ticks.first().copied().unwrap_or(0.0);
        let last = ticks.last().copied().unwrap_or(1.0);
        let pad = ((last - first) * 0.05).max(0.5);
        Self { range: first - pad..last + pad, ticks }
    }
}

impl Ranged for WorkerAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let share = if span > 0.0 { (value - self.range.start) / span } else { 0.5 };
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// The p99 axis: log10, with ticks at 1, 2 and 5 of each decade (plotters' own log axis leaves
/// ranges below 1 ms unlabelled).
#[derive(Debug, Clone)]
struct LatencyAxis {
    lo: f64,
    hi: f64,
}

impl LatencyAxis {
    fn new(lo: f64, hi: f64) -> Self {
        let lo = lo.max(1e-3);
        Self { lo, hi: hi.max(lo * 10.0) }
    }
}

impl Ranged for LatencyAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (self.lo.log10(), self.hi.log10());
        let share = (value.max(self.lo * 0.5).log10() - lo) / (hi - lo);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        let first = self.lo.log10().floor() as i32;
        let last = self.hi.log10().ceil() as i32;
        (first..=last)
            .flat_map(|decade| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(decade)))
            .filter(|v| (self.lo..=self.hi).contains(v))
            .collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

fn panel<DB: DrawingBackend<ErrorType: 'static>, Y>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    x_axis: WorkerAxis,
    y_range: Y,
    lines: &[Series],
) -> Result<(), ChartError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_axis, y_range)
        .map_err(ChartError::from_plotters)?;
    chart
        .configure_mesh()
        .x_desc("workers (concurrent connections, log scale)")
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
        .y_label_formatter(&|y| format_value(*y))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(ChartError::from_plotters)?;
    for line in lines {
        let style = colour(line.strategy).stroke_width(2);
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), style).point_size(3))
            .map_err(ChartError::from_plotters)?;
        chart
            .draw_series(line.failed.iter().map(|&at| Circle::new(at, FAILED_RADIUS, FAILED.stroke_width(2))))
            .map_err(ChartError::from_plotters)?;
    }
    Ok(())
}

/// A legend of its own, beside the panels, so that it never hides a line.
fn draw_legend<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Series],
) -> Result<(), ChartError> {
    let text = ("sans-serif", 15).into_font().color(&BLACK);
    area.draw_text("strategy", &("sans-serif", 16).into_font().color(&BLACK), (10, 50))
        .map_err(ChartError::from_plotters)?;
    for (i, line) in lines.iter().enumerate() {
        let y = 80 + 26 * i as i32;
        let style = colour(line.strategy).stroke_width(3);
        area.draw(&PathElement::new(vec![(10, y), (40, y)], style)).map_err(ChartError::from_plotters)?;
        area.draw_text(&legend_label(line.strategy), &text, (48, y - 8)).map_err(ChartError::from_plotters)?;
    }
    if lines.iter().any(|line| !line.failed.is_empty()) {
        let y = 80 + 26 * lines.len() as i32 + 10;
        area.draw(&Circle::new((25, y), FAILED_RADIUS, FAILED.stroke_width(2))).map_err(ChartError::from_plotters)?;
        area.draw_text("increments failed", &text, (48, y - 8)).map_err(ChartError::from_plotters)?;
        area.draw_text("(see the table)", &text, (48, y + 10)).map_err(ChartError::from_plotters)?;
    }
    Ok(())
}

/// 1234.5 -> "1235", 12.3 -> "12.3", 0.25 -> "0.25", 0.5 -> "0.5", 15000 -> "15k".
fn format_value(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        let text = format!("{v:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::bench::BenchCell;
    use racelab_core::Backend;
    use racelab_core::experiment::Latency;

    fn cell(strategy: Strategy, workers: usize, failed: u64) -> BenchCell {
        BenchCell {
            strategy,
            workers,
            throughput_per_s: 1000.0 / workers as f64,
            latency_ms: Latency { p50: 1.0, p95: 2.0, p99: 3.0, max: 4.0 },
            acknowledged: 100,
            actual: Some(100),
            lost: Some(0),
            failed,
            in_doubt: 0,
            retries: 0,
            retries_per_increment: 0.0,
            errors: Default::default(),
            retried_errors: Default::default(),
            safe: true,
            invariant_holds: true,
            nodes: Vec::new(),
        }
    }

    fn report(cells: Vec<BenchCell>) -> BenchReport {
        BenchReport {
            database: Backend::Sqlite,
            version: "3.51.0".to_owned(),
            url: "sqlite://x.db".to_owned(),
            duration_s: 1.0,
            warmup_s: 0.0,
            cells,
            failure: None,
        }
    }

    /// The red rings in the SVG: circles stroked in the failure colour (the legend's one included).
    fn rings(svg: &str) -> usize {
        svg.lines()
            .filter(|l| l.contains("<circle") && l.contains("stroke=\"#D62728\"") && l.contains("fill=\"none\""))
            .count()
    }

    #[test]
    fn a_cell_with_failures_is_ringed_on_both_panels_and_named_in_the_legend() {
        let clean = bench_chart(&report(vec![cell(Strategy::Atomic, 1, 0), cell(Strategy::Atomic, 4, 0)])).unwrap();
        assert_eq!(rings(&clean), 0);
        assert!(!clean.contains("increments failed"));

        let failing = report(vec![cell(Strategy::Atomic, 1, 0), cell(Strategy::Atomic, 4, 3)]);
        let svg = bench_chart(&failing).unwrap();
        // One ring per panel, one in the legend.
        assert_eq!(rings(&svg), 3, "{svg}");
        assert!(svg.contains("increments failed"));
    }

    #[test]
    fn every_strategy_has_a_colour_of_its_own() {
        let colours: std::collections::HashSet<(u8, u8, u8)> = Strategy::names()
            .iter()
            .map(|name| colour(name.parse().expect("a known name")))
            .map(|RGBColor(r, g, b)| (r, g, b))
            .collect();
        assert_eq!(colours.len(), Strategy::names().len());
    }
}
