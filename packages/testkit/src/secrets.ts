import type { Logger } from "@ryze/chatwoot-core";

/**
 * Every secret the tests use, and where one showed up where it must not (issue 15: "no log line, HTTP answer or
 * last_error contains any Chatwoot token, pubsub token, caller token, webhook secret or key used by the tests").
 *
 * The simulator registers each token and secret it mints (access tokens, pubsub tokens, inbox secrets, the webhook
 * capability secret of every `webhook_url` it is given); the harnesses register their caller tokens and encryption
 * keys. Log lines (the harnesses' loggers, `console`, stdout and stderr) and HTTP answers are checked against them;
 * the vitest setup file `@ryze/chatwoot-testkit/secrets-setup` fails a test file in `afterAll` when anything leaked.
 * One registry per process, shared by every copy of this module (source and build).
 */
interface SecretState {
  /** Secret value → what it is (the label printed instead of the value). */
  secrets: Map<string, string>;
  leaks: string[];
}

const STATE_KEY = Symbol.for("@ryze/chatwoot-testkit/secrets");
/** Shorter values (a test's `"t"` token) would match everywhere; the secrets the tests mint are longer. */
const MIN_LENGTH = 8;
const MAX_LEAKS = 50;

function state(): SecretState {
  const holder = globalThis as { [STATE_KEY]?: SecretState };
  holder[STATE_KEY] ??= { secrets: new Map(), leaks: [] };
  return holder[STATE_KEY];
}

/** Remembers a secret the tests use (ignored when empty or shorter than 8 characters). */
export function registerSecret(value: string | Uint8Array | null | undefined, label: string): void {
  if (value === null || value === undefined) return;
  const text = typeof value === "string" ? value : Buffer.from(value).toString("base64");
  if (text.length < MIN_LENGTH) return;
  const { secrets } = state();
  if (!secrets.has(text)) secrets.set(text, label);
}

/** Replaces every registered secret in `text` by `<label>`: safe to print. */
export function redactSecrets(text: string): string {
  let redacted = text;
  for (const [secret, label] of state().secrets) {
    if (redacted.includes(secret)) redacted = redacted.replaceAll(secret, `<${label}>`);
  }
  return redacted;
}

/** The labels of the registered secrets that `text` contains. */
export function findSecrets(text: string): string[] {
  const found: string[] = [];
  for (const [secret, label] of state().secrets) if (text.includes(secret)) found.push(label);
  return found;
}

/** Records a leak when `text` contains a registered secret; `where` says what it was (a log line, an answer). */
export function checkForSecrets(text: string, where: string): void {
  const found = findSecrets(text);
  if (found.length === 0) return;
  const { leaks } = state();
  if (leaks.length >= MAX_LEAKS) return;
  leaks.push(`${found.join(", ")} in ${where}: ${redactSecrets(text).slice(0, 500)}`);
}

/**
 * Checks an HTTP answer of the bridge. `list` answers the Chatwoot API token in `chatwoot_api_token` by contract
 * (docs/http-api.md); that one field is left out, everything else of the answer counts.
 */
export function checkHttpAnswer(
  answer: { status: number; headers?: Record<string, string>; body: string | null },
  where = "an HTTP answer",
): void {
  let body = answer.body ?? "";
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === "object" && "chatwoot_api_token" in parsed) {
      const { chatwoot_api_token: _contractual, ...rest } = parsed as Record<string, unknown>;
      body = JSON.stringify(rest);
    }
  } catch {
    // Not JSON: checked as it is.
  }
  checkForSecrets(`${answer.status} ${JSON.stringify(answer.headers ?? {})} ${body}`, where);
}

/** The leaks recorded so far, forgotten once taken. */
export function takeLeaks(): string[] {
  return state().leaks.splice(0);
}

/** A log line as a host's JSON logger would write it (errors with their message and stack). */
function serialise(level: string, obj: unknown, msg: unknown): string {
  return JSON.stringify({ level, obj, msg }, (_key, value: unknown) =>
    value instanceof Error
      ? { name: value.name, message: value.message, stack: value.stack, cause: value.cause }
      : value,
  );
}

/**
 * A `Logger` that checks every line for registered secrets, then passes it on to `inner` (if any). The harnesses use
 * it as the bridge's logger.
 */
export function secretCheckingLogger(inner?: Logger): Logger {
  const at =
    (level: keyof Logger) =>
    (obj: object, msg?: string): void => {
      checkForSecrets(serialise(level, obj, msg), `a log line (${level})`);
      if (inner) {
        if (msg === undefined) inner[level](obj);
        else inner[level](obj, msg);
      }
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
