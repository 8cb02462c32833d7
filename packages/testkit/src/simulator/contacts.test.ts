import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "./index.js";
import { type AnyJson, call, type Seed, seed } from "./test-support.js";

let sim: ChatwootSimulator;
let s: Seed;

beforeEach(async () => {
  // Contact search as in 4.10 (resolved contacts, company_name, meta.count = total); 4.11+ in versions.test.ts.
  sim = await startChatwootSimulator({ version: "4.10" });
  s = seed(sim);
});

afterEach(async () => {
  await sim.close();
});

const createContact = (body: Record<string, unknown>, token = s.admin.accessToken) =>
  call(sim, "POST", s.path("/contacts"), { token, body });

describe("POST /api/v1/accounts/{id}/contacts", () => {
  it("creates the contact and its contact inbox, answering {payload: {contact, contact_inbox}}", async () => {
    const reply = await createContact({
      inbox_id: s.inboxId,
      source_id: "15550100@s.whatsapp.net",
      name: "Alice",
      phone_number: "+15550100",
      identifier: "15550100@s.whatsapp.net",
      email: "Alice@Example.TEST",
      additional_attributes: { wa_pushname: "Alice" },
      ignored: "dropped by strong parameters",
    });
    expect(reply.status).toBe(200);
    const { contact, contact_inbox } = (reply.json as AnyJson).payload;
    expect(Object.keys(contact)).toEqual([
      "additional_attributes",
      "availability_status",
      "email",
      "id",
      "name",
      "phone_number",
      "blocked",
      "identifier",
      "thumbnail",
      "custom_attributes",
      "created_at",
      "contact_inboxes",
    ]);
    expect(contact).toMatchObject({
      email: "alice@example.test",
      availability_status: "offline",
      additional_attributes: { wa_pushname: "Alice" },
      contact_inboxes: [
        {
          source_id: "15550100@s.whatsapp.net",
          inbox: {
            id: s.inboxId,
            avatar_url: "",
            name: "WhatsApp",
            channel_type: "Channel::Api",
            provider: null,
          },
        },
      ],
    });
    // `json.inbox @contact_inbox.inbox`: the raw Inbox columns.
    expect(contact_inbox.source_id).toBe("15550100@s.whatsapp.net");
    expect(contact_inbox.inbox).toMatchObject({
      id: s.inboxId,
      account_id: s.accountId,
      sender_name_type: "friendly",
    });
    expect(sim.contactInboxes(s.accountId)).toHaveLength(1);
  });

  it("without inbox_id creates only the contact; contact_inbox renders nils", async () => {
    const reply = await createContact({ name: "Bob" });
    expect((reply.json as AnyJson).payload.contact_inbox).toEqual({ inbox: null, source_id: null });
    expect((reply.json as AnyJson).payload.contact.contact_inboxes).toEqual([]);
  });

  it("gives an API inbox contact a uuid source_id when none is sent (a new orphan each time)", async () => {
    await createContact({ name: "Carol", inbox_id: s.inboxId });
    await createContact({ name: "Dave", inbox_id: s.inboxId });
    const sources = sim.contactInboxes(s.accountId).map((ci) => ci["source_id"] as string);
    expect(sources).toHaveLength(2);
    for (const source of sources)
      expect(source).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("accepts any account member, agents included", async () => {
    expect((await createContact({ name: "Eve" }, s.outsider.accessToken)).status).toBe(200);
  });

  it("validates phone numbers with Chatwoot's end-anchored E.164 regex", async () => {
    const invalid = await createContact({ name: "X", phone_number: "15550100" });
    expect(invalid).toMatchObject({
      status: 422,
      json: { message: "Phone number should be in e164 format", attributes: ["phone_number"] },
    });
    expect((await createContact({ name: "X", phone_number: "+0123" })).status).toBe(422);
    expect((await createContact({ name: "X", phone_number: "+1234567890123456" })).status).toBe(422);
    // Only the end is anchored: leading junk passes, as in Chatwoot.
    expect((await createContact({ name: "Y", phone_number: "tel:+15550111" })).status).toBe(200);
    expect((await createContact({ name: "Z", phone_number: "" })).status).toBe(200);
  });

  it("keeps phone numbers, identifiers and emails unique per account", async () => {
    await createContact({ name: "A", phone_number: "+15550100", identifier: "a@s", email: "a@x.test" });
    expect(await createContact({ name: "B", phone_number: "+15550100" })).toMatchObject({
      status: 422,
      json: { message: "Phone number has already been taken", attributes: ["phone_number"] },
    });
    expect(await createContact({ name: "B", identifier: "a@s" })).toMatchObject({
      status: 422,
      json: { message: "Identifier has already been taken", attributes: ["identifier"] },
    });
    expect(await createContact({ name: "B", email: "A@X.test" })).toMatchObject({
      status: 422,
      json: { message: "Email has already been taken", attributes: ["email"] },
    });
    expect(await createContact({ name: "B", email: "not-an-email" })).toMatchObject({
      status: 422,
      json: { message: "Email Invalid email", attributes: ["email"] },
    });
    // Another account may reuse them.
    const other = sim.createUser({
      name: "O",
      accounts: [{ accountId: s.otherAccountId, role: "administrator" }],
    });
    const elsewhere = await call(sim, "POST", `/api/v1/accounts/${s.otherAccountId}/contacts`, {
      token: other.accessToken,
      body: { name: "A2", phone_number: "+15550100" },
    });
    expect(elsewhere.status).toBe(200);
  });

  it("answers 500 and stores nothing when the (inbox, source_id) pair belongs to another contact", async () => {
    await createContact({ name: "A", inbox_id: s.inboxId, source_id: "shared" });
    const clash = await createContact({ name: "B", inbox_id: s.inboxId, source_id: "shared" });
    expect(clash).toMatchObject({ status: 500, json: { status: 500, error: "Internal Server Error" } });
    expect(sim.contacts(s.accountId).map((c) => c["name"])).toEqual(["A"]);
  });

  it("answers 404 for an unknown inbox and rolls the contact back", async () => {
    const reply = await createContact({ name: "A", inbox_id: 999 });
    expect(reply).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
    expect(sim.contacts(s.accountId)).toEqual([]);
  });
});

describe("GET /api/v1/accounts/{id}/contacts/search", () => {
  const search = (query: string) =>
    call(sim, "GET", s.path(`/contacts/search?${query}`), { token: s.agent.accessToken });

  it("matches name/email/phone case-insensitively, identifier case-sensitively, only resolved contacts", async () => {
    sim.createContact(s.accountId, { name: "Alice Anonymous" }); // no email/phone/identifier: not resolved
    sim.createContact(s.accountId, {
      name: "Alice",
      phone_number: "+15550100",
      inbox_id: s.inboxId,
      source_id: "a",
    });
    sim.createContact(s.accountId, { name: "Bob", identifier: "ALICE-ID" });
    const byName = await search("q=alice");
    expect(byName.status).toBe(200);
    expect((byName.json as AnyJson).meta).toEqual({ count: 1, current_page: 1 });
    expect((byName.json as AnyJson).payload.map((c: AnyJson) => c.name)).toEqual(["Alice"]);
    expect((byName.json as AnyJson).payload[0].contact_inboxes[0].source_id).toBe("a");
    expect(((await search("q=ALICE-ID")).json as AnyJson).payload.map((c: AnyJson) => c.name)).toEqual([
      "Bob",
    ]);
    expect(((await search("q=alice-id")).json as AnyJson).payload).toEqual([]);
    expect(((await search("q=%2B1555")).json as AnyJson).payload.map((c: AnyJson) => c.name)).toEqual([
      "Alice",
    ]);
    expect(
      ((await search("q=alice&include_contact_inboxes=false")).json as AnyJson).payload[0],
    ).not.toHaveProperty("contact_inboxes");
  });

  it("pages by 15 and echoes the page parameter as given", async () => {
    for (let i = 0; i < 17; i++)
      sim.createContact(s.accountId, { name: `Customer ${i}`, identifier: `id-${i}` });
    const second = (await search("q=customer&page=2")).json as AnyJson;
    expect(second.meta).toEqual({ count: 17, current_page: "2" });
    expect(second.payload).toHaveLength(2);
    expect(((await search("q=customer")).json as AnyJson).payload).toHaveLength(15);
  });

  it("refuses a blank q with 422", async () => {
    expect(await search("q=")).toMatchObject({
      status: 422,
      json: { error: "Specify search string with parameter q" },
    });
  });
});

describe("contact lookups", () => {
  it("GET /contacts/{id} wraps the contact in payload; 404 for another account's contact", async () => {
    const created = sim.createContact(s.accountId, { name: "Alice", inbox_id: s.inboxId, source_id: "a" });
    const reply = await call(sim, "GET", s.path(`/contacts/${created["id"]}`), {
      token: s.agent.accessToken,
    });
    expect(reply.status).toBe(200);
    expect((reply.json as AnyJson).payload).toMatchObject({
      id: created["id"],
      contact_inboxes: [{ source_id: "a" }],
    });
    const missing = await call(sim, "GET", s.path("/contacts/4242"), { token: s.agent.accessToken });
    expect(missing).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
  });

  it("POST /contacts/{id}/contact_inboxes attaches an inbox; the agent must see the inbox", async () => {
    const created = sim.createContact(s.accountId, { name: "Alice" });
    const path = s.path(`/contacts/${created["id"]}/contact_inboxes`);
    const denied = await call(sim, "POST", path, {
      token: s.outsider.accessToken,
      body: { inbox_id: s.inboxId, source_id: "a" },
    });
    expect(denied).toMatchObject({
      status: 401,
      json: { error: "You are not authorized to do this action" },
    });
    const reply = await call(sim, "POST", path, {
      token: s.agent.accessToken,
      body: { inbox_id: s.inboxId, source_id: "a" },
    });
    expect(reply.json).toEqual({
      source_id: "a",
      inbox: {
        id: s.inboxId,
        avatar_url: "",
        channel_id: expect.any(Number),
        name: "WhatsApp",
        channel_type: "Channel::Api",
        provider: null,
      },
    });
    // Idempotent for the same contact (first_or_create).
    await call(sim, "POST", path, {
      token: s.agent.accessToken,
      body: { inbox_id: s.inboxId, source_id: "a" },
    });
    expect(sim.contactInboxes(s.accountId)).toHaveLength(1);
  });

  it("POST /contact_inboxes/filter: the contact unwrapped, or 404 with an empty body", async () => {
    sim.createContact(s.accountId, { name: "Alice", inbox_id: s.inboxId, source_id: "jid-1" });
    const path = s.path("/contact_inboxes/filter");
    const found = await call(sim, "POST", path, {
      token: s.agent.accessToken,
      body: { inbox_id: s.inboxId, source_id: "jid-1" },
    });
    expect(found.status).toBe(200);
    expect(found.json).toMatchObject({ name: "Alice", contact_inboxes: [{ source_id: "jid-1" }] });
    const missing = await call(sim, "POST", path, {
      token: s.agent.accessToken,
      body: { inbox_id: s.inboxId, source_id: "nope" },
    });
    expect(missing.status).toBe(404);
    expect(missing.text).toBe("");
    const noInbox = await call(sim, "POST", path, {
      token: s.agent.accessToken,
      body: { inbox_id: 999, source_id: "jid-1" },
    });
    expect(noInbox).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
  });
});

/**
 * `POST /api/v1/accounts/{id}/actions/contact_merge`: `Actions::ContactMergesController` and `ContactMergeAction`
 * (app/controllers/api/v1/accounts/actions/contact_merges_controller.rb, app/actions/contact_merge_action.rb; the
 * same in 4.10.0 and 4.13.0).
 */
describe("POST /api/v1/accounts/{id}/actions/contact_merge", () => {
  const merge = (body: unknown, token = s.agent.accessToken) =>
    call(sim, "POST", s.path("/actions/contact_merge"), { token, body });

  /** Ours: a WhatsApp contact with its contact inbox and a conversation holding one incoming message. */
  async function whatsappContact() {
    const alice = sim.createContact(s.accountId, {
      name: "Alice",
      identifier: "15550100@s.whatsapp.net",
      phone_number: "+15550100",
      inbox_id: s.inboxId,
      source_id: "15550100@s.whatsapp.net",
      additional_attributes: { wa: { push_name: "Alice" }, city: "Recife" },
    });
    const conversation = (
      await call(sim, "POST", s.path("/conversations"), {
        token: s.admin.accessToken,
        body: {
          inbox_id: s.inboxId,
          contact_id: alice["id"],
          source_id: "15550100@s.whatsapp.net",
          message: { content: "hi", message_type: "incoming", source_id: "WAID:1" },
        },
      })
    ).json as AnyJson;
    return { aliceId: alice["id"] as number, conversationId: conversation.id as number };
  }

  it("moves the mergee's conversations, contact inboxes and messages to the base contact, then deletes the mergee", async () => {
    const { aliceId, conversationId } = await whatsappContact();
    const base = sim.createContact(s.accountId, {
      name: "Alice Souza",
      email: "alice@example.test",
      additional_attributes: { wa: { label: "vip" }, city: "Olinda" },
    });
    const reply = await merge({ base_contact_id: base["id"], mergee_contact_id: aliceId });
    expect(reply.status).toBe(200);
    // The `_contact` partial of the base contact, unwrapped and without contact_inboxes; base values win, the
    // mergee's fill the gaps (hashes deep-merged).
    expect(reply.json).toMatchObject({
      id: base["id"],
      name: "Alice Souza",
      email: "alice@example.test",
      identifier: "15550100@s.whatsapp.net",
      phone_number: "+15550100",
      additional_attributes: { wa: { push_name: "Alice", label: "vip" }, city: "Olinda" },
    });
    expect(reply.json).not.toHaveProperty("contact_inboxes");
    expect(sim.contacts(s.accountId).map((c) => c["id"])).toEqual([base["id"]]);
    const gone = await call(sim, "GET", s.path(`/contacts/${aliceId}`), { token: s.agent.accessToken });
    expect(gone).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
    // Our source_id now finds the base contact; the conversation (same display id) is the base contact's.
    const found = await call(sim, "POST", s.path("/contact_inboxes/filter"), {
      token: s.agent.accessToken,
      body: { inbox_id: s.inboxId, source_id: "15550100@s.whatsapp.net" },
    });
    expect(found.json).toMatchObject({ id: base["id"] });
    const conversation = await call(sim, "GET", s.path(`/conversations/${conversationId}`), {
      token: s.agent.accessToken,
    });
    expect(conversation.json).toMatchObject({ id: conversationId, meta: { sender: { id: base["id"] } } });
    const messages = await call(sim, "GET", s.path(`/conversations/${conversationId}/messages`), {
      token: s.agent.accessToken,
    });
    expect((messages.json as AnyJson).payload).toMatchObject([
      { content: "hi", sender: { id: base["id"], type: "contact" } },
    ]);
    // A message to the moved conversation still lands there.
    const next = await call(sim, "POST", s.path(`/conversations/${conversationId}/messages`), {
      token: s.agent.accessToken,
      body: { content: "still here", message_type: "incoming" },
    });
    expect(next.status).toBe(200);
    // The mergee's id is gone for conversation creation too.
    const stale = await call(sim, "POST", s.path("/conversations"), {
      token: s.agent.accessToken,
      body: { inbox_id: s.inboxId, contact_id: aliceId, source_id: "15550100@s.whatsapp.net" },
    });
    expect(stale).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
  });

  it("answers the contact unchanged when both ids are the same", async () => {
    const { aliceId } = await whatsappContact();
    const reply = await merge({ base_contact_id: aliceId, mergee_contact_id: String(aliceId) });
    expect(reply).toMatchObject({ status: 200, json: { id: aliceId, name: "Alice" } });
    expect(sim.contacts(s.accountId)).toHaveLength(1);
    expect(sim.contactInboxes(s.accountId)).toHaveLength(1);
  });

  it("answers 404 for a missing, unknown or other account's contact, and changes nothing", async () => {
    const { aliceId } = await whatsappContact();
    const foreign = sim.createContact(s.otherAccountId, { name: "Elsewhere" })["id"];
    for (const body of [
      {},
      { base_contact_id: aliceId },
      { mergee_contact_id: aliceId },
      { base_contact_id: 4242, mergee_contact_id: aliceId },
      { base_contact_id: aliceId, mergee_contact_id: 4242 },
      { base_contact_id: foreign, mergee_contact_id: aliceId },
      { base_contact_id: aliceId, mergee_contact_id: foreign },
    ]) {
      expect(await merge(body)).toMatchObject({
        status: 404,
        json: { error: "Resource could not be found" },
      });
    }
    expect(sim.contacts(s.accountId).map((c) => c["id"])).toEqual([aliceId]);
    expect(sim.contacts(s.otherAccountId)).toHaveLength(1);
  });
});

/**
 * `DELETE /api/v1/accounts/{id}/contacts/{id}`: `ContactsController#destroy` (administrators only, `ContactPolicy#destroy?`;
 * `check_authorization` runs before the contact is looked up), `head :ok`. `Contact` has `dependent: :destroy_async`
 * on conversations, contact_inboxes and messages (app/models/contact.rb): Chatwoot removes them in a background job
 * right after; the simulator removes them at once.
 */
describe("DELETE /api/v1/accounts/{id}/contacts/{id}", () => {
  const destroy = (id: unknown, token = s.admin.accessToken) =>
    call(sim, "DELETE", s.path(`/contacts/${id}`), { token });

  it("deletes the contact with its conversations, messages and contact inboxes", async () => {
    const alice = sim.createContact(s.accountId, { name: "Alice", inbox_id: s.inboxId, source_id: "jid-a" });
    const bob = sim.createContact(s.accountId, { name: "Bob", inbox_id: s.inboxId, source_id: "jid-b" });
    const open = (contactId: unknown, sourceId: string) =>
      call(sim, "POST", s.path("/conversations"), {
        token: s.admin.accessToken,
        body: {
          inbox_id: s.inboxId,
          contact_id: contactId,
          source_id: sourceId,
          message: { content: `from ${sourceId}`, message_type: "incoming" },
        },
      });
    const aliceConversation = ((await open(alice["id"], "jid-a")).json as AnyJson).id;
    const bobConversation = ((await open(bob["id"], "jid-b")).json as AnyJson).id;

    const reply = await destroy(alice["id"]);
    expect(reply.status).toBe(200);
    expect(reply.text).toBe("");
    expect(sim.contacts(s.accountId).map((c) => c["name"])).toEqual(["Bob"]);
    expect(sim.contactInboxes(s.accountId).map((ci) => ci["source_id"])).toEqual(["jid-b"]);
    expect(sim.conversations(s.accountId).map((c) => c["id"])).toEqual([bobConversation]);
    expect(sim.messages(s.accountId, aliceConversation)).toEqual([]);
    const message = await call(sim, "POST", s.path(`/conversations/${aliceConversation}/messages`), {
      token: s.admin.accessToken,
      body: { content: "late", message_type: "incoming" },
    });
    expect(message).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
    const lookup = await call(sim, "POST", s.path("/contact_inboxes/filter"), {
      token: s.admin.accessToken,
      body: { inbox_id: s.inboxId, source_id: "jid-a" },
    });
    expect(lookup.status).toBe(404);
    // The source_id is free again: a new contact can take it.
    const again = await call(sim, "POST", s.path("/contacts"), {
      token: s.admin.accessToken,
      body: { name: "Alice", inbox_id: s.inboxId, source_id: "jid-a" },
    });
    expect(again.status).toBe(200);
  });

  it("is for administrators only (401 before the look-up), and answers 404 for an unknown contact", async () => {
    const alice = sim.createContact(s.accountId, { name: "Alice" });
    for (const id of [alice["id"], 4242]) {
      expect(await destroy(id, s.agent.accessToken)).toMatchObject({
        status: 401,
        json: { error: "You are not authorized to do this action" },
      });
    }
    expect(await destroy(4242)).toMatchObject({
      status: 404,
      json: { error: "Resource could not be found" },
    });
    expect(sim.contacts(s.accountId)).toHaveLength(1);
  });
});

/**
 * `PATCH`/`PUT /api/v1/accounts/{id}/contacts/{id}`: `ContactsController#update` (`assign_attributes` then `save!`;
 * `contact_update_params` merges the given additional and custom attributes into the stored ones) renders
 * `{payload: contact}`; a validation error is a 422 `{message, attributes}` and changes nothing; 404 for an unknown
 * contact. The bridge gives a contact first seen by LID its phone number this way (docs/identity.md).
 */
describe("PATCH /api/v1/accounts/{id}/contacts/{id}", () => {
  const update = (id: unknown, body: Record<string, unknown>, method: "PATCH" | "PUT" = "PATCH") =>
    call(sim, method, s.path(`/contacts/${id}`), { token: s.admin.accessToken, body });

  it("sets the phone number and merges attributes, answering {payload: contact}", async () => {
    const lia = sim.createContact(s.accountId, {
      name: "Lia",
      identifier: "100@lid",
      additional_attributes: { a: 1 },
    });
    const reply = await update(lia["id"], { phone_number: "+14155550101", additional_attributes: { b: 2 } });
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({
      payload: {
        id: lia["id"],
        phone_number: "+14155550101",
        identifier: "100@lid",
        additional_attributes: { a: 1, b: 2 },
      },
    });
    expect((await update(lia["id"], { name: "Lia S." }, "PUT")).status).toBe(200);
    expect(sim.contacts(s.accountId)).toMatchObject([{ name: "Lia S.", phone_number: "+14155550101" }]);
  });

  it("refuses a phone number another contact has (422) without changing anything; 404 for an unknown contact", async () => {
    sim.createContact(s.accountId, { name: "Ana", phone_number: "+14155550101" });
    const lia = sim.createContact(s.accountId, { name: "Lia", identifier: "100@lid" });
    const taken = await update(lia["id"], { phone_number: "+14155550101", name: "Changed" });
    expect(taken).toMatchObject({
      status: 422,
      json: { message: "Phone number has already been taken", attributes: ["phone_number"] },
    });
    expect(sim.contacts(s.accountId).find((c) => c["id"] === lia["id"])).toMatchObject({
      name: "Lia",
      phone_number: null,
    });
    expect((await update(4242, { name: "x" })).status).toBe(404);
  });
});
