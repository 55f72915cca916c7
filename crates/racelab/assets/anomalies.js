// The anomaly matrix: one row per case, one column per isolation level, as `racelab anomalies`
// prints it, beside Hermitage's published result. A cell opens the schedule that produced it.

import { el, replace } from "./format.js";

const MARK = { prevented: "✓ prevented", anomaly: "✗ anomaly" };
/** Hermitage's marks: ✓ prevented, ✗ (its "—") the anomaly, R/O prevented for read-only transactions. */
const PUBLISHED = { prevented: "✓", anomaly: "✗", read_only: "R/O" };

export function matrix(data) {
  const columns = data.columns || [];
  const cases = columns.length ? columns.find((c) => c.cells && c.cells.length)?.cells.map((c) => c.case) || [] : [];
  const detail = el("div", { class: "anomaly-steps", id: "anomaly-steps", "aria-live": "polite" });
  const open = (column, cell) => () => replace(detail, steps(column, cell));
  return el("div", { class: "anomalies" },
    el("p", {}, `${data.backend || ""} ${data.server_version ? `(${data.server_version})` : ""}: `,
      "✓ prevented, ✗ the anomaly happened; a cell that differs from Hermitage's published result is outlined. ",
      "Choose a cell to see its schedule, step by step."),
    el("div", { class: "scroll" }, el("table", { class: "matrix", id: "anomaly-matrix" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "case"),
        columns.map((c) => el("th", { scope: "col", title: c.unavailable || null }, c.name || c.level, c.unavailable ? " (unavailable)" : "")))),
      el("tbody", {}, cases.map((name) => el("tr", { "data-case": name },
        el("th", { scope: "row" }, name),
        columns.map((column) => {
          const cell = (column.cells || []).find((c) => c.case === name);
          if (!cell) return el("td", {}, "—");
          return el("td", { class: `${cell.verdict} ${cell.differs_from_hermitage ? "differs" : ""}`, "data-level": column.level, "data-verdict": cell.verdict },
            el("button", { type: "button", class: "cell", on: { click: open(column, cell) } },
              MARK[cell.verdict] || cell.verdict,
              cell.hermitage ? el("span", { class: "hermitage", title: `Hermitage, on ${cell.hermitage.source}` }, ` · Hermitage ${PUBLISHED[cell.hermitage.published] || cell.hermitage.published}`) : null));
        })))))),
    detail);
}

function steps(column, cell) {
  return [
    el("h4", {}, `${cell.case} at ${column.name || column.level}: ${cell.verdict}`),
    el("ol", {}, (cell.steps || []).map((s) => el("li", { class: `step step-${s.result}` },
      el("code", {}, `${s.tx}: ${s.sql}`), ` — ${s.result}${s.blocked ? " (blocked)" : ""}${s.kind ? ` (${s.kind})` : ""}`,
      s.rows && s.rows.length ? ` → ${JSON.stringify(s.rows)}` : ""))),
  ];
}
