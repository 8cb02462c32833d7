/**
 * The simulator's `/cable` answers a refused subscribe frame for frame like the real Rails ActionCable server:
 * nothing at all, the identifier kept, the same subscribe ignored until an unsubscribe.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../eventually.js";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { CableClient, seed } from "../simulator/test-support.js";
import { type RailsCable, startRailsCable } from "./launcher.js";
import { describeRailsCable } from "./test-support.js";

interface Server {
  baseUrl: string;
  params: { pubsub_token: string; account_id: number; user_id: number };
  failNextSubscribes(count: number): Promise<void>;
  /** Identifiers the server holds on its open sockets. */
  identifiers(): Promise<string[]>;
}

function refusedSubscribe(open: () => Promise<Server>) {
  const clients: CableClient[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.socket.terminate();
  });

  it("answers nothing, keeps the identifier, ignores the same subscribe until unsubscribe, then confirms", async () => {
    const server = await open();
    const client = await CableClient.connect(server.baseUrl);
    clients.push(client);
    await client.waitFor((frame) => frame.type === "welcome");
    await server.failNextSubscribes(1);
    const identifier = client.subscribe(server.params);
    await eventually(async () => (await server.identifiers()).includes(identifier), {
      timeoutMs: 3_000,
      what: "the failed subscription, registered",
    });
    client.send({ command: "subscribe", identifier });
    // Both servers answer within milliseconds when they answer at all.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(client.frames.filter((frame) => frame.identifier === identifier)).toEqual([]);

    client.send({ command: "unsubscribe", identifier });
    await eventually(async () => !(await server.identifiers()).includes(identifier), {
      timeoutMs: 3_000,
      what: "the unsubscribe",
    });
    client.send({ command: "subscribe", identifier });
    const frames = await client.waitFor(
      (frame) => frame.identifier === identifier && frame.type !== undefined,
    );
    expect(frames).toEqual([{ identifier, type: "confirm_subscription" }]);
  });
}

describeRailsCable("a refused subscribe on the real ActionCable server", () => {
  let server: RailsCable;
  beforeAll(async () => {
    server = await startRailsCable();
  });
  afterAll(async () => {
    await server?.close();
  });
  refusedSubscribe(async () => {
    await server.reset();
    await server.upsertUser({ id: 5, pubsubToken: "token-5", accounts: [{ id: 1 }] });
    return {
      baseUrl: server.httpUrl,
      params: { pubsub_token: "token-5", account_id: 1, user_id: 5 },
      failNextSubscribes: (count) => server.failNextSubscribes(count),
      identifiers: async () => (await server.connections()).flatMap((connection) => connection.identifiers),
    };
  });
});

describe("a refused subscribe on the simulator", () => {
  let sim: ChatwootSimulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });
  refusedSubscribe(async () => {
    const started = await startChatwootSimulator({ cablePingIntervalMs: 200 });
    sim = started;
    const s = seed(started);
    return {
      baseUrl: started.url,
      params: { pubsub_token: s.admin.pubsubToken, account_id: s.accountId, user_id: s.admin.id },
      failNextSubscribes: async (count) => started.cable.failNextSubscribes(count),
      identifiers: async () => started.cable.subscriptions().map((subscription) => subscription.identifier),
    };
  });
});
