import { expect } from "vitest";
import { at, integrationFixture, orderedId } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

/** Integrations CRUD: round-trips, flags, last_error, timestamps, inbox id back-fill, list and delete. */
export const integrationChecks: StoreCheckGroup = {
  title: "integrations",
  checks: {
    "insert returns the row and get/getById read every field back unchanged": async ({ store }) => {
      const { row } = integrationFixture({
        provisioningUntil: at(90_123),
        lastError: "CHATWOOT_UNREACHABLE: connect ECONNREFUSED",
        createdAt: at(1_001),
        updatedAt: at(2_999),
      });
      expect(await store.integrations.insert(row)).toEqual(row);
      expect(await store.integrations.get(row.instance)).toEqual(row);
      expect(await store.integrations.getById(row.id)).toEqual(row);
    },

    "nullable fields, realtime mode and every flag combination round-trip": async ({ store }) => {
      const flags = [
        { signMessages: false, ignoreGroups: true, startAsPending: false, reopenResolved: true },
        { signMessages: true, ignoreGroups: false, startAsPending: true, reopenResolved: false },
        {
          signMessages: false,
          ignoreGroups: false,
          startAsPending: false,
          reopenResolved: false,
          importHistoryDays: 30,
        },
      ];
      for (const flagSet of flags) {
        const { row } = integrationFixture({
          ...flagSet,
          status: "provisioning",
          deliveryMode: "realtime",
          webhookSecret: null,
          signingSecret: null,
          chatwootVersion: null,
          inboxId: null,
          chatwootUserId: null,
          provisioningUntil: null,
        });
        await store.integrations.insert(row);
        expect(await store.integrations.getById(row.id)).toEqual(row);
      }
    },

    "numeric ids beyond 32 bits round-trip as numbers": async ({ store }) => {
      const { row } = integrationFixture({
        accountId: 3_000_000_001,
        inboxId: 4_000_000_002,
        chatwootUserId: 2 ** 40,
      });
      await store.integrations.insert(row);
      const read = await store.integrations.getById(row.id);
      expect(read?.accountId).toBe(3_000_000_001);
      expect(read?.inboxId).toBe(4_000_000_002);
      expect(read?.chatwootUserId).toBe(2 ** 40);
    },

    "the inbox signing secret and Chatwoot's version are set, replaced and cleared by update": async ({
      store,
    }) => {
      const { row } = integrationFixture({ signingSecret: null, chatwootVersion: null });
      await store.integrations.insert(row);
      expect(await store.integrations.getById(row.id)).toMatchObject({
        signingSecret: null,
        chatwootVersion: null,
      });
      // Activation reads both; a rotated secret (`reset_secret` in Chatwoot) replaces the first.
      const first = integrationFixture({ id: row.id }).row;
      const set = await store.integrations.update(row.id, 1, {
        signingSecret: first.signingSecret,
        chatwootVersion: "4.13.0",
      });
      expect(set).toMatchObject({
        signingSecret: first.signingSecret,
        chatwootVersion: "4.13.0",
        version: 2,
      });
      const second = integrationFixture({ id: row.id }).row;
      const replaced = await store.integrations.update(row.id, 2, { signingSecret: second.signingSecret });
      expect(replaced).toMatchObject({ signingSecret: second.signingSecret, chatwootVersion: "4.13.0" });
      // A re-activation against an older Chatwoot (or one whose version cannot be read) clears them.
      const cleared = await store.integrations.update(row.id, 3, {
        signingSecret: null,
        chatwootVersion: null,
      });
      expect(cleared).toEqual({ ...row, version: 4, signingSecret: null, chatwootVersion: null });
      expect(await store.integrations.getById(row.id)).toEqual(cleared);
    },

    "unknown instance or id reads as null": async ({ store }) => {
      expect(await store.integrations.get("no-such-instance")).toBeNull();
      expect(await store.integrations.getById("int_missing")).toBeNull();
    },

    "returned rows are copies: mutating them does not change the store": async ({ store }) => {
      const { row } = integrationFixture({ provisioningUntil: at(5_000) });
      const inserted = await store.integrations.insert(row);
      inserted!.lastError = "mutated";
      inserted!.createdAt.setTime(0);
      row.inboxName = "mutated after insert";
      const read = await store.integrations.getById(row.id);
      read!.provisioningUntil!.setTime(0);
      const again = await store.integrations.getById(row.id);
      expect(again?.lastError).toBe("");
      expect(again?.createdAt).toEqual(at(1));
      expect(again?.inboxName).toBe("WhatsApp ✓ Support");
      expect(again?.provisioningUntil).toEqual(at(5_000));
    },

    "update applies the patch, increments the version and keeps id, instance and createdAt": async ({
      store,
    }) => {
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      const updated = await store.integrations.update(row.id, 1, {
        status: "paused",
        signMessages: false,
        ignoreGroups: true,
        startAsPending: false,
        reopenResolved: true,
        deliveryMode: "realtime",
        webhookSecret: null,
        baseUrl: "https://other.example.test/",
        accountId: 9,
        inboxName: "Renamed",
        chatwootUserId: 77,
        updatedAt: at(60_000),
      });
      const expected = {
        ...row,
        version: 2,
        status: "paused",
        signMessages: false,
        ignoreGroups: true,
        startAsPending: false,
        reopenResolved: true,
        deliveryMode: "realtime",
        webhookSecret: null,
        baseUrl: "https://other.example.test/",
        accountId: 9,
        inboxName: "Renamed",
        chatwootUserId: 77,
        updatedAt: at(60_000),
      };
      expect(updated).toEqual(expected);
      expect(await store.integrations.getById(row.id)).toEqual(expected);
    },

    "fields absent from the patch (or given as undefined) keep their values": async ({ store }) => {
      const { row } = integrationFixture({ lastError: "kept" });
      await store.integrations.insert(row);
      const updated = await store.integrations.update(row.id, 1, { status: "error", inboxId: undefined });
      expect(updated).toEqual({ ...row, status: "error", version: 2 });
    },

    "the inbox id is back-filled by activation and the provisioning deadline is cleared": async ({
      store,
    }) => {
      const { row } = integrationFixture({
        status: "provisioning",
        inboxId: null,
        provisioningUntil: at(30_000),
      });
      await store.integrations.insert(row);
      const active = await store.integrations.update(row.id, 1, {
        status: "active",
        inboxId: 4242,
        provisioningUntil: null,
        updatedAt: at(10_000),
      });
      expect(active).toMatchObject({ status: "active", inboxId: 4242, provisioningUntil: null, version: 2 });
      expect(await store.integrations.get(row.instance)).toEqual(active);
    },

    "last_error is set and cleared": async ({ store }) => {
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      const message = "CHATWOOT_UNAUTHORIZED: 401 «token revoked» ".repeat(40);
      const failed = await store.integrations.update(row.id, 1, { status: "error", lastError: message });
      expect((await store.integrations.getById(row.id))?.lastError).toBe(message);
      const healed = await store.integrations.update(row.id, failed!.version, {
        status: "active",
        lastError: "",
      });
      expect(healed?.lastError).toBe("");
      expect((await store.integrations.getById(row.id))?.lastError).toBe("");
    },

    "list orders by id and pages with afterId and limit": async ({ store }) => {
      const ids = Array.from({ length: 7 }, (_, i) => orderedId(i));
      for (const id of [...ids].reverse()) await store.integrations.insert(integrationFixture({ id }).row);
      const sorted = [...ids].sort();
      expect((await store.integrations.list()).map((r) => r.id)).toEqual(sorted);
      const pages: string[][] = [];
      let afterId: string | undefined;
      for (;;) {
        const page = await store.integrations.list(
          afterId === undefined ? { limit: 3 } : { afterId, limit: 3 },
        );
        if (page.length === 0) break;
        pages.push(page.map((r) => r.id));
        afterId = page[page.length - 1]!.id;
      }
      expect(pages).toEqual([sorted.slice(0, 3), sorted.slice(3, 6), sorted.slice(6)]);
      expect((await store.integrations.list({ afterId: sorted[5]! })).map((r) => r.id)).toEqual(
        sorted.slice(6),
      );
    },

    "delete removes the row; with expectedVersion only while the version matches": async ({ store }) => {
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      await store.integrations.update(row.id, 1, { lastError: "x" });
      expect(await store.integrations.delete(row.id, 1)).toBe(false);
      expect(await store.integrations.getById(row.id)).not.toBeNull();
      expect(await store.integrations.delete(row.id, 2)).toBe(true);
      expect(await store.integrations.getById(row.id)).toBeNull();
      expect(await store.integrations.get(row.instance)).toBeNull();
      expect(await store.integrations.delete(row.id)).toBe(false);

      const other = integrationFixture().row;
      await store.integrations.insert(other);
      expect(await store.integrations.delete(other.id)).toBe(true);
    },

    "update and delete of an unknown id return null and false": async ({ store }) => {
      expect(await store.integrations.update("int_missing", 1, { lastError: "x" })).toBeNull();
      expect(await store.integrations.delete("int_missing")).toBe(false);
    },

    "an instance freed by delete can be inserted again": async ({ store }) => {
      const first = integrationFixture().row;
      await store.integrations.insert(first);
      await store.integrations.delete(first.id);
      const second = integrationFixture({ instance: first.instance }).row;
      expect(await store.integrations.insert(second)).toEqual(second);
      expect((await store.integrations.get(first.instance))?.id).toBe(second.id);
    },
  },
};
