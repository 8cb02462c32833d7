// Both directions through a real bridge and the Chatwoot simulator: a customer writes on WhatsApp (fake socket),
// the agent answers in Chatwoot, the gateway sends through `sendMessage`, Baileys echoes the send and reports
// receipts, and the Chatwoot message's status follows.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTACT_PN, waMessage } from "./test-support/fixtures.js";
import {
  type BaileysHarness,
  chatwootMessageOf,
  eventually,
  messagesWith,
  type SeenMessage,
  startBaileysHarness,
} from "./test-support/harness.js";

let h: BaileysHarness;
let conversationId: number;
let customer: SeenMessage;
const CUSTOMER_ID = "3EB0CUSTOMERASKS0001";

beforeAll(async () => {
  // Baileys upserts its own sends (emitOwnEvents): the bridge must recognise them as echoes.
  h = await startBaileysHarness({ emitOwnEvents: true });
  h.upsert(
    waMessage({
      id: CUSTOMER_ID,
      remoteJid: CONTACT_PN,
      pushName: "João Silva",
      message: { conversation: "Oi, tudo bem?" },
    }),
  );
  customer = await chatwootMessageOf(h, CUSTOMER_ID);
  conversationId = h.sim.conversations(h.accountId)[0]!["id"] as number;
});
afterAll(() => h.close());

const sentCount = (count: number) =>
  eventually(() => h.socket.sent.length >= count, { what: `${count} sends` });
const reply = (input: {
  content?: string;
  inReplyTo?: number;
  attachments?: Array<{ data: Uint8Array; mimetype: string; fileName: string }>;
}) =>
  h.sim.postAgentMessage({ accountId: h.accountId, conversationId, userId: h.agent.id, ...input }) as {
    id: number;
  };
const statusOf = (id: number) =>
  (h.sim.messages(h.accountId, conversationId) as unknown as SeenMessage[]).find(
    (message) => message.id === id,
  )?.status;

describe("Chatwoot ↔ WhatsApp through Baileys", () => {
  it("an agent reply goes out through sendMessage; its echo is not mirrored; receipts set its status", async () => {
    const before = h.socket.sent.length;
    const agentReply = reply({ content: "Tudo, e você?" });
    await sentCount(before + 1);
    const sent = h.socket.sent[before]!;
    expect(sent).toMatchObject({ jid: CONTACT_PN, content: { text: "Tudo, e você?" } });

    // The echo (Baileys' own upsert of the send, key.fromMe) reached ingest and was recognised.
    await eventually(() => h.ingestedFor(sent.id).length === 1);
    await eventually(() => h.bridge.counters()["echo_skipped"] === 1, { what: "echo_skipped" });

    for (const [code, status] of [
      [2, "sent"],
      [3, "delivered"],
      [4, "read"],
    ] as const) {
      h.emit("messages.update", [
        { key: { remoteJid: CONTACT_PN, fromMe: true, id: sent.id }, update: { status: code } },
      ]);
      await eventually(() => statusOf(agentReply.id) === status, { what: `status ${status}` });
    }
    expect(messagesWith(h, CONTACT_PN).filter((message) => message.message_type === 1)).toHaveLength(1);
  });

  it("a WhatsApp error receipt marks the reply failed", async () => {
    const before = h.socket.sent.length;
    const agentReply = reply({ content: "esta não chega" });
    await sentCount(before + 1);
    h.emit("messages.update", [
      { key: { remoteJid: CONTACT_PN, fromMe: true, id: h.socket.sent[before]!.id }, update: { status: 0 } },
    ]);
    await eventually(() => statusOf(agentReply.id) === "failed", { what: "status failed" });
  });

  it("a quoted agent reply quotes the customer's message as Baileys saw it", async () => {
    const before = h.socket.sent.length;
    reply({ content: "sobre isso", inReplyTo: customer.id });
    await sentCount(before + 1);
    expect(h.socket.sent[before]!.options?.quoted).toMatchObject({
      key: { remoteJid: CONTACT_PN, id: CUSTOMER_ID, fromMe: false },
      message: { conversation: "Oi, tudo bem?" },
    });
  });

  it("an attachment goes out as media with its bytes", async () => {
    const data = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff);
    const before = h.socket.sent.length;
    reply({ content: "a foto", attachments: [{ data, mimetype: "image/png", fileName: "foto.png" }] });
    await sentCount(before + 2);
    expect(h.socket.sent[before]!.content).toEqual({ text: "a foto" });
    const media = h.socket.sent[before + 1]!.content as { image: Buffer; mimetype: string };
    expect(media.mimetype).toBe("image/png");
    expect(createHash("sha256").update(media.image).digest("hex")).toBe(
      createHash("sha256").update(data).digest("hex"),
    );
  });

  it("a reply deleted in Chatwoot is revoked on WhatsApp, and the revoke's echo is not mirrored back", async () => {
    const before = h.socket.sent.length;
    const agentReply = reply({ content: "apagar" });
    await sentCount(before + 1);
    const sentId = h.socket.sent[before]!.id;
    // Wait until the bridge recorded the part as sent: only then does it know what to revoke.
    await eventually(() => h.ingestedFor(sentId).length === 1);
    h.sim.deleteMessage({
      accountId: h.accountId,
      conversationId,
      messageId: agentReply.id,
      userId: h.agent.id,
    });
    await sentCount(before + 2);
    expect(h.socket.sent[before + 1]!.content).toEqual({
      delete: { remoteJid: CONTACT_PN, fromMe: true, id: sentId },
    });
    // A later customer message is the barrier: anything the revoke's echo caused would be in Chatwoot before it.
    h.upsert(
      waMessage({ id: "3EB0CUSTOMERBARRIER1", remoteJid: CONTACT_PN, message: { conversation: "ok" } }),
    );
    await chatwootMessageOf(h, "3EB0CUSTOMERBARRIER1");
    expect(messagesWith(h, CONTACT_PN).map((message) => message.content)).not.toContain(
      "🚫 This message was deleted on WhatsApp",
    );
    expect(h.ingestedFor(h.socket.sent[before + 1]!.id)).toHaveLength(0);
  });
});
