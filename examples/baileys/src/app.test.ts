// The Baileys example started against fake Baileys sockets (never WhatsApp): start-up up to the QR code, the auth
// state in the data folder, a message both ways through the bridge and the Chatwoot simulator, reconnects, a
// logout, the pairing code, shutdown.
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFakeSocket, type FakeSocket } from "../../../packages/baileys/src/test-support/fake-socket.js";
import { CONTACT_PN, waMessage } from "../../../packages/baileys/src/test-support/fixtures.js";
import {
  type ChatwootSimulator,
  eventually,
  startChatwootSimulator,
} from "../../../packages/testkit/src/index.js";
import { type BaileysExample, buildApp } from "./app.js";
import { readConfig, type UserFacingSocketConfig } from "./deps.js";
import type { ExampleSocket } from "./link.js";

type Made = { config: UserFacingSocketConfig; socket: FakeSocket & ExampleSocket & { ended: boolean } };

function fakeSockets() {
  const made: Made[] = [];
  const pairingRequests: string[] = [];
  const makeSocket = (config: UserFacingSocketConfig) => {
    const socket = Object.assign(createFakeSocket({ emitOwnEvents: true }), {
      ended: false,
      end() {
        socket.ended = true;
      },
      async requestPairingCode(phone: string) {
        pairingRequests.push(phone);
        return "ABCD-EFGH";
      },
    });
    made.push({ config, socket });
    return socket;
  };
  return { made, makeSocket, pairingRequests, last: () => made.at(-1)!.socket };
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const restart = (code: number) => ({
  connection: "close" as const,
  lastDisconnect: {
    error: Object.assign(new Error(`closed ${code}`), { output: { statusCode: code } }),
    date: new Date(),
  },
});

describe("examples/baileys", () => {
  const dir = mkdtempSync(join(tmpdir(), "cw-example-baileys-"));
  const authDir = join(dir, "baileys-auth", "suporte");
  const sockets = fakeSockets();
  const out: string[] = [];
  let example: BaileysExample;
  let server: Server;
  let url: string;
  let sim: ChatwootSimulator;
  let accountId: number;
  /** Whether Chatwoot has a message with this text. */
  const inChatwoot = (text: string) =>
    sim
      .conversations(accountId)
      .some((c) => sim.messages(accountId, c["id"] as number).some((m) => m["content"] === text));
  const customerSays = (socket: FakeSocket, id: string, text: string) =>
    socket.emit("messages.upsert", {
      messages: [waMessage({ id, remoteJid: CONTACT_PN, pushName: "João", message: { conversation: text } })],
      type: "notify",
    });

  beforeAll(async () => {
    sim = await startChatwootSimulator();
    const config = readConfig({
      DATABASE_URL: `sqlite:${join(dir, "chatwoot.sqlite")}`,
      RYZE_ACCOUNT_TOKEN: "account-token",
      RYZE_INSTANCES: "suporte:instance-token",
    });
    example = await buildApp(config, {
      dataDir: dir,
      logger: quiet,
      makeSocket: sockets.makeSocket,
      out: (line) => void out.push(line),
      reconnectDelayMs: () => 10,
      bridge: { echoWaitMs: 100 },
    });
    server = example.app.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await example.close();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts a socket per instance with the auth state of <data>/baileys-auth/<instance>, and prints its QR code", async () => {
    expect(sockets.made).toHaveLength(1);
    expect(sockets.made[0]!.config.auth.creds.registrationId).toEqual(expect.any(Number));
    expect(existsSync(authDir)).toBe(true);
    expect(example.links.get("suporte")!.state()).toBe("connecting");

    sockets.last().emit("connection.update", { connection: "connecting" });
    sockets.last().emit("connection.update", { qr: "2@FAKEQR,abc,def,ghi" });
    expect(example.links.get("suporte")!.state()).toBe("waiting-for-scan");
    expect(out.some((line) => line.includes('"suporte": scan this QR code'))).toBe(true);
    expect(out).toContain("2@FAKEQR,abc,def,ghi");

    // Baileys' credential updates are saved into the data folder.
    sockets.last().emit("creds.update", { registered: false });
    await eventually(() => existsSync(join(authDir, "creds.json")), { what: "creds.json" });
  });

  it("once linked, carries messages both ways between the socket and Chatwoot", async () => {
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    accountId = sim.createAccount({ name: "Acme" }).id;
    const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
    const set = await fetch(`${url}/api/chatwoot/set/suporte`, {
      method: "POST",
      headers: { token: "account-token", "content-type": "application/json" },
      body: JSON.stringify({
        chatwootBaseUrl: sim.url,
        chatwootAccountId: accountId,
        chatwootApiToken: admin.accessToken,
      }),
    });
    expect(set.status).toBe(201);

    const socket = sockets.last();
    socket.emit("connection.update", { connection: "open" });
    expect(example.links.get("suporte")!.state()).toBe("open");
    customerSays(socket, "3EB0EXAMPLEIN0000001", "Olá");
    const conversation = await eventually(() => sim.conversations(accountId)[0], { what: "a conversation" });
    await eventually(() =>
      sim.messages(accountId, conversation["id"] as number).some((m) => m["content"] === "Olá"),
    );

    sim.postAgentMessage({
      accountId,
      conversationId: conversation["id"] as number,
      userId: admin.id,
      content: "Oi!",
    });
    await eventually(() => socket.sent.length === 1, { what: "the reply sent" });
    expect(socket.sent[0]).toMatchObject({ jid: CONTACT_PN, content: { text: "Oi!" } });
  });

  it("reconnects with a new socket when the connection closes, and the old one is no longer listened to", async () => {
    const old = sockets.last();
    old.emit("connection.update", restart(515));
    await eventually(() => sockets.made.length === 2, { what: "a new socket" });
    expect(example.links.get("suporte")!.openSocket()).toBeNull();
    // The new socket reuses the saved credentials.
    expect(sockets.made[1]!.config.auth.creds.registrationId).toBe(
      sockets.made[0]!.config.auth.creds.registrationId,
    );
    const current = sockets.last();
    current.emit("connection.update", { connection: "open" });
    expect(example.links.get("suporte")!.openSocket()).toBe(current);
    customerSays(old, "3EB0TOTHEOLDSOCKET01", "to the old socket");
    customerSays(current, "3EB0TOTHENEWSOCKET01", "to the new socket");
    await eventually(() => inChatwoot("to the new socket"), { what: "the new socket's message" });
    expect(inChatwoot("to the old socket")).toBe(false);
    // A connection lost (not a restart) reconnects too, after the back-off.
    sockets.last().emit("connection.update", restart(408));
    await eventually(() => sockets.made.length === 3, { what: "a third socket" });
  });

  it("a logout from the phone clears the auth state and starts over with a new QR code", async () => {
    const registrationId = sockets.made[0]!.config.auth.creds.registrationId;
    sockets.last().emit("connection.update", restart(401));
    await eventually(() => sockets.made.length === 4, { what: "a fresh socket" });
    expect(out.some((line) => line.includes("logged out from the phone"))).toBe(true);
    expect(existsSync(join(authDir, "creds.json"))).toBe(false);
    expect(sockets.made[3]!.config.auth.creds.registrationId).not.toBe(registrationId);
  });

  it("closing the app ends the sockets", async () => {
    const current = sockets.last();
    await example.links.get("suporte")!.stop();
    expect(current.ended).toBe(true);
    expect(example.links.get("suporte")!.state()).toBe("stopped");
  });
});

describe("examples/baileys with BAILEYS_PAIRING_PHONE", () => {
  it("asks for a pairing code instead of printing the QR code", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cw-example-baileys-pairing-"));
    const sockets = fakeSockets();
    const out: string[] = [];
    const config = readConfig({
      DATABASE_URL: `sqlite:${join(dir, "chatwoot.sqlite")}`,
      RYZE_ACCOUNT_TOKEN: "account-token",
      RYZE_INSTANCES: "suporte:instance-token",
    });
    const example = await buildApp(config, {
      dataDir: dir,
      logger: quiet,
      makeSocket: sockets.makeSocket,
      out: (line) => void out.push(line),
      pairingPhone: "5511900000000",
    });
    try {
      sockets.last().emit("connection.update", { qr: "2@FAKEQR" });
      sockets.last().emit("connection.update", { qr: "2@FAKEQR2" });
      await eventually(() => out.some((line) => line.includes("enter the code ABCD-EFGH")), {
        what: "the code",
      });
      expect(sockets.pairingRequests).toEqual(["5511900000000"]);
      expect(out).not.toContain("2@FAKEQR");
    } finally {
      await example.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
