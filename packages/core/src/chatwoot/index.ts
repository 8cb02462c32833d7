export * from "./api.js";
export * from "./failure.js";
