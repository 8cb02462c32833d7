import { afterEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "./index.js";
import {
  type AnyJson,
  call,
  openConversation,
  type Seed,
  seed,
  startWebhookReceiver,
} from "./test-support.js";

// MessagesController#retry (app/controllers/api/v1/accounts/conversations/messages_controller.rb, config/routes.rb
// `post :retry`): the dashboard's retry button on a failed message.

let sim: ChatwootSimulator;
let s: Seed;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
afterEach(async () => {
  await sim.close();
  await receiver?.close();
  receiver = undefined;
});

describe("POST …/messages/{id}/retry", () => {
  it("puts a message whose webhook delivery failed back to sent, clearing content_attributes, as two updates", async () => {
    let answer = 503;
    receiver = await startWebhookReceiver(() => ({ status: answer }));
    sim = await startChatwootSimulator();
    s = seed(sim, { channel: { webhook_url: receiver.url } });
    const { conversationId } = await openConversation(sim, s);
    const path = s.path(`/conversations/${conversationId}/messages`);
    const created = (await call(sim, "POST", path, { token: s.agent.accessToken, body: { content: "hi" } }))
      .json as AnyJson;
    // Chatwoot marks the message failed when its webhook delivery fails (lib/webhooks/trigger.rb).
    await sim.waitForWebhookDeliveries({ event: "message_created", messageId: created.id });
    await sim.waitForWebhookDeliveries({ event: "message_updated", messageId: created.id });
    expect(sim.messages(s.accountId, conversationId).at(-1)).toMatchObject({
      status: "failed",
      content_attributes: { external_error: "503 Service Unavailable" },
    });

    answer = 200;
    const retried = await call(sim, "POST", `${path}/${created.id}/retry`, { token: s.agent.accessToken });
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ id: created.id, status: "sent", content_attributes: {} });
    const updates = await sim.waitForWebhookDeliveries(
      { event: "message_updated", messageId: created.id },
      { count: 3 },
    );
    // Both saves are dispatched once committed: each payload shows the final state.
    expect(updates.slice(1).map((update) => [update.status, update.payload["content_attributes"]])).toEqual([
      [200, {}],
      [200, {}],
    ]);
    const missing = await call(sim, "POST", `${path}/99999/retry`, { token: s.agent.accessToken });
    expect(missing).toMatchObject({ status: 404, json: { error: "Resource could not be found" } });
  });
});
