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

// Template messages as Chatwoot writes them (app/services/message_templates/hook_execution_service.rb,
// app/services/message_templates/template/{greeting,out_of_office,csat_survey}.rb, app/services/csat_survey_service.rb,
// app/presenters/message_content_presenter.rb).

let sim: ChatwootSimulator;
let s: Seed;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;

afterEach(async () => {
  await sim.close();
  await receiver?.close();
  receiver = undefined;
});

async function start(inbox: Record<string, unknown> = {}) {
  sim = await startChatwootSimulator();
  s = seed(sim, inbox);
  return openConversation(sim, s);
}

const messagesOf = (conversationId: number) => sim.messages(s.accountId, conversationId) as AnyJson[];
const incoming = (conversationId: number, content: string) =>
  call(sim, "POST", s.path(`/conversations/${conversationId}/messages`), {
    token: s.admin.accessToken,
    body: { content, message_type: "incoming" },
  });
const allClosed = Array.from({ length: 7 }, (_, day) => ({ day_of_week: day, closed_all_day: true }));
const allOpen = Array.from({ length: 7 }, (_, day) => ({
  day_of_week: day,
  closed_all_day: false,
  open_all_day: true,
}));

describe("template messages", () => {
  it("greets the contact after its first message, once, with Liquid rendered and no sender", async () => {
    const { conversationId } = await start({
      greeting_enabled: true,
      greeting_message: "Hi {{contact.first_name}}, welcome to {{inbox.name}}!",
    });
    expect(messagesOf(conversationId)).toEqual([]);
    await incoming(conversationId, "hello");
    await incoming(conversationId, "anyone?");
    const messages = messagesOf(conversationId);
    expect(messages.map((m) => [m.message_type, m.content])).toEqual([
      [0, "hello"],
      [3, "Hi Alice, welcome to Whatsapp!"],
      [0, "anyone?"],
    ]);
    expect(messages[1]).toMatchObject({ content_type: "text", status: "sent", private: false });
    expect(messages[1]).not.toHaveProperty("sender");
    // Broadcast like any message, with the numeric type.
    const [broadcast] = await sim
      .waitForBroadcasts({ event: "message.created" }, { count: 3 })
      .then((all) => all.filter((b) => b.data["message_type"] === 3));
    expect(broadcast!.data).toMatchObject({ content: "Hi Alice, welcome to Whatsapp!", sender_type: null });
  });

  it("sends no greeting once an agent has replied", async () => {
    const { conversationId } = await start({ greeting_enabled: true, greeting_message: "Hi" });
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "first" });
    await incoming(conversationId, "hello");
    expect(messagesOf(conversationId).map((m) => m.message_type)).toEqual([1, 0]);
  });

  it("answers out of office when the working hours are closed, once a day, before any greeting", async () => {
    const { conversationId } = await start({
      greeting_enabled: true,
      greeting_message: "Hi",
      working_hours_enabled: true,
      out_of_office_message: "We are closed, {{contact.name}}.",
    });
    await call(sim, "PATCH", s.path(`/inboxes/${s.inboxId}`), {
      token: s.admin.accessToken,
      body: { working_hours: allClosed },
    });
    await incoming(conversationId, "hello");
    await incoming(conversationId, "again");
    expect(messagesOf(conversationId).map((m) => [m.message_type, m.content])).toEqual([
      [0, "hello"],
      [3, "We are closed, Alice."],
      [0, "again"],
    ]);

    const other = await openConversation(sim, s, "15550199@s.whatsapp.net");
    await call(sim, "PATCH", s.path(`/inboxes/${s.inboxId}`), {
      token: s.admin.accessToken,
      body: { working_hours: allOpen },
    });
    await incoming(other.conversationId, "hello");
    expect(messagesOf(other.conversationId).map((m) => [m.message_type, m.content])).toEqual([
      [0, "hello"],
      [3, "Hi"],
    ]);
  });

  it("sends the CSAT survey when the conversation is resolved; webhooks carry the survey link in content", async () => {
    receiver = await startWebhookReceiver();
    const { conversationId } = await start({
      csat_survey_enabled: true,
      channel: { webhook_url: receiver.url },
    });
    await incoming(conversationId, "thanks");
    sim.setConversationStatus(s.accountId, conversationId, "resolved", { userId: s.admin.id });
    const [delivery] = await sim
      .waitForWebhookDeliveries({ event: "message_created" }, { count: 2 })
      .then((all) => all.filter((d) => d.payload["message_type"] === "template"));
    const uuid = (sim.conversations(s.accountId)[0] as AnyJson).uuid as string;
    const link = `${sim.url}/survey/responses/${uuid}`;
    expect(delivery!.payload).toMatchObject({
      content: `Please rate this conversation, ${link}`,
      content_type: "input_csat",
      content_attributes: { display_type: "emoji" },
      sender: null,
    });
    // Stored (REST, cable) without the link.
    const csat = messagesOf(conversationId).find((m) => m.content_type === "input_csat");
    expect(csat).toMatchObject({ message_type: 3, content: "Please rate the conversation" });
    const [broadcast] = (await sim.waitForBroadcasts({ event: "message.created" }, { count: 2 })).filter(
      (b) => b.data["content_type"] === "input_csat",
    );
    expect(broadcast!.data["content"]).toBe("Please rate the conversation");

    // The contact rates on the survey page (Public::Api::V1::CsatSurveyController#update): a message_updated.
    const rated = await call(sim, "PUT", `/public/api/v1/csat_survey/${uuid}`, {
      body: {
        message: { submitted_values: { csat_survey_response: { rating: 5, feedback_message: "great" } } },
      },
    });
    expect(rated).toMatchObject({ status: 200, json: { id: csat.id, display_type: "emoji" } });
    const [update] = await sim.waitForWebhookDeliveries({ event: "message_updated", messageId: csat.id });
    expect(update!.payload["content_attributes"]).toEqual({
      display_type: "emoji",
      submitted_values: { csat_survey_response: { rating: 5, feedback_message: "great" } },
    });

    // Once per conversation: resolving again sends no second survey.
    sim.setConversationStatus(s.accountId, conversationId, "open", { userId: s.admin.id });
    sim.setConversationStatus(s.accountId, conversationId, "resolved", { userId: s.admin.id });
    await sim.waitForWebhookDeliveries({ event: "conversation_status_changed" }, { count: 3 });
    expect(messagesOf(conversationId).filter((m) => m.content_type === "input_csat")).toHaveLength(1);
  });

  it("uses the inbox's CSAT message, and writes an activity instead outside the reply window", async () => {
    receiver = await startWebhookReceiver();
    const { conversationId } = await start({
      csat_survey_enabled: true,
      csat_config: { message: "How did {{agent.name}} do?", display_type: "star" },
      channel: { webhook_url: receiver.url, additional_attributes: { agent_reply_time_window: 24 } },
    });
    await incoming(conversationId, "thanks");
    sim.setConversationStatus(s.accountId, conversationId, "resolved");
    const [delivery] = await sim
      .waitForWebhookDeliveries({ event: "message_created" }, { count: 2 })
      .then((all) => all.filter((d) => d.payload["content_type"] === "input_csat"));
    const uuid = (sim.conversations(s.accountId)[0] as AnyJson).uuid as string;
    // The webhook appends the link to the configured message (not to its Liquid rendering).
    expect(delivery!.payload["content"]).toBe(
      `How did {{agent.name}} do? ${sim.url}/survey/responses/${uuid}`,
    );
    expect(delivery!.payload["content_attributes"]).toEqual({ display_type: "star" });
    expect(messagesOf(conversationId).find((m) => m.content_type === "input_csat")?.content).toBe(
      "How did  do?",
    );

    // No incoming message in the window (a conversation an agent started): no survey, an activity says why.
    const other = await openConversation(sim, s, "15550199@s.whatsapp.net");
    sim.setConversationStatus(s.accountId, other.conversationId, "resolved");
    await sim.waitForBroadcasts({ event: "message.created", conversationId: other.conversationId });
    expect(messagesOf(other.conversationId).map((m) => [m.message_type, m.content])).toEqual([
      [2, "CSAT survey not sent due to outgoing message restrictions"],
    ]);
  });
});
