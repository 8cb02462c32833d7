import { configDefaults, type TestProjectConfiguration } from "vitest/config";

/** One test project per package and example; `vitest.config.ts` imports this list into `test.projects`. */
const shared = {
  resolve: { conditions: ["@ryze/source"] },
  ssr: { resolve: { conditions: ["@ryze/source"], externalConditions: ["@ryze/source"] } },
};

const projects = ["core", "knex", "express", "koa", "fastify", "testkit", "baileys"].map((name) => ({
  extends: true as const,
  ...shared,
  test: {
    name,
    root: `packages/${name}`,
    include: ["src/**/*.test.ts"],
    // The pack test has a project of its own (below).
    ...(name === "testkit" ? { exclude: [...configDefaults.exclude, "src/pack/**"] } : {}),
  },
}));

export default [
  ...projects,
  {
    extends: true as const,
    ...shared,
    test: {
      name: "examples",
      root: "examples",
      include: ["*/src/**/*.test.ts"],
      // The cluster test has a project of its own (below).
      exclude: [...configDefaults.exclude, "cluster/**"],
    },
  },
  {
    // Three processes per database racing for leases: timing-sensitive, so it runs last and alone (a later group),
    // not beside the other projects' workers on a two-core machine.
    extends: true as const,
    ...shared,
    test: {
      name: "cluster",
      root: "examples",
      include: ["cluster/src/**/*.test.ts"],
      sequence: { groupOrder: 2 },
    },
  },
  {
    // The packed packages installed into a fresh project (README host, simulator round trip). It runs after
    // every other project (a later group), alone: it installs, type-checks and starts processes of its own.
    extends: true as const,
    test: {
      name: "pack",
      root: "packages/testkit",
      include: ["src/pack/**/*.test.ts"],
      sequence: { groupOrder: 1 },
    },
  },
] satisfies TestProjectConfiguration[];
