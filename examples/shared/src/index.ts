export * from "./config.js";
export * from "./operations.js";
export * from "./runtime.js";
