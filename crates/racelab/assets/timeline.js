// The interleaving of a small run, one column per worker, one line per event in the order the engine
// recorded them: what each worker read, wrote and committed, its conflicts, retries and lock waits.
// A commit that overwrote another worker's committed increment (the engine sets `overwrote`) is THE
// lost update: drawn in red and named; the commit it overwrote is marked too.

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

/** Scrolls each timeline to its first lost update, so that it is in view without searching. */
export function revealLostUpdates(host) {
  for (const box of host.querySelectorAll(".timeline-scroll")) {
    const row = box.querySelector("tr.row-lost");
    if (!row) continue;
    const offset = row.getBoundingClientRect().top - box.getBoundingClientRect().top;
    box.scrollTop += offset - box.clientHeight / 3;
  }
}
