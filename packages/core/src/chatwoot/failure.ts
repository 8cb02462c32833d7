import { BridgeError } from "../errors/index.js";

/** What went wrong talking to Chatwoot, before it is turned into a public error. */
export type ChatwootFailure =
  | {
      kind: "http";
      method: string;
      url: string;
      status: number;
      /** Response body text (truncated). */
      body: string;
      /** True when a 2xx answer was not the Chatwoot JSON we expected (wrong URL, an HTML page). */
      notChatwoot?: boolean;
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

const MAX_BODY = 500;

/** The `Detail:` text of the contract: the raw root cause, never a secret (tokens travel in headers only). */
export function describeFailure(failure: ChatwootFailure): string {
  switch (failure.kind) {
    case "http":
      return `${failure.url} HTTP ${failure.status}: ${failure.body.slice(0, MAX_BODY)}`;
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

/** Whether retrying later may succeed (network trouble, 5xx, 429, 408); everything else is permanent. */
export function isTransientFailure(failure: ChatwootFailure): boolean {
  return failureClass(failure) === "CHATWOOT_UNREACHABLE";
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
