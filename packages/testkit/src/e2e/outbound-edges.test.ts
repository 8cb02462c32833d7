// Chatwoot → WhatsApp, the edges of an agent reply's delivery (packages/core/src/routing/outbound.ts) that the main
// suites (outbound, media, templates, loop-prevention) leave open: replies with no text or only blanks, the caption of
// a document, the per-reply attachment cap at and over its limit, a retry that has nothing left to send, a transient
// download failure in the middle of a reply, Chatwoot's "retry" confirmed as sent, a reply in another integration's
// inbox, deleting a reply that never went out, and a LID chat whose phone JID is known. Written from mutation testing
// (docs/testing.md, "Mutation report"); the unit-level cases are in packages/core/src/routing/outbound-edges.test.ts.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import {
  eventually,
  type RoutingHarness,
  type RoutingHarnessOptions,
  startRoutingHarness,
  textEvent,
} from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";
import { startModeHarness } from "./modes.js";

let h: RoutingHarness | undefined;
let stopHost: (() => void) | undefined;
afterEach(async () => {
  await h?.close();
  stopHost?.();
  h = undefined;
  stopHost = undefined;
});

const PHONE = "5511944443333";
const JID = `${PHONE}@s.whatsapp.net`;

/** A harness with one conversation (the customer wrote first); resolves with its display id. */
async function withConversation(options: RoutingHarnessOptions = {}): Promise<number> {
  h = await startRoutingHarness(options);
  await h.ingest(textEvent({ phone: PHONE, text: "hello, I need help" }));
  await eventually(() => totalMessages(h!) === 1);
  return conversationsOf(h)[0]!.id;
}

type Attachment = { data: Buffer; mimetype: string; fileName: string };
const png = (name = "photo.png"): Attachment => ({
  data: randomBytes(600),
  mimetype: "image/png",
  fileName: name,
});
const pdf = (): Attachment => ({
  data: randomBytes(700),
  mimetype: "application/pdf",
  fileName: "invoice.pdf",
});

function reply(
  conversationId: number,
  content: string | undefined,
  attachments: Attachment[] = [],
): { id: number } {
  return h!.sim.postAgentMessage({
    accountId: h!.accountId,
    conversationId,
    userId: h!.agent.id,
    ...(content === undefined ? {} : { content }),
    ...(attachments.length > 0 ? { attachments } : {}),
  }) as { id: number };
}

async function integrationId(instance = "suporte"): Promise<string> {
  return (await h!.store.integrations.get(instance))!.id;
}

/** Every item of the integration is finished (none pending nor claimed). */
async function settled(instance = "suporte"): Promise<void> {
  const id = await integrationId(instance);
  await eventually(
    async () => {
      const counts = await h!.store.outbox.count(id);
      return counts.pending === 0 && counts.claimed === 0;
    },
    { what: `${instance}'s outbox settled` },
  );
}

const sent = (instance = "suporte") => h!.gateway.sent(instance);

/** `PATCH …/messages/:id` requests Chatwoot received for a message, by the status they set. */
const statusUpdates = (messageId: number, status: string) =>
  h!.sim.requests.filter(
    (request) =>
      request.method === "PATCH" &&
      request.path.endsWith(`/messages/${messageId}`) &&
      (request.body as { status?: unknown } | undefined)?.status === status,
  );

const messageOf = (conversationId: number, messageId: number) =>
  chatMessages(h!, conversationId).find((message) => message.id === messageId);
const privateNotes = (conversationId: number, text: string) =>
  chatMessages(h!, conversationId).filter((message) => message.private && message.content?.includes(text));

describe("replies with attachments and no text", () => {
  it("a reply with attachments only sends the files, a document with an empty caption, and no text before them", async () => {
    const conversationId = await withConversation();
    reply(conversationId, undefined, [png(), pdf()]);
    await eventually(() => sent().length === 2, { what: "the two files" });
    await settled();
    const [image, document] = sent();
    expect([image!.type, document!.type]).toEqual(["image", "document"]);
    expect(image!.to).toBe(JID);
    // A document goes out with an explicitly empty caption; the other kinds carry no caption at all.
    expect(document).toMatchObject({ caption: "", media: { fileName: "invoice.pdf" } });
    expect(image).not.toHaveProperty("caption");
    expect(sent().some((entry) => entry.type === "text")).toBe(false);
  });

  it("a reply whose text is only blanks sends its attachment alone, and one without attachments sends nothing", async () => {
    const conversationId = await withConversation();
    reply(conversationId, "  \n ", [png()]);
    reply(conversationId, "   ");
    reply(conversationId, "barrier");
    await eventually(() => sent().some((entry) => entry.text === "barrier"), { what: "the barrier" });
    await settled();
    expect(sent().map((entry) => entry.type)).toEqual(["image", "text"]);
    // Nothing was sent for the blank reply, and nothing was "already sent" either.
    expect(h!.bridge.counters().outbound_duplicate_skipped).toBeUndefined();
  });
});

describe("the per-reply attachment cap", () => {
  it("a reply with exactly the cap's attachments is delivered in full, and one over it is failed once per retry, never re-sending what went out", async () => {
    const conversationId = await withConversation({ bridge: { outbound: { maxAttachments: 1 } } });
    const atCap = reply(conversationId, "one photo", [png("one.png")]);
    await eventually(() => sent().length === 2, { what: "the reply at the cap" });
    await settled();
    expect(sent().map((entry) => entry.type)).toEqual(["text", "image"]);
    expect(messageOf(conversationId, atCap.id)?.status).toBe("sent");
    expect(privateNotes(conversationId, "could not be delivered")).toEqual([]);

    const overCap = reply(conversationId, "two photos", [png("a.png"), png("b.png")]);
    await eventually(() => messageOf(conversationId, overCap.id)?.status === "failed", { what: "failed" });
    expect(messageOf(conversationId, overCap.id)!.content_attributes).toMatchObject({
      external_error:
        "Not delivered to WhatsApp: attachments 2 to 2 not sent: a reply carries at most 1 attachments",
    });
    await eventually(() => privateNotes(conversationId, `message ${overCap.id}`).length === 1);
    expect(sent().map((entry) => entry.type)).toEqual(["text", "image", "text", "image"]);

    // Chatwoot's retry: the text and the first photo went out already, the second cannot go: nothing is sent again,
    // the duplicate is counted, and the reply is failed again.
    h!.sim.retryMessage({ accountId: h!.accountId, conversationId, messageId: overCap.id });
    await eventually(() => privateNotes(conversationId, `message ${overCap.id}`).length === 2, {
      what: "the second failure note",
    });
    await eventually(() => messageOf(conversationId, overCap.id)?.status === "failed");
    await settled();
    expect(sent()).toHaveLength(4);
    expect(h!.bridge.counters().outbound_duplicate_skipped).toBe(1);
    // It was never confirmed as sent: nothing new went out.
    expect(statusUpdates(overCap.id, "sent")).toEqual([]);
  });
});

describe("retries of a reply", () => {
  it("a download that fails once is retried without sending the text again, and counts no duplicate", async () => {
    const conversationId = await withConversation();
    const fault = h!.sim.faults.inject({
      method: "GET",
      path: /^\/rails\/active_storage\/blobs\/redirect\//,
      status: 500,
      times: 1,
    });
    const message = reply(conversationId, "a photo", [png()]);
    await eventually(() => sent().length === 2, { what: "text and photo" });
    await settled();
    expect(fault.hits).toBe(1);
    expect(sent().map((entry) => [entry.type, entry.text])).toEqual([
      ["text", "a photo"],
      ["image", undefined],
    ]);
    expect(h!.bridge.counters().outbound_duplicate_skipped).toBeUndefined();
    // A first delivery (not Chatwoot's retry) leaves the message's status to Chatwoot and the receipts.
    expect(statusUpdates(message.id, "sent")).toEqual([]);
    expect(messageOf(conversationId, message.id)?.status).toBe("sent");
  });

  it("Chatwoot's retry of a failed reply is confirmed to Chatwoot as sent once it goes out", async () => {
    const conversationId = await withConversation();
    h!.gateway.failNext("suporte", 3, "phone offline");
    const message = reply(conversationId, "are you there?");
    await eventually(() => messageOf(conversationId, message.id)?.status === "failed", { what: "failed" });
    await eventually(() => privateNotes(conversationId, "phone offline").length === 1);
    await settled();
    expect(statusUpdates(message.id, "sent")).toEqual([]);

    h!.sim.retryMessage({ accountId: h!.accountId, conversationId, messageId: message.id });
    await eventually(() => sent().length === 1, { what: "the retried reply" });
    await settled();
    expect(sent()[0]!.text).toBe("are you there?");
    // The simulator's retry already put `sent` back; Chatwoot is told again by us, once, with status only.
    expect(statusUpdates(message.id, "sent").map((request) => request.body)).toEqual([{ status: "sent" }]);
    expect(h!.bridge.counters().outbound_duplicate_skipped).toBeUndefined();
  });
});

describe("where a reply goes", () => {
  it("a webhook delivery of another inbox's reply (its webhook URL set to ours) is not sent", async () => {
    // An administrator copies the bridge's webhook URL into another API inbox: Chatwoot (4.10, unsigned) then posts
    // that inbox's messages to us too. They belong to no WhatsApp chat of ours.
    const running = await startModeHarness("webhook", { version: "4.10" });
    stopHost = () => running.host?.close();
    h = running.h;
    await h.ingest(textEvent({ phone: PHONE, text: "hello, I need help" }));
    await eventually(() => totalMessages(h!) === 1);
    const conversationId = conversationsOf(h)[0]!.id;
    const ours = h.sim.getInbox(h.accountId, h.inboxId) as { webhook_url: string };
    const otherInbox = h.sim.createInbox(h.accountId, {
      name: "Other API inbox",
      channel: { type: "api", webhook_url: ours.webhook_url },
    })["id"] as number;
    const otherJid = "5511933330000@s.whatsapp.net";
    const contactId = h.sim.createContact(h.accountId, { name: "Bruno" })["id"] as number;
    const other = h.sim.createConversation(
      h.accountId,
      { inbox_id: otherInbox, contact_id: contactId, source_id: otherJid },
      { userId: h.agent.id },
    )["id"] as number;
    const elsewhere = reply(other, "from the other inbox");
    const [delivery] = await h.sim.waitForWebhookDeliveries({
      event: "message_created",
      messageId: elsewhere.id,
    });
    expect(delivery).toMatchObject({ inboxId: otherInbox, status: 200 });

    reply(conversationId, "barrier");
    await eventually(() => sent().some((entry) => entry.text === "barrier"), { what: "the barrier" });
    await settled();
    expect(sent().map((entry) => [entry.to, entry.text])).toEqual([[JID, "barrier"]]);
  });

  it("a reply in a LID chat goes to the phone JID once the two are known to be one person", async () => {
    h = await startRoutingHarness();
    const lid = "230000000000077@lid";
    const pn = "14155550777@s.whatsapp.net";
    const id = "3EB0OUTEDGE000000001";
    await h.ingest({
      event: "message.exchange",
      data: {
        id,
        message: {
          id,
          direction: "incoming",
          chat: { jid: lid, name: "Lia", type: "private" },
          sender: { jid: lid, name: "Lia" },
          content: { text: "only a LID" },
        },
      },
    });
    await eventually(() => totalMessages(h!) === 1);
    const conversationId = conversationsOf(h)[0]!.id;
    // The conversation's contact inbox is the LID (its source id); the link to the phone JID comes afterwards.
    expect(h.sim.contactInboxes(h.accountId).map((row) => row["source_id"])).toEqual([lid]);
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    const integration = await integrationId();
    await eventually(async () => (await h!.store.mappings.resolveIdentity(integration, lid)) !== null, {
      what: "the identity link",
    });
    await settled();
    reply(conversationId, "hello Lia");
    await eventually(() => sent().length === 1, { what: "the reply" });
    expect(sent().map((entry) => [entry.to, entry.text])).toEqual([[pn, "hello Lia"]]);
  });
});

describe("deleting a reply", () => {
  it("a reply that never reached WhatsApp is not revoked; a delivered one is", async () => {
    const conversationId = await withConversation();
    h!.gateway.failNext("suporte", 3, "phone offline");
    const failed = reply(conversationId, "lost");
    await eventually(() => messageOf(conversationId, failed.id)?.status === "failed", { what: "failed" });
    await settled();
    h!.sim.deleteMessage({
      accountId: h!.accountId,
      conversationId,
      messageId: failed.id,
      userId: h!.agent.id,
    });
    await eventually(() => h!.bridge.counters().revoke_nothing_sent === 1, { what: "nothing to revoke" });

    const delivered = reply(conversationId, "oops, wrong chat");
    await eventually(() => sent().length === 1);
    await settled();
    h!.sim.deleteMessage({
      accountId: h!.accountId,
      conversationId,
      messageId: delivered.id,
      userId: h!.agent.id,
    });
    await eventually(() => sent().length === 2, { what: "the revoke" });
    await settled();
    expect(sent().map((entry) => [entry.type, entry.to, entry.targetId])).toEqual([
      ["text", JID, undefined],
      ["revoke", JID, sent()[0]!.id],
    ]);
    expect(h!.bridge.counters().revoke_nothing_sent).toBe(1);
  });
});
