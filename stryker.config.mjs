// Mutation testing (StrykerJS, vitest runner, TypeScript checker): `npm run test:mutation`, see docs/testing.md.
//
// The modules where a silent bug costs users most are split in groups, each run by its own Stryker process with only
// the tests meant to kill its mutants, so that a mutant never waits for suites that cannot see it:
// - `units`: crypto, the integration repository, failure classification, realtime ownership: their unit tests;
// - `http`: the HTTP dispatcher, body reading, caller checks, rate limiting: their unit tests and the HTTP contract
//   on Express, Koa and Fastify;
// - `routing`: inbound and outbound routing, webhook receipt: the end-to-end suites against the Chatwoot simulator;
// - `knex`: the outbox and lease stores: the store conformance suite on SQLite, PostgreSQL and MariaDB.
// `MUTATION_GROUP` picks the group (default `units`); scripts/mutation/run.mjs runs them one after the other and
// prints the score per module.
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
// For the build command (run without a shell, so a path with spaces could not be an argument).
process.env.RYZE_MUTATION_REPOSITORY = root;

/**
 * Per group: the files to mutate; the tests that run (vitest project name → include patterns under its root); the
 * tsconfig the TypeScript checker compiles; the folders whose content its results depend on (what is mutated, the
 * tests, what they import: a change there runs the group again, see scripts/mutation/run.mjs); the score under which
 * it fails (`thresholds.break`).
 * @type {Record<string, { mutate: string[]; tests: Record<string, string[]>; tsconfigFile: string; inputs: string[]; break: number }>}
 */
export const groups = {
  units: {
    mutate: [
      "packages/core/src/crypto/**/*.ts",
      "packages/core/src/integrations/**/*.ts",
      "packages/core/src/chatwoot/failure.ts",
      "packages/core/src/realtime/ownership.ts",
      "!**/*.test.ts",
    ],
    tests: { core: ["src/{crypto,integrations,chatwoot,realtime}/**/*.test.ts", "src/bridge.test.ts"] },
    // Core stands alone: its own sources are type-checked, whatever the state of the other packages.
    tsconfigFile: "packages/core/tsconfig.build.json",
    inputs: ["packages/core"],
    break: 85,
  },
  http: {
    // Not the status page (`http/ui`): one static document whose CSS and script are string literals, which the
    // browser test checks; its route is in `status-routes.ts`, which is mutated.
    mutate: ["packages/core/src/http/**/*.ts", "!packages/core/src/http/ui/**", "!**/*.test.ts"],
    tests: {
      core: ["src/http/**/*.test.ts", "src/routing/webhook-route.test.ts", "src/bridge.test.ts"],
      // the HTTP contract on every framework, and the adapters' own tests
      express: ["src/**/*.test.ts"],
      koa: ["src/**/*.test.ts"],
      fastify: ["src/**/*.test.ts"],
      examples: ["shared/src/http-conformance.test.ts"],
    },
    tsconfigFile: "packages/core/tsconfig.build.json",
    inputs: ["packages", "examples"],
    break: 85,
  },
  routing: {
    mutate: [
      "packages/core/src/routing/outbound.ts",
      "packages/core/src/routing/inbound.ts",
      "packages/core/src/routing/webhook.ts",
    ],
    tests: {
      core: ["src/routing/{webhook,inbound,outbound}*.test.ts"],
      // End to end against the Chatwoot simulator: the suites about routing (messages in and out, loops, webhooks,
      // receipts, dead letters). Not the suites about activation, realtime links, leases, health, metrics or key
      // rotation: they pass through routing too, but only repeat what these check, at many seconds per mutant.
      testkit: [
        "src/e2e/{inbound,outbound,cold-path,conversation-matrix,existing-contact,merged-contacts}.test.ts",
        "src/e2e/{ignored-chats,resolved-conversations,retry-window,receipts,loop-prevention}.test.ts",
        "src/e2e/{message-rejections,formatting,templates,media,threads,fair-delivery,dead-letters}.test.ts",
        "src/e2e/{webhook,webhook-route,webhook-retry,secrets-in-logs}.test.ts",
        // the person behind a chat (LID and phone, Brazil's 9th digit) and the history sync, both routed inbound
        "src/e2e/{identity,history,inbox-commands}.test.ts",
        // the edges mutation testing found (docs/testing.md, "Surviving mutants")
        "src/e2e/*-edges.test.ts",
      ],
    },
    tsconfigFile: "packages/core/tsconfig.build.json",
    inputs: ["packages/core", "packages/testkit"],
    break: 85,
  },
  knex: {
    mutate: ["packages/knex/src/outbox-store.ts", "packages/knex/src/lease-store.ts"],
    tests: {
      // the store conformance suite on each database (a database that is down is skipped loudly), and the stores'
      // own tests (statement counts, races injected between two statements, on SQLite)
      knex: [
        "src/sqlite.test.ts",
        "src/postgres.test.ts",
        "src/mariadb.test.ts",
        "src/lease-store.test.ts",
        "src/outbox-store.test.ts",
        "src/outbox-store-pg.test.ts",
        "src/outbox-store-mariadb.test.ts",
      ],
    },
    // The knex sources, type-checked against core's source (the `@ryze/source` condition); not the whole workspace,
    // whose other packages' state would stop the group.
    tsconfigFile: "scripts/mutation/tsconfig.knex.json",
    inputs: ["packages"],
    break: 85,
  },
};

const group = process.env.MUTATION_GROUP ?? "units";
if (!groups[group])
  throw new Error(`MUTATION_GROUP: unknown group "${group}" (${Object.keys(groups).join(", ")})`);

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  // The repository's vitest projects narrowed to the group's tests (see that file for why not `testFiles`).
  vitest: { configFile: "scripts/mutation/vitest.config.mjs", related: true, pool: "forks" },
  checkers: ["typescript"],
  tsconfigFile: groups[group].tsconfigFile,
  plugins: ["@stryker-mutator/vitest-runner", "@stryker-mutator/typescript-checker"],
  coverageAnalysis: "perTest",
  mutate: groups[group].mutate,

  // The sandbox lives outside the repository (biome and tsc of the other tasks never see its instrumented copies).
  // It copies the sources only; link-sandbox.mjs gives it node_modules folders whose workspace links (@ryze/*)
  // point at the sandbox's own packages, so the `@ryze/source` condition of vitest.workspace.ts resolves there.
  tempDirName: join(tmpdir(), "ryze-chatwoot-stryker"),
  symlinkNodeModules: false,
  buildCommand: "node scripts/mutation/link-sandbox.mjs",
  cleanTempDir: "always",
  ignorePatterns: [
    "dist",
    "data",
    "coverage",
    "/reports",
    "/docs",
    "/bench/results",
    "/.changeset",
    "/.ci",
    "*.log",
    "*.md",
  ],

  // Stryker splits `concurrency` between TypeScript checkers (half, rounded up) and test runners (the rest), and hands
  // the checkers' share to test runners once every mutant is checked: 2 (the default) is one checker and one runner,
  // then two runners (`MUTATION_CONCURRENCY` says otherwise). Bounded: a mutant that hangs is a Timeout (detected)
  // after its tests' usual time × 1.5 + 15 s.
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 2),
  // A mutant's run stops at its first failing test. That cancellation can cut the next run short, so run.mjs tests
  // again, without bail, every survivor that ran fewer tests than cover it (in our runs: "Survived" after 0 of 30).
  disableBail: false,
  timeoutMS: 15_000,
  timeoutFactor: 1.5,
  dryRunTimeoutMinutes: 20,

  incremental: true,
  incrementalFile: `reports/stryker-incremental-${group}.json`,
  reporters: ["clear-text", process.stdout.isTTY ? "progress" : "progress-append-only", "json", "html"],
  clearTextReporter: { reportTests: false, reportMutants: true, reportScoreTable: true },
  // Reports go under dist/ (git- and biome-ignored): the HTML report is no source file to lint.
  jsonReporter: { fileName: `dist/mutation/${group}.json` },
  htmlReporter: { fileName: `dist/mutation/${group}.html` },
  thresholds: { high: 90, low: 85, break: groups[group].break },
};
