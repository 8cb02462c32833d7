/**
 * Drives the simulator over HTTP and checks what is sent and answered against Chatwoot's own
 * swagger (fixtures/chatwoot-swagger.json). Where the swagger and Chatwoot's code disagree, the
 * simulator follows the code, and the difference is listed below, one line per finding: the test
 * fails both on a new finding and on a listed one that no longer occurs. README.md lists the same
 * differences for readers.
 *
 * The checker is in swagger-checker.ts; contacts, conversations and messages are checked in
 * swagger-messaging.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatwootSimulator, type SimulatedUser, startChatwootSimulator } from "./index.js";
import { check, checkRequest, checkResponse, sorted, swagger } from "./swagger-checker.js";
import { bridgeInboxBody } from "./test-support.js";

// ---------------------------------------------------------------------------------------------
// Known differences (the simulator follows Chatwoot's code; see README.md)

/** Inbox JSON of an API inbox vs. swagger `inbox`, under a path prefix. */
function inboxDifferences(prefix: string): string[] {
  const nullStrings = [
    "website_url",
    "widget_color",
    "website_token",
    "web_widget_script",
    "welcome_title",
    "welcome_tagline",
    "greeting_message",
    "out_of_office_message",
    "callback_webhook_url",
    "business_name",
    "reply_time",
    "messaging_service_sid",
    "phone_number",
    "provider",
  ];
  const nullHours = ["open_hour", "open_minutes", "close_hour", "close_minutes"];
  const undocumented = ["csat_config", "allowed_domains", "hmac_token", "webhook_url", "inbox_identifier"];
  return [
    ...nullStrings.map((key) => `null ${prefix}.${key}: swagger says string, not nullable`),
    `null ${prefix}.selected_feature_flags: swagger says object, not nullable`,
    ...nullHours.map((key) => `null ${prefix}.working_hours[].${key}: swagger says number, not nullable`),
    `missing ${prefix}.medium`,
    ...undocumented.map((key) => `undocumented ${prefix}.${key}`),
    `undocumented ${prefix}.additional_attributes`,
  ];
}

/** Chatwoot's `{"error": "..."}` against swagger's `bad_request_error` (`{description, errors[]}`). */
const ERROR_BODY_DIFFERENCES = ["missing $.description", "missing $.errors", "undocumented $.error"];

const API_CHANNEL_FIELDS_UNDOCUMENTED = [
  "undocumented $.channel.webhook_url",
  "undocumented $.channel.hmac_mandatory",
  "undocumented $.channel.additional_attributes",
];

// ---------------------------------------------------------------------------------------------

const PROFILE = "/api/v1/profile";
const INBOXES = "/api/v1/accounts/{account_id}/inboxes";
const INBOX = "/api/v1/accounts/{account_id}/inboxes/{id}";

let sim: ChatwootSimulator;
let accountId: number;
let admin: SimulatedUser;
let agent: SimulatedUser;

const createBody = bridgeInboxBody;

const updateBody = {
  name: "WhatsApp renamed",
  channel: { webhook_url: "https://bridge.example/chatwoot/webhook/new", hmac_mandatory: true },
};

/** Calls the simulator at the swagger's literal path (template filled in). */
async function call(
  method: string,
  swaggerPath: string,
  params: Record<string, number>,
  token?: string,
  body?: unknown,
) {
  const path = swaggerPath.replace(/\{(\w+)\}/g, (_, name: string) => String(params[name]));
  const res = await fetch(sim.url + path, {
    method,
    headers: {
      ...(token ? { api_access_token: token } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

/** The swagger path as spelled in the file for this method (POST /inboxes/ and GET /inboxes/{id}/). */
function literalPath(method: string, template: string): string {
  const found = Object.keys(swagger.paths).find(
    (p) => p.replace(/\/$/, "") === template && swagger.paths[p]?.[method.toLowerCase()],
  );
  return found ?? template;
}

beforeAll(async () => {
  // The swagger file is Chatwoot's at 4.10-develop (e13e3c87): the simulator plays that version here.
  sim = await startChatwootSimulator({ version: "4.10" });
  accountId = sim.createAccount({ name: "Acme" }).id;
  admin = sim.createUser({ name: "Jane Doe", accounts: [{ accountId, role: "administrator" }] });
  agent = sim.createUser({ name: "Sam Agent", accounts: [{ accountId, role: "agent" }] });
});

afterAll(async () => {
  await sim.close();
});

describe("the checker", () => {
  it("finds type, enum, null, missing and undocumented problems", () => {
    const issues = check(
      { $ref: "#/components/schemas/user" },
      { id: "7", role: "owner", type: null, extra: 1 },
      "present",
    );
    expect(issues).toContain("type $.id: string where swagger says number");
    expect(issues).toContain('enum $.role: "owner" not in swagger enum');
    expect(issues).toContain("missing $.access_token");
    expect(issues).toContain("undocumented $.extra");
    expect(issues).not.toContain("null $.type: swagger says string, not nullable");
    expect(check({ type: "integer" }, null, "present")).toEqual([
      "null $: swagger says integer, not nullable",
    ]);
  });
});

describe("simulator vs. Chatwoot swagger", () => {
  it("GET /api/v1/profile → 200 user", async () => {
    const { status, body } = await call("GET", PROFILE, {}, admin.accessToken);
    expect(status).toBe(200);
    expect(sorted(checkResponse("GET", PROFILE, status, body))).toEqual(
      sorted([
        "null $.inviter_id: swagger says number, not nullable",
        // Rendered only when CHATWOOT_INBOX_HMAC_KEY is configured.
        "missing $.hmac_identifier",
        // Rendered only when the user has custom attributes.
        "missing $.custom_attributes",
      ]),
    );
  });

  it("GET /api/v1/profile → 401 error bodies", async () => {
    const invalid = await call("GET", PROFILE, {}, "not-a-token");
    expect(invalid.status).toBe(401);
    expect(sorted(checkResponse("GET", PROFILE, invalid.status, invalid.body))).toEqual(
      sorted(ERROR_BODY_DIFFERENCES),
    );

    const anonymous = await call("GET", PROFILE, {});
    expect(anonymous.status).toBe(401);
    expect(sorted(checkResponse("GET", PROFILE, anonymous.status, anonymous.body))).toEqual(
      sorted(["missing $.description", "type $.errors[]: string where swagger says object"]),
    );
  });

  it("POST /api/v1/accounts/{account_id}/inboxes/ → request body and 200 inbox", async () => {
    expect(sorted(checkRequest("POST", INBOXES, createBody))).toEqual(
      sorted(API_CHANNEL_FIELDS_UNDOCUMENTED),
    );
    const { status, body } = await call(
      "POST",
      literalPath("POST", INBOXES),
      { account_id: accountId },
      admin.accessToken,
      createBody,
    );
    expect(status).toBe(200);
    expect(sorted(checkResponse("POST", INBOXES, status, body))).toEqual(sorted(inboxDifferences("$")));
  });

  it("POST inboxes → 401 for agents (swagger: 403) and 422 for invalid bodies (undocumented)", async () => {
    const forbidden = await call(
      "POST",
      literalPath("POST", INBOXES),
      { account_id: accountId },
      agent.accessToken,
      createBody,
    );
    expect(forbidden.status).toBe(401);
    expect(checkResponse("POST", INBOXES, forbidden.status, forbidden.body)).toEqual([
      "status 401 not documented (swagger: 200, 403, 404)",
    ]);
    const invalid = await call(
      "POST",
      literalPath("POST", INBOXES),
      { account_id: accountId },
      admin.accessToken,
      {
        channel: { type: "api" },
      },
    );
    expect(invalid.status).toBe(422);
    expect(checkResponse("POST", INBOXES, invalid.status, invalid.body)).toEqual([
      "status 422 not documented (swagger: 200, 403, 404)",
    ]);
  });

  it("GET /api/v1/accounts/{account_id}/inboxes → 200 {payload: inbox[]}", async () => {
    const { status, body } = await call("GET", INBOXES, { account_id: accountId }, admin.accessToken);
    expect(status).toBe(200);
    expect((body as { payload: unknown[] }).payload.length).toBeGreaterThan(0);
    expect(sorted(checkResponse("GET", INBOXES, status, body))).toEqual(
      sorted(inboxDifferences("$.payload[]")),
    );
  });

  it("GET /api/v1/accounts/{account_id}/inboxes/{id}/ → 200 inbox, 404 error body", async () => {
    const inbox = sim.createInbox(accountId, createBody);
    const params = { account_id: accountId, id: inbox["id"] as number };
    const found = await call("GET", literalPath("GET", INBOX), params, admin.accessToken);
    expect(found.status).toBe(200);
    expect(sorted(checkResponse("GET", INBOX, found.status, found.body))).toEqual(
      sorted(inboxDifferences("$")),
    );

    const missing = await call(
      "GET",
      literalPath("GET", INBOX),
      { ...params, id: 987654 },
      admin.accessToken,
    );
    expect(missing.status).toBe(404);
    expect(sorted(checkResponse("GET", INBOX, missing.status, missing.body))).toEqual(
      sorted(ERROR_BODY_DIFFERENCES),
    );
  });

  it("PATCH /api/v1/accounts/{account_id}/inboxes/{id} → request body and 200 inbox", async () => {
    const inbox = sim.createInbox(accountId, createBody);
    const params = { account_id: accountId, id: inbox["id"] as number };
    expect(sorted(checkRequest("PATCH", INBOX, updateBody))).toEqual(
      sorted(["undocumented $.channel.webhook_url", "undocumented $.channel.hmac_mandatory"]),
    );
    const { status, body } = await call(
      "PATCH",
      literalPath("PATCH", INBOX),
      params,
      admin.accessToken,
      updateBody,
    );
    expect(status).toBe(200);
    expect(body).toMatchObject({
      name: updateBody.name,
      webhook_url: updateBody.channel.webhook_url,
      hmac_mandatory: true,
    });
    expect(sorted(checkResponse("PATCH", INBOX, status, body))).toEqual(sorted(inboxDifferences("$")));
  });

  it("DELETE /api/v1/accounts/{account_id}/inboxes/{id} is not in the swagger", async () => {
    const inbox = sim.createInbox(accountId, createBody);
    const { status, body } = await call(
      "DELETE",
      INBOX,
      { account_id: accountId, id: inbox["id"] as number },
      admin.accessToken,
    );
    expect(status).toBe(200);
    expect(body).toEqual({ message: "Your inbox deletion request will be processed in some time." });
    expect(checkResponse("DELETE", INBOX, status, body)).toEqual([
      `operation DELETE ${INBOX} not documented`,
    ]);
  });
});
