import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { memoryStoreRaw, runStoreConformance } from "./index.js";

runStoreConformance({
  name: "memory",
  createStore: createMemoryStore,
  raw: (store) => memoryStoreRaw(store.raw),
});
