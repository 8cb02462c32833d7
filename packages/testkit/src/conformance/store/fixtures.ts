import { randomBytes } from "node:crypto";
import { type Cipher, createKeyring } from "@ryze/chatwoot-core";
import type { IntegrationRow } from "@ryze/chatwoot-core/store";
import { secretAad } from "@ryze/chatwoot-core/testing";
import { expect } from "vitest";
import type { RawRow, StoreRaw } from "./types.js";

/** Every time-dependent call takes an explicit `now`; the checks count from this fixed instant. */
const ORIGIN = Date.UTC(2030, 0, 1, 12, 0, 0, 0);

/** The fake clock: `at(1500)` is 1.5 s after the origin. */
export const at = (ms: number): Date => new Date(ORIGIN + ms);

/** A short random suffix that keeps names of different checks apart. */
export const unique = (): string => randomBytes(5).toString("hex");

/** Lower-case hex ids of one length, so every collation orders them like JavaScript does. */
export const orderedId = (index: number): string =>
  `int_${unique().slice(0, 4)}${String(index).padStart(6, "0")}`;

/** Keys of the fixture keyrings: rows are sealed under `k1`, rotation re-seals under `k2`. */
const k1 = { id: "k1", key: randomBytes(32) };
const k2 = { id: "k2", key: randomBytes(32) };
export const oldKeyring: Cipher = createKeyring({ current: k1 });
export const newKeyring: Cipher = createKeyring({ current: k2, previous: [k1] });

export const tokenAad = (id: string) => secretAad("chatwoot_integrations", "api_token", id);
export const webhookAad = (id: string) => secretAad("chatwoot_integrations", "webhook_secret", id);
export const signingAad = (id: string) => secretAad("chatwoot_integrations", "signing_secret", id);

export interface IntegrationFixture {
  row: IntegrationRow;
  /** The plaintexts behind `row.apiToken`, `row.webhookSecret` and `row.signingSecret`; never given to the store. */
  plaintext: { apiToken: string; webhookSecret: string; signingSecret: string };
}

/** A complete integration row with every field set, secrets sealed under `k1`. */
export function integrationFixture(overrides: Partial<IntegrationRow> = {}): IntegrationFixture {
  const id = overrides.id ?? `int_${randomBytes(12).toString("base64url")}`;
  const plaintext = {
    apiToken: `plain-token-${randomBytes(12).toString("hex")}`,
    webhookSecret: `plain-webhook-${randomBytes(12).toString("hex")}`,
    signingSecret: `plain-signing-${randomBytes(12).toString("hex")}`,
  };
  const row: IntegrationRow = {
    id,
    instance: `instance-${unique()}`,
    status: "active",
    version: 1,
    baseUrl: "https://chatwoot.example.test",
    accountId: 3,
    apiToken: oldKeyring.seal(plaintext.apiToken, tokenAad(id)),
    webhookSecret: oldKeyring.seal(plaintext.webhookSecret, webhookAad(id)),
    signingSecret: oldKeyring.seal(plaintext.signingSecret, signingAad(id)),
    chatwootVersion: "4.13.0",
    inboxId: 11,
    inboxName: "WhatsApp ✓ Support",
    chatwootUserId: 5,
    deliveryMode: "webhook",
    signMessages: true,
    ignoreGroups: false,
    startAsPending: true,
    reopenResolved: false,
    importHistoryDays: 0,
    lastError: "",
    provisioningUntil: null,
    createdAt: at(1),
    updatedAt: at(2),
    ...overrides,
  };
  return { row, plaintext };
}

/** Runs `count` calls at once and waits for all of them (the store decides who wins). */
export function inParallel<T>(count: number, call: (index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => call(index)));
}

/** Every stored value, as text, of every table (for "this never appears anywhere" searches). */
export async function storedTexts(raw: StoreRaw): Promise<string[]> {
  const tables = await raw.dump();
  const texts: string[] = [];
  for (const rows of Object.values(tables)) {
    for (const row of rows) {
      for (const value of Object.values(row)) texts.push(valueText(value));
    }
  }
  return texts;
}

function valueText(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return String(value);
}

/** Fails when `needle` occurs in any column of any stored row. */
export async function expectNowhereStored(raw: StoreRaw, needle: string): Promise<void> {
  const hits = (await storedTexts(raw)).filter((text) => text.includes(needle));
  expect(hits, `"${needle}" must not be stored anywhere`).toEqual([]);
}

/** Rows (with their table) in which some column equals `value` exactly. */
export async function rowsHolding(
  raw: StoreRaw,
  value: string,
): Promise<Array<{ table: string; row: RawRow }>> {
  const tables = await raw.dump();
  const found: Array<{ table: string; row: RawRow }> = [];
  for (const [table, rows] of Object.entries(tables)) {
    for (const row of rows) if (Object.values(row).includes(value)) found.push({ table, row });
  }
  return found;
}
