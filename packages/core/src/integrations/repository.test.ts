import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type Cipher, createKeyring, secretAad } from "../crypto/index.js";
import { createMemoryStore } from "../store/memory.js";
import type { IntegrationRow, IntegrationStore } from "../store/ports.js";
import {
  chatwootTargetOf,
  createIntegrationRepository,
  type Integration,
  isProvisioned,
  isServing,
  newIntegrationId,
} from "./index.js";

// The repository that seals and opens the secrets of integrations (mutation testing: docs/testing.md).
const key = () => randomBytes(32).toString("base64");

function fields(instance: string, patch: Partial<Integration> = {}) {
  return {
    id: `int_${instance}`,
    instance,
    status: "active" as const,
    baseUrl: "https://cw.example.com",
    accountId: 1,
    apiToken: `token-of-${instance}`,
    webhookSecret: `secret-of-${instance}` as string | null,
    inboxId: 7 as number | null,
    inboxName: "WhatsApp",
    chatwootUserId: 3,
    deliveryMode: "realtime" as const,
    signMessages: false,
    ignoreGroups: false,
    startAsPending: false,
    reopenResolved: false,
    lastError: "",
    provisioningUntil: null as Date | null,
    ...patch,
  };
}

/** A keyring that counts how often it opens. */
function counting(cipher: Cipher) {
  const opens: string[] = [];
  return {
    opens,
    cipher: {
      currentKeyId: cipher.currentKeyId,
      seal: (plaintext: string, aad: string) => cipher.seal(plaintext, aad),
      open: (sealed: string, aad: string) => {
        opens.push(aad);
        return cipher.open(sealed, aad);
      },
      keyIdOf: (sealed: string) => cipher.keyIdOf(sealed),
    } satisfies Cipher,
  };
}

/** A store that records the pages asked for. */
function paging(store: IntegrationStore) {
  const pages: Array<{ afterId?: string; limit?: number }> = [];
  return {
    pages,
    store: {
      ...store,
      list: (options?: { afterId?: string; limit?: number }) => {
        pages.push({ ...options });
        return store.list(options);
      },
    } satisfies IntegrationStore,
  };
}

function setup(options: { at?: number } = {}) {
  let now = options.at ?? 1_800_000_000_000;
  const clock = { now: () => new Date(now) };
  const memory = createMemoryStore();
  const keyring = createKeyring({ current: { id: "k1", key: key() } });
  const { cipher, opens } = counting(keyring);
  const { store, pages } = paging(memory.integrations);
  const repository = createIntegrationRepository(store, cipher, clock);
  return {
    repository,
    memory,
    keyring,
    opens,
    pages,
    raw: (id: string) => memory.raw.integrations.get(id) as IntegrationRow,
    advance: (ms: number) => {
      now += ms;
    },
    clock,
  };
}

describe("integration predicates", () => {
  const base = { ...fields("x"), version: 1, createdAt: new Date(0), updatedAt: new Date(0) } as Integration;

  it("a provisioned integration finished its first activation: not provisioning, with an inbox", () => {
    expect(isProvisioned(base)).toBe(true);
    expect(isProvisioned({ ...base, status: "paused" })).toBe(true);
    expect(isProvisioned({ ...base, status: "error" })).toBe(true);
    expect(isProvisioned({ ...base, status: "provisioning" })).toBe(false);
    expect(isProvisioned({ ...base, inboxId: null })).toBe(false);
    expect(isProvisioned(null)).toBe(false);
  });

  it("a serving integration is provisioned and active or in error, not paused", () => {
    expect(isServing(base)).toBe(true);
    expect(isServing({ ...base, status: "error" })).toBe(true);
    expect(isServing({ ...base, status: "paused" })).toBe(false);
    expect(isServing({ ...base, status: "provisioning" })).toBe(false);
    expect(isServing({ ...base, inboxId: null })).toBe(false);
    expect(isServing(null)).toBe(false);
  });

  it("the Chatwoot target is the base URL, account and token", () => {
    expect(chatwootTargetOf({ ...base, apiToken: "tok" })).toEqual({
      baseUrl: "https://cw.example.com",
      accountId: 1,
      apiToken: "tok",
    });
  });

  it("new ids are int_ and 16 URL-safe characters, never the same", () => {
    const ids = new Set(Array.from({ length: 50 }, () => newIntegrationId()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^int_[A-Za-z0-9_-]{16}$/);
  });
});

describe("integration repository", () => {
  it("insert seals each secret for its own row and column, at version 1, stamped with the clock", async () => {
    const t = setup();
    const inserted = await t.repository.insert(fields("a"));
    const now = t.clock.now();
    expect(inserted).toMatchObject({
      id: "int_a",
      version: 1,
      apiToken: "token-of-a",
      webhookSecret: "secret-of-a",
      createdAt: now,
      updatedAt: now,
    });
    const row = t.raw("int_a");
    expect(row.apiToken).toMatch(/^cw1:k1:/);
    expect(t.keyring.open(row.apiToken, secretAad("chatwoot_integrations", "api_token", "int_a"))).toBe(
      "token-of-a",
    );
    expect(
      t.keyring.open(row.webhookSecret!, secretAad("chatwoot_integrations", "webhook_secret", "int_a")),
    ).toBe("secret-of-a");
    expect(await t.repository.insert(fields("a", { id: "int_other" }))).toBeNull();
  });

  it("a row without webhook secret stores and reads null", async () => {
    const t = setup();
    await t.repository.insert(fields("a", { webhookSecret: null }));
    expect(t.raw("int_a").webhookSecret).toBeNull();
    expect((await t.repository.get("a"))?.webhookSecret).toBeNull();
  });

  it("get and getById open the secrets, and answer null for what does not exist", async () => {
    const t = setup();
    await t.repository.insert(fields("a"));
    expect(await t.repository.get("a")).toMatchObject({
      apiToken: "token-of-a",
      webhookSecret: "secret-of-a",
    });
    expect(await t.repository.getById("int_a")).toMatchObject({ instance: "a", apiToken: "token-of-a" });
    expect(await t.repository.get("missing")).toBeNull();
    expect(await t.repository.getById("int_missing")).toBeNull();
  });

  it("opens a sealed value once, then answers from memory", async () => {
    const t = setup();
    await t.repository.insert(fields("a"));
    await t.repository.get("a");
    await t.repository.get("a");
    await t.repository.getById("int_a");
    expect(t.opens).toEqual([
      "chatwoot_integrations.api_token:int_a",
      "chatwoot_integrations.webhook_secret:int_a",
    ]);
  });

  it("keeps a bounded number of opened secrets (thousands), forgetting the oldest first", async () => {
    const t = setup();
    // Rows with one secret each: every insert answers its row opened, so the cache grows by one per row.
    await t.repository.insert(fields("i0", { webhookSecret: null }));
    let rows = 1;
    for (;;) {
      t.opens.length = 0;
      await t.repository.get("i0");
      if (t.opens.length > 0) break;
      await t.repository.insert(fields(`i${rows}`, { webhookSecret: null }));
      rows++;
      if (rows > 10_000) throw new Error("the cache never dropped anything");
    }
    // i0 was dropped when the cache was full, and it holds thousands. Opening i0 again dropped the next oldest,
    // i1, and nothing else.
    expect(rows).toBeGreaterThan(2_000);
    t.opens.length = 0;
    await t.repository.get("i2");
    await t.repository.get(`i${rows - 1}`);
    expect(t.opens).toEqual([]);
    await t.repository.get("i1");
    expect(t.opens).toEqual(["chatwoot_integrations.api_token:int_i1"]);
  });

  it("update seals changed secrets, clears the webhook secret on null and stamps updatedAt", async () => {
    const t = setup();
    const inserted = (await t.repository.insert(fields("a")))!;
    t.advance(5_000);
    const updated = (await t.repository.update(inserted, { apiToken: "new-token", inboxName: "renamed" }))!;
    expect(updated).toMatchObject({
      version: 2,
      apiToken: "new-token",
      webhookSecret: "secret-of-a",
      inboxName: "renamed",
      createdAt: inserted.createdAt,
      updatedAt: t.clock.now(),
    });
    const row = t.raw("int_a");
    expect(row.apiToken).not.toContain("new-token");
    expect(t.keyring.open(row.apiToken, secretAad("chatwoot_integrations", "api_token", "int_a"))).toBe(
      "new-token",
    );
    const secret = (await t.repository.update(updated, { webhookSecret: "s2" }))!;
    expect(secret.webhookSecret).toBe("s2");
    expect(
      t.keyring.open(
        t.raw("int_a").webhookSecret!,
        secretAad("chatwoot_integrations", "webhook_secret", "int_a"),
      ),
    ).toBe("s2");
    const cleared = (await t.repository.update(secret, { webhookSecret: null }))!;
    expect(cleared.webhookSecret).toBeNull();
    expect(t.raw("int_a").webhookSecret).toBeNull();
    // A stale version loses.
    expect(await t.repository.update(updated, { inboxName: "late" })).toBeNull();
  });

  it("delete passes the expected version on", async () => {
    const t = setup();
    const inserted = (await t.repository.insert(fields("a")))!;
    expect(await t.repository.delete("int_a", inserted.version + 1)).toBe(false);
    expect(await t.repository.delete("int_a", inserted.version)).toBe(true);
    expect(await t.repository.delete("int_a")).toBe(false);
  });

  it("all reads in pages of 100 by default, each after the last id of the previous one", async () => {
    const t = setup();
    for (let i = 0; i < 205; i++) await t.repository.insert(fields(`i${String(i).padStart(3, "0")}`));
    const seen: string[] = [];
    for await (const integration of t.repository.all()) seen.push(integration.instance);
    expect(seen).toHaveLength(205);
    expect(new Set(seen).size).toBe(205);
    expect(t.pages).toStrictEqual([
      { limit: 100 },
      { afterId: "int_i099", limit: 100 },
      { afterId: "int_i199", limit: 100 },
    ]);
  });

  it("all stops after a full last page with one more, empty read, and takes a page size", async () => {
    const t = setup();
    for (let i = 0; i < 4; i++) await t.repository.insert(fields(`i${i}`));
    const seen: string[] = [];
    for await (const integration of t.repository.all(2)) seen.push(integration.instance);
    expect(seen).toEqual(["i0", "i1", "i2", "i3"]);
    expect(t.pages).toStrictEqual([
      { limit: 2 },
      { afterId: "int_i1", limit: 2 },
      { afterId: "int_i3", limit: 2 },
    ]);
  });
});

describe("rotateKeys", () => {
  it("re-seals rows whose token or webhook secret is under an old key, and skips the others", async () => {
    const t = setup();
    const k1 = key();
    const old = createIntegrationRepository(
      t.memory.integrations,
      createKeyring({ current: { id: "k1", key: k1 } }),
      t.clock,
    );
    const k2 = createKeyring({ current: { id: "k2", key: key() }, previous: [{ id: "k1", key: k1 }] });
    const current = createIntegrationRepository(t.memory.integrations, k2, t.clock);
    await old.insert(fields("both-old"));
    await old.insert(fields("no-secret", { webhookSecret: null }));
    await current.insert(fields("fresh"));
    // Only the webhook secret is stale.
    const mixed = (await current.insert(fields("mixed")))!;
    const row = t.raw("int_mixed");
    await t.memory.integrations.update("int_mixed", mixed.version, {
      webhookSecret: createKeyring({ current: { id: "k1", key: k1 } }).seal(
        "secret-of-mixed",
        secretAad("chatwoot_integrations", "webhook_secret", "int_mixed"),
      ),
    });
    expect(k2.keyIdOf(t.raw("int_mixed").webhookSecret!)).toBe("k1");
    expect(row.apiToken).toMatch(/^cw1:k2:/);

    expect(await current.rotateKeys()).toEqual({ resealed: 3, alreadyCurrent: 1, busy: 0 });
    for (const id of ["int_both-old", "int_no-secret", "int_fresh", "int_mixed"]) {
      const stored = t.raw(id);
      expect(k2.keyIdOf(stored.apiToken)).toBe("k2");
      if (stored.webhookSecret !== null) expect(k2.keyIdOf(stored.webhookSecret)).toBe("k2");
    }
    expect(await current.get("mixed")).toMatchObject({
      apiToken: "token-of-mixed",
      webhookSecret: "secret-of-mixed",
    });
    expect(await current.rotateKeys()).toEqual({ resealed: 0, alreadyCurrent: 4, busy: 0 });
  });

  it("leaves a row alone while an activation holds it, and re-seals it once the claim has expired", async () => {
    const t = setup();
    const k1 = key();
    const old = createIntegrationRepository(
      t.memory.integrations,
      createKeyring({ current: { id: "k1", key: k1 } }),
      t.clock,
    );
    const k2 = createKeyring({ current: { id: "k2", key: key() }, previous: [{ id: "k1", key: k1 }] });
    const current = createIntegrationRepository(t.memory.integrations, k2, t.clock);
    await old.insert(fields("claimed", { provisioningUntil: new Date(t.clock.now().getTime() + 1) }));
    await old.insert(fields("expiring", { provisioningUntil: t.clock.now() }));
    // The held row is busy, not "already current": the answer says rotation is not complete yet.
    expect(await current.rotateKeys()).toEqual({ resealed: 1, alreadyCurrent: 0, busy: 1 });
    expect(k2.keyIdOf(t.raw("int_claimed").apiToken)).toBe("k1");
    expect(k2.keyIdOf(t.raw("int_expiring").apiToken)).toBe("k2");
    t.advance(1);
    expect(await current.rotateKeys()).toEqual({ resealed: 1, alreadyCurrent: 1, busy: 0 });
  });

  it("counts a row that changed under it as busy, and reads in pages of the given size", async () => {
    const t = setup();
    const k1 = key();
    const old = createIntegrationRepository(
      t.memory.integrations,
      createKeyring({ current: { id: "k1", key: k1 } }),
      t.clock,
    );
    for (const name of ["a", "b", "c"]) await old.insert(fields(name));
    const k2 = createKeyring({ current: { id: "k2", key: key() }, previous: [{ id: "k1", key: k1 }] });
    const { store, pages } = paging(t.memory.integrations);
    // Another writer bumps b's version between the read and the re-seal.
    const racing: IntegrationStore = {
      ...store,
      update: async (id, version, patch) => {
        if (id === "int_b") await t.memory.integrations.update(id, version, { lastError: "raced" });
        return store.update(id, version, patch);
      },
    };
    const current = createIntegrationRepository(racing, k2, t.clock);
    expect(await current.rotateKeys({ batchSize: 2 })).toEqual({ resealed: 2, alreadyCurrent: 0, busy: 1 });
    expect(pages).toStrictEqual([{ limit: 2 }, { afterId: "int_b", limit: 2 }]);
    expect(k2.keyIdOf(t.raw("int_b").apiToken)).toBe("k1");
  });
});

describe("the signing secret (Chatwoot 4.13+)", () => {
  it("is sealed for its own column, opened on read, and cleared on null", async () => {
    const t = setup();
    const inserted = (await t.repository.insert({ ...fields("a"), signingSecret: "sig" }))!;
    expect(inserted.signingSecret).toBe("sig");
    const sealed = t.raw("int_a").signingSecret!;
    expect(sealed).toMatch(/^cw1:k1:/);
    expect(t.keyring.open(sealed, secretAad("chatwoot_integrations", "signing_secret", "int_a"))).toBe("sig");
    const changed = (await t.repository.update(inserted, { signingSecret: "sig2" }))!;
    expect((await t.repository.get("a"))?.signingSecret).toBe("sig2");
    expect((await t.repository.update(changed, { signingSecret: null }))?.signingSecret).toBeNull();
    expect(t.raw("int_a").signingSecret).toBeNull();
  });

  it("defaults to none, with no Chatwoot version, on insert", async () => {
    const t = setup();
    expect(await t.repository.insert(fields("a"))).toMatchObject({
      signingSecret: null,
      chatwootVersion: null,
    });
    expect(t.raw("int_a")).toMatchObject({ signingSecret: null, chatwootVersion: null });
  });

  it("makes a row stale for rotateKeys on its own", async () => {
    const t = setup();
    const k1 = key();
    const k2 = key();
    const old = createKeyring({ current: { id: "k1", key: k1 } });
    const current = createKeyring({ current: { id: "k2", key: k2 }, previous: [{ id: "k1", key: k1 }] });
    const repository = createIntegrationRepository(t.memory.integrations, current, t.clock);
    const inserted = (await repository.insert(fields("a", { webhookSecret: null })))!;
    await t.memory.integrations.update("int_a", inserted.version, {
      signingSecret: old.seal("sig", secretAad("chatwoot_integrations", "signing_secret", "int_a")),
    });
    expect(await repository.rotateKeys()).toEqual({ resealed: 1, alreadyCurrent: 0, busy: 0 });
    expect(current.keyIdOf(t.raw("int_a").signingSecret!)).toBe("k2");
    expect((await repository.get("a"))?.signingSecret).toBe("sig");
  });
});
