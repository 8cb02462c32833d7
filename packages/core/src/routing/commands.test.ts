import { describe, expect, it } from "vitest";
import { commandOf, parseCommand } from "./commands.js";

// Shapes of Chatwoot's payloads: realtime `Message#push_event_data` (numeric message_type, sender_type) and webhook
// `Message#webhook_data` (string message_type, sender.type) in app/models/message.rb.
const realtime = (overrides: Record<string, unknown> = {}) => ({
  id: 41,
  content: "/status",
  message_type: 1,
  private: true,
  inbox_id: 7,
  conversation_id: 3,
  sender_type: "User",
  sender: { id: 1, type: "user" },
  ...overrides,
});
const webhook = (overrides: Record<string, unknown> = {}) => ({
  id: 42,
  content: "/resync",
  message_type: "outgoing",
  private: true,
  inbox: { id: 7 },
  conversation: { id: 3, inbox_id: 7 },
  sender: { id: 1, type: "user" },
  ...overrides,
});

describe("inbox commands", () => {
  it("reads a command from an agent's private note, realtime or webhook", () => {
    expect(commandOf(realtime(), 7)).toEqual({
      kind: "command",
      command: "status",
      messageId: 41,
      conversationId: 3,
    });
    expect(commandOf(webhook(), 7)).toEqual({
      kind: "command",
      command: "resync",
      messageId: 42,
      conversationId: 3,
    });
  });

  it("recognises commands only from agents (users), never from a contact or an agent bot", () => {
    expect(
      commandOf(realtime({ sender_type: "AgentBot", sender: { id: 9, type: "agent_bot" } }), 7),
    ).toBeNull();
    expect(commandOf(webhook({ sender: { id: 9, type: "agent_bot" } }), 7)).toBeNull();
    expect(commandOf(realtime({ sender_type: "Contact", sender: { id: 5, type: "contact" } }), 7)).toBeNull();
    expect(commandOf(realtime({ sender_type: undefined, sender: undefined }), 7)).toBeNull();
  });

  it("ignores public messages, incoming messages, other inboxes and other texts", () => {
    expect(commandOf(realtime({ private: false }), 7)).toBeNull();
    expect(commandOf(realtime({ message_type: 0 }), 7)).toBeNull();
    expect(commandOf(realtime(), 8)).toBeNull();
    expect(commandOf(realtime({ content: "/status now" }), 7)).toBeNull();
    expect(parseCommand(" /Help\n")).toBe("help");
    expect(parseCommand("/resync")).toBe("resync");
    expect(parseCommand("/unknown")).toBeNull();
    expect(parseCommand("status")).toBeNull();
    expect(parseCommand(null)).toBeNull();
  });
});
