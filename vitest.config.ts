import { defineConfig } from "vitest/config";
import projects from "./vitest.workspace.js";

export default defineConfig({
  test: {
    projects,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Database and socket tests are bounded; two cores on CI machines.
    maxWorkers: 4,
  },
});
