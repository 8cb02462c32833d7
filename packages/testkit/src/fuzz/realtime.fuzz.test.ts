import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "../e2e/harness.js";
import { conversationsOf } from "../e2e/inspect.js";
import { fuzzSettings } from "./settings.js";

// Issue 15, item 6: frames on the realtime socket, as a hostile or broken Chatwoot (or anything answering on its
// address) could send them: junk text, JSON of any shape, ActionCable commands, and RoomChannel events of every kind
// with fields of any type, for our inbox and for others. Properties: the process stays up (vitest fails the file on
// an unhandled error), and the link still works afterwards: it is (again) subscribed, and a real agent reply sent
// after the frames reaches WhatsApp exactly once.

const { seed, numRuns } = fuzzSettings("realtime frames");

let h: RoutingHarness;
let identifier: string;
let conversationId: number;

beforeAll(async () => {
  h = await startRoutingHarness();
  identifier = (
    await eventually(() => h.sim.cable.subscriptions().find((subscription) => subscription.confirmed), {
      what: "the realtime subscription",
    })
  ).identifier;
  // A conversation the bridge knows, so that fuzzed replies into it reach the routing, not just the filters.
  await h.ingest(textEvent({ phone: "5511977776666", text: "hello" }));
  conversationId = (await eventually(() => conversationsOf(h)[0], { what: "the conversation" })).id as number;
});

afterAll(async () => {
  await h?.close();
});

const weird = fc.oneof(
  fc.anything({ maxDepth: 2, maxKeys: 4 }),
  fc.constantFrom(null, "", 0, -1, 1.5, [], {}, "__proto__", "x".repeat(300)),
);
const mostly = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: invalid });

/** `Message#push_event_data`-like data, each field right most of the time. */
const messageData = fc.record(
  {
    id: mostly(fc.integer({ min: 1_000_000, max: 2_000_000 }), weird),
    content: mostly(fc.string({ maxLength: 200 }), weird),
    account_id: mostly(fc.constant("<account>"), weird),
    inbox_id: mostly(fc.constantFrom("<inbox>", "<inbox>", 999_999), weird),
    conversation_id: mostly(fc.constantFrom("<conversation>", "<conversation>", 424_242), weird),
    message_type: mostly(fc.constantFrom(0, 1, 1, 2, 3, "outgoing"), weird),
    content_type: mostly(fc.constantFrom("text", "input_select", "cards"), weird),
    private: mostly(fc.boolean(), weird),
    source_id: mostly(fc.constantFrom(null, "WAID:3EB0FUZZ", "x"), weird),
    sender_type: fc.constantFrom("User", "Contact", "AgentBot"),
    sender: mostly(
      fc.record({
        id: fc.integer(),
        name: fc.string({ maxLength: 20 }),
        type: fc.constantFrom("user", "contact"),
      }),
      weird,
    ),
    content_attributes: mostly(fc.constantFrom({}, { deleted: true }, { in_reply_to: 1 }), weird),
    attachments: mostly(
      fc.array(
        fc.record({
          file_type: fc.constantFrom("image", "audio", "file", "location", "x"),
          data_url: fc.constantFrom("http://127.0.0.1:1/a.png", "http://169.254.169.254/", "junk"),
        }),
        { maxLength: 2 },
      ),
      weird,
    ),
    conversation: mostly(
      fc.record({ id: fc.constant("<conversation>"), status: fc.constantFrom("open", "resolved") }),
      weird,
    ),
    status: mostly(fc.constantFrom("open", "resolved", "pending", "sent", "failed"), weird),
  },
  { requiredKeys: [] },
);
const event = fc.record(
  {
    event: mostly(
      fc.constantFrom(
        "message.created",
        "message.updated",
        "conversation.status_changed",
        "conversation.created",
        "conversation.typing_on",
        "presence.update",
        "contact.updated",
      ),
      weird,
    ),
    data: mostly(messageData, weird),
  },
  { requiredKeys: [] },
);
const frame = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(mostly(fc.constant("<identifier>"), weird), event)
      .map(([id, message]) => ({ identifier: id, message })),
  },
  {
    weight: 1,
    // Commands a server sends. Left out, because obeying them is right, not a bug: `disconnect`,
    // `reject_subscription`, and `confirm_subscription` of our own subscription (a confirmation nobody waits for makes
    // the client unsubscribe it, and the link is then repaired by the deafness probe, minutes later).
    arbitrary: fc.oneof(
      fc.record(
        {
          type: fc.constantFrom("ping", "welcome", "unknown"),
          message: weird,
          identifier: mostly(fc.constant("<identifier>"), weird),
        },
        { requiredKeys: ["type"] },
      ),
      fc.record({
        type: fc.constant("confirm_subscription"),
        identifier: fc.oneof(weird, fc.constantFrom("constructor", "__proto__", "toString", "{}")),
      }),
    ),
  },
  { weight: 1, arbitrary: weird },
);
const raw = fc.oneof(
  { weight: 9, arbitrary: frame.map((value) => ({ json: value })) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.string({ maxLength: 100 }), fc.constantFrom("{", "[", "\u0000", ""))
      .map((text) => ({ text })),
  },
);

function render(value: { json: unknown } | { text: string }): string {
  if ("text" in value) return value.text;
  const text = JSON.stringify(value.json, (_key, field: unknown) => {
    if (field === "<identifier>") return identifier;
    if (field === "<account>") return h.accountId;
    if (field === "<inbox>") return h.inboxId;
    if (field === "<conversation>") return conversationId;
    return field;
  });
  return text ?? "null";
}

describe("fuzzing realtime frames (issue 15)", () => {
  it("survives any frame and still delivers the next agent reply", async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(raw, async (value) => {
        sent += h.sim.cable.sendRaw(render(value));
        // Let the client handle it (and any store work it started) before the next frame.
        await new Promise((resolve) => setImmediate(resolve));
      }),
      {
        seed,
        numRuns,
        interruptAfterTimeLimit: 120_000,
        endOnFailure: true,
        // Regressions: JSON that is not an object, an identifier that is not a string. Each threw inside
        // @anycable/core's message handler, an uncaught TypeError that ends the process (fixed by realtime/frames.ts).
        examples: [
          [{ text: "null" }],
          [{ text: "[]" }],
          [{ text: "7" }],
          [{ text: '"welcome"' }],
          [{ json: { message: null } }],
          [{ text: '{"identifier":{"a":1},"message":{"event":"x"}}' }],
          [{ text: '{"type":"confirm_subscription","identifier":"constructor"}' }],
        ],
      },
    );
    expect(sent).toBeGreaterThan(0);
    // Still linked (a frame may have made it reconnect), and a real reply still goes out, once.
    await eventually(() => h.sim.cable.subscriptions().some((subscription) => subscription.confirmed), {
      timeoutMs: 20_000,
      what: "the realtime subscription after the fuzzed frames",
    });
    const marker = `after ${numRuns} fuzzed frames`;
    h.sim.postAgentMessage({ accountId: h.accountId, conversationId, userId: h.agent.id, content: marker });
    await eventually(() => h.gateway.sent("suporte").some((sent) => JSON.stringify(sent).includes(marker)), {
      timeoutMs: 20_000,
      what: "the agent reply on WhatsApp",
    });
    expect(h.gateway.sent("suporte").filter((sent) => JSON.stringify(sent).includes(marker))).toHaveLength(1);
  }, 300_000);
});
