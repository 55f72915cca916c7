// The Spec tab: an isolation-tester spec (one of the repository's, from GET /specs, or pasted) run on
// the server's database with POST /experiments kind "spec", and its run drawn as `racelab spec` reports
// it: each permutation one after the other, one column per session, each event in the order the runner
// reported it. Nothing is recomputed: a step is "waiting" or "completed after waiting" because the
// run's JSON says so (its `waiting` event, its `done` event's `waited`).

import { el, replace } from "./format.js";

/** GET /specs, once it has answered: name -> text. */
const texts = new Map();

/** Fills the Spec form: the spec picker, the text, the run's options. */
export function buildSpec(form) {
  const picker = el("select", { id: "spec-file", name: "file" }, el("option", { value: "" }, "(your own: paste it below)"));
  picker.addEventListener("change", () => {
    if (texts.has(picker.value)) form.elements.spec.value = texts.get(picker.value);
  });
  form.append(
    el("div", { class: "field" },
      el("label", { for: "spec-file" }, "Spec"),
      picker,
      el("span", { class: "hint", id: "spec-file-hint" }, "the repository's specs/, as GET /specs lists them"),
      el("span", { class: "field-error", id: "spec-file-error", role: "status" })),
    el("div", { class: "field field-wide" },
      el("label", { for: "spec-spec" }, "Spec text"),
      el("textarea", { id: "spec-spec", name: "spec", rows: "14", spellcheck: "false", "aria-describedby": "spec-spec-hint spec-spec-error" }),
      el("span", { class: "hint", id: "spec-spec-hint" }, "setup, teardown, sessions with their steps, permutations: PostgreSQL's isolationtester format"),
      el("span", { class: "field-error", id: "spec-spec-error", role: "status" })),
    el("div", { class: "field" },
      el("label", { for: "spec-permutation" }, "Permutation"),
      el("input", { id: "spec-permutation", name: "permutation", type: "text", autocomplete: "off", "aria-describedby": "spec-permutation-hint spec-permutation-error" }),
      el("span", { class: "hint", id: "spec-permutation-hint" }, "step names, space-separated; empty: the spec's own"),
      el("span", { class: "field-error", id: "spec-permutation-error", role: "status" })),
    el("div", { class: "field" },
      el("label", { for: "spec-step_timeout" }, "Step timeout (s)"),
      el("input", { id: "spec-step_timeout", name: "step_timeout", type: "text", inputmode: "numeric", value: "10", "aria-describedby": "spec-step_timeout-hint spec-step_timeout-error" }),
      el("span", { class: "hint", id: "spec-step_timeout-hint" }, "a step waiting longer is cancelled"),
      el("span", { class: "field-error", id: "spec-step_timeout-error", role: "status" })),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "run-button", id: "spec-run" }, "Run the spec")),
  );
}

/** Offers the repository's specs (GET /specs) in the picker; the first fills the text if it is empty
 *  (a run shown at /runs/{id} has filled it already: the picker then names its file, if it is one). */
export function offerSpecs(form, files) {
  const picker = form.elements.file;
  for (const file of files) {
    texts.set(file.name, file.text);
    picker.append(el("option", { value: file.name }, file.name));
  }
  if (form.elements.spec.value) {
    picker.value = files.find((file) => file.text === form.elements.spec.value)?.name || "";
  } else if (files.length) {
    picker.value = files[0].name;
    form.elements.spec.value = files[0].text;
  }
}

/** The POST /experiments body: the text as typed, the options when given (a number as typed when it
 *  parses, else as text, so that the server's 422 names it). */
export function specBody(form) {
  const request = { kind: "spec", spec: form.elements.spec.value };
  const permutation = form.elements.permutation.value.trim();
  if (permutation) request.permutation = permutation;
  const timeout = form.elements.step_timeout.value.trim();
  if (timeout) request.step_timeout = /^\d+$/.test(timeout) ? Number(timeout) : timeout;
  return request;
}

/** Sets the form to a run's own request (for /runs/{id}). */
export function fillSpec(form, request) {
  form.elements.file.value = [...texts].find(([, text]) => text === request.spec)?.[0] || "";
  form.elements.spec.value = request.spec || "";
  form.elements.permutation.value = request.permutation || "";
  form.elements.step_timeout.value = request.step_timeout == null ? "" : String(request.step_timeout);
}

/** A spec run's result (the run view's `spec`): each permutation, one column per session. */
export function specResult(result) {
  const run = result.run || { sessions: [], permutations: [] };
  const sessionOf = new Map();
  for (const session of (result.spec && result.spec.sessions) || []) {
    for (const step of session.steps) sessionOf.set(step.name, session.name);
  }
  return el("div", { class: "spec-run", id: "spec-permutations" },
    result.stopped ? el("p", { class: "problem", role: "alert", id: "spec-stopped" },
      el("strong", {}, "Stopped: "), result.stopped.message,
      result.stopped.not_cleaned && result.stopped.not_cleaned.length ? ` (not cleaned: ${result.stopped.not_cleaned.join("; ")})` : "") : null,
    result.translations && result.translations.length
      ? el("details", { class: "translations" }, el("summary", {}, "The statements as said on this database"),
        el("ul", {}, result.translations.map((line) => el("li", {}, el("code", {}, line)))))
      : null,
    run.permutations.map((permutation, index) => drawPermutation(permutation, index, run.sessions, sessionOf)));
}

function drawPermutation(permutation, index, sessions, sessionOf) {
  const waits = permutation.events.filter((e) => e.event === "waiting").length;
  return el("section", { class: "timeline spec-permutation", "data-permutation": index },
    el("h4", {}, `permutation ${index + 1}: `, el("code", {}, permutation.steps.join(" ")),
      el("span", { class: "summary" }, waits ? ` — ${waits} ${waits === 1 ? "step waited" : "steps waited"}` : " — no step waited")),
    el("div", { class: "scroll timeline-scroll" }, el("table", { class: "timeline-table" },
      el("caption", { class: "visually-hidden" }, `Permutation ${index + 1}, one column per session`),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "t" }, "#"), sessions.map((s) => el("th", { scope: "col" }, `session ${s}`)))),
      el("tbody", {}, permutation.events.map((e, seq) => eventRow(e, seq, sessions, sessionOf))))));
}

function eventRow(e, seq, sessions, sessionOf) {
  const session = e.session || sessionOf.get(e.step);
  const attributes = { class: `spec-event spec-${e.event}`, "data-seq": seq, "data-event": e.event, "data-step": e.step || null, "data-waited": e.event === "done" ? String(e.waited) : null };
  const number = el("td", { class: "t" }, String(seq + 1));
  // Setup and teardown blocks belong to no session (or to one's own setup): one line across.
  if (!session || !sessions.includes(session)) {
    return el("tr", attributes, number, el("td", { colspan: String(sessions.length || 1) }, chip(e)));
  }
  return el("tr", attributes, number, sessions.map((s) => el("td", {}, s === session ? chip(e) : null)));
}

function chip(e) {
  switch (e.event) {
    case "waiting":
      return el("span", { class: "ev ev-lock_wait" }, el("strong", {}, e.step), " ", el("code", {}, e.sql), el("em", { class: "flag" }, " — waiting"));
    case "done":
      return el("span", { class: `ev ${e.answer && e.answer.error ? "ev-error" : "ev-commit"}` },
        el("strong", {}, e.step), " ", el("code", {}, e.sql),
        e.waited ? el("em", { class: "flag completed" }, " — completed after waiting") : null,
        answer(e.answer));
    case "canceled":
      return el("span", { class: "ev ev-error" }, el("strong", {}, e.step), ` — canceled after ${e.seconds} s`);
    case "notice":
      return el("span", { class: "ev ev-begin" }, `${e.notice.severity}: ${e.notice.message}`);
    case "rows":
      return el("span", { class: "ev ev-read" }, `${part(e.part)}: `, table(e.table));
    case "part_failed":
      return el("span", { class: "ev ev-error" }, `${part(e.part)} failed — `, error(e.error));
    default:
      return el("span", { class: "ev" }, JSON.stringify(e));
  }
}

function part(p) {
  return p.session ? `${p.part.replace("_", " ")} of ${p.session}` : p.part;
}

function answer(a) {
  if (!a) return null;
  return [a.tables.map(table), a.error ? el("div", { class: "spec-error" }, error(a.error)) : null];
}

function error(e) {
  return `${e.severity}: ${e.message}${e.kind && e.kind !== "other" ? ` (${e.kind.replaceAll("_", " ")})` : ""}`;
}

/** A result set as isolationtester prints one: the columns, then each row (NULL for a null). */
function table(t) {
  return el("table", { class: "spec-rows" },
    el("thead", {}, el("tr", {}, t.columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, t.rows.length
      ? t.rows.map((row) => el("tr", {}, row.map((v) => el("td", {}, v === null ? "NULL" : v))))
      : el("tr", {}, el("td", { colspan: String(t.columns.length || 1), class: "note" }, "(no rows)"))));
}

/** The run's header line: the spec's size and the options asked. */
export function describeSpec(request) {
  const lines = (request.spec || "").split("\n").filter((line) => line.trim()).length;
  const parts = [`a spec of ${lines} ${lines === 1 ? "line" : "lines"}`];
  if (request.permutation) parts.push(`permutation ${request.permutation}`);
  if (request.step_timeout != null) parts.push(`step timeout ${request.step_timeout} s`);
  return parts.join(", ");
}

/** Replaces `host` with a spec run's result, or nothing until it came. */
export function renderSpec(host, run) {
  replace(host, run.spec ? [el("h3", {}, "The permutations, session by session"), specResult(run.spec)] : null);
}
