import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { eventually } from "./harness.js";
import { allMessages, chatMessagesIn, conversationsOf } from "./inspect.js";

const root = resolve(import.meta.dirname, "../../../..");
const children: ChildProcess[] = [];

function startChild(env: Record<string, string>): ChildProcess {
  const child = spawn(
    process.execPath,
    ["--conditions=@ryze/source", "--import", "tsx", join(import.meta.dirname, "crash-child.ts")],
    { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  return child;
}

async function ready(child: ChildProcess): Promise<void> {
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  await eventually(() => output.includes("READY") || child.exitCode !== null, {
    timeoutMs: 30_000,
    what: "child ready",
  });
  if (!output.includes("READY")) throw new Error(`child exited with ${child.exitCode}`);
}

describe("a process killed mid-burst", () => {
  let sim: ChatwootSimulator;
  const dir = mkdtempSync(join(tmpdir(), "cw-crash-"));
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("delivers every stored event exactly once after a restart", async () => {
    sim = await startChatwootSimulator({ cablePingIntervalMs: 500 });
    const accountId = sim.createAccount({ name: "Acme" }).id;
    const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
    // Slow Chatwoot down so that the kill lands in the middle of the burst.
    sim.faults.inject({ method: "POST", path: /\/messages$/, delayMs: 40 });
    const env = {
      DB_FILE: join(dir, "crash.sqlite"),
      KEY: randomBytes(32).toString("base64"),
      SIM_URL: sim.url,
      ACCOUNT_ID: String(accountId),
      CHATWOOT_TOKEN: admin.accessToken,
    };
    const first = startChild({ ...env, MODE: "burst" });
    await ready(first);
    await eventually(() => allMessages(sim, accountId).length >= 40, {
      timeoutMs: 30_000,
      what: "40 messages",
    });
    first.kill("SIGKILL");
    await once(first, "exit");
    const atKill = allMessages(sim, accountId).length;
    expect(atKill).toBeLessThan(200);

    const second = startChild({ ...env, MODE: "drain" });
    await ready(second);
    await eventually(() => allMessages(sim, accountId).length >= 200, {
      timeoutMs: 60_000,
      what: "200 messages",
    });
    // Give nothing a chance to be doubled: the outbox must be drained before we count.
    second.kill("SIGTERM");
    await once(second, "exit");

    const messages = allMessages(sim, accountId);
    expect(messages).toHaveLength(200);
    expect(new Set(messages.map((message) => message.source_id)).size).toBe(200);
    const conversations = conversationsOf({ sim, accountId });
    expect(conversations).toHaveLength(20);
    for (const conversation of conversations) {
      const texts = chatMessagesIn(sim, accountId, conversation.id).map((message) => message.content);
      const phone = texts[0]!.split(" ")[0]!;
      expect(texts).toEqual(Array.from({ length: 10 }, (_, n) => `${phone} #${n}`));
    }
  }, 120_000);
});
