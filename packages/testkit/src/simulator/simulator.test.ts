import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, type SimulatedUser, startChatwootSimulator } from "./index.js";
import * as support from "./test-support.js";

let sim: ChatwootSimulator;
let accountId: number;
let otherAccountId: number;
let admin: SimulatedUser;
let agent: SimulatedUser;
let outsider: SimulatedUser;

async function call(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const reply = await support.call(sim, method, path, options);
  return { ...reply, contentType: reply.headers.get("content-type") };
}

const bridgeInbox = support.bridgeInboxBody;

const inboxesPath = () => `/api/v1/accounts/${accountId}/inboxes`;

async function createInbox(body: unknown = bridgeInbox) {
  const reply = await call("POST", inboxesPath(), { token: admin.accessToken, body });
  expect(reply.status).toBe(200);
  return reply.json as Record<string, unknown> & { id: number };
}

beforeEach(async () => {
  sim = await startChatwootSimulator();
  accountId = sim.createAccount({ name: "Acme" }).id;
  otherAccountId = sim.createAccount({ name: "Other" }).id;
  admin = sim.createUser({
    name: "Jane Doe",
    email: "Jane@Acme.test",
    availableName: "Jane",
    accounts: [{ accountId, role: "administrator" }],
  });
  agent = sim.createUser({ name: "Sam Agent", accounts: [{ accountId, role: "agent" }] });
  outsider = sim.createUser({
    name: "Olga Outside",
    accounts: [{ accountId: otherAccountId, role: "administrator" }],
  });
});

afterEach(async () => {
  await sim.close();
});

describe("GET /api/v1/profile", () => {
  it("returns the token's user as Chatwoot renders it", async () => {
    const reply = await call("GET", "/api/v1/profile", { token: admin.accessToken });
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe("application/json; charset=utf-8");
    const profile = reply.json as Record<string, unknown>;
    expect(Object.keys(profile)).toEqual([
      "access_token",
      "account_id",
      "available_name",
      "avatar_url",
      "confirmed",
      "display_name",
      "message_signature",
      "email",
      "id",
      "inviter_id",
      "name",
      "provider",
      "pubsub_token",
      "role",
      "ui_settings",
      "uid",
      "type",
      "accounts",
    ]);
    expect(profile).toMatchObject({
      access_token: admin.accessToken,
      account_id: accountId,
      available_name: "Jane",
      display_name: "Jane",
      email: "jane@acme.test",
      uid: "jane@acme.test",
      id: admin.id,
      name: "Jane Doe",
      pubsub_token: admin.pubsubToken,
      role: "administrator",
      type: null,
      accounts: [
        {
          id: accountId,
          name: "Acme",
          status: "active",
          role: "administrator",
          permissions: ["administrator"],
          availability: "online",
          availability_status: "online",
          auto_offline: true,
          custom_role_id: null,
          custom_role: null,
        },
      ],
    });
    expect(admin.accessToken).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    expect(admin.pubsubToken).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    expect(admin.accessToken).not.toBe(agent.accessToken);
  });

  it("lists every account with its role; top-level role is the active (last joined) account's", async () => {
    sim.setAccountRole(otherAccountId, agent.id, "administrator");
    const profile = (await call("GET", "/api/v1/profile", { token: agent.accessToken })).json as {
      account_id: number;
      role: string;
      available_name: string;
      accounts: Array<{ id: number; role: string; permissions: string[] }>;
    };
    expect(profile.available_name).toBe("Sam Agent");
    expect(profile.accounts.map((a) => [a.id, a.role, a.permissions])).toEqual([
      [accountId, "agent", ["agent"]],
      [otherAccountId, "administrator", ["administrator"]],
    ]);
    expect(profile).toMatchObject({ account_id: otherAccountId, role: "administrator" });
  });

  it("renders custom_attributes only when present", async () => {
    const user = sim.createUser({
      name: "Custom",
      customAttributes: { phone_number: "+15550100" },
      accounts: [],
    });
    const profile = (await call("GET", "/api/v1/profile", { token: user.accessToken })).json;
    expect(profile).toMatchObject({
      custom_attributes: { phone_number: "+15550100" },
      accounts: [],
      role: null,
    });
  });
});

describe("authentication (§0 error bodies)", () => {
  it("answers devise's 401 without an api_access_token header", async () => {
    const reply = await call("GET", "/api/v1/profile");
    expect(reply).toMatchObject({
      status: 401,
      json: { errors: ["You need to sign in or sign up before continuing."] },
    });
  });

  it("does not accept Authorization: Bearer", async () => {
    const reply = await call("GET", "/api/v1/profile", {
      headers: { authorization: `Bearer ${admin.accessToken}` },
    });
    expect(reply).toMatchObject({
      status: 401,
      json: { errors: ["You need to sign in or sign up before continuing."] },
    });
  });

  it("answers Invalid Access Token for an unknown token", async () => {
    const reply = await call("GET", inboxesPath(), { token: "nope" });
    expect(reply).toMatchObject({ status: 401, json: { error: "Invalid Access Token" } });
  });

  it("accepts the header spelled api-access-token too (Rack maps both to HTTP_API_ACCESS_TOKEN)", async () => {
    const reply = await call("GET", "/api/v1/profile", {
      headers: { "api-access-token": admin.accessToken },
    });
    expect(reply.status).toBe(200);
  });

  it("answers 404 for an unknown account, before membership", async () => {
    const reply = await call("GET", "/api/v1/accounts/999/inboxes", { token: admin.accessToken });
    expect(reply).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
  });

  it("answers 401 for an account the user is not a member of", async () => {
    const reply = await call("GET", inboxesPath(), { token: outsider.accessToken });
    expect(reply).toMatchObject({
      status: 401,
      json: { error: "You are not authorized to access this account" },
    });
  });

  it("answers 401 Account is suspended", async () => {
    sim.setAccountStatus(accountId, "suspended");
    const reply = await call("GET", inboxesPath(), { token: admin.accessToken });
    expect(reply).toMatchObject({ status: 401, json: { error: "Account is suspended" } });
  });

  it("answers Rails' JSON 404 for unknown routes and methods", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/nothing-here"],
      ["DELETE", "/api/v1/profile"],
      ["GET", `/api/v1/accounts/${accountId}/contacts`],
    ] as const) {
      const reply = await call(method, path, { token: admin.accessToken });
      expect(reply).toMatchObject({ status: 404, json: { status: 404, error: "Not Found" } });
    }
  });

  it("answers 400 for a JSON body that does not parse", async () => {
    const reply = await call("POST", inboxesPath(), { token: admin.accessToken, body: "{not json" });
    expect(reply).toMatchObject({ status: 400, json: { status: 400, error: "Bad Request" } });
  });
});

describe("tokens", () => {
  it("rotatePubsubToken changes the profile's pubsub_token", async () => {
    const next = sim.rotatePubsubToken(admin.id);
    expect(next).not.toBe(admin.pubsubToken);
    const profile = (await call("GET", "/api/v1/profile", { token: admin.accessToken })).json;
    expect(profile).toMatchObject({ pubsub_token: next });
    expect(sim.getUser(admin.id)?.pubsubToken).toBe(next);
  });

  it("revokeAccessToken makes the old token invalid and returns a working new one", async () => {
    const next = sim.revokeAccessToken(admin.id);
    expect(await call("GET", "/api/v1/profile", { token: admin.accessToken })).toMatchObject({
      status: 401,
      json: { error: "Invalid Access Token" },
    });
    expect(await call("GET", "/api/v1/profile", { token: next })).toMatchObject({
      status: 200,
      json: { access_token: next },
    });
  });
});

describe("POST /api/v1/accounts/{account_id}/inboxes", () => {
  it("creates an API inbox and returns every key of Chatwoot's inbox JSON", async () => {
    const reply = await call("POST", inboxesPath(), { token: admin.accessToken, body: bridgeInbox });
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe("application/json; charset=utf-8");
    const inbox = reply.json as Record<string, unknown>;
    expect(Object.keys(inbox)).toEqual([
      "id",
      "avatar_url",
      "channel_id",
      "name",
      "channel_type",
      "greeting_enabled",
      "greeting_message",
      "working_hours_enabled",
      "enable_email_collect",
      "csat_survey_enabled",
      "csat_config",
      "enable_auto_assignment",
      "auto_assignment_config",
      "out_of_office_message",
      "working_hours",
      "timezone",
      "callback_webhook_url",
      "allow_messages_after_resolved",
      "lock_to_single_conversation",
      "sender_name_type",
      "business_name",
      "allowed_domains",
      "widget_color",
      "website_url",
      "hmac_mandatory",
      "welcome_title",
      "welcome_tagline",
      "web_widget_script",
      "website_token",
      "selected_feature_flags",
      "reply_time",
      "messaging_service_sid",
      "phone_number",
      "hmac_token",
      // 4.13 (the default version): the webhook-signing secret, administrators only (`_inbox.json.jbuilder`).
      "secret",
      "webhook_url",
      "inbox_identifier",
      "additional_attributes",
      "provider",
    ]);
    expect(inbox).toMatchObject({
      name: "WhatsApp +1 555 0100",
      channel_type: "Channel::Api",
      lock_to_single_conversation: true,
      allow_messages_after_resolved: true,
      enable_auto_assignment: true,
      enable_email_collect: true,
      greeting_enabled: false,
      timezone: "UTC",
      sender_name_type: "friendly",
      hmac_mandatory: false,
      webhook_url: "https://bridge.example/chatwoot/webhook/abc",
      additional_attributes: { agent_reply_time_window: 24 },
      callback_webhook_url: null,
      provider: null,
    });
    expect(inbox["inbox_identifier"]).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    expect(inbox["hmac_token"]).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    expect(inbox["secret"]).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    expect(inbox["working_hours"]).toHaveLength(7);
    expect(sim.getInbox(accountId, inbox["id"] as number)).toEqual(inbox);
  });

  it("applies Chatwoot's defaults and casts form-style values", async () => {
    const inbox = await createInbox({
      name: "Plain",
      greeting_message: "null",
      greeting_enabled: "true",
      enable_email_collect: "0",
      channel: { type: "api" },
    });
    expect(inbox).toMatchObject({
      greeting_message: null,
      greeting_enabled: true,
      enable_email_collect: false,
      lock_to_single_conversation: false,
      webhook_url: null,
      hmac_mandatory: false,
      additional_attributes: {},
    });
  });

  it("refuses agents with Pundit's 401", async () => {
    const reply = await call("POST", inboxesPath(), { token: agent.accessToken, body: bridgeInbox });
    expect(reply).toMatchObject({ status: 401, json: { error: "You are not authorized to do this action" } });
    expect(sim.inboxes(accountId)).toEqual([]);
  });

  it.each([
    [
      "a missing name",
      { channel: { type: "api" } },
      "Name can't be blank, Name should not start or end with symbols, and it should not have < > / \\\\ @ characters.",
      ["name"],
    ],
    [
      "a name ending in a symbol",
      { name: "WhatsApp (Sales)", channel: { type: "api" } },
      "Name should not start or end with symbols, and it should not have < > / \\\\ @ characters.",
      ["name"],
    ],
    [
      "an unknown channel type",
      { name: "X", channel: { type: "pigeon" } },
      "Channel must exist",
      ["channel"],
    ],
    [
      "an unknown timezone",
      { name: "X", timezone: "Mars/Olympus", channel: { type: "api" } },
      "Timezone is not included in the list",
      ["timezone"],
    ],
    [
      "a too long webhook_url",
      { name: "X", channel: { type: "api", webhook_url: `https://x.test/${"a".repeat(2048)}` } },
      "Webhook url is too long (maximum is 2048 characters)",
      ["webhook_url"],
    ],
  ])("answers 422 for %s", async (_, body, message, attributes) => {
    const reply = await call("POST", inboxesPath(), { token: admin.accessToken, body });
    expect(reply).toMatchObject({ status: 422, json: { message, attributes } });
    expect(sim.inboxes(accountId)).toEqual([]);
  });

  it("answers 422 for channel types Chatwoot has but the simulator does not", async () => {
    const reply = await call("POST", inboxesPath(), {
      token: admin.accessToken,
      body: { name: "Widget", channel: { type: "web_widget", website_url: "https://acme.test" } },
    });
    expect(reply.status).toBe(422);
    expect(reply.json).toMatchObject({ attributes: ["channel"] });
  });

  it("answers 500 where Chatwoot raises (no channel object, invalid enum)", async () => {
    for (const body of [{ name: "X" }, { name: "X", sender_name_type: "loud", channel: { type: "api" } }]) {
      const reply = await call("POST", inboxesPath(), { token: admin.accessToken, body });
      expect(reply).toMatchObject({ status: 500, json: { status: 500, error: "Internal Server Error" } });
    }
  });
});

describe("GET /api/v1/accounts/{account_id}/inboxes[/{id}]", () => {
  it("lists inboxes ordered by name, wrapped in payload", async () => {
    const b = await createInbox({ ...bridgeInbox, name: "beta" });
    const a = await createInbox({ ...bridgeInbox, name: "Alpha" });
    const reply = await call("GET", inboxesPath(), { token: admin.accessToken });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ payload: [a, b] });
    expect(sim.inboxes(accountId)).toEqual([a, b]);
  });

  it("shows agents only inboxes they are members of, without hmac_token and secret", async () => {
    const member = await createInbox({ ...bridgeInbox, name: "Member" });
    await createInbox({ ...bridgeInbox, name: "Hidden" });
    expect((await call("GET", inboxesPath(), { token: agent.accessToken })).json).toEqual({ payload: [] });

    sim.addInboxMember(member.id, agent.id);
    const { hmac_token: _, secret: __, ...agentView } = member;
    expect((await call("GET", inboxesPath(), { token: agent.accessToken })).json).toEqual({
      payload: [agentView],
    });
    expect((await call("GET", `${inboxesPath()}/${member.id}`, { token: agent.accessToken })).json).toEqual(
      agentView,
    );
  });

  it("gets one inbox (also with a trailing slash and Ruby-style id casting)", async () => {
    const inbox = await createInbox();
    for (const suffix of [`${inbox.id}`, `${inbox.id}/`, `${inbox.id}abc`]) {
      const reply = await call("GET", `${inboxesPath()}/${suffix}`, { token: admin.accessToken });
      expect(reply).toMatchObject({ status: 200, json: inbox });
    }
  });

  it("answers 404 for unknown inboxes and inboxes of other accounts, 401 for agents who are not members", async () => {
    const inbox = await createInbox();
    const foreign = sim.createInbox(otherAccountId, { name: "Foreign", channel: { type: "api" } });
    for (const id of [999, foreign["id"]]) {
      const reply = await call("GET", `${inboxesPath()}/${id}`, { token: admin.accessToken });
      expect(reply).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
    }
    const reply = await call("GET", `${inboxesPath()}/${inbox.id}`, { token: agent.accessToken });
    expect(reply).toMatchObject({ status: 401, json: { error: "You are not authorized to do this action" } });
  });
});

describe("PATCH /api/v1/accounts/{account_id}/inboxes/{id}", () => {
  it("updates inbox and API-channel attributes; channel.type is ignored", async () => {
    const inbox = await createInbox();
    const reply = await call("PATCH", `${inboxesPath()}/${inbox.id}`, {
      token: admin.accessToken,
      body: {
        name: "WhatsApp renamed",
        lock_to_single_conversation: false,
        channel: { type: "web_widget", webhook_url: "https://bridge.example/new", additional_attributes: {} },
        working_hours: [{ day_of_week: 0, closed_all_day: false, open_hour: 10 }],
      },
    });
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({
      id: inbox.id,
      name: "WhatsApp renamed",
      channel_type: "Channel::Api",
      lock_to_single_conversation: false,
      webhook_url: "https://bridge.example/new",
      additional_attributes: {},
      inbox_identifier: inbox["inbox_identifier"],
      hmac_token: inbox["hmac_token"],
      working_hours: expect.arrayContaining([
        expect.objectContaining({ day_of_week: 0, closed_all_day: false, open_hour: 10 }),
      ]),
    });
    expect(sim.getInbox(accountId, inbox.id)).toEqual(reply.json);
  });

  it("accepts PUT as well", async () => {
    const inbox = await createInbox();
    const reply = await call("PUT", `${inboxesPath()}/${inbox.id}`, {
      token: admin.accessToken,
      body: { name: "Put" },
    });
    expect(reply).toMatchObject({ status: 200, json: { name: "Put" } });
  });

  it("answers 401 to agents (even members), 404 for unknown ids, 422 for invalid values", async () => {
    const inbox = await createInbox();
    sim.addInboxMember(inbox.id, agent.id);
    expect(
      await call("PATCH", `${inboxesPath()}/${inbox.id}`, { token: agent.accessToken, body: { name: "No" } }),
    ).toMatchObject({ status: 401, json: { error: "You are not authorized to do this action" } });
    expect(
      await call("PATCH", `${inboxesPath()}/4242`, { token: admin.accessToken, body: { name: "No" } }),
    ).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
    expect(
      await call("PATCH", `${inboxesPath()}/${inbox.id}`, { token: admin.accessToken, body: { name: "" } }),
    ).toMatchObject({ status: 422, json: { attributes: ["name"] } });
    expect(sim.getInbox(accountId, inbox.id)).toMatchObject({ name: bridgeInbox.name });
  });
});

describe("DELETE /api/v1/accounts/{account_id}/inboxes/{id}", () => {
  it("deletes at once and answers Chatwoot's message", async () => {
    const inbox = await createInbox();
    const reply = await call("DELETE", `${inboxesPath()}/${inbox.id}`, { token: admin.accessToken });
    expect(reply).toMatchObject({
      status: 200,
      json: { message: "Your inbox deletion request will be processed in some time." },
    });
    expect(sim.inboxes(accountId)).toEqual([]);
    expect((await call("GET", `${inboxesPath()}/${inbox.id}`, { token: admin.accessToken })).status).toBe(
      404,
    );
  });

  it("answers 401 to agents", async () => {
    const inbox = await createInbox();
    sim.addInboxMember(inbox.id, agent.id);
    const reply = await call("DELETE", `${inboxesPath()}/${inbox.id}`, { token: agent.accessToken });
    expect(reply).toMatchObject({ status: 401, json: { error: "You are not authorized to do this action" } });
    expect(sim.inboxes(accountId)).toHaveLength(1);
  });
});

describe("seeding helpers", () => {
  it("createInbox applies the same rules as the HTTP route", () => {
    const inbox = sim.createInbox(accountId, bridgeInbox);
    expect(inbox).toMatchObject({ name: bridgeInbox.name, webhook_url: bridgeInbox.channel.webhook_url });
    expect(() => sim.createInbox(accountId, { channel: { type: "api" } })).toThrow(/Name can't be blank/);
  });

  it("refuses misuse loudly", () => {
    expect(() => sim.createUser({ name: "Dup", email: "jane@acme.test" })).toThrow(/already taken/);
    expect(() => sim.createUser({ name: "X", accounts: [{ accountId: 99, role: "agent" }] })).toThrow(
      /no account/,
    );
    expect(() => sim.rotatePubsubToken(999)).toThrow(/no user/);
  });
});
