import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createKeyring } from "../crypto/index.js";
import { BridgeError } from "../errors/index.js";
import { systemClock } from "../observability/index.js";
import { createMemoryStore } from "../store/memory.js";
import { createIntegrationRepository, newIntegrationId } from "./index.js";

// Issue 19, bug 1 (the repository sealing every row with the same AAD): a sealed secret is bound to its row and
// column, so a ciphertext copied from one integration's row into another's never opens there.

const fields = (instance: string) => ({
  id: newIntegrationId(),
  instance,
  status: "active" as const,
  baseUrl: "https://cw.example.com",
  accountId: 1,
  apiToken: `token-of-${instance}`,
  webhookSecret: `secret-of-${instance}`,
  inboxId: 7,
  inboxName: "WhatsApp",
  chatwootUserId: 3,
  deliveryMode: "webhook" as const,
  signMessages: false,
  ignoreGroups: false,
  startAsPending: false,
  reopenResolved: false,
  lastError: "",
  provisioningUntil: null,
});

function setup() {
  const store = createMemoryStore();
  const repository = createIntegrationRepository(
    store.integrations,
    createKeyring({ current: { id: "k1", key: randomBytes(32).toString("base64") } }),
    systemClock,
  );
  return { store, repository };
}

/** Copies sealed columns of `from` into `to` at the storage level (what an attacker with database access does). */
async function copySealed(
  store: ReturnType<typeof createMemoryStore>,
  from: string,
  to: string,
  columns: Array<"apiToken" | "webhookSecret">,
) {
  const source = (await store.integrations.getById(from))!;
  const target = (await store.integrations.getById(to))!;
  const patch = Object.fromEntries(columns.map((column) => [column, source[column]]));
  const updated = await store.integrations.update(to, target.version, patch);
  expect(updated, "the copy was written").not.toBeNull();
}

const refused = async (read: Promise<unknown>) => {
  const error = await read.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error, "opening a secret sealed for another row must fail").toBeInstanceOf(BridgeError);
  expect((error as BridgeError).message).toBe(
    "stored secret cannot be opened: authentication failed (tampered, or sealed for another row)",
  );
};

describe("AAD binding of sealed secrets to their integration row (issue 19, bug 1)", () => {
  it("a sealed API token copied from one integration row to another does not open (getById and get refuse it)", async () => {
    const { store, repository } = setup();
    const victim = (await repository.insert(fields("suporte")))!;
    const attacker = (await repository.insert(fields("vendas")))!;
    await copySealed(store, victim.id, attacker.id, ["apiToken"]);
    await refused(repository.getById(attacker.id));
    await refused(repository.get("vendas"));
    // The victim's own row still opens, to its own token.
    expect((await repository.getById(victim.id))?.apiToken).toBe("token-of-suporte");
  });

  it("a sealed webhook secret copied from one integration row to another does not open", async () => {
    const { store, repository } = setup();
    const victim = (await repository.insert(fields("suporte")))!;
    const attacker = (await repository.insert(fields("vendas")))!;
    await copySealed(store, victim.id, attacker.id, ["webhookSecret"]);
    await refused(repository.getById(attacker.id));
  });

  it("a row holding another row's sealed values is refused by all(), not handed out", async () => {
    const { store, repository } = setup();
    const a = (await repository.insert(fields("suporte")))!;
    const b = (await repository.insert(fields("vendas")))!;
    await copySealed(store, a.id, b.id, ["apiToken", "webhookSecret"]);
    const read = (async () => {
      for await (const integration of repository.all()) void integration;
    })();
    await refused(read);
  });

  it("a sealed API token moved into the webhook secret column of the same row does not open", async () => {
    const { store, repository } = setup();
    const row = (await repository.insert(fields("suporte")))!;
    const stored = (await store.integrations.getById(row.id))!;
    await store.integrations.update(row.id, stored.version, { webhookSecret: stored.apiToken });
    await refused(repository.getById(row.id));
  });
});
