export * from "./memory.js";
export type * from "./ports.js";
