import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";
import { type DeliveryMode, startModeHarness, updateInbox } from "./modes.js";

// Chatwoot's template messages (message_type 3 / "template": greeting, out of office, CSAT survey) go to the contact
// like agent replies: its channels send `outgoing? || template?` (app/services/base/send_on_channel_service.rb).

const PHONE = "5511900002222";
let running: { close(): Promise<void> } | undefined;
let h: RoutingHarness;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(mode: DeliveryMode) {
  running = await startModeHarness(mode);
  h = (running as Awaited<ReturnType<typeof startModeHarness>>).h;
}

const sentTexts = () => h.gateway.sent("suporte").map((sent) => sent.text);

describe.each(["realtime", "webhook"] as const)("template messages (%s)", (mode) => {
  it("sends the inbox's greeting to WhatsApp once, after the customer's first message", async () => {
    await start(mode);
    await updateInbox(h, {
      greeting_enabled: true,
      greeting_message: "Olá {{contact.first_name}}! An agent will answer shortly.",
    });
    await h.ingest(textEvent({ phone: PHONE, text: "oi", name: "Maria Silva" }));
    await eventually(() => h.gateway.sent("suporte").length === 1, { what: "the greeting on WhatsApp" });
    expect(sentTexts()).toEqual(["Olá Maria! An agent will answer shortly."]);
    const conversationId = conversationsOf(h)[0]!.id;
    expect(chatMessages(h, conversationId).map((m) => m.message_type)).toEqual([0, 3]);

    // A second customer message, an agent reply and a private note: only the reply is sent.
    await h.ingest(textEvent({ phone: PHONE, text: "hello?", name: "Maria Silva" }));
    await eventually(() => totalMessages(h) === 3);
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId,
      userId: h.agent.id,
      content: "internal",
      private: true,
    });
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId,
      userId: h.agent.id,
      content: "Hi Maria",
    });
    await eventually(() => h.gateway.sent("suporte").length === 2);
    expect(sentTexts()).toEqual(["Olá Maria! An agent will answer shortly.", "Hi Maria"]);
  });

  it("sends the out-of-office message when the inbox's working hours are closed", async () => {
    await start(mode);
    await updateInbox(h, {
      working_hours_enabled: true,
      out_of_office_message: "We are closed now; we open at 9:00.",
      working_hours: Array.from({ length: 7 }, (_, day) => ({ day_of_week: day, closed_all_day: true })),
    });
    await h.ingest(textEvent({ phone: PHONE, text: "are you open?" }));
    await eventually(() => h.gateway.sent("suporte").length === 1, { what: "the out-of-office message" });
    expect(sentTexts()).toEqual(["We are closed now; we open at 9:00."]);
  });

  it("sends the CSAT survey with its link when the agent resolves the conversation", async () => {
    await start(mode);
    await updateInbox(h, { csat_survey_enabled: true });
    await h.ingest(textEvent({ phone: PHONE, text: "thanks, solved" }));
    await eventually(() => totalMessages(h) === 1);
    const conversation = conversationsOf(h)[0]!;
    h.sim.setConversationStatus(h.accountId, conversation.id, "resolved", { userId: h.agent.id });
    await eventually(() => h.gateway.sent("suporte").length === 1, { what: "the survey on WhatsApp" });
    const uuid = (conversation as unknown as { uuid: string }).uuid;
    // What Chatwoot's own channels send (app/presenters/message_content_presenter.rb): the same in both modes.
    expect(sentTexts()).toEqual([`Please rate this conversation, ${h.sim.url}/survey/responses/${uuid}`]);
    expect(h.gateway.sent("suporte")[0]!.to).toBe(`${PHONE}@s.whatsapp.net`);
  });

  it("sends a custom CSAT message followed by the link", async () => {
    await start(mode);
    await updateInbox(h, { csat_survey_enabled: true, csat_config: { message: "How did we do?" } });
    await h.ingest(textEvent({ phone: PHONE, text: "bye" }));
    await eventually(() => totalMessages(h) === 1);
    const conversation = conversationsOf(h)[0]!;
    h.sim.setConversationStatus(h.accountId, conversation.id, "resolved", { userId: h.agent.id });
    await eventually(() => h.gateway.sent("suporte").length === 1, { what: "the survey on WhatsApp" });
    const uuid = (conversation as unknown as { uuid: string }).uuid;
    expect(sentTexts()).toEqual([`How did we do? ${h.sim.url}/survey/responses/${uuid}`]);
  });
});

describe("template messages (realtime, after an outage)", () => {
  it("fetches a survey written while the socket was down, with its link", async () => {
    await start("realtime");
    await updateInbox(h, { csat_survey_enabled: true });
    await h.ingest(textEvent({ phone: PHONE, text: "all good" }));
    await eventually(() => totalMessages(h) === 1);
    const conversation = conversationsOf(h)[0]!;
    await h.sim.closePort();
    h.sim.setConversationStatus(h.accountId, conversation.id, "resolved", { userId: h.agent.id });
    await h.sim.reopenPort();
    await eventually(() => h.gateway.sent("suporte").length === 1, {
      timeoutMs: 15_000,
      what: "the backfilled survey",
    });
    const uuid = (conversation as unknown as { uuid: string }).uuid;
    expect(sentTexts()).toEqual([`Please rate this conversation, ${h.sim.url}/survey/responses/${uuid}`]);
  });
});
