import { describe, expect, it } from "vitest";
import {
  type ChatwootFailure,
  ChatwootRequestError,
  classifyChatwootFailure,
  isChatwootHttpError,
  isChatwootNotFound,
  isTransientFailure,
} from "./failure.js";

const context = { baseUrl: "https://cw.example.com", accountId: 5 };
const url = "https://cw.example.com/api/v1/accounts/5/inboxes";
const http = (status: number, body: string, notChatwoot = false): ChatwootFailure => ({
  kind: "http",
  method: "POST",
  url,
  status,
  body,
  ...(notChatwoot ? { notChatwoot } : {}),
});
const transport = (cause: string, code?: string): ChatwootFailure => ({
  kind: "transport",
  method: "POST",
  url,
  cause,
  ...(code ? { code } : {}),
});

const NOT_FOUND =
  "Chatwoot account or endpoint not found - verify chatwootBaseUrl (https://cw.example.com) and chatwootAccountId (5). Detail: ";
const INVALID =
  "Chatwoot rejected the request as invalid - verify inboxName and the Chatwoot account settings. Detail: ";
const TOKEN = "Chatwoot rejected the API token - verify chatwootApiToken. Detail: ";
const FORBIDDEN = "Chatwoot denied the request - verify the API token has admin scope on account 5. Detail: ";
const UNREACHABLE =
  "Chatwoot is unreachable at https://cw.example.com - verify chatwootBaseUrl and that the host is reachable from the server. Detail: ";

// One row per line of the error table in docs/http-api.md.
const rows: Array<[string, ChatwootFailure, number, string, string]> = [
  [
    "404",
    http(404, '{"error":"Resource could not be found"}'),
    400,
    NOT_FOUND,
    `${url} HTTP 404: {"error":"Resource could not be found"}`,
  ],
  [
    "401 foreign account",
    http(401, '{"error":"You are not authorized to access this account"}'),
    400,
    NOT_FOUND,
    `${url} HTTP 401: {"error":"You are not authorized to access this account"}`,
  ],
  [
    "account missing from profile",
    { kind: "account-missing", url: "https://cw.example.com/api/v1/profile", accountIds: [1, 2] },
    400,
    NOT_FOUND,
    "https://cw.example.com/api/v1/profile: account not in the token user's accounts (1, 2)",
  ],
  [
    "2xx that is not Chatwoot JSON",
    http(200, "<html>hello</html>", true),
    400,
    NOT_FOUND,
    `${url} HTTP 200: <html>hello</html>`,
  ],
  ["3xx redirect", http(302, ""), 400, NOT_FOUND, `${url} HTTP 302: `],
  [
    "422",
    http(422, '{"message":"Name can\'t be blank","attributes":["name"]}'),
    400,
    INVALID,
    `${url} HTTP 422: {"message":"Name can't be blank","attributes":["name"]}`,
  ],
  [
    "402 plan limit",
    http(402, '{"error":"Account limit exceeded. Upgrade to a higher plan"}'),
    400,
    INVALID,
    `${url} HTTP 402: {"error":"Account limit exceeded. Upgrade to a higher plan"}`,
  ],
  ["400", http(400, '{"error":"bad"}'), 400, INVALID, `${url} HTTP 400: {"error":"bad"}`],
  [
    "401 invalid token",
    http(401, '{"error":"Invalid Access Token"}'),
    401,
    TOKEN,
    `${url} HTTP 401: {"error":"Invalid Access Token"}`,
  ],
  [
    "401 unrecognised body",
    http(401, '{"errors":["You need to sign in or sign up before continuing."]}'),
    401,
    TOKEN,
    `${url} HTTP 401: {"errors":["You need to sign in or sign up before continuing."]}`,
  ],
  ["401 empty body", http(401, ""), 401, TOKEN, `${url} HTTP 401: `],
  [
    "role is not administrator",
    { kind: "not-admin", url: "https://cw.example.com/api/v1/profile", role: "agent" },
    403,
    FORBIDDEN,
    'https://cw.example.com/api/v1/profile: role in the account is "agent", not "administrator"',
  ],
  [
    "401 pundit refusal",
    http(401, '{"error":"You are not authorized to do this action"}'),
    403,
    FORBIDDEN,
    `${url} HTTP 401: {"error":"You are not authorized to do this action"}`,
  ],
  ["403", http(403, '{"error":"no"}'), 403, FORBIDDEN, `${url} HTTP 403: {"error":"no"}`],
  [
    "connection refused",
    transport("connect ECONNREFUSED 127.0.0.1:9", "ECONNREFUSED"),
    502,
    UNREACHABLE,
    `POST "${url}": connect ECONNREFUSED 127.0.0.1:9`,
  ],
  [
    "DNS failure",
    transport("getaddrinfo ENOTFOUND cw.example.com", "ENOTFOUND"),
    502,
    UNREACHABLE,
    `POST "${url}": getaddrinfo ENOTFOUND cw.example.com`,
  ],
  [
    "connection reset",
    transport("other side closed", "UND_ERR_SOCKET"),
    502,
    UNREACHABLE,
    `POST "${url}": other side closed`,
  ],
  [
    "TLS failure",
    transport("unable to verify the first certificate", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
    502,
    UNREACHABLE,
    `POST "${url}": unable to verify the first certificate`,
  ],
  [
    "timeout",
    transport("timed out after 15000ms", "TIMEOUT"),
    502,
    UNREACHABLE,
    `POST "${url}": timed out after 15000ms`,
  ],
  ["5xx", http(503, "Service Unavailable"), 502, UNREACHABLE, `${url} HTTP 503: Service Unavailable`],
  ["429", http(429, "Retry later\n"), 502, UNREACHABLE, `${url} HTTP 429: Retry later\n`],
  [
    "activation deadline",
    { kind: "deadline", seconds: 60 },
    502,
    UNREACHABLE,
    "activation timed out after 60s",
  ],
];

describe("classifyChatwootFailure", () => {
  it.each(rows)("%s", (_name, failure, status, prefix, detail) => {
    const error = classifyChatwootFailure(failure, context);
    expect(error.status).toBe(status);
    expect(error.message).toBe(`${prefix}${detail}`);
  });

  it("cuts the response body in Detail at 500 characters", () => {
    const error = classifyChatwootFailure(http(500, "x".repeat(2000)), context);
    expect(error.message.endsWith(`HTTP 500: ${"x".repeat(500)}`)).toBe(true);
  });

  it("marks network trouble, 5xx, 408 and 429 as transient and other 4xx as permanent", () => {
    expect(isTransientFailure(transport("reset", "ECONNRESET"))).toBe(true);
    expect(isTransientFailure(http(502, ""))).toBe(true);
    expect(isTransientFailure(http(429, ""))).toBe(true);
    expect(isTransientFailure(http(408, ""))).toBe(true);
    expect(isTransientFailure(http(422, ""))).toBe(false);
    expect(isTransientFailure(http(404, ""))).toBe(false);
    expect(isTransientFailure(http(401, '{"error":"Invalid Access Token"}'))).toBe(false);
  });
});

describe("isChatwootNotFound / isChatwootHttpError", () => {
  it("are true only for a ChatwootRequestError whose HTTP answer had that status", () => {
    expect(isChatwootNotFound(new ChatwootRequestError(http(404, "")))).toBe(true);
    expect(isChatwootNotFound(new ChatwootRequestError(http(422, "")))).toBe(false);
    expect(isChatwootNotFound(new ChatwootRequestError(transport("reset", "ECONNRESET")))).toBe(false);
    expect(isChatwootNotFound(new Error("HTTP 404"))).toBe(false);
    expect(isChatwootHttpError(new ChatwootRequestError(http(422, "")), 422)).toBe(true);
    expect(isChatwootHttpError(new ChatwootRequestError(http(422, "")), 404)).toBe(false);
  });
});
