// One run on the page: its header (id, state, link), live progress per strategy from the event
// stream, then the results: charts, the verdict table, and for small lab runs the interleaving. A
// workload's run (a lab beyond the counter) has its own verdict table: each strategy's invariant.
// The view is rebuilt from the run object on every change; the run object is only ever what the
// server sent (the POST answer, GET /experiments/{id}, the stream's events), never recomputed numbers.

import { el, kinds, plural, replace, shown } from "./format.js";
import { benchCharts, labCharts } from "./charts.js";
import { revealLostUpdates, timelines, workloadTimelines } from "./timeline.js";
import { matrix } from "./anomalies.js";
import { describeSpec, renderSpec } from "./spec.js";
import { stopRun } from "./api.js";
import { sizesOf, workloadView } from "./form.js";

const FINAL_STATES = ["finished", "failed", "stopped"];

export function isFinal(run) {
  return FINAL_STATES.includes(run.state);
}

/** The workload of a run beyond the counter (`request.workload`), or null for the counter's. */
function workloadOf(run) {
  const name = run.request && run.request.workload;
  return name && name !== "counter" ? name : null;
}

/** A view over `host` for one run; update it with the stream's events. */
export class RunView {
  constructor(host) {
    this.host = host;
    this.run = null;
  }

  show(run) {
    this.run = { results: [], traces: [], progress: [], ...run };
    this.render();
  }

  progress(list) {
    this.run.progress = list;
    if (this.run.state === "queued") this.run.state = "running";
    this.renderProgress();
    this.renderHeader();
  }

  result(outcome) {
    // A spec run's one result is its whole report (the run view's `spec`).
    if (this.run.kind === "spec") {
      this.run.spec = outcome;
      this.renderResults();
      return;
    }
    const same = (r) => r.strategy === outcome.strategy && r.workers === outcome.workers;
    this.run.results = [...this.run.results.filter((r) => !same(r)), outcome];
    this.renderResults();
    // A workload's result carries its own trace (the counter's come as `trace` events).
    if (workloadOf(this.run)) this.renderTraces();
  }

  trace(trace) {
    this.run.traces = [...this.run.traces.filter((t) => t.strategy !== trace.strategy), trace];
    this.renderTraces();
  }

  render() {
    const run = this.run;
    replace(
      this.host,
      el("div", { class: "run-head", id: `${run.kind}-head` }),
      el("div", { class: "run-controls", id: `${run.kind}-controls` }),
      el("div", { class: "run-error", id: `${run.kind}-error` }),
      el("section", { class: "progress", id: `${run.kind}-progress`, "aria-label": "Progress" }),
      el("section", { class: "results", id: `${run.kind}-results`, "aria-label": "Results" }),
      el("section", { class: "traces", id: `${run.kind}-traces`, "aria-label": "Interleaving" }),
    );
    this.renderHeader();
    this.renderProgress();
    this.renderResults();
    this.renderTraces();
  }

  part(name) {
    return this.host.querySelector(`#${this.run.kind}-${name}`);
  }

  renderHeader() {
    const run = this.run;
    const request = run.request || {};
    const what = run.kind === "anomalies" ? "anomaly cases" : run.kind === "spec" ? describeSpec(request) : describe(request, run.kind);
    replace(
      this.part("head"),
      el("h2", {}, run.kind === "bench" ? "Sweep " : run.kind === "anomalies" ? "Anomalies " : run.kind === "spec" ? "Spec run " : "Run ",
        el("a", { href: `/runs/${encodeURIComponent(run.id)}`, class: "run-link" }, run.id)),
      el("p", { class: "run-meta" },
        el("span", { class: `state state-${run.state}`, "data-run-state": run.state, id: `${run.kind}-state` }, run.state),
        ` on ${run.backend || "the database"} · ${what}`,
        run.created_at ? ` · started ${time(run.created_at)}` : "",
        run.finished_at ? `, ended ${time(run.finished_at)}` : ""),
    );
    // The button is made once and kept while the run goes on (the header is redrawn on every progress
    // event; a button redrawn under the pointer would lose its click).
    const controls = this.part("controls");
    if (isFinal(run)) replace(controls);
    else if (!controls.firstChild) replace(controls, this.stopButton());
    const problem = run.error;
    replace(this.part("error"), problem ? el("p", { class: "problem", role: "alert" }, el("strong", {}, `${problem.status || ""} ${problem.title || "Error"}`), problem.detail ? ` — ${problem.detail}` : "") : null);
  }

  /** Stops the run; its end then arrives on the stream like any other. */
  stopButton() {
    const button = el("button", { type: "button", id: `${this.run.kind}-stop`, class: "stop" }, "Stop");
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "Stopping…";
      try {
        await stopRun(this.run.id);
      } catch (problem) {
        button.disabled = false;
        button.textContent = "Stop";
        button.title = problem.detail || problem.title;
      }
    });
    return button;
  }

  renderProgress() {
    const run = this.run;
    const host = this.part("progress");
    if (!run.progress.length || (isFinal(run) && run.results.length)) {
      replace(host);
      return;
    }
    const bench = run.kind === "bench";
    // A workload's operations may also be refused by its business rule (sold out): an answer, done.
    const workload = Boolean(workloadOf(run));
    const headers = workload ? ["acknowledged", "refused", "retries", "failed", "in doubt", "failures by kind"] : ["acknowledged", "retries", "failed", "in doubt", "failures by kind"];
    replace(
      host,
      el("h3", {}, "Progress"),
      el("div", { class: "scroll" }, el("table", { class: "numbers" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "strategy"), bench ? el("th", { scope: "col" }, "workers") : null,
          headers.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, run.progress.map((p) =>
          el("tr", { "data-strategy": p.strategy, "data-workers": p.workers, class: p.done ? "done" : null },
            el("th", { scope: "row" }, p.strategy, p.done ? " ✓" : ""),
            bench ? el("td", {}, p.workers) : null,
            el("td", {}, el("progress", { max: p.expected, value: p.acknowledged + (p.refused || 0) + p.failed + p.in_doubt, "aria-label": `${p.strategy} progress` }),
              ` ${p.acknowledged} / ${p.expected}`),
            workload ? el("td", { "data-field": "refused" }, shown(p.refused)) : null,
            el("td", { "data-field": "retries" }, p.retries),
            el("td", { "data-field": "failed" }, p.failed),
            el("td", { "data-field": "in_doubt" }, p.in_doubt),
            el("td", { class: "text" }, kinds(p.errors) || "—"),
          ))))),
    );
  }

  renderResults() {
    const run = this.run;
    const host = this.part("results");
    if (run.kind === "anomalies") {
      replace(host, run.anomalies ? matrix(run.anomalies) : null);
      return;
    }
    if (run.kind === "spec") {
      renderSpec(host, run);
      return;
    }
    if (!run.results.length) {
      replace(host);
      return;
    }
    const workload = workloadOf(run);
    if (workload) {
      replace(host, workloadResults(run, workload));
      return;
    }
    const charts = el("div", { class: "charts" });
    replace(host, el("h3", {}, run.kind === "bench" ? "Throughput and p99 latency" : "Results"), charts, verdictTable(run));
    if (run.kind === "bench") benchCharts(charts, run.results);
    else labCharts(charts, run.results);
  }

  renderTraces() {
    const run = this.run;
    const host = this.part("traces");
    if (run.kind === "lab" && workloadOf(run)) {
      replace(host, workloadTraces(run));
      revealLostUpdates(host);
      return;
    }
    if (run.kind !== "lab" || !run.traces.length) {
      const request = run.request || {};
      let note = null;
      if (run.kind === "lab" && isFinal(run) && (request.workers > 4 || request.increments > 10)) {
        note = el("p", { class: "note" }, "The interleaving is drawn for runs of at most 4 workers × 10 increments.");
      }
      replace(host, note);
      return;
    }
    const order = (run.request && run.request.strategies) || [];
    const traces = [...run.traces].sort((a, b) => order.indexOf(a.strategy) - order.indexOf(b.strategy));
    replace(host, el("h3", {}, "The interleaving, worker by worker"), timelines(traces));
    revealLostUpdates(host);
  }
}

/** A workload run's interleavings: one per result that carries a trace (the server traces labs of at
 *  most 4 workers x 10 operations), and a note naming those that carry none, once the run has ended
 *  (nothing is drawn rather than a guess). */
function workloadTraces(run) {
  const order = (run.request && run.request.strategies) || [];
  const results = [...run.results].sort((a, b) => order.indexOf(a.strategy) - order.indexOf(b.strategy));
  const traced = results.filter((r) => r.trace);
  const untraced = results.filter((r) => !r.trace).map((r) => r.strategy);
  const note = isFinal(run) && untraced.length
    ? el("p", { class: "note", id: "lab-no-trace" },
      `${traced.length ? `${untraced.join(", ")}: no` : "No"} interleaving is drawn: a workload's run carries the trace of its operations only when it has at most 4 workers × 10 operations.`)
    : null;
  return [
    traced.length ? [el("h3", {}, "The interleaving, worker by worker"), workloadTimelines(traced)] : null,
    note,
  ];
}

function describe(request, kind) {
  if (request.workload && request.workload !== "counter") return describeWorkload(request);
  const workers = Array.isArray(request.workers) ? `${request.workers.join(", ")} workers` : plural(request.workers, "worker", "workers");
  const parts = [`${workers} × ${plural(request.increments, "increment", "increments")}`];
  if (request.force_race) parts.push("race forced");
  if (request.lock_mode && kind) parts.push(`lock mode ${request.lock_mode}`);
  if (request.post !== undefined && request.post !== null) parts.push(`post ${request.post}`);
  return parts.join(", ");
}

function describeWorkload(request) {
  const parts = [`${request.workload}: ${plural(request.workers, "worker", "workers")} × ${plural(request.increments, "operation", "operations")}`];
  if (request.force_race) parts.push("race forced");
  parts.push(request.isolation ? `isolation ${request.isolation}` : "the database's isolation");
  // The request carries every size member (the server fills its defaults); only this workload's say anything.
  for (const size of sizesOf(request.workload)) {
    if (request[size] !== undefined && request[size] !== null) parts.push(`${size} ${request[size]}`);
  }
  return parts.join(", ");
}

function time(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

/** The columns of the verdict table: header, field of the Outcome, and how to read it. */
const COLUMNS = [
  ["expected", "expected"],
  ["actual", "actual"],
  ["lost", "lost"],
  ["dropped", "dropped"],
  ["failed", "failed"],
  ["in doubt", "in_doubt"],
  ["retries", "retries"],
  ["elapsed ms", "elapsed_ms"],
  ["incr/s", "throughput_per_s"],
  ["p50 ms", "latency_ms.p50"],
  ["p99 ms", "latency_ms.p99"],
];

function field(outcome, path) {
  return path.split(".").reduce((value, key) => (value === null || value === undefined ? value : value[key]), outcome);
}

/** The verdict table: one row per result, every number as the JSON has it (data-field names the
 *  JSON field, so a test can compare the two). */
function verdictTable(run) {
  const bench = run.kind === "bench";
  const order = (run.request && run.request.strategies) || [];
  const results = [...run.results].sort((a, b) => order.indexOf(a.strategy) - order.indexOf(b.strategy) || a.workers - b.workers);
  return el("div", { class: "scroll" }, el("table", { class: "numbers verdicts", id: `${run.kind}-verdicts` },
    el("caption", {}, "Verdicts (the numbers of the run's JSON: ", el("a", { href: `/experiments/${encodeURIComponent(run.id)}` }, "GET /experiments/", run.id), ")"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "strategy"), bench ? el("th", { scope: "col" }, "workers") : null,
      COLUMNS.map(([header]) => el("th", { scope: "col" }, header)), el("th", { scope: "col", class: "text" }, "verdict"))),
    el("tbody", {}, results.map((r) => {
      const bad = (r.lost || 0) > 0 || (r.dropped || 0) > 0;
      return el("tr", { "data-strategy": r.strategy, "data-workers": r.workers, class: bad ? "bad" : "good" },
        el("th", { scope: "row" }, r.strategy),
        bench ? el("td", { "data-field": "workers" }, r.workers) : null,
        COLUMNS.map(([, path]) => el("td", { "data-field": path, class: path === "lost" && r.lost > 0 ? "lost" : null }, shown(field(r, path)))),
        el("td", { class: "text verdict" }, r.verdict || verdict(r)));
    }))));
}

/** The verdict line of `racelab lab` (Outcome::verdict in the core), for results that do not carry one. */
export function verdict(r) {
  let line;
  if (r.actual === null) line = `the counter could not be read after the run (${r.counter_error || "unknown"}): ${r.acknowledged} acknowledged increments cannot be checked`;
  else if (r.lost === null && r.foreign_writes) line = `another writer changed post ${r.post} during the run (${r.foreign_writes} writes not ours): lost updates cannot be counted`;
  else if (r.lost === null) line = `the row moved by ${r.actual}, more than the ${r.acknowledged + r.in_doubt} increments this run could have made: another writer`;
  else if (r.lost > 0) line = `lost ${r.lost} of ${r.acknowledged + (r.in_doubt_committed || 0)} updates: concurrent read-modify-writes read the same value and overwrote each other`;
  else if (r.dropped > 0) line = `dropped ${r.dropped} of ${r.expected} increments: the version check caught each conflict, but nothing retried it; no acknowledged update lost`;
  else if (r.retries > 0) line = `no update lost, ${plural(r.retries, "retry", "retries")}`;
  else line = "no update lost";
  if (r.in_doubt > 0) line += `; ${r.in_doubt} in doubt (the connection was lost during the commit)`;
  if (r.failed > r.dropped) line += `; ${r.failed} increments gave up (${kinds(r.errors)})`;
  return line;
}

/** The columns of a workload's verdict table: header and field of the workload's outcome. */
const WORKLOAD_COLUMNS = [
  ["acknowledged", "acknowledged"],
  ["refused", "refused"],
  ["failed", "failed"],
  ["in doubt", "in_doubt"],
  ["retries", "retries"],
];

/** A workload's results: its invariant, a warning when a safe strategy broke it (a bug: `racelab lab`
 *  exits 1 for it), and the verdict table. */
function workloadResults(run, workload) {
  const view = workloadView(workload);
  const invariant = run.results[0].invariant.name;
  const broke = run.results.filter((r) => r.safe && r.invariant.held === false).map((r) => r.strategy);
  // A server that fails such a run says so in the run's problem, shown above: not twice.
  const said = run.error && run.error.type === "urn:racelab:problem:invariant-broken";
  return [
    el("h3", {}, "Results: ", el("code", {}, invariant)),
    view ? el("p", { class: "invariant" }, view.sentence) : null,
    broke.length && !said ? el("p", { class: "problem broke", role: "alert", id: `${run.kind}-broke` },
      el("strong", {}, `A safe strategy broke the invariant: ${broke.join(", ")}`),
      " — a strategy meant to keep it did not (racelab lab exits 1 for this).") : null,
    workloadTable(run),
  ];
}

/** The verdict table of a workload's run: one row per strategy, every count as the JSON has it
 *  (data-field names the JSON field), and the invariant: ✓ held, ✗ and its violations, or — when the
 *  rows could not be read. */
function workloadTable(run) {
  const order = (run.request && run.request.strategies) || [];
  const results = [...run.results].sort((a, b) => order.indexOf(a.strategy) - order.indexOf(b.strategy));
  return el("div", { class: "scroll" }, el("table", { class: "numbers verdicts workload-verdicts", id: `${run.kind}-verdicts` },
    el("caption", {}, "Verdicts (the numbers of the run's JSON: ", el("a", { href: `/experiments/${encodeURIComponent(run.id)}` }, "GET /experiments/", run.id), ")"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "strategy"),
      WORKLOAD_COLUMNS.map(([header]) => el("th", { scope: "col" }, header)),
      el("th", { scope: "col" }, "invariant"), el("th", { scope: "col" }, "violations"),
      el("th", { scope: "col", class: "text" }, "detail"))),
    el("tbody", {}, results.map((r) => {
      const held = r.invariant.held;
      const classes = [held === false ? "bad" : held === true ? "good" : "unread"];
      if (r.safe && held === false) classes.push("broke");
      return el("tr", { "data-strategy": r.strategy, "data-safe": String(r.safe), "data-held": String(held), class: classes.join(" ") },
        el("th", { scope: "row" }, r.strategy, " ", el("span", { class: `tag ${r.safe ? "safe" : "unsafe"}` }, r.safe ? "safe" : "unsafe")),
        WORKLOAD_COLUMNS.map(([, path]) => el("td", { "data-field": path }, shown(r[path]))),
        el("td", { "data-field": "invariant.held", class: held === false ? "held-no" : held === true ? "held-yes" : null,
          title: held === null ? "the rows could not be read after the run" : null },
        held === true ? "✓" : held === false ? "✗" : "—"),
        el("td", { "data-field": "invariant.violations", class: held === false ? "lost" : null }, shown(r.invariant.violations)),
        el("td", { class: "text verdict" }, el("span", { "data-field": "invariant.detail" }, r.invariant.detail), workloadExtras(r)));
    }))));
}

/** What else a workload's result says beside its invariant: retried conflicts and failures by kind. */
function workloadExtras(r) {
  const parts = [];
  if (r.retries > 0) parts.push(`retried: ${kinds(r.retried_errors)}`);
  if (r.failed > 0) parts.push(`failed: ${kinds(r.errors)}`);
  if (r.in_doubt > 0) parts.push(`${r.in_doubt} in doubt (the connection was lost during the commit)`);
  return parts.length ? el("span", { class: "extras" }, ` (${parts.join("; ")})`) : null;
}
