// attachBaileys against a bridge that fails, and what it keeps from Baileys' event loop.
import { BridgeError, type WhatsAppEvent } from "@ryze/chatwoot-core";
import { describe, expect, it } from "vitest";
import { attachBaileys } from "./attach.js";
import { readCapped } from "./media.js";
import { createFakeSocket } from "./test-support/fake-socket.js";
import { CONTACT_PN, waMessage } from "./test-support/fixtures.js";
import { recordingLogger } from "./test-support/harness.js";

const text = (id: string, remoteJid = CONTACT_PN) =>
  waMessage({ id, remoteJid, message: { conversation: id } });
const idOf = (event: WhatsAppEvent) => (event.data as { id: string }).id;
/** A bridge that only records the ids it is given. */
const recordIds = (ids: string[]) => ({
  async ingest(_instance: string, event: WhatsAppEvent) {
    ids.push(idOf(event));
    return { id: idOf(event), duplicate: false };
  },
});

describe("attachBaileys", () => {
  it("an ingest that throws is retried, then logged; the socket's emit never throws", async () => {
    const socket = createFakeSocket();
    const logger = recordingLogger();
    let calls = 0;
    const detach = attachBaileys(
      {
        ingest: async () => {
          calls++;
          throw new Error("database is down");
        },
      },
      "suporte",
      socket,
      { logger, retryDelaysMs: [1, 1] },
    );
    expect(() =>
      socket.emit("messages.upsert", { messages: [text("3EB0FAILING000000001")], type: "notify" }),
    ).not.toThrow();
    await detach();
    expect(calls).toBe(3);
    expect(logger.entries.filter((entry) => entry.level === "warn")).toHaveLength(2);
    expect(logger.entries.at(-1)).toMatchObject({
      level: "error",
      obj: { instance: "suporte", id: "3EB0FAILING000000001", err: "database is down" },
      msg: "baileys: event not passed to the bridge",
    });
  });

  it("an invalid event is not retried", async () => {
    const socket = createFakeSocket();
    const logger = recordingLogger();
    let calls = 0;
    const detach = attachBaileys(
      {
        ingest: async () => {
          calls++;
          throw new BridgeError("INVALID_EVENT", "invalid event: data.message.id: Too big");
        },
      },
      "suporte",
      socket,
      { logger, retryDelaysMs: [1, 1] },
    );
    socket.emit("messages.upsert", { messages: [text("3EB0INVALID000000001")], type: "notify" });
    await detach();
    expect(calls).toBe(1);
    expect(logger.entries.at(-1)).toMatchObject({
      level: "error",
      obj: { err: "invalid event: data.message.id: Too big" },
    });
  });

  it("a chat's events reach ingest in order, even when an earlier one waits; chats do not wait for each other", async () => {
    const socket = createFakeSocket();
    const order: string[] = [];
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const detach = attachBaileys(
      {
        ingest: async (_instance, event) => {
          if (idOf(event) === "3EB0CHATA00000000001") await slow;
          order.push(idOf(event));
          return { id: idOf(event), duplicate: false };
        },
      },
      "suporte",
      socket,
    );
    socket.emit("messages.upsert", {
      messages: [text("3EB0CHATA00000000001"), text("3EB0CHATB00000000001", "5511911112222@s.whatsapp.net")],
      type: "notify",
    });
    socket.emit("messages.update", [
      { key: { remoteJid: CONTACT_PN, fromMe: true, id: "3EB0CHATA00000000001" }, update: { status: 3 } },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual(["3EB0CHATB00000000001"]);
    release();
    await detach();
    expect(order).toEqual(["3EB0CHATB00000000001", "3EB0CHATA00000000001", "3EB0CHATA00000000001"]);
  });

  it("detach() stops listening", async () => {
    const socket = createFakeSocket();
    const ingested: string[] = [];
    const detach = attachBaileys(recordIds(ingested), "suporte", socket);
    socket.emit("messages.upsert", { messages: [text("3EB0BEFOREDETACH0001")], type: "notify" });
    await detach();
    socket.emit("messages.upsert", { messages: [text("3EB0AFTERDETACH00001")], type: "notify" });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(ingested).toEqual(["3EB0BEFOREDETACH0001"]);
  });

  it("history sync can be left out", async () => {
    const socket = createFakeSocket();
    const ingested: string[] = [];
    const detach = attachBaileys(recordIds(ingested), "suporte", socket, { history: false });
    socket.emit("messaging-history.set", {
      chats: [],
      contacts: [],
      messages: [text("3EB0HISTORYOFF000001")],
    });
    await detach();
    expect(ingested).toEqual([]);
  });
});

describe("readCapped", () => {
  it("stops reading a stream past the cap, and closes it", async () => {
    let closed = false;
    let read = 0;
    async function* stream() {
      try {
        for (let i = 0; i < 100; i++) {
          read++;
          yield new Uint8Array(100);
        }
      } finally {
        closed = true;
      }
    }
    await expect(readCapped(stream(), 250)).rejects.toThrow("file larger than the 250 bytes limit");
    expect(read).toBe(3);
    expect(closed).toBe(true);
    expect((await readCapped(new Uint8Array([1, 2, 3]), 3)).length).toBe(3);
  });
});
