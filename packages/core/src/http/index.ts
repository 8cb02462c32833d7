export * from "./body.js";
export * from "./handler.js";
export * from "./rate-limit.js";
export * from "./types.js";
