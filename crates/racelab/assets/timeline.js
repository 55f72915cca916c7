// The interleaving of a small run, one column per worker, one line per event in the order the engine
// recorded them: what each worker read, wrote and committed, its conflicts, retries and lock waits.
// A commit that overwrote another worker's committed increment (the engine sets `overwrote`) is THE
// lost update: drawn in red and named; the commit it overwrote is marked too.
// A small workload run's trace (result.trace) is drawn the same way, one operation's attempts per
// worker: begin with the operation asked, read, and how it ended; the operations the server marks as
// having broken the invariant (red) and those that raced with them (amber) stand out.

import { el, plural } from "./format.js";

/** What an event says, in a few words. */
function label(raw) {
  const e = { ...raw, detail: raw.detail && raw.detail.replaceAll("_", " ") };
  const value = e.like === null || e.like === undefined ? "" : ` ${e.like}`;
  const version = e.version === null || e.version === undefined ? "" : ` (v${e.version})`;
  switch (e.kind) {
    case "begin": return "begin";
    case "read": return `read${value}${version}`;
    case "lock_wait": return "waits for the lock…";
    case "lock_acquired": return `lock acquired${value ? `, read${value}` : ""}${version}`;
    case "write": return `write${value}${version}`;
    case "commit": return `commit${value}`;
    case "conflict": return `conflict${e.detail ? `: ${e.detail}` : ""}`;
    case "rollback": return "rollback";
    case "retry": return `retry${e.detail ? ` (${e.detail})` : ""}`;
    case "error": return `error${e.detail ? `: ${e.detail}` : ""}`;
    default: return e.kind;
  }
}

const key = (worker, increment) => `${worker}/${increment}`;

/** Timelines for every traced strategy. */
export function timelines(traces) {
  return el("div", { class: "timelines" },
    el("p", { class: "legend" }, "Each line is one event, in the order the engine recorded them (as each statement returned); ",
      ["read", "write", "commit", "conflict", "retry", "lock_wait"].map((kind) => [el("span", { class: `ev ev-${kind}` }, kind.replace("_", " ")), " "]),
      el("span", { class: "ev ev-commit lost-update-sample" }, "lost update"), " marks a commit that overwrote another worker's committed increment. A commit that read a value older by more than one erases several increments at once, so the verdict's lost can be more than the commits marked."),
    traces.map(timeline));
}

function timeline(trace) {
  const events = [...trace.events].sort((a, b) => a.seq - b.seq);
  const workers = [...new Set(events.map((e) => e.worker))].sort((a, b) => a - b);
  const lost = events.filter((e) => e.overwrote);
  // The commits that were overwritten: the last commit of that worker's increment before the overwrite.
  const overwritten = new Map();
  for (const e of lost) {
    const victim = events.filter((v) => v.kind === "commit" && v.seq < e.seq && v.worker === e.overwrote.worker && v.increment === e.overwrote.increment).pop();
    if (victim) overwritten.set(victim.seq, e);
  }
  const count = (kind) => events.filter((e) => e.kind === kind).length;
  const summary = [
    lost.length ? `${plural(lost.length, "commit", "commits")} overwrote another worker's increment` : "no commit overwrote another's",
    count("conflict") ? plural(count("conflict"), "conflict", "conflicts") : null,
    count("retry") ? plural(count("retry"), "retry", "retries") : null,
    count("lock_wait") ? plural(count("lock_wait"), "lock wait", "lock waits") : null,
  ].filter(Boolean).join(" · ");

  return el("section", { class: "timeline", "data-strategy": trace.strategy, "data-lost-updates": lost.length },
    el("h4", {}, trace.strategy, el("span", { class: lost.length ? "summary bad" : "summary" }, ` — ${summary}`)),
    lost.slice(0, 3).map((e) => el("p", { class: "lost-explained" },
      el("strong", {}, "The lost update: "),
      `worker ${e.worker} committed ${e.like} for its increment ${e.increment}, over worker ${e.overwrote.worker}'s increment ${e.overwrote.increment}: `,
      "both read the same value, so one +1 vanished.")),
    lost.length > 3 ? el("p", { class: "note" }, `… and ${lost.length - 3} more, marked in red below.`) : null,
    trace.truncated ? el("p", { class: "note" }, `The trace was cut at ${events.length} events.`) : null,
    el("div", { class: "scroll timeline-scroll" }, el("table", { class: "timeline-table" },
      el("caption", { class: "visually-hidden" }, `Events of ${trace.strategy}, one column per worker`),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "t" }, "ms"), workers.map((w) => el("th", { scope: "col" }, `worker ${w}`)))),
      el("tbody", {}, events.map((e) => row(e, workers, overwritten.get(e.seq)))))));
}

function row(e, workers, overwrittenBy) {
  const isLost = Boolean(e.overwrote);
  return el("tr", { class: isLost ? "row-lost" : null, "data-seq": e.seq },
    el("td", { class: "t" }, (e.t_us / 1000).toFixed(2)),
    workers.map((w) => el("td", {}, w === e.worker ? chip(e, overwrittenBy) : null)));
}

function chip(e, overwrittenBy) {
  const attempt = e.attempt > 1 ? ` · try ${e.attempt}` : "";
  const classes = ["ev", `ev-${e.kind}`];
  if (e.overwrote) classes.push("lost-update");
  if (overwrittenBy) classes.push("overwritten");
  return el("span", {
    class: classes.join(" "),
    "data-kind": e.kind,
    "data-overwrote": e.overwrote ? key(e.overwrote.worker, e.overwrote.increment) : null,
  },
  el("span", { class: "inc" }, `#${e.increment}${attempt}`), " ", label(e),
  e.overwrote ? el("strong", { class: "flag" }, ` ✗ LOST UPDATE: overwrote worker ${e.overwrote.worker}'s increment ${e.overwrote.increment}`) : null,
  overwrittenBy ? el("em", { class: "flag" }, ` (overwritten by worker ${overwrittenBy.worker})`) : null);
}

/** Scrolls each timeline to its first lost update (or, for a workload, its first operation that broke
 *  the invariant), so that it is in view without searching. */
export function revealLostUpdates(host) {
  for (const box of host.querySelectorAll(".timeline-scroll")) {
    const row = box.querySelector("tr.row-lost, tr.row-op-broke");
    if (!row) continue;
    const offset = row.getBoundingClientRect().top - box.getBoundingClientRect().top;
    box.scrollTop += offset - box.clientHeight / 3;
  }
}

// --- a workload run's interleaving (result.trace) ----------------------------------------------------

/** How a workload event reads; `asked` is the operation its attempt began with. */
function opLabel(e) {
  const error = e.error ? e.error.replaceAll("_", " ") : "";
  switch (e.kind) {
    case "begin": return e.operation ? `begin ${e.operation}` : "begin";
    case "read": return "read";
    case "acknowledged": return "acknowledged";
    case "refused": return "refused (the rule said no)";
    case "retry": return `retry (${error})`;
    case "failed": return `failed: ${error}`;
    case "in_doubt": return "in doubt (the commit's answer was lost)";
    default: return e.kind;
  }
}

/** Each event's operation number (`op`; a begin names the operation asked in `operation`). */
function opNumbers(events) {
  return events.map((e) => e.op);
}

const ROLES = {
  broke: { className: "op-broke", flag: "✗ broke the invariant", summary: "broke the invariant" },
  raced_with: { className: "op-raced", flag: "raced with it", summary: "raced with it" },
};

/** The interleavings of a workload run's traced results, in `results`' order. */
export function workloadTimelines(results) {
  return el("div", { class: "timelines" },
    el("p", { class: "legend" }, "Each line is one event of one attempt, in the order of their times: ",
      ["begin", "read", "acknowledged", "refused", "retry", "failed", "in_doubt"].map((kind) => [el("span", { class: `ev ev-${kind}` }, kind.replace("_", " ")), " "]),
      "(begin names the operation asked). ",
      el("span", { class: "ev op-broke role-sample" }, ROLES.broke.flag), " marks an acknowledged operation past what the invariant allows (the last to commit of its group); ",
      el("span", { class: "ev op-raced role-sample" }, ROLES.raced_with.flag), " one acknowledged in the same group while one that broke it was under way."),
    results.map(workloadTimeline));
}

function workloadTimeline(result) {
  const trace = result.trace;
  // Stable: events of the same microsecond keep the server's order.
  const events = [...trace.events].sort((a, b) => a.t_us - b.t_us);
  const numbers = opNumbers(events);
  const workers = [...new Set(events.map((e) => e.worker))].sort((a, b) => a - b);
  const roles = new Map(trace.marked.map((m) => [key(m.worker, m.op), m.role]));
  // A marked operation is an acknowledged one: its acknowledged attempt (the last) is the one marked.
  const acknowledgedAttempt = new Map();
  events.forEach((e, i) => {
    if (e.kind === "acknowledged") acknowledgedAttempt.set(key(e.worker, numbers[i]), e.attempt);
  });
  const roleOf = (e, i) => {
    const k = key(e.worker, numbers[i]);
    return roles.has(k) && acknowledgedAttempt.get(k) === e.attempt ? roles.get(k) : null;
  };
  const asked = new Map();
  events.forEach((e, i) => {
    if (e.kind === "begin" && e.operation) asked.set(key(e.worker, numbers[i]), e.operation);
  });

  const count = (kind) => events.filter((e) => e.kind === kind).length;
  const ofRole = (role) => trace.marked.filter((m) => m.role === role);
  const broke = ofRole("broke");
  const raced = ofRole("raced_with");
  const summary = [
    broke.length ? `${plural(broke.length, "operation", "operations")} broke the invariant`
      : result.invariant && result.invariant.held === true ? "the invariant held: no operation marked" : "no operation marked",
    raced.length ? `${raced.length} raced with ${broke.length === 1 ? "it" : "them"}` : null,
    count("refused") ? `${count("refused")} refused` : null,
    count("retry") ? plural(count("retry"), "retry", "retries") : null,
    count("failed") ? `${count("failed")} failed` : null,
    count("in_doubt") ? `${count("in_doubt")} in doubt` : null,
  ].filter(Boolean).join(" · ");
  const name = (m) => `worker ${m.worker}'s op ${m.op}${asked.has(key(m.worker, m.op)) ? ` (${asked.get(key(m.worker, m.op))})` : ""}`;
  // A broken invariant with nothing marked: said, so that no mark is not read as "nothing went wrong".
  const unmarked = result.invariant && result.invariant.held === false && !trace.marked.length;

  return el("section", { class: "timeline workload-timeline", "data-strategy": result.strategy, "data-broke": broke.length, "data-raced": raced.length },
    el("h4", {}, result.strategy, el("span", { class: broke.length ? "summary bad" : "summary" }, ` — ${summary}`)),
    broke.length ? el("p", { class: "lost-explained" }, el("strong", {}, "Broke the invariant: "), broke.map(name).join(", "),
      raced.length ? [el("br"), el("strong", {}, "Raced with it: "), raced.map(name).join(", ")] : null) : null,
    unmarked ? el("p", { class: "note" }, "The invariant broke, but no operation is marked: the trace marks the acknowledged operations past what the invariant allows; queue's and transfer's do not say what they contend for, and a writer beside the run has no operation here.") : null,
    trace.truncated ? el("p", { class: "note" }, `The trace was cut at ${events.length} events.`) : null,
    el("div", { class: "scroll timeline-scroll" }, el("table", { class: "timeline-table" },
      el("caption", { class: "visually-hidden" }, `Events of ${result.strategy}, one column per worker`),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "t" }, "ms"), workers.map((w) => el("th", { scope: "col" }, `worker ${w}`)))),
      el("tbody", {}, events.map((e, i) => opRow(e, numbers[i], roleOf(e, i), workers))))));
}

function opRow(e, op, role, workers) {
  const ended = role && e.kind === "acknowledged";
  return el("tr", { class: ended ? `row-${ROLES[role].className}` : null },
    el("td", { class: "t" }, (e.t_us / 1000).toFixed(2)),
    workers.map((w) => el("td", {}, w === e.worker ? opChip(e, op, role) : null)));
}

function opChip(e, op, role) {
  const attempt = e.attempt > 1 ? ` · try ${e.attempt}` : "";
  const classes = ["ev", `ev-${e.kind}`];
  if (role) classes.push(ROLES[role].className);
  // The flag (and data-role) is on the event that acknowledged the marked operation: one per operation.
  const flagged = role && e.kind === "acknowledged";
  return el("span", {
    class: classes.join(" "),
    "data-kind": e.kind,
    "data-worker": e.worker,
    "data-op": op,
    "data-attempt": e.attempt,
    "data-role": flagged ? role : null,
  },
  el("span", { class: "inc" }, `op ${op}${attempt}`), " ", opLabel(e),
  flagged ? el("strong", { class: "flag" }, ` ${ROLES[role].flag}`) : null);
}
