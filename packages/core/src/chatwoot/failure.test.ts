import { describe, expect, it } from "vitest";
import {
  type ChatwootFailure,
  ChatwootRequestError,
  classifyChatwootFailure,
  isChatwootHttpError,
  isChatwootNotFound,
  isPermanentMessageRejection,
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
    { kind: "http", method: "POST", url, status: 200, body: "", notChatwoot: true, invalid: "not JSON" },
    400,
    NOT_FOUND,
    `${url} HTTP 200: not a Chatwoot answer (not JSON)`,
  ],
  ["3xx redirect", http(302, ""), 400, NOT_FOUND, `${url} HTTP 302`],
  [
    "422",
    http(422, '{"message":"Name can\'t be blank","attributes":["name"]}'),
    400,
    INVALID,
    `${url} HTTP 422: {"message":"Name can't be blank"}`,
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
  ["401 empty body", http(401, ""), 401, TOKEN, `${url} HTTP 401`],
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
  ["5xx", http(503, "Service Unavailable"), 502, UNREACHABLE, `${url} HTTP 503`],
  ["429", http(429, "Retry later\n"), 502, UNREACHABLE, `${url} HTTP 429`],
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

  it("shows Chatwoot's error message fields in Detail, cut at 200 characters, and nothing else of the body", () => {
    const long = classifyChatwootFailure(http(500, JSON.stringify({ error: "x".repeat(2000) })), context);
    expect(long.message.endsWith(`HTTP 500: ${`{"error":"${"x".repeat(2000)}`.slice(0, 200)}`)).toBe(true);
    // Not JSON: nothing of it (docs/security.md).
    expect(classifyChatwootFailure(http(500, "x".repeat(2000)), context).message).toMatch(/HTTP 500$/);
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

/**
 * A 422 to a message create. messages#create rescues every `StandardError` into 422 `{"error": e.message}`
 * (app/controllers/api/v1/accounts/conversations/messages_controller.rb): its validation of our body, its
 * per-conversation flood guard (`Message#prevent_message_flooding`, app/models/message.rb: 200 messages per
 * conversation per rolling minute, `CONVERSATION_MESSAGE_PER_MINUTE_LIMIT`) and infrastructure errors alike, the
 * latter possibly after the message was committed (`after_create_commit`). conversations#create with a first
 * `message` lets `ActiveRecord::RecordInvalid` through as 422 `{"message", "attributes"}`
 * (app/controllers/concerns/request_exception_handler.rb). Texts from Chatwoot 4.10.0/4.13.0 (see the facts §8).
 */
describe("422 from a message create: permanent only when a retry cannot change it", () => {
  const messagesUrl = "https://cw.example.com/api/v1/accounts/5/conversations/17/messages";
  const conversationsUrl = "https://cw.example.com/api/v1/accounts/5/conversations";
  const rejected = (
    body: unknown,
    at = messagesUrl,
    method = "POST",
  ): Extract<ChatwootFailure, { kind: "http" }> => ({
    kind: "http",
    method,
    url: at,
    status: 422,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

  it.each([
    // app/builders/messages/message_builder.rb#message_type
    ["an incoming message outside an API inbox", "Incoming messages are only allowed in Api inboxes"],
    // ArgumentError of the enums in app/models/message.rb
    ["an unknown message_type", "'foo' is not a valid message_type"],
    ["an unknown content_type", "'bar' is not a valid content_type"],
    // validates :content, length: { maximum: 150_000 } (app/models/message.rb)
    [
      "content over 150,000 characters",
      "Validation failed: Content is too long (maximum is 150000 characters)",
    ],
    // ApplicationRecord#validates_column_content_length (app/models/application_record.rb)
    [
      "a source_id over 20,000 characters",
      "Validation failed: Source id is too long (maximum is 20000 characters)",
    ],
    // app/models/concerns/content_attribute_validator.rb
    [
      "structured content without items",
      "Validation failed: Content attributes At least one item is required.",
    ],
    [
      "structured content with non-hash items",
      "Validation failed: Content attributes Items should be a hash.",
    ],
    [
      "structured content with unknown keys",
      "Validation failed: Content attributes contains invalid keys for items : [:foo]",
    ],
    // JsonSchemaValidator over TEMPLATE_PARAMS_SCHEMA (app/models/concerns/json_schema_validator.rb)
    ["template_params without a name", "Validation failed: Template params name is required"],
    // The flood guard together with a validation of our own body: the body is refused either way.
    [
      "flooded and too long",
      "Validation failed: Too many messages, Content is too long (maximum is 150000 characters)",
    ],
  ])("%s is permanent", (_what, error) => {
    expect(isPermanentMessageRejection(rejected({ error }))).toBe(true);
    expect(isTransientFailure(rejected({ error }))).toBe(false);
  });

  it.each([
    ["the flood guard (200 per conversation per minute)", "Validation failed: Too many messages"],
    [
      "a connection pool timeout",
      "could not obtain a connection from the pool within 5.000 seconds (waited 5.001 seconds); all pooled connections were in use",
    ],
    [
      "Redis down in an after_create_commit callback",
      "Error connecting to Redis on 127.0.0.1:6379 (Errno::ECONNREFUSED)",
    ],
    ["a deadlock", "PG::TRDeadlockDetected: ERROR:  deadlock detected"],
    ["any text this library does not know", "Something else went wrong"],
  ])("%s is retried", (_what, error) => {
    expect(isPermanentMessageRejection(rejected({ error }))).toBe(false);
    expect(isTransientFailure(rejected({ error }))).toBe(true);
  });

  it("reads conversations#create's RecordInvalid body: only the flood guard is retried", () => {
    const flooded = rejected({ message: "Too many messages", attributes: ["base"] }, conversationsUrl);
    expect(isTransientFailure(flooded)).toBe(true);
    const tooLong = rejected(
      { message: "Content is too long (maximum is 150000 characters)", attributes: ["content"] },
      conversationsUrl,
    );
    expect(isTransientFailure(tooLong)).toBe(false);
    // The contact inbox belongs to another contact: a retry of the same body fails the same way.
    expect(isTransientFailure(rejected({ error: "source_id should be unique" }, conversationsUrl))).toBe(
      false,
    );
  });

  it("applies to message creates only: other 422s stay permanent", () => {
    const flood = { error: "Validation failed: Too many messages" };
    expect(isTransientFailure(rejected(flood, "https://cw.example.com/api/v1/accounts/5/contacts"))).toBe(
      false,
    );
    expect(isTransientFailure(rejected(flood, `${messagesUrl}/99`, "PATCH"))).toBe(false);
    expect(isTransientFailure(rejected(flood, messagesUrl, "GET"))).toBe(false);
    expect(isTransientFailure({ ...rejected(flood), status: 400 })).toBe(false);
    // An answer that is not Chatwoot's JSON is not understood: retried, like an unknown text.
    expect(isTransientFailure(rejected("<html>Unprocessable</html>"))).toBe(true);
  });
});
