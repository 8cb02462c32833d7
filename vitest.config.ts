import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import projects from "./vitest.workspace.js";

export default defineConfig({
  test: {
    projects,
    // Every project: a test file fails when a secret the tests registered shows up in a log line, on the console or
    // in an HTTP answer (packages/testkit/src/secrets.ts).
    setupFiles: [fileURLToPath(new URL("./packages/testkit/src/secrets-setup.ts", import.meta.url))],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Database and socket tests are bounded; two cores on CI machines.
    maxWorkers: 4,
  },
});
