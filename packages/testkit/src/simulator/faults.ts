/**
 * Fault injection: rules that match requests by method and path and replace or delay the normal
 * answer, or reset the connection. The first matching rule (in injection order) applies.
 */

/** Matches a request path: a string must equal the path (query excluded), a RegExp must match it. */
export type PathPattern = string | RegExp;

/** What to do to matching requests. At least one of `status`, `body`, `delayMs` or `reset` is required. */
export interface FaultOptions {
  /** HTTP method to match (case-insensitive); any method when omitted. */
  method?: string;
  /** Path to match (without query string); any path when omitted. */
  path?: PathPattern;
  /** How many matching requests the fault applies to before it removes itself. Default: Infinity. */
  times?: number;
  /** Answer with this status instead of handling the request (default 500 when only `body` is given). */
  status?: number;
  /**
   * Body of the faulty answer: an object is sent as JSON (`application/json; charset=utf-8`),
   * a string as is (`text/plain; charset=utf-8` unless `headers` set a content type).
   */
  body?: string | object;
  /** Extra headers of the faulty answer. */
  headers?: Record<string, string>;
  /** Wait this long first; then answer normally, or with `status`/`body`, or reset. */
  delayMs?: number;
  /** Destroy the socket with a TCP reset instead of answering (clients see ECONNRESET). */
  reset?: boolean;
  /**
   * Handle the request normally first (whatever it changes stays changed), then apply `delayMs`, `status`/`body` or
   * `reset` to the answer: a Chatwoot that saved the record and failed afterwards. E.g. messages#create answers 422
   * `{"error": "<exception text>"}` for a `StandardError` raised by an `after_create_commit` callback (Redis down)
   * after the message was committed; `reset: true` is an answer lost on the way back. HTTP requests only (a
   * WebSocket upgrade takes the fault before it is handled).
   */
  afterHandling?: boolean;
}

/** An injected fault. */
export interface InjectedFault {
  /** Stops the fault from applying to further requests. */
  remove(): void;
  /** How many more requests it will apply to (Infinity when unlimited, 0 once used up or removed). */
  readonly remaining: number;
  /** How many requests it has applied to so far. */
  readonly hits: number;
}

/** The fault controls of a simulator (`sim.faults`). */
export interface SimulatorFaults {
  /** Adds a fault; it applies to matching requests before any normal handling (including auth). */
  inject(options: FaultOptions): InjectedFault;
  /** Removes every fault. */
  clear(): void;
}

/** The parts of a fault that act on a request, as decided when it matched. */
export interface FaultAction {
  delayMs: number;
  reset: boolean;
  /** Applies to the answer, once the request was handled. */
  afterHandling: boolean;
  answer?: { status: number; headers: Record<string, string>; body: string };
}

/** Whether `path` matches a string (exact) or RegExp pattern. */
export function matchesPath(pattern: PathPattern, path: string): boolean {
  if (typeof pattern === "string") return pattern === path;
  pattern.lastIndex = 0;
  return pattern.test(path);
}

interface FaultRule {
  options: FaultOptions;
  remaining: number;
  hits: number;
}

function validate(options: FaultOptions) {
  const { times, status, delayMs } = options;
  if (
    times !== undefined &&
    !(times === Number.POSITIVE_INFINITY || (Number.isInteger(times) && times > 0))
  ) {
    throw new TypeError(`fault times must be a positive integer or Infinity, got ${times}`);
  }
  if (status !== undefined && !(Number.isInteger(status) && status >= 100 && status <= 599)) {
    throw new TypeError(`fault status must be an HTTP status (100-599), got ${status}`);
  }
  if (delayMs !== undefined && !(Number.isFinite(delayMs) && delayMs >= 0)) {
    throw new TypeError(`fault delayMs must be a finite number >= 0, got ${delayMs}`);
  }
  if (status === undefined && options.body === undefined && delayMs === undefined && !options.reset) {
    throw new TypeError("a fault needs at least one of status, body, delayMs or reset");
  }
}

function toAction(options: FaultOptions): FaultAction {
  const action: FaultAction = {
    delayMs: options.delayMs ?? 0,
    reset: options.reset === true,
    afterHandling: options.afterHandling === true,
  };
  if (options.status !== undefined || options.body !== undefined) {
    const isText = typeof options.body === "string";
    const body =
      options.body === undefined ? "" : isText ? (options.body as string) : JSON.stringify(options.body);
    const headers: Record<string, string> = {};
    if (options.body !== undefined) {
      headers["content-type"] = isText ? "text/plain; charset=utf-8" : "application/json; charset=utf-8";
    }
    for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
    action.answer = { status: options.status ?? 500, headers, body };
  }
  return action;
}

/** Creates the fault registry a simulator consults for every request. */
export function createFaultRegistry() {
  let rules: FaultRule[] = [];

  const faults: SimulatorFaults = {
    inject(options) {
      validate(options);
      const rule: FaultRule = {
        options: { ...options },
        remaining: options.times ?? Number.POSITIVE_INFINITY,
        hits: 0,
      };
      rules.push(rule);
      return {
        remove() {
          rule.remaining = 0;
          rules = rules.filter((r) => r !== rule);
        },
        get remaining() {
          return rule.remaining;
        },
        get hits() {
          return rule.hits;
        },
      };
    },
    clear() {
      for (const rule of rules) rule.remaining = 0;
      rules = [];
    },
  };

  /** Finds the first fault matching the request, counts it down and returns what it does. */
  function take(method: string, path: string): FaultAction | undefined {
    const rule = rules.find(
      ({ options }) =>
        (options.method === undefined || options.method.toUpperCase() === method.toUpperCase()) &&
        (options.path === undefined || matchesPath(options.path, path)),
    );
    if (!rule) return undefined;
    rule.hits += 1;
    rule.remaining -= 1;
    if (rule.remaining <= 0) rules = rules.filter((r) => r !== rule);
    return toAction(rule.options);
  }

  return { faults, take };
}
