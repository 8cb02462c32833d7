import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";
import { type DeliveryMode, startModeHarness, type WebhookHost } from "./modes.js";

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

const PHONE = "5511955554444";

async function start(
  mode: DeliveryMode,
): Promise<{ h: RoutingHarness; host: WebhookHost | null; conversationId: number }> {
  const started = await startModeHarness(mode);
  close = started.close;
  const { h } = started;
  await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
  await eventually(() => totalMessages(h) === 1);
  if (mode === "realtime") {
    await eventually(() => h.sim.cable.subscriptions().some((subscription) => subscription.confirmed));
  }
  return { h, host: started.host, conversationId: conversationsOf(h)[0]!.id };
}

const note = (
  h: RoutingHarness,
  conversationId: number,
  content: string,
  options: { private?: boolean } = {},
) =>
  h.sim.postAgentMessage({
    accountId: h.accountId,
    conversationId,
    userId: h.agent.id,
    content,
    private: options.private ?? true,
  }) as { id: number };

/** The bridge's answers: private notes of the conversation that start with "WhatsApp bridge". */
const answers = (h: RoutingHarness, conversationId: number) =>
  chatMessages(h, conversationId).filter((m) => m.private && m.content?.startsWith("WhatsApp bridge"));

describe.each(["realtime", "webhook"] as const)("commands from the inbox (%s)", (mode) => {
  it("answers /help and /status with a private note and sends nothing to WhatsApp", async () => {
    const { h, conversationId } = await start(mode);
    note(h, conversationId, "/help");
    const [help] = await eventually(() => {
      const found = answers(h, conversationId);
      return found.length === 1 ? found : null;
    });
    expect(help!.content).toContain("/status");
    expect(help!.content).toContain("/resync");
    note(h, conversationId, "  /STATUS ");
    const status = await eventually(() => answers(h, conversationId)[1]);
    expect(status.content).toContain("WhatsApp bridge status for suporte:");
    expect(status.content).toContain(`- integration: active (${mode} delivery)`);
    expect(status.content).toContain("- queued: 0");
    expect(status.content).toContain("- dead letters: 0");
    if (mode === "realtime") expect(status.content).toContain("- realtime link: connected");
    // A reply afterwards goes out alone: neither the commands nor the answers reached WhatsApp.
    note(h, conversationId, "a real reply", { private: false });
    await eventually(() => h.gateway.sent("suporte").length === 1);
    expect(h.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["a real reply"]);
    expect(answers(h, conversationId)).toHaveLength(2);
  });

  it("ignores an unknown command, a command in a longer note, and a public message that looks like one", async () => {
    const { h, conversationId } = await start(mode);
    note(h, conversationId, "/unknown");
    note(h, conversationId, "/status please");
    note(h, conversationId, "/help", { private: false });
    // The public one is an ordinary reply (the agent chose to send it to the customer).
    await eventually(() => h.gateway.sent("suporte").length === 1);
    expect(h.gateway.sent("suporte")[0]!.text).toBe("/help");
    note(h, conversationId, "/status");
    await eventually(() => answers(h, conversationId).length === 1);
    expect(answers(h, conversationId)[0]!.content).toContain("WhatsApp bridge status");
  });
});

describe("commands from the inbox", () => {
  it("answers a command once, even when Chatwoot delivers its event twice (realtime)", async () => {
    const { h, conversationId } = await start("realtime");
    h.sim.cable.duplicateNext(1);
    note(h, conversationId, "/help");
    await eventually(() => answers(h, conversationId).length === 1);
    // A later command's answer proves the duplicate was processed before it.
    note(h, conversationId, "/status");
    await eventually(() => answers(h, conversationId).length === 2);
    expect(
      answers(h, conversationId).filter((m) => m.content?.startsWith("WhatsApp bridge commands")),
    ).toHaveLength(1);
  });

  it("/resync fetches a reply whose webhook never arrived and sends it once", async () => {
    const { h, host, conversationId } = await start("webhook");
    // The bridge is unreachable while the agent replies: Chatwoot's webhook is lost.
    await host!.down();
    const lost = note(h, conversationId, "written while you were down", { private: false });
    const [delivery] = await h.sim.waitForWebhookDeliveries({ event: "message_created", messageId: lost.id });
    expect(delivery!.status).toBeNull();
    await host!.up();
    note(h, conversationId, "/resync");
    await eventually(() => h.gateway.sent("suporte").length === 1, { what: "the fetched reply" });
    expect(h.gateway.sent("suporte")[0]!.text).toBe("written while you were down");
    const [answer] = await eventually(() => {
      const found = answers(h, conversationId);
      return found.length === 1 ? found : null;
    });
    expect(answer!.content).toBe("WhatsApp bridge resync: 1 agent reply queued for WhatsApp.");
    note(h, conversationId, "/resync");
    await eventually(() => answers(h, conversationId).length === 2);
    expect(answers(h, conversationId)[1]!.content).toContain("had already reached the bridge");
    expect(h.gateway.sent("suporte")).toHaveLength(1);
  });
});
