export * from "./config.js";
export * from "./runtime.js";
