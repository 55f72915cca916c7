// The forms that start a run: their fields, and the POST /experiments body they make. The fields are
// those of the API contract; checks beyond "is it a number" are the server's (a 422 names the field,
// and the page shows it beside that field).

import { el } from "./format.js";

/** Every strategy, in the order of `Strategy::names()`, with what it does in a few words. The
 *  pessimistic variants with a fixed lock mode are left out: the lock mode field chooses it. */
export const STRATEGIES = [
  ["naive", "read, then write back +1: loses updates"],
  ["atomic", "one UPDATE … SET like = like + 1"],
  ["pessimistic", "SELECT … FOR UPDATE, then write (lock mode below)"],
  ["optimistic", "write only if the version is unchanged; retry"],
  ["versioned", "an ORM's version counter; retry the unit of work"],
  ["versioned-no-retry", "the same without retry: drops increments"],
  ["serializable", "SERIALIZABLE transaction; retry on failure"],
  ["advisory", "an application lock on the row (not on SQLite)"],
  ["sharded", "the counter split over slot rows"],
];

const DEFAULTS = {
  lab: { strategies: ["naive", "atomic", "pessimistic", "optimistic"], workers: "2", increments: "10", force_race: true },
  bench: { strategies: ["naive", "atomic", "pessimistic", "optimistic"], workers: "1, 2, 4, 8", increments: "50", force_race: false },
};

/** Fills `form` with the fields of its kind. */
export function build(form) {
  const kind = form.dataset.kind;
  if (kind === "anomalies") {
    form.append(el("div", { class: "actions" }, el("button", { type: "submit", class: "run-button", id: `${kind}-run` }, "Run the anomaly cases")));
    return;
  }
  const defaults = DEFAULTS[kind];
  const id = (name) => `${kind}-${name}`;
  const strategies = el(
    "fieldset",
    { class: "strategies", id: id("strategies") },
    el("legend", {}, "Strategies"),
    STRATEGIES.map(([name, what]) =>
      el(
        "label",
        { class: "strategy", "data-strategy": name },
        el("input", { type: "checkbox", name: "strategies", value: name, id: id(`strategy-${name}`), checked: defaults.strategies.includes(name) }),
        el("span", { class: "name" }, name),
        el("span", { class: "what" }, what),
      ),
    ),
  );
  const workersLabel = kind === "bench" ? "Worker counts" : "Workers";
  const fields = el(
    "div",
    { class: "fields" },
    field(id("workers"), workersLabel, el("input", { id: id("workers"), name: "workers", inputmode: kind === "bench" ? "text" : "numeric", value: defaults.workers, required: true }),
      kind === "bench" ? "comma-separated, e.g. 1, 2, 4, 8" : "concurrent connections"),
    field(id("increments"), "Increments", el("input", { id: id("increments"), name: "increments", inputmode: "numeric", value: defaults.increments, required: true }), "per worker"),
    field(id("lock_mode"), "Lock mode", el("select", { id: id("lock_mode"), name: "lock_mode" },
      ["wait", "nowait", "skip-locked"].map((mode) => el("option", { value: mode }, mode))), "for pessimistic"),
    field(id("post"), "Post", el("input", { id: id("post"), name: "post", inputmode: "numeric", placeholder: "a new one" }), "row to run on (optional)"),
    el("div", { class: "field check" },
      el("input", { type: "checkbox", id: id("force_race"), name: "force_race", checked: defaults.force_race }),
      el("label", { for: id("force_race") }, "Force the race"),
      el("span", { class: "hint", id: `${id("force_race")}-hint` }, "every worker reads before any writes, on its first increment")),
  );
  form.append(strategies, fields, el("div", { class: "actions" }, el("button", { type: "submit", class: "run-button", id: `${kind}-run` }, kind === "bench" ? "Run the sweep" : "Run")));
}

function field(id, label, input, hint) {
  input.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
  return el("div", { class: "field" },
    el("label", { for: id }, label),
    input,
    el("span", { class: "hint", id: `${id}-hint` }, hint),
    el("span", { class: "field-error", id: `${id}-error`, role: "status" }));
}

/** Hides the strategies the database does not support (so "all the database supports" is what shows). */
export function fitTo(form, backend) {
  for (const label of form.querySelectorAll("label.strategy")) {
    const unsupported = backend === "sqlite" && label.dataset.strategy === "advisory";
    label.hidden = unsupported;
    if (unsupported) label.querySelector("input").checked = false;
  }
}

/** The POST /experiments body the form describes. Numbers are sent as typed when they parse, and as
 *  text otherwise, so that the server's 422 names the field rather than the page guessing. */
export function body(form) {
  const kind = form.dataset.kind;
  if (kind === "anomalies") return { kind };
  const value = (name) => form.elements[name].value.trim();
  const number = (text) => (/^\d+$/.test(text) ? Number(text) : text);
  const request = {
    kind,
    strategies: [...form.querySelectorAll("input[name=strategies]:checked")].map((input) => input.value),
    workers: kind === "bench" ? value("workers").split(/[\s,]+/).filter(Boolean).map(number) : number(value("workers")),
    increments: number(value("increments")),
    force_race: form.elements.force_race.checked,
    lock_mode: value("lock_mode"),
  };
  if (value("post") !== "") request.post = number(value("post"));
  return request;
}

/** Sets `form`'s fields to a run's own settings (its `request`, as GET /experiments/{id} shows it), so
 *  that /runs/{id} shows what that run was asked to do, and Run does it again. A fixed-mode
 *  pessimistic variant (`pessimistic-nowait`) ticks `pessimistic` and sets the lock mode. */
export function fill(form, request) {
  if (!request || form.dataset.kind !== request.kind || form.dataset.kind === "anomalies") return;
  const names = (request.strategies || []).map((name) => name.replace(/^pessimistic-(nowait|skip-locked)$/, "pessimistic"));
  for (const input of form.querySelectorAll("input[name=strategies]")) input.checked = names.includes(input.value);
  const variant = (request.strategies || []).map((name) => name.match(/^pessimistic-(nowait|skip-locked)$/)).find(Boolean);
  const workers = request.workers;
  form.elements.workers.value = Array.isArray(workers) ? workers.join(", ") : String(workers ?? "");
  form.elements.increments.value = String(request.increments ?? "");
  form.elements.lock_mode.value = variant ? variant[1] : request.lock_mode || "wait";
  form.elements.post.value = request.post == null ? "" : String(request.post);
  form.elements.force_race.checked = Boolean(request.force_race);
  clearInvalid(form);
}

/** Shows a 4xx problem's invalid params beside their fields; returns whether any field was named. */
export function showInvalid(form, problem) {
  clearInvalid(form);
  let named = false;
  for (const { name, reason } of problem.invalidParams) {
    const field = name.split(/[.[]/)[0];
    const error = form.querySelector(`#${form.dataset.kind}-${CSS.escape(field)}-error`);
    const input = form.elements[field];
    if (error) {
      error.textContent = reason;
      named = true;
    }
    if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
  }
  return named;
}

export function clearInvalid(form) {
  for (const error of form.querySelectorAll(".field-error")) error.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}
