import type { MemoryStoreInternals } from "@ryze/chatwoot-core/testing";
import type { RawRow, StoreRaw } from "./types.js";

const rows = (map: ReadonlyMap<string, object>): RawRow[] => [...map.values()].map((value) => ({ ...value }));

/** The raw side channel of `createMemoryStore()`: its internal maps, table by table. */
export function memoryStoreRaw(internals: MemoryStoreInternals): StoreRaw {
  return {
    async integrationRow(id) {
      const row = internals.integrations.get(id);
      return row ? { ...row } : null;
    },
    async dump() {
      return {
        integrations: rows(internals.integrations),
        chats: rows(internals.chats),
        messages: rows(internals.messages),
        outbox: rows(internals.outbox),
        leases: rows(internals.leases),
        identities: rows(internals.identities),
        histories: rows(internals.histories),
      };
    },
  };
}
