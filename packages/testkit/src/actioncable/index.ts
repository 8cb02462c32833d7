export * from "./launcher.js";
