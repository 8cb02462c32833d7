import { describe, expect, it } from "vitest";
import {
  type ChatwootFailure,
  ChatwootRequestError,
  classifyChatwootFailure,
  describeFailure,
  errorFieldsOf,
  failureClass,
  isChatwootHttpError,
  isChatwootNotFound,
  isChatwootRequestError,
  isPermanentMessageRejection,
  isRetryableMessageRejection,
  isTransientFailure,
} from "./failure.js";

// Boundaries of the failure classification and the guards the routing relies on (mutation testing: docs/testing.md).
const url = "https://cw.example.com/api/v1/accounts/5/inboxes";
const http = (status: number, body = ""): ChatwootFailure => ({
  kind: "http",
  method: "POST",
  url,
  status,
  body,
});
const transport: ChatwootFailure = { kind: "transport", method: "GET", url, cause: "connect ECONNREFUSED" };

describe("failure classification boundaries", () => {
  it.each([
    [299, "CHATWOOT_INVALID_REQUEST"],
    [300, "CHATWOOT_NOT_FOUND"],
    [399, "CHATWOOT_NOT_FOUND"],
    [400, "CHATWOOT_INVALID_REQUEST"],
    [407, "CHATWOOT_INVALID_REQUEST"],
    [408, "CHATWOOT_UNREACHABLE"],
    [499, "CHATWOOT_INVALID_REQUEST"],
    [500, "CHATWOOT_UNREACHABLE"],
    [599, "CHATWOOT_UNREACHABLE"],
  ])("HTTP %i is %s", (status, expected) => {
    expect(failureClass(http(status))).toBe(expected);
  });

  it("says so when the profile lists no account at all", () => {
    const error = classifyChatwootFailure(
      { kind: "account-missing", url: "https://cw.example.com/api/v1/profile", accountIds: [] },
      { baseUrl: "https://cw.example.com", accountId: 5 },
    );
    expect(error.message).toMatch(
      /Detail: https:\/\/cw\.example\.com\/api\/v1\/profile: account not in the token user's accounts \(none\)$/,
    );
  });

  it("keeps the raw failure as the cause of the public error", () => {
    const failure = http(404, "{}");
    const error = classifyChatwootFailure(failure, { baseUrl: "https://cw.example.com", accountId: 5 });
    expect(isChatwootRequestError(error.cause)).toBe(true);
    expect((error.cause as ChatwootRequestError).failure).toBe(failure);
  });
});

describe("failure guards", () => {
  it("recognise a ChatwootRequestError by name and failure, not by class alone", () => {
    expect(isChatwootRequestError(new ChatwootRequestError(http(500)))).toBe(true);
    expect(isChatwootRequestError(new Error("boom"))).toBe(false);
    // Another copy of the library: same name and shape, another class.
    const foreign = Object.assign(new Error("x"), { name: "ChatwootRequestError", failure: http(500) });
    expect(isChatwootRequestError(foreign)).toBe(true);
    expect(isChatwootRequestError(Object.assign(new Error("x"), { name: "ChatwootRequestError" }))).toBe(
      false,
    );
    expect(isChatwootRequestError(Object.assign(new Error("x"), { failure: http(500) }))).toBe(false);
    expect(isChatwootRequestError({ name: "ChatwootRequestError", failure: http(500) })).toBe(false);
  });

  it("match an HTTP status only for HTTP failures with that status", () => {
    expect(isChatwootHttpError(new ChatwootRequestError(http(422)), 422)).toBe(true);
    expect(isChatwootHttpError(new ChatwootRequestError(http(422)), 404)).toBe(false);
    expect(isChatwootHttpError(new ChatwootRequestError(transport), 422)).toBe(false);
    expect(isChatwootHttpError(new Error("422"), 422)).toBe(false);
    expect(isChatwootNotFound(new ChatwootRequestError(http(404)))).toBe(true);
    expect(isChatwootNotFound(new ChatwootRequestError(http(410)))).toBe(false);
  });
});

describe("what Detail shows of an answer", () => {
  it("only Chatwoot's error message fields of a JSON object, in the order error, message, errors", () => {
    expect(errorFieldsOf("<html>Not Found</html>")).toBe("");
    expect(errorFieldsOf("[1,2]")).toBe("");
    expect(errorFieldsOf("null")).toBe("");
    expect(errorFieldsOf('"text"')).toBe("");
    expect(errorFieldsOf('{"status":"x","data":{"id":1}}')).toBe("");
    expect(errorFieldsOf('{"errors":["b"],"id":7,"message":"m","error":"e"}')).toBe(
      '{"error":"e","message":"m","errors":["b"]}',
    );
  });

  it("without any key naming a token, secret or password, at any depth", () => {
    const body = {
      error: "bad",
      errors: {
        api_access_token: "t1",
        Webhook_SECRET: "s1",
        name: ["too long"],
        nested: [{ password: "p1", ok: 1 }],
      },
      access_token: "top-level keys outside the fields are not shown anyway",
    };
    expect(errorFieldsOf(JSON.stringify(body))).toBe(
      '{"error":"bad","errors":{"name":["too long"],"nested":[{"ok":1}]}}',
    );
  });

  it("a few levels deep only: deeper objects and arrays are shown empty", () => {
    const deep = { error: { a: { b: { c: { d: { e: { f: 1 } } } } } } };
    expect(errorFieldsOf(JSON.stringify(deep))).toBe('{"error":{"a":{"b":{"c":{"d":{"e":{}}}}}}}');
    const arrays = { errors: [[[[[[1]]]]]] };
    expect(errorFieldsOf(JSON.stringify(arrays))).toBe('{"errors":[[[[[[]]]]]]}');
    const mixed = { errors: [{ a: [{ b: [{ c: 1 }] }] }] };
    expect(errorFieldsOf(JSON.stringify(mixed))).toBe('{"errors":[{"a":[{"b":[{}]}]}]}');
  });

  it("cut to 200 characters", () => {
    const shown = errorFieldsOf(JSON.stringify({ error: "x".repeat(300) }));
    expect(shown).toHaveLength(200);
    expect(shown.startsWith('{"error":"xxx')).toBe(true);
  });

  it("for an answer that is not Chatwoot's: what was wrong with it, never its content", () => {
    const failure = (invalid?: string): ChatwootFailure => ({
      kind: "http",
      method: "GET",
      url,
      status: 200,
      body: '{"error":"hidden"}',
      notChatwoot: true,
      ...(invalid === undefined ? {} : { invalid }),
    });
    expect(describeFailure(failure("not JSON"))).toBe(`${url} HTTP 200: not a Chatwoot answer (not JSON)`);
    expect(describeFailure(failure())).toBe(`${url} HTTP 200: not a Chatwoot answer (unexpected content)`);
    expect(describeFailure(failure("y".repeat(300)))).toBe(
      `${url} HTTP 200: not a Chatwoot answer (${"y".repeat(200)})`,
    );
  });

  it("nothing after the status when the answer has no error fields", () => {
    expect(describeFailure(http(502, "<html>Bad Gateway</html>"))).toBe(`${url} HTTP 502`);
  });
});

describe("422 to a message create", () => {
  const messages = "https://cw.example.com/api/v1/accounts/12/conversations/345/messages";
  const rejected = (
    body: unknown,
    patch: Partial<Extract<ChatwootFailure, { kind: "http" }>> = {},
  ): ChatwootFailure => ({
    kind: "http",
    method: "POST",
    url: messages,
    status: 422,
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...patch,
  });

  it("is permanent only for an HTTP 422 whose JSON names the validation of our own body", () => {
    expect(isPermanentMessageRejection(transport)).toBe(false);
    expect(isPermanentMessageRejection(rejected({ error: "Validation failed: x" }, { status: 400 }))).toBe(
      false,
    );
    expect(isPermanentMessageRejection(rejected("not json"))).toBe(false);
    expect(isPermanentMessageRejection(rejected("null"))).toBe(false);
    expect(isPermanentMessageRejection(rejected('"Validation failed: x"'))).toBe(false);
    expect(isPermanentMessageRejection(rejected({ error: 5 }))).toBe(false);
    expect(isPermanentMessageRejection(rejected({ message: "Name is too long" }))).toBe(false);
    expect(isPermanentMessageRejection(rejected({ message: "Name is too long", attributes: ["name"] }))).toBe(
      true,
    );
    expect(isPermanentMessageRejection(rejected({ message: "Too many messages", attributes: [] }))).toBe(
      false,
    );
    expect(isPermanentMessageRejection(rejected({ message: 5, attributes: [] }))).toBe(false);
    expect(isPermanentMessageRejection(rejected({ error: "source_id should be unique" }))).toBe(true);
    expect(isPermanentMessageRejection(rejected({ error: "Validation failed: Content is too long" }))).toBe(
      true,
    );
    expect(isPermanentMessageRejection(rejected({ error: "Validation failed: Too many messages" }))).toBe(
      false,
    );
  });

  it("matches Chatwoot's own refusals exactly, not texts that merely contain them", () => {
    const permanent = (error: string) => isPermanentMessageRejection(rejected({ error }));
    expect(permanent("Incoming messages are only allowed in Api inboxes")).toBe(true);
    expect(permanent("Error: Incoming messages are only allowed in Api inboxes")).toBe(false);
    expect(permanent("Incoming messages are only allowed in Api inboxes, says the log")).toBe(false);
    expect(permanent("'bogus' is not a valid message_type")).toBe(true);
    expect(permanent("'two\nlines' is not a valid content_type")).toBe(true);
    expect(permanent("x 'bogus' is not a valid message_type")).toBe(false);
    expect(permanent("'bogus' is not a valid message_type!")).toBe(false);
    expect(permanent("PG::ConnectionBad: could not connect")).toBe(false);
  });

  it("is retried when it may succeed later: a POST to messages or conversations, not our body's validation", () => {
    const redis = { error: "Redis::CannotConnectError" };
    expect(isRetryableMessageRejection(rejected(redis))).toBe(true);
    expect(isTransientFailure(rejected(redis))).toBe(true);
    expect(isRetryableMessageRejection(rejected({ error: "Validation failed: Content is too long" }))).toBe(
      false,
    );
    expect(isTransientFailure(rejected({ error: "Validation failed: Content is too long" }))).toBe(false);
    for (const target of [
      "https://cw.example.com/api/v1/accounts/1/conversations",
      "https://cw.example.com/api/v1/accounts/1/conversations/",
      "https://cw.example.com/api/v1/accounts/12/conversations/345/messages/",
      "https://cw.example.com/api/v1/accounts/12/conversations/345/messages?ab=1",
      "https://cw.example.com/api/v1/accounts/12/conversations?x",
    ])
      expect(isRetryableMessageRejection(rejected(redis, { url: target })), target).toBe(true);
    for (const target of [
      "https://cw.example.com/api/v1/accounts/12/contacts",
      "https://cw.example.com/api/v1/accounts/12/conversations/345/messages/9/retry",
      "https://cw.example.com/api/v1/accounts/x/conversations",
    ])
      expect(isRetryableMessageRejection(rejected(redis, { url: target })), target).toBe(false);
    expect(isRetryableMessageRejection(rejected(redis, { method: "PATCH" }))).toBe(false);
    expect(isRetryableMessageRejection(rejected(redis, { status: 500 }))).toBe(false);
    expect(isRetryableMessageRejection(transport)).toBe(false);
  });
});
