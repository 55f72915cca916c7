// Whether the database answers. The page asks /ready once on load; any 503 (from /ready, from starting
// a run, or in a run's stream) shows the banner and asks again every 2 s until the database is back,
// then hides the banner and lets runs start again. Nothing to reload.

import { ready } from "./api.js";

const RECHECK_MS = 2000;
const listeners = [];
let state = { ready: null, backend: null, problem: null };
let timer = null;

/** Calls `listener(state)` now and on every change. */
export function onHealth(listener) {
  listeners.push(listener);
  listener(state);
}

export function backend() {
  return state.backend;
}

/** Asks /ready now. */
export async function check() {
  clearTimeout(timer);
  timer = null;
  try {
    const answer = await ready();
    set({ ready: true, backend: answer.database || state.backend, problem: null });
  } catch (problem) {
    unavailable(problem);
  }
}

/** A 503 seen anywhere: show it and watch for the database's return. */
export function unavailable(problem) {
  set({ ready: false, backend: state.backend, problem });
  clearTimeout(timer);
  timer = setTimeout(check, RECHECK_MS);
}

function set(next) {
  state = next;
  render();
  for (const listener of listeners) listener(state);
}

function render() {
  const line = document.getElementById("db-state");
  const banner = document.getElementById("db-banner");
  line.dataset.ready = String(state.ready);
  if (state.ready) {
    line.textContent = `database: ${state.backend} · ready`;
    banner.hidden = true;
    return;
  }
  const problem = state.problem;
  const status = problem.status ? `${problem.status} ` : "";
  line.textContent = `database: ${status}unavailable`;
  document.getElementById("db-banner-title").textContent = `${status}${problem.title}`;
  document.getElementById("db-banner-detail").textContent = problem.detail ? `— ${problem.detail}` : "";
  banner.hidden = false;
}

/** A problem that means "the database is not there" rather than "your request is wrong". */
export function isUnavailable(problem) {
  return problem.status === 503 || problem.status === 0;
}
