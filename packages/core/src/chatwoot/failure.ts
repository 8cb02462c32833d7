import { BridgeError } from "../errors/index.js";

/** What went wrong talking to Chatwoot, before it is turned into a public error. */
export type ChatwootFailure =
  | {
      kind: "http";
      method: string;
      url: string;
      status: number;
      /** Response body text (truncated). Never shown as is: `Detail:` carries only its error message fields. */
      body: string;
      /** True when a 2xx answer was not the Chatwoot JSON we expected (wrong URL, an HTML page). */
      notChatwoot?: boolean;
      /** With `notChatwoot`: what was wrong with it (`not JSON`, or the failing fields), never its values. */
      invalid?: string;
    }
  | {
      kind: "transport";
      method: string;
      url: string;
      /** Human-readable cause, e.g. `connect ECONNREFUSED 127.0.0.1:9`, `timed out after 10000ms`. */
      cause: string;
      /** System or undici error code when known (ECONNREFUSED, ENOTFOUND, UND_ERR_CONNECT_TIMEOUT, TIMEOUT...). */
      code?: string;
    }
  /** The token works but the account is not in the profile's `accounts[]`. */
  | { kind: "account-missing"; url: string; accountIds: number[] }
  /** The token's user is not an administrator of the account. */
  | { kind: "not-admin"; url: string; role: string }
  /** The overall activation deadline expired. */
  | { kind: "deadline"; seconds: number };

/** Thrown by ChatwootApi for every failed call; `failure` carries the raw facts. */
export class ChatwootRequestError extends Error {
  readonly failure: ChatwootFailure;
  constructor(failure: ChatwootFailure) {
    super(describeFailure(failure));
    this.name = "ChatwootRequestError";
    this.failure = failure;
  }
}

export function isChatwootRequestError(value: unknown): value is ChatwootRequestError {
  return value instanceof Error && value.name === "ChatwootRequestError" && "failure" in value;
}

/** Whether a call failed because Chatwoot answered HTTP `status` (e.g. 422: a contact that already exists). */
export function isChatwootHttpError(value: unknown, status: number): boolean {
  return isChatwootRequestError(value) && value.failure.kind === "http" && value.failure.status === status;
}

/** Whether Chatwoot answered 404: what the call named (an inbox, a conversation) does not exist, or no longer. */
export function isChatwootNotFound(value: unknown): boolean {
  return isChatwootHttpError(value, 404);
}

/** How much of Chatwoot's error message fields `Detail:` carries. */
const MAX_DETAIL = 200;
/** The fields of a Chatwoot error answer that say what went wrong. */
const MESSAGE_FIELDS = ["error", "message", "errors"];
/** Keys never shown, at any depth. */
const SECRET_KEY = /token|secret|password/i;

/** A JSON value without the keys that name a secret (at most a few levels deep). */
function withoutSecrets(value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) return depth > 4 ? [] : value.map((item) => withoutSecrets(item, depth + 1));
  if (value === null || typeof value !== "object") return value;
  if (depth > 4) return {};
  const kept: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!SECRET_KEY.test(key)) kept[key] = withoutSecrets(item, depth + 1);
  }
  return kept;
}

/**
 * What an answer's body may show: Chatwoot's error message fields (`error`, `message`, `errors`) of a JSON object,
 * without any key naming a token, secret or password, as JSON cut to 200 characters. A body that is not JSON, or
 * has none of these fields, shows nothing: whatever a misdirected URL answers stays out of errors, logs and
 * `last_error`.
 */
export function errorFieldsOf(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return "";
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return "";
  const fields: Record<string, unknown> = {};
  for (const key of MESSAGE_FIELDS) {
    if (key in parsed) fields[key] = withoutSecrets((parsed as Record<string, unknown>)[key]);
  }
  return Object.keys(fields).length > 0 ? JSON.stringify(fields).slice(0, MAX_DETAIL) : "";
}

/**
 * The `Detail:` text of the contract: the root cause, never a secret (tokens travel in headers only) and never
 * more of an answer than its error message fields.
 */
export function describeFailure(failure: ChatwootFailure): string {
  switch (failure.kind) {
    case "http": {
      const shown = failure.notChatwoot
        ? `not a Chatwoot answer (${(failure.invalid ?? "unexpected content").slice(0, MAX_DETAIL)})`
        : errorFieldsOf(failure.body);
      return `${failure.url} HTTP ${failure.status}${shown ? `: ${shown}` : ""}`;
    }
    case "transport":
      return `${failure.method} "${failure.url}": ${failure.cause}`;
    case "account-missing":
      return `${failure.url}: account not in the token user's accounts (${failure.accountIds.join(", ") || "none"})`;
    case "not-admin":
      return `${failure.url}: role in the account is "${failure.role}", not "administrator"`;
    case "deadline":
      return `activation timed out after ${failure.seconds}s`;
  }
}

export type ChatwootFailureClass =
  | "CHATWOOT_NOT_FOUND"
  | "CHATWOOT_INVALID_REQUEST"
  | "CHATWOOT_TOKEN_REJECTED"
  | "CHATWOOT_FORBIDDEN"
  | "CHATWOOT_UNREACHABLE";

/** Chatwoot answers 401 for several different reasons; only the body text tells them apart. */
function classify401(body: string): ChatwootFailureClass {
  if (body.includes("You are not authorized to access this account")) return "CHATWOOT_NOT_FOUND";
  if (body.includes("You are not authorized to do this action")) return "CHATWOOT_FORBIDDEN";
  return "CHATWOOT_TOKEN_REJECTED";
}

/** Which row of the error table of `docs/http-api.md` a failure belongs to. */
export function failureClass(failure: ChatwootFailure): ChatwootFailureClass {
  switch (failure.kind) {
    case "transport":
    case "deadline":
      return "CHATWOOT_UNREACHABLE";
    case "account-missing":
      return "CHATWOOT_NOT_FOUND";
    case "not-admin":
      return "CHATWOOT_FORBIDDEN";
    case "http": {
      const { status } = failure;
      if (failure.notChatwoot || (status >= 300 && status < 400)) return "CHATWOOT_NOT_FOUND";
      if (status === 401) return classify401(failure.body);
      if (status === 403) return "CHATWOOT_FORBIDDEN";
      if (status === 404) return "CHATWOOT_NOT_FOUND";
      if (status === 408 || status === 429 || status >= 500) return "CHATWOOT_UNREACHABLE";
      return "CHATWOOT_INVALID_REQUEST";
    }
  }
}

/**
 * Whether retrying later may succeed: network trouble, 5xx, 429, 408, and a 422 to a message create that is not the
 * validation of our own body (see `isPermanentMessageRejection`); everything else is permanent.
 */
export function isTransientFailure(failure: ChatwootFailure): boolean {
  return failureClass(failure) === "CHATWOOT_UNREACHABLE" || isRetryableMessageRejection(failure);
}

/** A message create: messages#create, or conversations#create (which takes the first message along). */
const MESSAGE_CREATE = /\/api\/v1\/accounts\/\d+\/conversations(?:\/\d+\/messages)?\/?(?:\?.*)?$/;
/** `Message#prevent_message_flooding` (app/models/message.rb): `errors.add(:base, 'Too many messages')`. */
const FLOOD_GUARD = "Too many messages";
/** ActiveRecord's `RecordInvalid` text: `"Validation failed: " + full_messages.join(", ")`. */
const VALIDATION_FAILED = "Validation failed: ";

/**
 * The texts of a message create that a retry of the same body can never change (Chatwoot 4.10.0–4.13.0):
 * `Messages::MessageBuilder`'s own refusal (app/builders/messages/message_builder.rb) and the `ArgumentError` of an
 * unknown enum value (app/models/message.rb). Validation failures are recognised by their prefix.
 */
const PERMANENT_TEXTS = [/^Incoming messages are only allowed in Api inboxes$/, /^'.*' is not a valid \w+$/s];

/**
 * Whether Chatwoot's 422 to a message create is the validation of our own body, refused again whatever the moment:
 * - messages#create rescues every `StandardError` into `{"error": e.message}`
 *   (app/controllers/api/v1/accounts/conversations/messages_controller.rb): validation (`Validation failed: …`:
 *   content or source_id too long, structured content, template_params), `Incoming messages are only allowed in Api
 *   inboxes`, `'x' is not a valid message_type` are permanent; the flood guard alone (`Validation failed: Too many
 *   messages`, 200 messages per conversation per rolling minute) and every other text (a database, storage or Redis
 *   error, possibly raised after the message was saved) are not;
 * - conversations#create lets its first message's `RecordInvalid` through as `{"message": …, "attributes": […]}`
 *   (app/controllers/concerns/request_exception_handler.rb): permanent unless it is the flood guard alone;
 *   its `{"error": "source_id should be unique"}` (the contact inbox belongs to another contact) is permanent too.
 * An answer that is not Chatwoot's JSON says nothing about our body: not permanent.
 */
export function isPermanentMessageRejection(failure: ChatwootFailure): boolean {
  if (failure.kind !== "http" || failure.status !== 422) return false;
  let body: unknown;
  try {
    body = JSON.parse(failure.body);
  } catch {
    return false;
  }
  if (body === null || typeof body !== "object") return false;
  const { error, message, attributes } = body as { error?: unknown; message?: unknown; attributes?: unknown };
  if (typeof message === "string" && Array.isArray(attributes)) return message !== FLOOD_GUARD;
  if (typeof error !== "string") return false;
  if (error === "source_id should be unique") return true;
  if (error.startsWith(VALIDATION_FAILED)) return error.slice(VALIDATION_FAILED.length) !== FLOOD_GUARD;
  return PERMANENT_TEXTS.some((text) => text.test(error));
}

/** Whether the failure is a 422 to a message create that a retry may turn into a success. */
export function isRetryableMessageRejection(failure: ChatwootFailure): boolean {
  if (failure.kind !== "http" || failure.status !== 422 || failure.method !== "POST") return false;
  if (!MESSAGE_CREATE.test(failure.url)) return false;
  return !isPermanentMessageRejection(failure);
}

export interface ClassifyContext {
  baseUrl: string;
  accountId: number;
}

/**
 * Maps a Chatwoot failure to the public error of the contract, with an actionable message and the raw
 * cause after `Detail:`.
 */
export function classifyChatwootFailure(failure: ChatwootFailure, context: ClassifyContext): BridgeError {
  const detail = describeFailure(failure);
  const code = failureClass(failure);
  const error = (message: string) =>
    new BridgeError(code, `${message} Detail: ${detail}`, { cause: new ChatwootRequestError(failure) });
  switch (code) {
    case "CHATWOOT_NOT_FOUND":
      return error(
        `Chatwoot account or endpoint not found - verify chatwootBaseUrl (${context.baseUrl}) and chatwootAccountId (${context.accountId}).`,
      );
    case "CHATWOOT_INVALID_REQUEST":
      return error(
        "Chatwoot rejected the request as invalid - verify inboxName and the Chatwoot account settings.",
      );
    case "CHATWOOT_TOKEN_REJECTED":
      return error("Chatwoot rejected the API token - verify chatwootApiToken.");
    case "CHATWOOT_FORBIDDEN":
      return error(
        `Chatwoot denied the request - verify the API token has admin scope on account ${context.accountId}.`,
      );
    case "CHATWOOT_UNREACHABLE":
      return error(
        `Chatwoot is unreachable at ${context.baseUrl} - verify chatwootBaseUrl and that the host is reachable from the server.`,
      );
  }
}
