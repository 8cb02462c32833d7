import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import {
  checkHttpAnswer,
  findSecrets,
  redactSecrets,
  registerSecret,
  secretCheckingLogger,
  takeLeaks,
} from "./secrets.js";
import { startChatwootSimulator } from "./simulator/index.js";

// The secret registry behind the setup file that fails a test file when a secret used by the tests shows up in a
// log line, on the console or in an HTTP answer (issue 15's acceptance). Each test here leaks on purpose and takes
// the leaks itself, so that this file still passes.

afterEach(() => {
  takeLeaks();
});

describe("the secret registry", () => {
  it("records a registered secret logged through the checking logger, naming its kind, never its value", () => {
    const secret = `caller-${randomBytes(8).toString("hex")}`;
    registerSecret(secret, "a caller token");
    const passed: unknown[] = [];
    const logger = secretCheckingLogger({
      debug: () => {},
      info: (obj) => passed.push(obj),
      warn: () => {},
      error: () => {},
    });
    logger.info({ instance: "suporte" }, "nothing secret");
    expect(takeLeaks()).toEqual([]);
    logger.info({ headers: { token: secret } }, "chatwoot: request");
    logger.error({ err: new Error(`token ${secret} refused`) });
    const leaks = takeLeaks();
    expect(leaks).toHaveLength(2);
    expect(leaks[0]).toMatch(/^a caller token in a log line \(info\): /);
    expect(leaks[0]).toContain("<a caller token>");
    expect(leaks.join("\n")).not.toContain(secret);
    // The inner logger still got every line.
    expect(passed).toHaveLength(2);
  });

  it("records a secret written to the console or to stdout (the setup file's capture)", () => {
    const secret = `pubsub-${randomBytes(8).toString("hex")}`;
    registerSecret(secret, "a pubsub token");
    console.log("subscribing with %s", secret);
    process.stdout.write(`raw ${secret}\n`);
    expect(takeLeaks().map((leak) => leak.split(":")[0])).toEqual([
      "a pubsub token in console.log",
      "a pubsub token in stdout",
    ]);
  });

  it("checks HTTP answers, except list's chatwoot_api_token, which the contract answers in plaintext", () => {
    const apiToken = `cw-${randomBytes(8).toString("hex")}`;
    registerSecret(apiToken, "a Chatwoot API token");
    checkHttpAnswer({
      status: 200,
      headers: {},
      body: JSON.stringify({ chatwoot_api_token: apiToken, status: "active" }),
    });
    expect(takeLeaks()).toEqual([]);
    checkHttpAnswer({
      status: 200,
      headers: {},
      body: JSON.stringify({ chatwoot_api_token: apiToken, last_error: `401 for ${apiToken}` }),
    });
    checkHttpAnswer({ status: 502, headers: {}, body: `Detail: ${apiToken}` });
    expect(takeLeaks()).toHaveLength(2);
  });

  it("ignores values too short to be a secret, and redacts what it knows", () => {
    registerSecret("t", "a short token");
    registerSecret(undefined, "nothing");
    expect(findSecrets("t t t")).toEqual([]);
    const key = randomBytes(32);
    registerSecret(key, "an encryption key");
    expect(redactSecrets(`key=${key.toString("base64")}`)).toBe("key=<an encryption key>");
  });

  it("knows the tokens and secrets the simulator mints", async () => {
    const sim = await startChatwootSimulator();
    try {
      const account = sim.createAccount({ name: "Acme" });
      const user = sim.createUser({
        name: "Jane",
        accounts: [{ accountId: account.id, role: "administrator" }],
      });
      expect(findSecrets(`${user.accessToken} ${user.pubsubToken}`)).toHaveLength(2);
    } finally {
      await sim.close();
    }
  });
});
