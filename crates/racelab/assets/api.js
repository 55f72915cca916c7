// The page's only way to the service: the experiments API (POST/GET /experiments, the SSE stream of a
// run, GET /workloads, GET /specs) and /ready. Errors come back as RFC 9457 problems; a network failure becomes one
// too, so the page has one kind of error to show.

/** A problem+json answer (or a failure to get any answer, status 0). */
export class Problem extends Error {
  constructor(body, retryAfter = null) {
    super(body.detail || body.title || "request failed");
    this.status = body.status || 0;
    this.title = body.title || "Request failed";
    this.detail = body.detail || "";
    this.invalidParams = body.invalid_params || [];
    this.retryAfter = retryAfter;
  }
}

async function request(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? { Accept: "application/json" } : { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new Problem({ status: 0, title: "The service cannot be reached", detail: String(err.message || err) });
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const problem = json && typeof json === "object" ? json : { status: response.status, title: response.statusText, detail: text };
    if (!problem.status) problem.status = response.status;
    throw new Problem(problem, response.headers.get("Retry-After"));
  }
  return json;
}

/** Starts a run: the run view (state queued or running). */
export function startRun(body) {
  return request("POST", "/experiments", body);
}

/** Asks a run to stop (it ends `stopped` after the increments in flight): the run view. */
export function stopRun(id) {
  return request("POST", `/experiments/${encodeURIComponent(id)}/stop`);
}

/** A run's current view. */
export function getRun(id) {
  return request("GET", `/experiments/${encodeURIComponent(id)}`);
}

/** The workloads the server runs (GET /workloads): each one's name, invariant (name and sentence) and
 *  strategies, which of them are safe. */
export function workloads() {
  return request("GET", "/workloads");
}

/** The repository's isolation-tester specs (GET /specs): each one's name and text. */
export function specs() {
  return request("GET", "/specs");
}

/** The database's readiness: {status, database} or a Problem (503 when it cannot be reached). */
export function ready() {
  return request("GET", "/ready");
}

/**
 * Follows a run's event stream. `on` has a handler per event: progress, result, trace, end, error
 * (the run's problem; `end` follows), and `lost` (the stream broke before `end`: the caller reads the run
 * with GET instead). Returns a function that stops following.
 */
export function follow(id, on) {
  const source = new EventSource(`/experiments/${encodeURIComponent(id)}/events`);
  let finished = false;
  const stop = () => {
    finished = true;
    source.close();
  };
  const parsed = (handler) => (event) => {
    if (finished) return;
    handler(JSON.parse(event.data));
  };
  source.addEventListener("progress", parsed((data) => on.progress(data)));
  source.addEventListener("result", parsed((data) => on.result(data)));
  source.addEventListener("trace", parsed((data) => on.trace(data)));
  source.addEventListener("end", parsed((data) => {
    stop();
    on.end(data);
  }));
  source.addEventListener("error", (event) => {
    if (finished) return;
    // A server-sent `error` event carries the run's problem, and `end` follows it; the EventSource's
    // own error (no data) means the connection broke: the browser would reconnect, but the run may be
    // over, so ask for it instead.
    if (event.data) {
      on.error(new Problem(JSON.parse(event.data)));
    } else {
      stop();
      on.lost();
    }
  });
  return stop;
}
