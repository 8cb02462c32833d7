import type { StoragePort } from "@ryze/chatwoot-core";
import { afterAll, beforeAll, beforeEach, describe, it } from "vitest";
import { cascadeChecks } from "./cascade.js";
import { compareAndSetChecks } from "./compare-and-set.js";
import { deadLetterChecks } from "./dead-letters.js";
import { historyChecks } from "./history.js";
import { identityChecks } from "./identities.js";
import { integrationChecks } from "./integrations.js";
import { leaseChecks } from "./leases.js";
import { mappingChecks } from "./mappings.js";
import { outboxChecks } from "./outbox.js";
import { outboxConcurrencyChecks } from "./outbox-concurrency.js";
import { retentionChecks } from "./retention.js";
import { secretChecks } from "./secrets.js";
import { togetherChecks } from "./together.js";
import type { StoreCheckContext, StoreCheckGroup, StoreConformanceOptions } from "./types.js";

export { cascadeChecks } from "./cascade.js";
export { compareAndSetChecks } from "./compare-and-set.js";
export { deadLetterChecks } from "./dead-letters.js";
export { expectNowhereStored, storedTexts } from "./fixtures.js";
export { historyChecks } from "./history.js";
export { identityChecks } from "./identities.js";
export { integrationChecks } from "./integrations.js";
export { leaseChecks } from "./leases.js";
export { mappingChecks } from "./mappings.js";
export { memoryStoreRaw } from "./memory-raw.js";
export { outboxChecks } from "./outbox.js";
export { outboxConcurrencyChecks } from "./outbox-concurrency.js";
export { retentionChecks } from "./retention.js";
export { secretChecks } from "./secrets.js";
export { togetherChecks } from "./together.js";
export type * from "./types.js";

/** Every check group of the storage conformance suite, in the order they run. */
export const storeCheckGroups: readonly StoreCheckGroup[] = [
  integrationChecks,
  compareAndSetChecks,
  secretChecks,
  mappingChecks,
  identityChecks,
  historyChecks,
  outboxChecks,
  outboxConcurrencyChecks,
  deadLetterChecks,
  retentionChecks,
  togetherChecks,
  leaseChecks,
  cascadeChecks,
];

/**
 * Registers the storage conformance suite (vitest `describe`/`it`) for one `StoragePort` implementation.
 * Every implementation (memory, knex on SQLite, PostgreSQL, MariaDB) runs the same checks; writes are
 * verified through `raw`, which reads what was really stored.
 */
export function runStoreConformance<S extends StoragePort>(options: StoreConformanceOptions<S>): void {
  const { name, createStore, reset, raw } = options;
  const concurrency = options.concurrency ?? 8;
  const timeout = options.timeoutMs ?? 30_000;
  let store: S | undefined;
  let context: StoreCheckContext | undefined;

  describe(`storage conformance: ${name}`, () => {
    if (reset) {
      beforeAll(async () => {
        store = await createStore();
      });
    }
    beforeEach(async () => {
      if (reset) await reset(store!);
      else store = await createStore();
      context = { store: store!, raw: raw(store!), concurrency };
    });
    afterAll(() => {
      store = undefined;
      context = undefined;
    });

    for (const group of storeCheckGroups) {
      describe(group.title, () => {
        for (const [title, check] of Object.entries(group.checks)) {
          it(title, () => check(context!), timeout);
        }
      });
    }
  });
}
