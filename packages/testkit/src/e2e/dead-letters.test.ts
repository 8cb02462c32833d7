import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// A dead letter an operator can see and replay: `GET /status`, `GET /dead-letters/:instance` and
// `POST /dead-letters/:instance/:id/retry` (docs/http-api.md), against the simulator. The permanent failure is the
// 422 Chatwoot answers when the message fails its own validation (`validates :content, length: { maximum: 150_000 }`,
// app/models/message.rb; the controller renders it as 422, app/controllers/api/v1/accounts/conversations/messages_controller.rb).

const PHONE = "5511955550000";
const WA_ID = "3EB0DEADLETTER01";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

// biome-ignore lint/suspicious/noExplicitAny: the answers are read as JSON, field by field, by the assertions
type Json = any;

async function call(method: string, path: string): Promise<{ status: number; body: Json }> {
  const answer = await h!.bridge.http.handle({
    method,
    path: `/api/chatwoot/${path}`,
    headers: { token: "t" },
  });
  return { status: answer!.status, body: JSON.parse(answer!.body!) };
}

describe("dead letters through the routes", () => {
  it("a message Chatwoot refused for good is listed, retried through the route, and delivered once", async () => {
    h = await startRoutingHarness();
    const integrationId = (await h.store.integrations.get("suporte"))!.id;
    await h.ingest(textEvent({ phone: PHONE, text: "first" }));
    await eventually(() => totalMessages(h!) === 1);
    h.sim.faults.inject({
      method: "POST",
      path: /\/messages$/,
      times: 1,
      status: 422,
      body: { error: "Validation failed: Content is too long (maximum is 150000 characters)" },
    });
    await h.ingest(textEvent({ phone: PHONE, text: "refused once", id: WA_ID }));
    await eventually(async () => (await h!.store.outbox.count(integrationId)).dead === 1, {
      what: "the dead letter",
    });

    // The status route counts it and says why, the dead-letter route lists it.
    const status = await call("GET", "status");
    expect(status.status).toBe(200);
    expect(status.body.integrations).toHaveLength(1);
    expect(status.body.integrations[0]).toMatchObject({
      instance: "suporte",
      status: "active",
      realtime: "connected",
      dead_letters: 1,
      outbox_depth: 0,
      oldest_due_at: null,
    });
    expect(status.body.integrations[0].last_inbound_at).not.toBeNull();
    const listed = await call("GET", "dead-letters/suporte");
    expect(listed.status).toBe(200);
    expect(listed.body.dead_letters).toHaveLength(1);
    const [dead] = listed.body.dead_letters;
    expect(dead).toMatchObject({
      direction: "inbound",
      kind: "message",
      chat: `${PHONE}@s.whatsapp.net`,
      attempts: 0,
      error: expect.stringMatching(/HTTP 422: .*Content is too long/),
    });
    const conversationId = conversationsOf(h)[0]!.id;
    expect(chatMessages(h, conversationId).map((message) => message.content)).toEqual(["first"]);

    // Chatwoot accepts it now: the retry delivers it, once.
    const retried = await call("POST", `dead-letters/suporte/${dead.id}/retry`);
    expect(retried).toEqual({
      status: 200,
      body: { id: dead.id, status: "pending", message: "dead letter queued for retry" },
    });
    expect((await call("POST", `dead-letters/suporte/${dead.id}/retry`)).status).toBe(409);
    await eventually(async () => (await h!.store.outbox.count(integrationId)).done === 2, {
      what: "the retried message delivered",
    });
    expect(chatMessages(h, conversationId).map((message) => [message.content, message.source_id])).toEqual([
      ["first", expect.stringMatching(/^WAID:/)],
      ["refused once", `WAID:${WA_ID}`],
    ]);
    expect((await call("GET", "dead-letters/suporte")).body.dead_letters).toEqual([]);
    expect((await call("GET", "status")).body.integrations[0]).toMatchObject({
      dead_letters: 0,
      outbox_depth: 0,
    });
    // Done, it is no dead letter any more: a second retry cannot send it again.
    expect((await call("POST", `dead-letters/suporte/${dead.id}/retry`)).status).toBe(409);
    expect(totalMessages(h)).toBe(2);
  });
});
