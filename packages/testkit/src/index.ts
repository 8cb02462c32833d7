export * from "./eventually.js";
export * from "./fuzz/settings.js";
export * from "./secrets.js";
export * from "./simulator/index.js";
export * from "./whatsapp/events.js";
export * from "./whatsapp/index.js";
