/**
 * Contacts, conversations and messages against Chatwoot's swagger, like swagger.test.ts does for
 * the profile and inboxes (same checker, same rule: every difference is listed, and the test fails
 * on a new one and on a listed one that no longer occurs). README.md explains each difference.
 *
 * The scenario is fixed so every shape occurs: Alice (no email) with a conversation holding her
 * incoming message, an agent's self-assignment (an activity message without sender) and an agent
 * reply; Bob, a contact without activity. Tests only add records they alone look at.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "./index.js";
import { checkRequest, checkResponse, sorted } from "./swagger-checker.js";
import { type AnyJson, call, type Seed, seed } from "./test-support.js";

const A = "/api/v1/accounts/{account_id}";
const CONTACTS = `${A}/contacts`;
const CONTACT = `${A}/contacts/{id}`;
const CONTACT_MERGE = `${A}/actions/contact_merge`;
const SEARCH = `${A}/contacts/search`;
const CONVERSATIONS = `${A}/conversations`;
const CONVERSATION = `${A}/conversations/{conversation_id}`;
const TOGGLE = `${A}/conversations/{conversation_id}/toggle_status`;
const MESSAGES = `${A}/conversations/{conversation_id}/messages`;

// ---------------------------------------------------------------------------------------------
// Known differences (the simulator follows Chatwoot's code; see README.md)

/** Chatwoot's `{"error": "..."}` / `{"message","attributes"}` bodies vs. `bad_request_error`. */
const NOT_DOCUMENTED_422 = (statuses: string) => [`status 422 not documented (swagger: ${statuses})`];

/** `_contact.json.jbuilder` vs. swagger `contact_list_item`, under a prefix. */
function contactDifferences(prefix: string): string[] {
  return [
    // Set by IP lookup for web-widget contacts only.
    ...["city", "country", "country_code", "created_at_ip"].map(
      (key) => `missing ${prefix}.additional_attributes.${key}`,
    ),
    // Rendered only once the contact has had activity.
    `missing ${prefix}.last_activity_at`,
  ];
}

/** A message's `push_event_data` (conversation JSON `messages[]`) vs. swagger `message`. */
function pushMessageDifferences(prefix: string): string[] {
  return [
    `enum ${prefix}.sender_type: "Contact" not in swagger enum`,
    `enum ${prefix}.sender_type: "User" not in swagger enum`,
    `missing ${prefix}.attachment`,
    // The activity message has no sender.
    `missing ${prefix}.sender`,
    `null ${prefix}.sender_id: swagger says number, not nullable`,
    `null ${prefix}.sender_type: swagger says string, not nullable`,
    `null ${prefix}.source_id: swagger says string, not nullable`,
    `type ${prefix}.updated_at: string where swagger says integer`,
  ];
}

/** `_conversation.json.jbuilder` vs. swagger `conversation` + `conversation_show.meta`. */
function conversationDifferences(prefix: string): string[] {
  const profileOnly = [
    "access_token",
    "accounts",
    "avatar_url",
    "custom_attributes",
    "display_name",
    "hmac_identifier",
    "inviter_id",
    "message_signature",
    "pubsub_token",
    "type",
    "ui_settings",
    "uid",
  ];
  return [
    ...pushMessageDifferences(`${prefix}.messages[]`),
    `enum ${prefix}.last_non_activity_message.sender_type: "User" not in swagger enum`,
    `missing ${prefix}.last_non_activity_message.attachment`,
    `null ${prefix}.last_non_activity_message.source_id: swagger says string, not nullable`,
    `type ${prefix}.last_non_activity_message.updated_at: string where swagger says integer`,
    // Enterprise SLA keys are rendered only when an SLA policy applies.
    `missing ${prefix}.applied_sla`,
    `missing ${prefix}.sla_events`,
    `null ${prefix}.priority: swagger says string, not nullable`,
    `null ${prefix}.sla_policy_id: swagger says number, not nullable`,
    `null ${prefix}.snoozed_until: swagger says number, not nullable`,
    `type ${prefix}.timestamp: integer where swagger says string`,
    `null ${prefix}.meta.sender.email: swagger says string, not nullable`,
    // meta.assignee is the `_agent` partial; the swagger documents the profile's `user`.
    ...profileOnly.map((key) => `missing ${prefix}.meta.assignee.${key}`),
    ...["auto_offline", "availability_status", "custom_role_id", "thumbnail"].map(
      (key) => `undocumented ${prefix}.meta.assignee.${key}`,
    ),
    `undocumented ${prefix}.meta.assignee_type`,
  ];
}

/** `_message.json.jbuilder` vs. swagger `message` (which describes `push_event_data`). */
function messageDifferences(prefix: string): string[] {
  return [
    "account_id",
    "additional_attributes",
    "attachment",
    "conversation",
    "external_source_ids",
    "processed_message_content",
    "sender_id",
    "sender_type",
    "sentiment",
    "updated_at",
  ].map((key) => `missing ${prefix}.${key}`);
}

// ---------------------------------------------------------------------------------------------

let sim: ChatwootSimulator;
let s: Seed;
let contactId: number;
let bobId: number;
let conversationId: number;

/** The §1.3 body a bridge sends to create a WhatsApp contact. */
const contactBody = (inboxId: number) => ({
  inbox_id: inboxId,
  source_id: "15550100@s.whatsapp.net",
  name: "Alice",
  phone_number: "+15550100",
  identifier: "15550100@s.whatsapp.net",
  additional_attributes: {},
  custom_attributes: {},
});

async function api(
  method: string,
  template: string,
  params: Record<string, number>,
  body?: unknown,
  token?: string,
) {
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => String(params[name]));
  const reply = await call(sim, method, path, { token: token ?? s.admin.accessToken, body });
  return { status: reply.status, body: reply.json };
}

beforeAll(async () => {
  // The swagger file is Chatwoot's at 4.10-develop (e13e3c87): the simulator plays that version here.
  sim = await startChatwootSimulator({ version: "4.10" });
  s = seed(sim);
  const contact = await api("POST", CONTACTS, { account_id: s.accountId }, contactBody(s.inboxId));
  contactId = (contact.body as AnyJson).payload.contact.id;
  const conversation = await api(
    "POST",
    CONVERSATIONS,
    { account_id: s.accountId },
    {
      inbox_id: s.inboxId,
      contact_id: contactId,
      source_id: "15550100@s.whatsapp.net",
      message: { content: "hi", message_type: "incoming" },
    },
  );
  conversationId = (conversation.body as AnyJson).id;
  await api(
    "POST",
    TOGGLE,
    { account_id: s.accountId, conversation_id: conversationId },
    { status: "open" },
    s.agent.accessToken,
  );
  sim.postAgentMessage({
    accountId: s.accountId,
    conversationId,
    userId: s.agent.id,
    content: "Hello Alice",
  });
  bobId = sim.createContact(s.accountId, {
    name: "Bob",
    identifier: "bob",
    inbox_id: s.inboxId,
    source_id: "bob",
  })["id"] as number;
});

afterAll(async () => {
  await sim.close();
});

describe("contacts vs. Chatwoot swagger", () => {
  it("POST contacts: the bridge's body; 200 {payload: {contact, contact_inbox}}; 422 validation", async () => {
    const body = {
      ...contactBody(s.inboxId),
      name: "Carol",
      source_id: "carol",
      phone_number: "+15550122",
      identifier: "carol",
    };
    expect(checkRequest("POST", CONTACTS, body)).toEqual(["undocumented $.source_id"]);
    const created = await api("POST", CONTACTS, { account_id: s.accountId }, body);
    expect(created.status).toBe(200);
    // `extended_contact` = `contact` ({payload: [...]}) + id + availability_status.
    expect(sorted(checkResponse("POST", CONTACTS, created.status, created.body))).toEqual(
      sorted([
        "type $.payload: object where swagger says array",
        "missing $.id",
        "missing $.availability_status",
      ]),
    );
    const invalid = await api("POST", CONTACTS, { account_id: s.accountId }, { phone_number: "15550100" });
    expect(invalid.status).toBe(422);
    expect(checkResponse("POST", CONTACTS, invalid.status, invalid.body)).toEqual(
      NOT_DOCUMENTED_422("200, 400"),
    );
  });

  it("GET contacts/search: {meta, payload}; current_page is a number when page is not given", async () => {
    const found = await api("GET", `${SEARCH}?q=bob`, { account_id: s.accountId });
    expect((found.body as AnyJson).payload).toHaveLength(1);
    expect(sorted(checkResponse("GET", SEARCH, found.status, found.body))).toEqual(
      sorted([
        ...contactDifferences("$.payload[]"),
        "type $.meta.current_page: integer where swagger says string",
      ]),
    );
    // Alice has written, so her last_activity_at is rendered; page given → current_page is a string.
    const alice = await api("GET", `${SEARCH}?q=alice&page=1`, { account_id: s.accountId });
    expect((alice.body as AnyJson).payload).toHaveLength(1);
    expect(sorted(checkResponse("GET", SEARCH, alice.status, alice.body))).toEqual(
      sorted(contactDifferences("$.payload[]").filter((line) => !line.endsWith("last_activity_at"))),
    );
  });

  it("POST actions/contact_merge: the base contact unwrapped (not swagger's contact_base); 404 {error}", async () => {
    const body = { base_contact_id: bobId, mergee_contact_id: bobId };
    expect(checkRequest("POST", CONTACT_MERGE, body)).toEqual([]);
    const mergee = sim.createContact(s.accountId, { name: "Dave", identifier: "dave" })["id"] as number;
    const base = sim.createContact(s.accountId, { name: "Dora" })["id"] as number;
    const merged = await api(
      "POST",
      CONTACT_MERGE,
      { account_id: s.accountId },
      { base_contact_id: base, mergee_contact_id: mergee },
    );
    expect(merged.status).toBe(200);
    // `contact_base` = generic_id + the `contact` wrapper ({payload: [...]}); Chatwoot renders the `_contact`
    // partial of the base contact (app/views/api/v1/accounts/actions/contact_merges/create.json.jbuilder).
    const partial = Object.keys(merged.body as object).filter((key) => key !== "id");
    expect(sorted(checkResponse("POST", CONTACT_MERGE, merged.status, merged.body))).toEqual(
      sorted(["missing $.payload", ...partial.map((key) => `undocumented $.${key}`)]),
    );
    const missing = await api(
      "POST",
      CONTACT_MERGE,
      { account_id: s.accountId },
      { base_contact_id: base, mergee_contact_id: mergee },
    );
    expect(missing.status).toBe(404);
    expect(sorted(checkResponse("POST", CONTACT_MERGE, missing.status, missing.body))).toEqual(
      sorted(["missing $.description", "missing $.errors", "undocumented $.error"]),
    );
  });

  it("DELETE contacts/{id}: 200 without a body, 404 {error}", async () => {
    const doomed = sim.createContact(s.accountId, { name: "Eve" })["id"] as number;
    const deleted = await call(sim, "DELETE", s.path(`/contacts/${doomed}`), { token: s.admin.accessToken });
    expect(deleted.status).toBe(200);
    expect(deleted.text).toBe("");
    expect(checkResponse("DELETE", CONTACT, deleted.status, undefined)).toEqual([]);
    const again = await api("DELETE", CONTACT, { account_id: s.accountId, id: doomed });
    expect(sorted(checkResponse("DELETE", CONTACT, again.status, again.body))).toEqual(
      sorted(["missing $.description", "missing $.errors", "undocumented $.error"]),
    );
  });

  it("GET contacts/{id}: {payload: contact}", async () => {
    const shown = await api("GET", CONTACT, { account_id: s.accountId, id: bobId });
    expect(sorted(checkResponse("GET", CONTACT, shown.status, shown.body))).toEqual(
      sorted(contactDifferences("$.payload")),
    );
  });
});

describe("conversations vs. Chatwoot swagger", () => {
  it("POST conversations: the bridge's body; the swagger documents only id, account_id, inbox_id", async () => {
    const body = { inbox_id: s.inboxId, contact_id: bobId, source_id: "bob", status: "open" };
    expect(checkRequest("POST", CONVERSATIONS, body)).toEqual([]);
    const created = await api("POST", CONVERSATIONS, { account_id: s.accountId }, body);
    expect(created.status).toBe(200);
    const findings = checkResponse("POST", CONVERSATIONS, created.status, created.body);
    const documented = new Set(["id", "account_id", "inbox_id"]);
    const rendered = Object.keys(created.body as object).filter((key) => !documented.has(key));
    expect(sorted(findings)).toEqual(sorted(rendered.map((key) => `undocumented $.${key}`)));
  });

  it("POST conversations with the first message: only message.content and template_params are documented", async () => {
    // The nested `message` is messages#create's parameter set (app/controllers/api/v1/accounts/
    // conversations_controller.rb → Messages::MessageBuilder); the swagger lists two of its keys.
    const body = {
      inbox_id: s.inboxId,
      contact_id: bobId,
      source_id: "bob",
      status: "open",
      message: {
        content: "hello",
        message_type: "incoming",
        private: false,
        source_id: "WAID:BOB1",
        content_attributes: { in_reply_to_external_id: "WAID:BOB0" },
      },
    };
    expect(sorted(checkRequest("POST", CONVERSATIONS, body))).toEqual(
      sorted([
        "undocumented $.message.message_type",
        "undocumented $.message.private",
        "undocumented $.message.source_id",
        "undocumented $.message.content_attributes",
      ]),
    );
    const created = await api("POST", CONVERSATIONS, { account_id: s.accountId }, body);
    expect(created.status).toBe(200);
    expect((created.body as AnyJson).messages).toMatchObject([{ content: "hello", source_id: "WAID:BOB1" }]);
    const findings = checkResponse("POST", CONVERSATIONS, created.status, created.body);
    const documented = new Set(["id", "account_id", "inbox_id"]);
    const rendered = Object.keys(created.body as object).filter((key) => !documented.has(key));
    expect(sorted(findings)).toEqual(sorted(rendered.map((key) => `undocumented $.${key}`)));
  });

  it("GET conversations: {data: {meta, payload}}", async () => {
    const query = `status=all&inbox_id=${s.inboxId}&source_id=15550100@s.whatsapp.net`;
    const listed = await api("GET", `${CONVERSATIONS}?${query}`, { account_id: s.accountId });
    expect((listed.body as AnyJson).data.payload).toHaveLength(1);
    expect(sorted(checkResponse("GET", CONVERSATIONS, listed.status, listed.body))).toEqual(
      sorted(conversationDifferences("$.data.payload[]")),
    );
  });

  it("GET conversations/{id}", async () => {
    const shown = await api("GET", CONVERSATION, {
      account_id: s.accountId,
      conversation_id: conversationId,
    });
    expect(sorted(checkResponse("GET", CONVERSATION, shown.status, shown.body))).toEqual(
      sorted(conversationDifferences("$")),
    );
    const missing = await api("GET", CONVERSATION, { account_id: s.accountId, conversation_id: 999 });
    expect(sorted(checkResponse("GET", CONVERSATION, missing.status, missing.body))).toEqual(
      sorted(["missing $.description", "missing $.errors", "undocumented $.error"]),
    );
  });

  it("POST toggle_status: the answer also has snoozed_until", async () => {
    expect(checkRequest("POST", TOGGLE, { status: "resolved" })).toEqual([]);
    const toggled = await api(
      "POST",
      TOGGLE,
      { account_id: s.accountId, conversation_id: conversationId },
      { status: "pending" },
    );
    expect(checkResponse("POST", TOGGLE, toggled.status, toggled.body)).toEqual([
      "undocumented $.payload.snoozed_until",
    ]);
    await api(
      "POST",
      TOGGLE,
      { account_id: s.accountId, conversation_id: conversationId },
      { status: "open" },
    );
  });
});

describe("messages vs. Chatwoot swagger", () => {
  it("POST messages: source_id and echo_id are undocumented; the answer is `_message`, not push data", async () => {
    const body = {
      content: "hello",
      message_type: "incoming",
      private: false,
      content_type: "text",
      content_attributes: { in_reply_to_external_id: "WAMID.0" },
      source_id: "WAMID.1",
      echo_id: "tmp-1",
    };
    expect(sorted(checkRequest("POST", MESSAGES, body))).toEqual(
      sorted(["undocumented $.source_id", "undocumented $.echo_id"]),
    );
    const created = await api(
      "POST",
      MESSAGES,
      { account_id: s.accountId, conversation_id: conversationId },
      body,
    );
    expect(created.status).toBe(200);
    expect(sorted(checkResponse("POST", MESSAGES, created.status, created.body))).toEqual(
      sorted([...messageDifferences("$"), "undocumented $.echo_id"]),
    );
    const flood = await api(
      "POST",
      MESSAGES,
      { account_id: s.accountId, conversation_id: conversationId },
      { message_type: "x" },
    );
    expect(checkResponse("POST", MESSAGES, flood.status, flood.body)).toEqual(
      NOT_DOCUMENTED_422("200, 403, 404"),
    );
  });

  it("GET messages: {meta, payload}; meta.contact and meta.assignee are raw records", async () => {
    const listed = await api("GET", MESSAGES, { account_id: s.accountId, conversation_id: conversationId });
    const contactColumns = [
      "account_id",
      "additional_attributes",
      "blocked",
      "contact_type",
      "country_code",
      "created_at",
      "custom_attributes",
      "email",
      "id",
      "identifier",
      "last_activity_at",
      "last_name",
      "location",
      "middle_name",
      "name",
      "phone_number",
      "updated_at",
    ];
    const userColumns = [
      "availability",
      "created_at",
      "custom_attributes",
      "display_name",
      "message_signature",
      "provider",
      "type",
      "ui_settings",
      "uid",
      "updated_at",
    ];
    const agentKeys = [
      "account_id",
      "auto_offline",
      "availability_status",
      "available_name",
      "confirmed",
      "custom_role_id",
      "role",
      "thumbnail",
    ];
    expect(sorted(checkResponse("GET", MESSAGES, listed.status, listed.body))).toEqual(
      sorted([
        ...messageDifferences("$.payload[]"),
        "missing $.payload[].sender",
        "null $.payload[].source_id: swagger says string, not nullable",
        "null $.meta.agent_last_seen_at: swagger says string, not nullable",
        "null $.meta.assignee_last_seen_at: swagger says string, not nullable",
        // The swagger's meta.contact is the `contact` wrapper ({payload: [...]}).
        "missing $.meta.contact.payload",
        ...contactColumns.map((key) => `undocumented $.meta.contact.${key}`),
        ...agentKeys.map((key) => `missing $.meta.assignee.${key}`),
        ...userColumns.map((key) => `undocumented $.meta.assignee.${key}`),
      ]),
    );
  });
});
