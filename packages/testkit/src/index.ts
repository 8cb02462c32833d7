export * from "./eventually.js";
export * from "./simulator/index.js";
export * from "./whatsapp/events.js";
export * from "./whatsapp/index.js";
