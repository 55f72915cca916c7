// The result charts, drawn with the vendored Chart.js (window.Chart, loaded before the modules run).
// Lab: counts (expected, actual, lost, dropped, retries), throughput, latency p50/p99 per strategy.
// Bench: the two panels of `racelab bench --chart`: throughput and p99 (log axis) against workers.
// The numbers stay readable in the verdict table below the charts; the charts are for the eye.

import { el } from "./format.js";

/** Colours per strategy as the SVG bench chart has them (Tableau 10, naive grey), by the position of
 *  the name in `Strategy::names()`, so a strategy keeps its colour everywhere. */
const NAMES = ["naive", "atomic", "pessimistic", "pessimistic-nowait", "pessimistic-skip-locked", "optimistic", "versioned", "versioned-no-retry", "serializable", "advisory", "sharded"];
const PALETTE = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#8c564b", "#9467bd", "#2ca02c", "#bcbd22", "#e377c2", "#d62728", "#17becf", "#005f73"];
const colour = (strategy) => PALETTE[Math.max(0, NAMES.indexOf(strategy))];

/** Colours of the measures in the lab's counts chart. */
const MEASURES = { expected: "#9ecae1", actual: "#1f77b4", lost: "#d62728", dropped: "#ff7f0e", retries: "#9467bd" };

// One Chart per canvas; a re-render replaces the canvases, so the old charts are destroyed first.
const live = new Map();

function panel(host, id, title, description, config) {
  live.get(id)?.destroy();
  const canvas = el("canvas", { id, role: "img", "aria-label": description });
  host.append(el("figure", { class: "chart" }, el("figcaption", {}, title), el("div", { class: "chart-box" }, canvas)));
  const options = config.options;
  options.animation = false; // the first frame is the final one: screenshots and tests see the data
  options.responsive = true;
  options.maintainAspectRatio = false;
  live.set(id, new window.Chart(canvas, config));
}

function bars(labels, datasets, yTitle, extra = {}) {
  return {
    type: "bar",
    data: { labels, datasets },
    options: {
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: { y: { beginAtZero: true, title: { display: true, text: yTitle } }, ...extra },
    },
  };
}

export function labCharts(host, results) {
  const labels = results.map((r) => r.strategy);
  const counts = Object.entries(MEASURES).map(([measure, backgroundColor]) => ({
    label: measure,
    data: results.map((r) => r[measure]),
    backgroundColor,
  }));
  panel(host, "chart-counts", "Expected vs actual, lost, dropped, retries",
    "Bars per strategy: increments expected, the counter's actual change, updates lost, increments dropped, retries",
    bars(labels, counts, "increments"));
  panel(host, "chart-throughput", "Throughput", "Bars per strategy: increments per second",
    bars(labels, [{ label: "increments/s", data: results.map((r) => r.throughput_per_s), backgroundColor: labels.map(colour) }], "increments per second"));
  panel(host, "chart-latency", "Latency of one increment", "Bars per strategy: p50 and p99 latency in milliseconds",
    bars(labels, [
      { label: "p50 ms", data: results.map((r) => r.latency_ms && r.latency_ms.p50), backgroundColor: "#6baed6" },
      { label: "p99 ms", data: results.map((r) => r.latency_ms && r.latency_ms.p99), backgroundColor: "#08519c" },
    ], "milliseconds"));
}

export function benchCharts(host, results) {
  const workers = [...new Set(results.map((r) => r.workers))].sort((a, b) => a - b);
  const strategies = [...new Set(results.map((r) => r.strategy))];
  const lines = (value) => strategies.map((strategy) => ({
    label: strategy,
    data: workers.map((w) => {
      const r = results.find((x) => x.strategy === strategy && x.workers === w);
      return r ? value(r) : null;
    }),
    borderColor: colour(strategy),
    backgroundColor: colour(strategy),
    spanGaps: true,
  }));
  const line = (datasets, y) => ({
    type: "line",
    data: { labels: workers, datasets },
    options: {
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: { x: { title: { display: true, text: "workers (concurrent connections)" } }, y },
    },
  });
  panel(host, "chart-bench-throughput", "Throughput vs workers", "Lines per strategy: increments per second at each worker count",
    line(lines((r) => r.throughput_per_s), { beginAtZero: true, title: { display: true, text: "increments per second" } }));
  panel(host, "chart-bench-p99", "p99 latency vs workers (log scale)", "Lines per strategy: p99 latency in milliseconds at each worker count, log scale",
    line(lines((r) => r.latency_ms && r.latency_ms.p99 > 0 ? r.latency_ms.p99 : null), { type: "logarithmic", title: { display: true, text: "p99 ms (log scale)" }, ticks: { callback: decadeTick } }));
}

/** Labels 1, 2 and 5 of each decade on a log axis (as the SVG chart does); the rest stay unlabelled. */
function decadeTick(value) {
  const mantissa = value / 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9) ? String(value) : "";
}
