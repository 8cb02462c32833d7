// Conformance suites for storage and framework adapters; built on vitest (a peer dependency of this entry).
export * from "./http/index.js";
export * from "./http/signal.js";
export * from "./store/index.js";
