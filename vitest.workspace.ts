import type { TestProjectConfiguration } from "vitest/config";

/** One test project per package and example; `vitest.config.ts` imports this list into `test.projects`. */
const shared = {
  resolve: { conditions: ["@ryze/source"] },
  ssr: { resolve: { conditions: ["@ryze/source"], externalConditions: ["@ryze/source"] } },
};

const projects = ["core", "knex", "express", "koa", "fastify", "testkit"].map((name) => ({
  extends: true as const,
  ...shared,
  test: { name, root: `packages/${name}`, include: ["src/**/*.test.ts"] },
}));

export default [
  ...projects,
  {
    extends: true as const,
    ...shared,
    test: { name: "examples", root: "examples", include: ["*/src/**/*.test.ts"] },
  },
] satisfies TestProjectConfiguration[];
