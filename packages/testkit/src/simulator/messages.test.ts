import { afterEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, type ChatwootSimulatorOptions, startChatwootSimulator } from "./index.js";
import { type AnyJson, call, openConversation, type Seed, seed } from "./test-support.js";

let sim: ChatwootSimulator;
let s: Seed;
let conversationId: number;

async function start(options: ChatwootSimulatorOptions = {}) {
  sim = await startChatwootSimulator(options);
  s = seed(sim);
  ({ conversationId } = await openConversation(sim, s));
}

afterEach(async () => {
  await sim.close();
});

const messagesPath = () => s.path(`/conversations/${conversationId}/messages`);
const send = (body: Record<string, unknown>, token = s.admin.accessToken) =>
  call(sim, "POST", messagesPath(), { token, body });

describe("POST …/conversations/{display_id}/messages (JSON)", () => {
  it("answers the message JSON with numeric message_type; incoming messages come from the contact", async () => {
    await start();
    const reply = await send({
      content: "hello",
      message_type: "incoming",
      source_id: "WAMID.1",
      echo_id: "tmp-1",
      content_attributes: { external: true },
    });
    expect(reply.status).toBe(200);
    const message = reply.json as AnyJson;
    expect(Object.keys(message)).toEqual([
      "id",
      "content",
      "inbox_id",
      "echo_id",
      "conversation_id",
      "message_type",
      "content_type",
      "status",
      "content_attributes",
      "created_at",
      "private",
      "source_id",
      "sender",
    ]);
    expect(message).toMatchObject({
      content: "hello",
      conversation_id: conversationId,
      message_type: 0,
      content_type: "text",
      status: "sent",
      content_attributes: { external: true },
      private: false,
      source_id: "WAMID.1",
      echo_id: "tmp-1",
      sender: { name: "Alice", type: "contact" },
    });
    const outgoing = (await send({ content: "hi", private: true })).json as AnyJson;
    expect(outgoing).toMatchObject({
      message_type: 1,
      private: true,
      sender: { id: s.admin.id, type: "user", available_name: "Jane" },
    });
    expect(outgoing).not.toHaveProperty("echo_id");
    // Template messages are created with the contact as sender (MessageBuilder#sender).
    expect(((await send({ content: "tpl", message_type: "template" })).json as AnyJson).sender.type).toBe(
      "contact",
    );
  });

  it("refuses invalid enums with messages#create's 422 {error}", async () => {
    await start();
    expect(await send({ content: "x", message_type: "bogus" })).toMatchObject({
      status: 422,
      json: { error: "'bogus' is not a valid message_type" },
    });
    expect(await send({ content: "x", content_type: "bogus" })).toMatchObject({
      status: 422,
      json: { error: "'bogus' is not a valid content_type" },
    });
  });

  it("resolves in_reply_to ↔ in_reply_to_external_id within the conversation", async () => {
    await start();
    const quoted = (await send({ content: "original", message_type: "incoming", source_id: "WAMID.Q" }))
      .json as AnyJson;
    const byExternal = (
      await send({
        content: "quoting",
        message_type: "incoming",
        content_attributes: { in_reply_to_external_id: "WAMID.Q" },
      })
    ).json as AnyJson;
    expect(byExternal.content_attributes).toEqual({
      in_reply_to_external_id: "WAMID.Q",
      in_reply_to: quoted.id,
    });
    const byId = (await send({ content: "reply", content_attributes: { in_reply_to: quoted.id } }))
      .json as AnyJson;
    expect(byId.content_attributes).toEqual({ in_reply_to: quoted.id, in_reply_to_external_id: "WAMID.Q" });
    const unknown = (
      await send({ content: "?", content_attributes: { in_reply_to_external_id: "WAMID.NONE" } })
    ).json as AnyJson;
    expect(unknown.content_attributes).toEqual({ in_reply_to_external_id: null, in_reply_to: null });
  });

  it("renders Liquid in outgoing content, leaving code spans and incoming messages alone", async () => {
    await start();
    const outgoing = (
      await send({ content: "Hi {{contact.name}} from {{ agent.name }} `{{contact.name}}` {{nope.x}}!" })
    ).json as AnyJson;
    expect(outgoing.content).toBe("Hi Alice from Jane doe `{{contact.name}}` !");
    const incoming = (await send({ content: "{{contact.name}}", message_type: "incoming" })).json as AnyJson;
    expect(incoming.content).toBe("{{contact.name}}");
  });

  it("refuses the message past the per-conversation flood limit", async () => {
    await start({ messageFloodLimit: 3 });
    for (let i = 0; i < 3; i++) expect((await send({ content: `m${i}` })).status).toBe(200);
    expect(await send({ content: "one too many" })).toMatchObject({
      status: 422,
      json: { error: "Validation failed: Too many messages" },
    });
  });

  it("counts every message of the conversation in the window, and lets them through once the limit allows", async () => {
    // Message#prevent_message_flooding (app/models/message.rb): all messages of the last minute, any type.
    await start({ messageFloodLimit: 2 });
    expect((await send({ content: "m0", message_type: "incoming" })).status).toBe(200);
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "reply" });
    expect(await send({ content: "refused", message_type: "incoming", source_id: "WAID:1" })).toMatchObject({
      status: 422,
      json: { error: "Validation failed: Too many messages" },
    });
    // Nothing of the refused message was stored.
    expect(sim.messages(s.accountId, conversationId).map((m) => m["content"])).toEqual(["m0", "reply"]);
    // Tests cannot wait for the rolling minute; raising the limit is the same for the guard.
    sim.setMessageFloodLimit(3);
    expect((await send({ content: "accepted", message_type: "incoming" })).status).toBe(200);
    expect(() => sim.setMessageFloodLimit(0)).toThrow(/positive integer/);
  });

  it("lets agents post only in inboxes they are members of", async () => {
    await start();
    expect((await send({ content: "ok" }, s.agent.accessToken)).status).toBe(200);
    expect(await send({ content: "no" }, s.outsider.accessToken)).toMatchObject({
      status: 401,
      json: { error: "You are not authorized to do this action" },
    });
  });
});

describe("GET …/messages", () => {
  it("answers the latest 20; after=<id> the next 100 ascending; before=<id> the 20 before", async () => {
    await start();
    const ids: number[] = [];
    for (let i = 0; i < 130; i++) {
      sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: `m${i}` });
    }
    for (const m of sim.messages(s.accountId, conversationId)) ids.push(m["id"] as number);
    const list = async (query = "") =>
      (await call(sim, "GET", `${messagesPath()}${query}`, { token: s.agent.accessToken })).json as AnyJson;
    const latest = await list();
    expect(latest.payload.map((m: AnyJson) => m.id)).toEqual(ids.slice(-20));
    expect(latest.meta).toMatchObject({
      labels: [],
      contact: { name: "Alice" },
      assignee: null,
      agent_last_seen_at: null,
    });
    expect((await list(`?after=${ids[4]}`)).payload.map((m: AnyJson) => m.id)).toEqual(ids.slice(5, 105));
    expect((await list(`?before=${ids[50]}`)).payload.map((m: AnyJson) => m.id)).toEqual(ids.slice(30, 50));
  });
});

describe("PATCH …/messages/{id} (delivery status) and DELETE", () => {
  it("applies sent/delivered/read/failed, ignores read → delivered, keeps external_error only for failed", async () => {
    await start();
    const message = (await send({ content: "to whatsapp" })).json as AnyJson;
    const patch = (body: unknown) =>
      call(sim, "PATCH", `${messagesPath()}/${message.id}`, { token: s.admin.accessToken, body });
    expect(((await patch({ status: "delivered" })).json as AnyJson).status).toBe("delivered");
    expect((await patch({ status: "read", external_error: "ignored" })).json as AnyJson).toMatchObject({
      status: "read",
      content_attributes: {},
    });
    expect(((await patch({ status: "delivered" })).json as AnyJson).status).toBe("read");
    expect(((await patch({ status: "bogus" })).json as AnyJson).status).toBe("read");
    expect((await patch({ status: "failed", external_error: "boom" })).json as AnyJson).toMatchObject({
      status: "failed",
      content_attributes: { external_error: "boom" },
    });
    expect(
      ((await patch({ status: "sent", external_error: "again" })).json as AnyJson).content_attributes,
    ).toEqual({
      external_error: null,
    });
    const missing = await call(sim, "PATCH", `${messagesPath()}/99999`, {
      token: s.admin.accessToken,
      body: { status: "read" },
    });
    expect(missing).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
  });

  it("DELETE replaces the content and marks content_attributes.deleted", async () => {
    await start();
    const message = (await send({ content: "oops", content_attributes: { in_reply_to: null } }))
      .json as AnyJson;
    const reply = await call(sim, "DELETE", `${messagesPath()}/${message.id}`, {
      token: s.admin.accessToken,
    });
    expect(reply.json).toMatchObject({
      id: message.id,
      content: "This message was deleted",
      content_attributes: { deleted: true },
    });
    expect((reply.json as AnyJson).content_attributes).toEqual({ deleted: true });
  });
});
