import { randomBytes } from "node:crypto";

/**
 * The one error class of the library and the one code → HTTP status table. Every status and public
 * message the HTTP contract names comes from here; adapters never invent their own.
 */

/** Stable error codes (UPPER_SNAKE) and the HTTP status each one maps to. */
export const ERROR_STATUS = {
  MODULE_DISABLED: 503,
  MISSING_TOKEN: 401,
  INVALID_TOKEN: 401,
  RATE_LIMITED: 429,
  INSTANCE_NOT_FOUND: 404,
  INSTANCE_FORBIDDEN: 403,
  INVALID_BODY: 400,
  BODY_TOO_LARGE: 413,
  INTEGRATION_NOT_FOUND: 404,
  ACTIVATION_IN_PROGRESS: 409,
  CHATWOOT_NOT_FOUND: 400,
  CHATWOOT_INVALID_REQUEST: 400,
  CHATWOOT_VERSION_UNSUPPORTED: 400,
  CHATWOOT_TOKEN_REJECTED: 401,
  CHATWOOT_FORBIDDEN: 403,
  CHATWOOT_UNREACHABLE: 502,
  PERSIST_FAILED: 500,
  WEBHOOK_SECRET_INVALID: 401,
  WEBHOOK_UNKNOWN_INTEGRATION: 404,
  INVALID_EVENT: 400,
  INVALID_QUERY: 400,
  DEAD_LETTER_NOT_FOUND: 404,
  NOT_A_DEAD_LETTER: 409,
  INVALID_OPTIONS: 500,
  FEATURE_UNAVAILABLE: 501,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const BRAND = Symbol.for("@ryze/chatwoot.error");

/**
 * The library's error. `message` is the public, actionable text (safe to show to an end user);
 * `cause` keeps the underlying error for logs. Recognise it with {@link isBridgeError}: a host can
 * end up with two copies of the core installed, so `instanceof` alone is not enough.
 */
export class BridgeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BridgeError";
    this.code = code;
    this.status = ERROR_STATUS[code];
  }
}

export function isBridgeError(value: unknown): value is BridgeError {
  return typeof value === "object" && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}

/** The message of anything thrown, for logs and `Detail:` texts. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A correlation reference for an error whose cause is only logged (a database or internal error): the answer says
 * `(ref <ref>)`, the log line carries `ref` and the cause.
 */
export function errorRef(): string {
  return randomBytes(6).toString("hex");
}

/** Normalises anything thrown into a BridgeError (unknown errors become INTERNAL, message hidden). */
export function toBridgeError(value: unknown): BridgeError {
  if (isBridgeError(value)) return value;
  return new BridgeError("INTERNAL", "internal error", { cause: value });
}

/** The public messages of the HTTP contract that are fixed strings. */
export const MESSAGES = {
  moduleDisabled: "integration gateway not configured",
  missingToken: "Missing token",
  invalidToken: "Invalid token",
  rateLimited: "Rate limit exceeded. Try again later.",
  instanceNotFound: "instance not found",
  instanceTokenMismatch: "Instance token does not match the instance",
  instanceNotInAccount: "Instance does not belong to this account",
  bodyTooLarge: "request body too large",
  noIntegration: "no chatwoot integration for this instance",
  noIntegrationToDelete: "no chatwoot integration to delete",
  activationInProgress: "chatwoot activation already in progress for this instance",
  activated: "chatwoot integration activated",
  deactivated: "chatwoot integration deactivated",
  webhookSecretInvalid: "invalid webhook secret",
  webhookUnknownIntegration: "unknown integration",
  deadLetterNotFound: "dead letter not found",
  notADeadLetter: "not a dead letter: it was retried already or is no longer dead",
} as const;
