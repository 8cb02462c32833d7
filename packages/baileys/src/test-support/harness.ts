// A real bridge (memory store) activated against the Chatwoot simulator, with a fake Baileys socket attached
// and the Baileys gateway: events emitted on the socket go through `attachBaileys` into `bridge.ingest`, agent
// replies come out of the gateway into the socket's `sendMessage`. No network beyond 127.0.0.1.
import { randomBytes } from "node:crypto";
import {
  type ChatwootBridge,
  type ChatwootBridgeOptions,
  createChatwootBridge,
  createStaticDirectory,
  type IngestResult,
  type Logger,
  type WhatsAppEvent,
} from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { type ChatwootSimulator, eventually, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import type { BaileysEventMap, WAMessage } from "baileys";
import { type AttachBaileysOptions, attachBaileys, type DetachBaileys } from "../attach.js";
import { createBaileysGateway } from "../gateway.js";
import { createFakeSocket, type FakeSocket } from "./fake-socket.js";
import { fixtureDownloader } from "./fixtures.js";

export { eventually };

export const INSTANCE = "suporte";
/** The media cap of the harness's attachment. */
export const TEST_MAX_BYTES = 1024 * 1024;

export interface Ingested {
  event: WhatsAppEvent;
  result?: IngestResult;
  error?: unknown;
}

export interface LogEntry {
  level: "debug" | "info" | "warn" | "error";
  obj: object;
  msg: string | undefined;
}

/** Records every ingest, then passes it to the real bridge. */
export function recordingBridge(bridge: Pick<ChatwootBridge, "ingest">) {
  const ingested: Ingested[] = [];
  return {
    ingested,
    async ingest(instance: string, event: WhatsAppEvent) {
      const entry: Ingested = { event };
      ingested.push(entry);
      try {
        entry.result = await bridge.ingest(instance, event);
        return entry.result;
      } catch (error) {
        entry.error = error;
        throw error;
      }
    },
  };
}

export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry["level"]) => (obj: object, msg?: string) =>
    void entries.push({ level, obj, msg });
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export interface BaileysHarness {
  sim: ChatwootSimulator;
  bridge: ChatwootBridge;
  socket: FakeSocket;
  accountId: number;
  agent: { id: number; accessToken: string };
  ingested: Ingested[];
  logs: LogEntry[];
  downloader: ReturnType<typeof fixtureDownloader>;
  /** Emits `messages.upsert` (type `notify`) with these messages. */
  upsert(...messages: WAMessage[]): void;
  emit<E extends keyof BaileysEventMap>(event: E, data: BaileysEventMap[E]): void;
  /** Waits until everything emitted so far reached `ingest`; then listens again with a fresh attachment. */
  flush(): Promise<void>;
  /** What `ingest` received for the message or receipt `id`, in order. */
  ingestedFor(id: string): Ingested[];
  close(): Promise<void>;
}

export async function startBaileysHarness(
  options: {
    attach?: AttachBaileysOptions;
    emitOwnEvents?: boolean;
    bridge?: Partial<ChatwootBridgeOptions>;
  } = {},
): Promise<BaileysHarness> {
  const sim = await startChatwootSimulator({ cablePingIntervalMs: 200 });
  const accountId = sim.createAccount({ name: "Acme" }).id;
  const admin = sim.createUser({ name: "Jane Doe", accounts: [{ accountId, role: "administrator" }] });
  const socket = createFakeSocket({ emitOwnEvents: options.emitOwnEvents ?? false });
  const bridge = createChatwootBridge({
    store: createMemoryStore(),
    gateway: createBaileysGateway(socket),
    directory: createStaticDirectory({
      accounts: [{ id: "a", token: "t", instances: [{ name: INSTANCE, token: "i" }] }],
    }),
    encryption: { current: { id: "k1", key: randomBytes(32).toString("base64") } },
    realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000 },
    dispatcher: { pollIntervalMs: 20 },
    retry: { inbound: { baseDelayMs: 20, maxDelayMs: 200 }, outbound: { baseDelayMs: 20, maxDelayMs: 100 } },
    echoWaitMs: 100,
    ...options.bridge,
  });
  await bridge.start();
  const activated = await bridge.activate(INSTANCE, {
    chatwootBaseUrl: sim.url,
    chatwootAccountId: accountId,
    chatwootApiToken: admin.accessToken,
  });
  if (activated.status !== "active") throw new Error(`activation failed: ${activated.error}`);

  const recording = recordingBridge(bridge);
  const logger = recordingLogger();
  const downloader = fixtureDownloader();
  const attach = () =>
    attachBaileys(recording, INSTANCE, socket, {
      logger,
      media: { download: downloader, maxBytes: TEST_MAX_BYTES },
      retryDelaysMs: [],
      ...options.attach,
    });
  let detach: DetachBaileys = attach();

  return {
    sim,
    bridge,
    socket,
    accountId,
    agent: { id: admin.id, accessToken: admin.accessToken },
    ingested: recording.ingested,
    logs: logger.entries,
    downloader,
    upsert: (...messages) => socket.emit("messages.upsert", { messages, type: "notify" }),
    emit: (event, data) => socket.emit(event, data),
    async flush() {
      await detach();
      detach = attach();
    },
    ingestedFor: (id) =>
      recording.ingested.filter((entry) => (entry.event.data as { id?: string } | undefined)?.id === id),
    async close() {
      await detach();
      await bridge.stop();
      await sim.close();
    },
  };
}

/** A simulated Chatwoot message, as the tests read it. */
export interface SeenMessage {
  id: number;
  content: string | null;
  message_type: number;
  source_id: string | null;
  status: string;
  content_attributes: Record<string, unknown>;
  attachments?: Array<Record<string, unknown>>;
}

/** Every non-activity message of the account's conversation with `identifier` (the chat JID), oldest first. */
export function messagesWith(h: BaileysHarness, identifier: string): SeenMessage[] {
  const contact = h.sim.contacts(h.accountId).find((entry) => entry["identifier"] === identifier);
  if (!contact) return [];
  return h.sim
    .conversations(h.accountId)
    .filter(
      (conversation) => (conversation["meta"] as { sender?: { id?: unknown } }).sender?.id === contact["id"],
    )
    .flatMap(
      (conversation) => h.sim.messages(h.accountId, conversation["id"] as number) as unknown as SeenMessage[],
    )
    .filter((message) => message.message_type !== 2);
}

/** The Chatwoot message created for WhatsApp message `id` (`source_id` `WAID:<id>`), once it exists. */
export function chatwootMessageOf(h: BaileysHarness, id: string): Promise<SeenMessage> {
  return eventually(
    () =>
      h.sim
        .conversations(h.accountId)
        .flatMap(
          (conversation) =>
            h.sim.messages(h.accountId, conversation["id"] as number) as unknown as SeenMessage[],
        )
        .find((message) => message.source_id === `WAID:${id}`),
    { what: `the Chatwoot message of ${id}` },
  );
}
