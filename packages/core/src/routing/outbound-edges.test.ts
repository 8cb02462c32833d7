// Chatwoot → WhatsApp delivery (outbound.ts), the edges the e2e suites cannot reach with the simulator: payload shapes
// Chatwoot does not send in practice (an outgoing message from a contact), a download without a file name, a CSAT
// survey whose conversation has no uuid, a conversation with no known WhatsApp chat, aborted work, and revokes of a
// Chatwoot message that has parts of both directions. Written from mutation testing (docs/testing.md, "Mutation
// report"); the e2e side is packages/testkit/src/e2e/outbound-edges.test.ts.
import { describe, expect, it, vi } from "vitest";
import type { ChatwootAccountTarget, ChatwootApi } from "../chatwoot/index.js";
import type { Integration } from "../integrations/index.js";
import type { Logger } from "../observability/index.js";
import { createMemoryStore } from "../store/memory.js";
import type { WhatsAppGateway, WhatsAppSend } from "./gateway.js";
import type { MediaFetcher } from "./media.js";
import {
  agentMessageOf,
  createOutboundDelivery,
  looksLikeAgentReply,
  PermanentDeliveryError,
} from "./outbound.js";
import type { OutboundWork } from "./work.js";

const INBOX = 7;
const JID = "5511955554444@s.whatsapp.net";

/** A realtime `message.created` of an agent reply (numeric `message_type`, `sender_type`), as Chatwoot pushes it. */
function realtimeReply(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 41,
    content: "hello",
    inbox_id: INBOX,
    conversation_id: 5,
    message_type: 1,
    private: false,
    source_id: null,
    sender_type: "User",
    sender: { id: 1, name: "Jane Doe", available_name: "Jane", type: "user" },
    conversation: { contact_inbox: { source_id: JID } },
    ...extra,
  };
}

/** A webhook `message_created` (string `message_type`, `sender.type`, no `sender_type`). */
function webhookReply(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 42,
    content: "hello",
    inbox: { id: INBOX, name: "WhatsApp" },
    message_type: "outgoing",
    private: false,
    source_id: null,
    sender: { id: 1, name: "Jane Doe", type: "user" },
    conversation: { id: 5, inbox_id: INBOX, contact_inbox: { source_id: JID } },
    ...extra,
  };
}

describe("which Chatwoot messages are agent replies", () => {
  it("a payload that is no message object is not an agent reply", () => {
    for (const data of [null, undefined, "outgoing", 1, [realtimeReply()]]) {
      expect(looksLikeAgentReply(data)).toBe(false);
      expect(agentMessageOf(data, INBOX)).toBeNull();
    }
  });

  it("an outgoing message written by the contact is not sent back to the contact (realtime and webhook shapes)", () => {
    // Control: the same payloads from a user are replies.
    expect(looksLikeAgentReply(realtimeReply())).toBe(true);
    expect(agentMessageOf(realtimeReply(), INBOX)).toMatchObject({ messageId: 41, contactSourceId: JID });
    expect(agentMessageOf(webhookReply(), INBOX)).toMatchObject({ messageId: 42, contactSourceId: JID });

    // Realtime: `sender_type` "Contact" (Rails' polymorphic type), the sender's own type absent or different.
    const byContact = realtimeReply({ sender_type: "Contact", sender: { id: 9, name: "Maria" } });
    expect(looksLikeAgentReply(byContact)).toBe(false);
    expect(agentMessageOf(byContact, INBOX)).toBeNull();
    // Webhook: no `sender_type`; the sender's `type` is "contact".
    const hooked = webhookReply({ sender: { id: 9, name: "Maria", type: "contact" } });
    expect(looksLikeAgentReply(hooked)).toBe(false);
    expect(agentMessageOf(hooked, INBOX)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Delivery, with a memory store, a recording gateway and a scripted Chatwoot

interface Recorded {
  sends: WhatsAppSend[];
  counts: string[];
  warnings: Array<{ obj: object; msg: string | undefined }>;
}

function setup(
  options: {
    download?: MediaFetcher["download"];
    getConversation?: ChatwootApi["getConversation"];
    send?: WhatsAppGateway["send"];
    updateMessageStatus?: ChatwootApi["updateMessageStatus"];
  } = {},
) {
  const store = createMemoryStore();
  const recorded: Recorded = { sends: [], counts: [], warnings: [] };
  let sequence = 0;
  const gateway: WhatsAppGateway = {
    supportsRevoke: true,
    async send(message, callOptions) {
      if (options.send) return options.send(message, callOptions);
      recorded.sends.push(message);
      return { id: `WA${++sequence}` };
    },
  };
  const chatwoot = {
    getConversation: options.getConversation ?? (async () => ({ id: 5, uuid: "c0ffee" })),
    updateMessageStatus: options.updateMessageStatus ?? (async () => {}),
    createMessage: async () => ({ id: 1 }),
  } as unknown as ChatwootApi;
  const logger: Logger = {
    debug() {},
    info() {},
    warn(obj, msg) {
      recorded.warnings.push({ obj, msg });
    },
    error() {},
  };
  const delivery = createOutboundDelivery({
    chatwoot,
    media: {
      download:
        options.download ??
        (async () => ({ data: Buffer.from("bytes"), contentType: "image/png", fileName: "a.png" })),
    } as unknown as MediaFetcher,
    mappings: store.mappings,
    gateway,
    clock: { now: () => new Date() },
    logger,
    count: (event) => recorded.counts.push(event),
    maxAttachments: 10,
  });
  const integration = {
    id: "int-1",
    instance: "suporte",
    signMessages: false,
    baseUrl: "https://chat.example.com",
  } as unknown as Integration;
  const target = { baseUrl: integration.baseUrl, accountId: 1, apiToken: "t" } as ChatwootAccountTarget;
  const ctx = (signal: AbortSignal = new AbortController().signal) => ({ integration, target, signal });
  return { store, delivery, recorded, ctx, integration };
}

const work = (extra: Partial<OutboundWork> = {}): OutboundWork => ({
  kind: "agent-message",
  messageId: 77,
  conversationId: 5,
  content: "hello",
  attachments: [],
  senderName: "Jane",
  contactSourceId: JID,
  inReplyTo: null,
  ...extra,
});

/** Waits for an abort of `signal`, or rejects after `ms` so a test never hangs. */
function abortOf(signal: AbortSignal | undefined, ms = 2_000): Promise<never> {
  return new Promise((_, reject) => {
    if (signal?.aborted) return reject(new Error("aborted"));
    const timer = setTimeout(() => reject(new Error("not aborted")), ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new Error("aborted"));
    });
  });
}

describe("delivering an agent reply", () => {
  it("names a file that came without a name or a file type after the reply and its position", async () => {
    const { delivery, recorded, ctx } = setup({
      download: async () => ({
        data: Buffer.from("%PDF-1.4"),
        contentType: "application/pdf",
        fileName: null,
      }),
    });
    // An attachment without `file_type` (older payloads), read as Chatwoot sends it.
    const reply = agentMessageOf(
      realtimeReply({
        id: 77,
        content: "",
        attachments: [{ data_url: "https://chat.example.com/rails/active_storage/blobs/redirect/x/" }],
      }),
      INBOX,
    )!;
    expect(reply.attachments).toEqual([
      {
        dataUrl: "https://chat.example.com/rails/active_storage/blobs/redirect/x/",
        fileType: "file",
        extension: null,
      },
    ]);
    await delivery.deliver(ctx(), reply);
    expect(recorded.sends).toHaveLength(1);
    expect(recorded.sends[0]).toMatchObject({
      kind: "document",
      to: JID,
      caption: "",
      media: { mimetype: "application/pdf", fileName: "file-77-1.pdf" },
    });
  });

  it("fails for good, naming the conversation, when no WhatsApp chat is known for it", async () => {
    const { delivery, recorded, ctx } = setup();
    const failure = await delivery
      .deliver(ctx(), work({ contactSourceId: null }))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PermanentDeliveryError);
    expect((failure as Error).message).toBe("no WhatsApp chat is known for conversation 5");
    expect(recorded.sends).toEqual([]);
  });

  it("sends a CSAT survey without a link, and warns, when its conversation has no uuid", async () => {
    const { delivery, recorded, ctx } = setup({ getConversation: async () => ({ id: 5 }) as never });
    await delivery.deliver(
      ctx(),
      work({ content: "Please rate the conversation", senderName: null, survey: { conversationUuid: null } }),
    );
    expect(recorded.sends.map((sent) => sent.text)).toEqual(["Please rate the conversation"]);
    expect(recorded.warnings).toEqual([
      {
        obj: { instance: "suporte", conversationId: 5 },
        msg: "chatwoot: no conversation uuid for the CSAT survey link",
      },
    ]);
  });

  it("stops at once when its work is aborted, whether it waits on Chatwoot or on WhatsApp", async () => {
    // Waiting on Chatwoot: the survey's conversation lookup.
    const lookup = setup({
      getConversation: (_target, _id, options) => abortOf(options?.signal),
    });
    const first = new AbortController();
    const surveyed = lookup.delivery
      .deliver(lookup.ctx(first.signal), work({ senderName: null, survey: { conversationUuid: null } }))
      .catch((error: unknown) => error);
    first.abort();
    expect(((await surveyed) as Error).message).toBe("aborted");

    // Waiting on WhatsApp: the send of a reply, and the send of a revoke.
    const sending = setup({ send: (_message, options) => abortOf(options?.signal) });
    const second = new AbortController();
    const sent = sending.delivery
      .deliver(sending.ctx(second.signal), work())
      .catch((error: unknown) => error);
    second.abort();
    expect(((await sent) as Error).message).toBe("aborted");

    // Waiting on Chatwoot again: the "sent" confirmation of Chatwoot's retry, once the reply went out.
    const confirming = setup({
      updateMessageStatus: (_t, _c, _m, _input, options) => abortOf(options?.signal),
    });
    const fourth = new AbortController();
    const confirmed = confirming.delivery
      .deliver(confirming.ctx(fourth.signal), work({ retry: 1 }))
      .catch((error: unknown) => error);
    await vi.waitFor(() => expect(confirming.recorded.sends).toHaveLength(1));
    fourth.abort();
    expect(((await confirmed) as Error).message).toBe("aborted");

    const revoking = setup({ send: (_message, options) => abortOf(options?.signal) });
    await revoking.store.mappings.putMessage({
      integrationId: "int-1",
      waMessageId: "WA9",
      part: 0,
      chatwootMessageId: 77,
      conversationId: 5,
      direction: "outbound",
      createdAt: new Date(),
    });
    const third = new AbortController();
    const revoked = revoking.delivery
      .revoke(revoking.ctx(third.signal), {
        kind: "revoke",
        messageId: 77,
        conversationId: 5,
        contactSourceId: JID,
      })
      .catch((error: unknown) => error);
    third.abort();
    expect(((await revoked) as Error).message).toBe("aborted");
  });
});

describe("revoking a message deleted in Chatwoot", () => {
  const mapping = (waMessageId: string, part: number, direction: "inbound" | "outbound") => ({
    integrationId: "int-1",
    waMessageId,
    part,
    chatwootMessageId: 77,
    conversationId: 5,
    direction,
    createdAt: new Date(),
  });

  it("revokes only what we sent, never a WhatsApp message the Chatwoot message mirrors", async () => {
    const { store, delivery, recorded, ctx } = setup();
    await store.mappings.putMessage(mapping("PHONE1", 0, "inbound"));
    await store.mappings.putMessage(mapping("OUT1", 1, "outbound"));
    await delivery.revoke(ctx(), { kind: "revoke", messageId: 77, conversationId: 5, contactSourceId: JID });
    expect(recorded.sends).toEqual([{ instance: "suporte", to: JID, kind: "revoke", targetId: "OUT1" }]);

    // Only mirrored parts: nothing to revoke.
    const other = setup();
    await other.store.mappings.putMessage(mapping("PHONE2", 0, "inbound"));
    await other.delivery.revoke(other.ctx(), {
      kind: "revoke",
      messageId: 77,
      conversationId: 5,
      contactSourceId: JID,
    });
    expect(other.recorded.sends).toEqual([]);
    expect(other.recorded.counts).toEqual(["revoke_nothing_sent"]);
  });

  it("sends no revoke when the conversation's WhatsApp chat is unknown, even for parts that were sent", async () => {
    const { store, delivery, recorded, ctx } = setup();
    await store.mappings.putMessage(mapping("OUT1", 0, "outbound"));
    await delivery.revoke(ctx(), { kind: "revoke", messageId: 77, conversationId: 5, contactSourceId: null });
    expect(recorded.sends).toEqual([]);
    expect(recorded.counts).toEqual(["revoke_nothing_sent"]);
  });
});
