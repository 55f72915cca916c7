// The forms that start a run: their fields, and the POST /experiments body they make. The fields are
// those of the API contract; checks beyond "is it a number" are the server's (a 422 names the field,
// and the page shows it beside that field). The lab's form also picks the workload: the counter (as
// it always was), or one of those GET /workloads lists, each with its invariant, its strategies and
// its sizes.

import { el } from "./format.js";
import { buildSpec, fillSpec, specBody } from "./spec.js";

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

/** The size members of POST /experiments a workload may take: label and what the number is. */
const SIZES = {
  stock: ["Stock", "units at the start; default: half the demand"],
  accounts: ["Accounts", "money moves between them; default 8"],
  doctors: ["Doctors", "on call per shift at the start; default 4"],
  jobs: ["Jobs", "in the queue at the start; default: half the demand"],
  rooms: ["Rooms", "to book; default 4"],
  slots: ["Slots", "per room; default 64"],
};

/** Which sizes each workload takes, for a catalog that does not say (GET /workloads names no sizes
 *  today): the members POST /experiments accepts for it. */
const SIZES_OF = { stock: ["stock"], transfer: ["accounts"], oncall: ["doctors"], queue: ["jobs"], booking: ["rooms", "slots"] };

/** The levels `isolation` takes; the empty one (the default) leaves it to the database. */
const ISOLATIONS = ["read-uncommitted", "read-committed", "repeatable-read", "serializable"];

/** What each database's own level is, for the isolation field's hint. */
const DATABASE_LEVEL = { postgres: "read committed", mysql: "repeatable read", sqlite: "serializable" };

/** GET /workloads, once it has answered: name -> {name, invariant, sentence, strategies, sizes}. */
const catalog = new Map();

/** A workload as GET /workloads describes it (undefined until the catalog has arrived). */
export function workloadView(name) {
  return catalog.get(name);
}

/** The sizes a workload takes: the catalog's own list when it has one, else `SIZES_OF`. */
export function sizesOf(name) {
  const view = catalog.get(name);
  const listed = view && view.sizes;
  if (Array.isArray(listed)) return listed.map((size) => (typeof size === "string" ? size : size.name)).filter((size) => size in SIZES);
  if (listed && typeof listed === "object") return Object.keys(listed).filter((size) => size in SIZES);
  return SIZES_OF[name] || [];
}

/** Fills `form` with the fields of its kind. */
export function build(form) {
  const kind = form.dataset.kind;
  if (kind === "spec") {
    buildSpec(form);
    return;
  }
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
  const lab = kind === "lab";
  const fields = el(
    "div",
    { class: "fields" },
    field(id("workers"), workersLabel, el("input", { id: id("workers"), name: "workers", inputmode: kind === "bench" ? "text" : "numeric", value: defaults.workers, required: true }),
      kind === "bench" ? "comma-separated, e.g. 1, 2, 4, 8" : "concurrent connections"),
    field(id("increments"), "Increments", el("input", { id: id("increments"), name: "increments", inputmode: "numeric", value: defaults.increments, required: true }), "per worker"),
    field(id("lock_mode"), "Lock mode", el("select", { id: id("lock_mode"), name: "lock_mode" },
      ["wait", "nowait", "skip-locked"].map((mode) => el("option", { value: mode }, mode))), "for pessimistic", "counter"),
    field(id("post"), "Post", el("input", { id: id("post"), name: "post", inputmode: "numeric", placeholder: "a new one" }), "row to run on (optional)", "counter"),
    lab ? field(id("isolation"), "Isolation", el("select", { id: id("isolation"), name: "isolation" },
      el("option", { value: "" }, "the database's"), ISOLATIONS.map((level) => el("option", { value: level }, level))),
    "every transaction's level (serializable's always serializable)", "workload") : null,
    lab ? Object.entries(SIZES).map(([size, [label, hint]]) =>
      field(id(size), label, el("input", { id: id(size), name: size, inputmode: "numeric", placeholder: "default" }), hint, "workload", size)) : null,
    el("div", { class: "field check" },
      el("input", { type: "checkbox", id: id("force_race"), name: "force_race", checked: defaults.force_race }),
      el("label", { for: id("force_race") }, "Force the race"),
      el("span", { class: "hint", id: `${id("force_race")}-hint` }, "every worker reads before any writes, on its first increment")),
  );
  const picker = lab ? workloadPicker(id) : null;
  form.append(...[picker, strategies, fields].filter(Boolean), el("div", { class: "actions" }, el("button", { type: "submit", class: "run-button", id: `${kind}-run` }, kind === "bench" ? "Run the sweep" : "Run")));
  if (lab) {
    form.elements.workload.addEventListener("change", () => pick(form, form.elements.workload.value));
    pick(form, "counter");
  }
}

/** The lab's workload field (the counter only, until GET /workloads answers) and its invariant. */
function workloadPicker(id) {
  const select = el("select", { id: id("workload"), name: "workload" }, el("option", { value: "counter" }, "counter"));
  return el("div", { class: "workload-pick" },
    field(id("workload"), "Workload", select, "the race to run"),
    el("p", { class: "invariant", id: id("invariant"), "aria-live": "polite" }));
}

/** Offers the catalog's workloads in the lab's form (GET /workloads's answer). A run shown before the
 *  catalog arrived gets its workload now. */
export function offerWorkloads(form, views) {
  catalog.clear();
  for (const view of views) catalog.set(view.name, view);
  const select = form.elements.workload;
  const chosen = select.value;
  select.replaceChildren(...views.map((view) => el("option", { value: view.name }, view.name)));
  if (!catalog.has("counter")) select.prepend(el("option", { value: "counter" }, "counter"));
  const waiting = pending.get(form);
  pending.delete(form);
  if (waiting) fill(form, waiting);
  else pick(form, catalog.has(chosen) ? chosen : "counter");
}

/** A run's settings that name a workload the catalog has not brought yet. */
const pending = new WeakMap();

/** The strategies each workload had ticked, so that going back to one finds them as they were. */
const ticked = new WeakMap();

/** Shows the fields of `workload` and hides (and disables, so they are not sent) the others: the
 *  counter's strategies, lock mode and post; or a workload's strategies, isolation and sizes. */
function pick(form, workload) {
  const counter = workload === "counter";
  const id = (name) => `${form.dataset.kind}-${name}`;
  remember(form);
  form.elements.workload.value = workload;
  form.dataset.workload = workload;
  const sizes = sizesOf(workload);
  for (const box of form.querySelectorAll(".field[data-for]")) {
    const shown = box.dataset.for === "counter" ? counter : !counter && (!box.dataset.size || sizes.includes(box.dataset.size));
    box.hidden = !shown;
    for (const input of box.querySelectorAll("input, select")) input.disabled = !shown;
  }
  const counterStrategies = form.querySelector(`#${id("strategies")}`);
  counterStrategies.hidden = !counter;
  counterStrategies.disabled = !counter;
  form.querySelector(`#${id("workload-strategies")}`)?.remove();
  form.querySelector(`label[for=${id("increments")}]`).textContent = counter ? "Increments" : "Operations";
  const view = catalog.get(workload);
  const invariant = form.querySelector(`#${id("invariant")}`);
  invariant.dataset.invariant = view ? view.invariant : "";
  invariant.replaceChildren(...(view ? [el("strong", {}, view.invariant), `: ${view.sentence}`] : []));
  if (counter || !view) return;
  const before = ticked.get(form)?.[workload];
  counterStrategies.after(el(
    "fieldset",
    { class: "strategies", id: id("workload-strategies"), "data-workload": workload },
    el("legend", {}, `Strategies of ${workload}`),
    view.strategies.map(({ name, safe }) =>
      el(
        "label",
        { class: `strategy ${safe ? "safe" : "unsafe"}`, "data-strategy": name, "data-safe": String(safe) },
        el("input", { type: "checkbox", name: "strategies", value: name, id: id(`${workload}-strategy-${name}`), checked: before ? before.includes(name) : true }),
        el("span", { class: "name" }, name, " ", el("span", { class: `tag ${safe ? "safe" : "unsafe"}` }, safe ? "safe" : "unsafe")),
        el("span", { class: "what" }, safe ? "meant to keep the invariant" : "does not guard it: the race breaks it"),
      ),
    ),
  ));
}

/** Keeps the ticked strategies of the workload shown now. */
function remember(form) {
  const shown = form.querySelector(`#${form.dataset.kind}-workload-strategies`);
  if (!shown) return;
  const names = [...shown.querySelectorAll("input[name=strategies]:checked")].map((input) => input.value);
  ticked.set(form, { ...ticked.get(form), [shown.dataset.workload]: names });
}

/** A labelled field; `only` marks it as the counter's or the workloads' (`size`: which size it is). */
function field(id, label, input, hint, only = null, size = null) {
  input.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
  return el("div", { class: "field", "data-for": only, "data-size": size },
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
  const hint = form.querySelector(`#${form.dataset.kind}-isolation-hint`);
  if (hint && DATABASE_LEVEL[backend]) hint.textContent = `the database's: ${DATABASE_LEVEL[backend]} on ${backend}; serializable's always serializable`;
}

/** The POST /experiments body the form describes. Numbers are sent as typed when they parse, and as
 *  text otherwise, so that the server's 422 names the field rather than the page guessing. */
export function body(form) {
  const kind = form.dataset.kind;
  if (kind === "anomalies") return { kind };
  if (kind === "spec") return specBody(form);
  const value = (name) => form.elements[name].value.trim();
  const number = (text) => (/^\d+$/.test(text) ? Number(text) : text);
  const workload = kind === "lab" ? form.elements.workload.value : "counter";
  if (workload !== "counter") return workloadBody(form, workload, value, number);
  const request = {
    kind,
    strategies: [...form.querySelectorAll("input[name=strategies]:checked:enabled")].map((input) => input.value),
    workers: kind === "bench" ? value("workers").split(/[\s,]+/).filter(Boolean).map(number) : number(value("workers")),
    increments: number(value("increments")),
    force_race: form.elements.force_race.checked,
    lock_mode: value("lock_mode"),
  };
  if (value("post") !== "") request.post = number(value("post"));
  return request;
}

/** A workload lab's body: no lock mode nor post (the counter's), the isolation and the sizes given. */
function workloadBody(form, workload, value, number) {
  const request = {
    kind: "lab",
    workload,
    strategies: [...form.querySelectorAll("input[name=strategies]:checked:enabled")].map((input) => input.value),
    workers: number(value("workers")),
    increments: number(value("increments")),
    force_race: form.elements.force_race.checked,
  };
  if (value("isolation") !== "") request.isolation = value("isolation");
  for (const size of sizesOf(workload)) {
    if (value(size) !== "") request[size] = number(value(size));
  }
  return request;
}

/** Sets `form`'s fields to a run's own settings (its `request`, as GET /experiments/{id} shows it), so
 *  that /runs/{id} shows what that run was asked to do, and Run does it again. A fixed-mode
 *  pessimistic variant (`pessimistic-nowait`) ticks `pessimistic` and sets the lock mode. */
export function fill(form, request) {
  if (!request || form.dataset.kind !== request.kind || form.dataset.kind === "anomalies") return;
  if (request.kind === "spec") {
    fillSpec(form, request);
    clearInvalid(form);
    return;
  }
  if (request.workload && request.workload !== "counter") {
    fillWorkload(form, request);
    return;
  }
  if (form.elements.workload) pick(form, "counter");
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

/** `fill` for a workload's run: its workload, strategies, isolation and sizes (once the catalog has
 *  arrived: until then the settings wait for it). */
function fillWorkload(form, request) {
  if (!catalog.has(request.workload)) {
    pending.set(form, request);
    return;
  }
  ticked.set(form, { ...ticked.get(form), [request.workload]: request.strategies || [] });
  form.querySelector(`#${form.dataset.kind}-workload-strategies`)?.remove();
  pick(form, request.workload);
  form.elements.workers.value = String(request.workers ?? "");
  form.elements.increments.value = String(request.increments ?? "");
  form.elements.force_race.checked = Boolean(request.force_race);
  form.elements.isolation.value = request.isolation || "";
  for (const size of Object.keys(SIZES)) {
    if (form.elements[size]) form.elements[size].value = request[size] == null ? "" : String(request[size]);
  }
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
