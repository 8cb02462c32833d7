export * from "./hub.js";
export * from "./ownership.js";
