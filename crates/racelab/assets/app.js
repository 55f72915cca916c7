// The page's entry point: tabs, forms, runs and their URLs. A run started here gets the URL
// /runs/{id}; opening that URL (or going back to it) shows the run again, live if it still runs.

import { follow, getRun, specs, startRun, workloads } from "./api.js";
import { check, isUnavailable, onHealth, unavailable } from "./health.js";
import { body, build, clearInvalid, fill, fitTo, offerWorkloads, showInvalid } from "./form.js";
import { RunView, isFinal } from "./run.js";
import { el, replace } from "./format.js";
import { offerSpecs } from "./spec.js";

const KINDS = ["lab", "bench", "anomalies", "spec"];
const views = Object.fromEntries(KINDS.map((kind) => [kind, new RunView(document.getElementById(`run-${kind}`))]));
let stopFollowing = () => {};

// --- tabs (WAI-ARIA tabs: arrows move between them, the selected one is the tab stop) ---------------

function select(kind, focus = false) {
  for (const other of KINDS) {
    const tab = document.getElementById(`tab-${other}`);
    const on = other === kind;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(`panel-${other}`).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (kind === "spec") loadSpecs();
}

for (const [index, kind] of KINDS.entries()) {
  const tab = document.getElementById(`tab-${kind}`);
  tab.addEventListener("click", () => select(kind));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step) select(KINDS[(index + step + KINDS.length) % KINDS.length], true);
  });
}

// --- forms ------------------------------------------------------------------------------------------

function message(kind, problem) {
  const host = document.getElementById(`run-${kind}`);
  const retry = problem.retryAfter ? ` (try again in ${problem.retryAfter} s)` : "";
  replace(host, el("p", { class: "problem", role: "alert", id: `${kind}-problem` },
    el("strong", {}, `${problem.status || ""} ${problem.title}`), problem.detail ? ` — ${problem.detail}` : "", retry));
}

for (const kind of KINDS) {
  const form = document.getElementById(`form-${kind}`);
  build(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearInvalid(form);
    const button = form.querySelector(".run-button");
    button.disabled = true;
    try {
      const run = await startRun(body(form));
      history.pushState({ id: run.id }, "", `/runs/${encodeURIComponent(run.id)}`);
      show(run);
    } catch (problem) {
      if (isUnavailable(problem)) unavailable(problem);
      showInvalid(form, problem);
      message(kind, problem);
    } finally {
      button.disabled = !databaseReady;
    }
  });
}

let databaseReady = true;
onHealth((state) => {
  databaseReady = state.ready !== false;
  for (const kind of KINDS) {
    const form = document.getElementById(`form-${kind}`);
    if (state.backend) fitTo(form, state.backend);
    form.querySelector(".run-button").disabled = !databaseReady;
  }
});
document.getElementById("db-recheck").addEventListener("click", check);

/** The lab's workload picker, from GET /workloads. Until it answers (or when it fails) the lab offers
 *  the counter, as it always did. */
async function loadWorkloads() {
  const form = document.getElementById("form-lab");
  try {
    offerWorkloads(form, await workloads());
  } catch (problem) {
    if (isUnavailable(problem)) unavailable(problem);
    form.querySelector("#lab-workload-error").textContent = `the workloads could not be listed (${problem.status} ${problem.title}): the counter only`;
    return;
  }
  // A workload's run shown before the catalog came: drawn again, with its invariant's sentence.
  const shown = views.lab.run;
  if (shown && shown.request && shown.request.workload) views.lab.render();
}

let specsAsked = false;

/** The Spec tab's picker, from GET /specs, asked for when the tab is first shown (11 kB of text that
 *  a page load need not carry). Without it a spec can still be pasted. */
async function loadSpecs() {
  if (specsAsked) return;
  specsAsked = true;
  const form = document.getElementById("form-spec");
  try {
    offerSpecs(form, await specs());
  } catch (problem) {
    if (isUnavailable(problem)) unavailable(problem);
    form.querySelector("#spec-file-error").textContent = `the specs could not be listed (${problem.status} ${problem.title}): paste one`;
  }
}

// --- runs -------------------------------------------------------------------------------------------

/** Shows a run in its tab and follows it until it ends. */
function show(run) {
  stopFollowing();
  const kind = KINDS.includes(run.kind) ? run.kind : "lab";
  select(kind);
  const view = views[kind];
  view.show(run);
  if (isFinal(run)) return;
  // How many of each event the stream brought (data-stream-progress etc.): what a reader or a test
  // can check to know the page followed the stream.
  const seen = (event) => {
    const key = `stream${event[0].toUpperCase()}${event.slice(1)}`;
    view.host.dataset[key] = String(Number(view.host.dataset[key] || 0) + 1);
  };
  stopFollowing = follow(run.id, {
    progress: (list) => {
      seen("progress");
      view.progress(list);
    },
    result: (outcome) => {
      seen("result");
      view.result(outcome);
    },
    trace: (trace) => {
      seen("trace");
      view.trace(trace);
    },
    end: (final) => {
      seen("end");
      view.show(final);
    },
    error: (problem) => {
      seen("error");
      if (isUnavailable(problem)) unavailable(problem);
    },
    lost: () => refresh(run.id, view),
  });
}

/** The stream broke: read the run as it is now, and follow it again if it still runs. */
async function refresh(id, view) {
  try {
    show(await getRun(id));
  } catch (problem) {
    if (isUnavailable(problem)) unavailable(problem);
    view.host.prepend(el("p", { class: "problem", role: "alert" }, `${problem.status || ""} ${problem.title}: ${problem.detail}`));
  }
}

/** The run named by the page's URL, if any. */
async function route() {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/) || location.hash.match(/^#\/runs\/([^/]+)$/);
  if (!match) {
    stopFollowing();
    return;
  }
  const id = decodeURIComponent(match[1]);
  try {
    const run = await getRun(id);
    // The form shows this run's own settings, not the defaults: what it was asked to do.
    const form = document.getElementById(`form-${run.kind}`);
    if (form) fill(form, run.request);
    show(run);
  } catch (problem) {
    if (isUnavailable(problem)) unavailable(problem);
    message("lab", problem);
  }
}

window.addEventListener("popstate", route);
check();
loadWorkloads();
route();
