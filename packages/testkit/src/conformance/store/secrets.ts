import { expect } from "vitest";
import {
  at,
  expectNowhereStored,
  integrationFixture,
  newKeyring,
  oldKeyring,
  rowsHolding,
  signingAad,
  tokenAad,
  webhookAad,
} from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

/**
 * Secrets at rest, read through the raw side channel: the store keeps the sealed strings exactly as given
 * (it never sees plaintext), and a re-seal under a new key leaves no old ciphertext behind.
 */
export const secretChecks: StoreCheckGroup = {
  title: "secrets at rest",
  checks: {
    "sealed secrets are stored exactly as passed in and still open": async ({ store, raw }) => {
      const { row, plaintext } = integrationFixture();
      await store.integrations.insert(row);
      const stored = await raw.integrationRow(row.id);
      expect(stored, "raw.integrationRow must find the inserted row").not.toBeNull();
      const values = Object.values(stored!);
      expect(values).toContain(row.apiToken);
      expect(values).toContain(row.webhookSecret);
      expect(values).toContain(row.signingSecret);
      expect(oldKeyring.open(row.apiToken, tokenAad(row.id))).toBe(plaintext.apiToken);
      expect(oldKeyring.open(row.webhookSecret!, webhookAad(row.id))).toBe(plaintext.webhookSecret);
      expect(oldKeyring.open(row.signingSecret!, signingAad(row.id))).toBe(plaintext.signingSecret);
    },

    "the inbox signing secret is stored encrypted: the sealed value only, bound to its own column": async ({
      store,
      raw,
    }) => {
      const { row, plaintext } = integrationFixture({ signingSecret: null });
      await store.integrations.insert(row);
      const signingSecret = oldKeyring.seal(plaintext.signingSecret, signingAad(row.id));
      await store.integrations.update(row.id, 1, { signingSecret, chatwootVersion: "4.13.0" });
      const stored = await raw.integrationRow(row.id);
      expect(Object.values(stored!)).toContain(signingSecret);
      expect(signingSecret).toMatch(/^cw1:k1:/);
      await expectNowhereStored(raw, plaintext.signingSecret);
      // Sealed for the signing-secret column of this row: it opens there, and under no other column's AAD.
      expect(oldKeyring.open(signingSecret, signingAad(row.id))).toBe(plaintext.signingSecret);
      expect(() => oldKeyring.open(signingSecret, webhookAad(row.id))).toThrow();
      expect(() => oldKeyring.open(signingSecret, tokenAad(row.id))).toThrow();
    },

    "no plaintext secret appears in any column of any table": async ({ store, raw }) => {
      const { row, plaintext } = integrationFixture();
      await store.integrations.insert(row);
      await store.integrations.update(row.id, 1, { lastError: "CHATWOOT_UNAUTHORIZED", updatedAt: at(5) });
      await store.mappings.putChat({
        integrationId: row.id,
        chatJid: "5511999990000@s.whatsapp.net",
        contactId: 1,
        sourceId: "5511999990000@s.whatsapp.net",
        conversationId: 2,
        updatedAt: at(6),
      });
      await store.outbox.enqueue(
        {
          integrationId: row.id,
          direction: "outbound",
          chatKey: "5511999990000@s.whatsapp.net",
          dedupeKey: "cw:1",
          payload: { text: "hello", conversationId: 2 },
        },
        at(7),
      );
      await expectNowhereStored(raw, plaintext.apiToken);
      await expectNowhereStored(raw, plaintext.webhookSecret);
      await expectNowhereStored(raw, plaintext.signingSecret);
    },

    "re-sealing under a new key (rotateKeys) replaces the old ciphertext everywhere": async ({
      store,
      raw,
    }) => {
      const { row, plaintext } = integrationFixture();
      await store.integrations.insert(row);
      const apiToken = newKeyring.seal(plaintext.apiToken, tokenAad(row.id));
      const webhookSecret = newKeyring.seal(plaintext.webhookSecret, webhookAad(row.id));
      const signingSecret = newKeyring.seal(plaintext.signingSecret, signingAad(row.id));
      const rotated = await store.integrations.update(row.id, row.version, {
        apiToken,
        webhookSecret,
        signingSecret,
      });
      expect(rotated).toMatchObject({ apiToken, webhookSecret, signingSecret, version: row.version + 1 });
      const stored = await raw.integrationRow(row.id);
      expect(Object.values(stored!)).toEqual(
        expect.arrayContaining([apiToken, webhookSecret, signingSecret]),
      );
      expect(newKeyring.keyIdOf(apiToken)).toBe("k2");
      expect(newKeyring.open(apiToken, tokenAad(row.id))).toBe(plaintext.apiToken);
      expect(await rowsHolding(raw, row.apiToken)).toEqual([]);
      expect(await rowsHolding(raw, row.webhookSecret!)).toEqual([]);
      expect(await rowsHolding(raw, row.signingSecret!)).toEqual([]);
    },
  },
};
