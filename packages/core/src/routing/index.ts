export * from "./dispatcher.js";
export * from "./events.js";
export * from "./gateway.js";
export { agentMessageOf } from "./outbound.js";
export type { IngestResult, Router } from "./service.js";
export * from "./work.js";
