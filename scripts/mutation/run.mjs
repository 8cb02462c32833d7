#!/usr/bin/env node
// `npm run test:mutation [-- options]`: runs StrykerJS on each group of stryker.config.mjs (incrementally, from the
// committed reports/stryker-incremental-<group>.json), then prints one line per module with its mutation score and
// PASS/FAIL against the goal. Options:
//   --group <name>    only this group (repeatable): units, http, routing, knex
//   --force           test every mutant again, ignoring the incremental file (a full run, which rewrites it)
//   --mutate <glob>   a quick look at some files (Stryker's mutate syntax, `file.ts:10-20` for lines)
//   --tests <list>    run only these tests: <vitest project>:<pattern under its root>, separated by `;`,
//                     e.g. "core:src/crypto/*.test.ts;knex:src/lease-store.test.ts"
//                     (with --mutate or --tests the committed incremental files are neither read nor written)
//   --no-typecheck    without the TypeScript checker (while the tree does not type-check)
//   --summary         print the summary of the last reports only, run nothing
//   --survivors       also list every surviving (and uncovered) mutant under its module
//   --goal <score>    the per-module goal (default 85)
//   --budget <min>    stop after this many minutes, failing: results that take longer to bring up to date are behind
//                     the code (`.ci/run` gives 10; a fresh run is then due: the command, and commit reports/)
// The exit status is Stryker's: 1 when a group's score is under its break threshold (`break` in the config).
//
// A group whose inputs (its `inputs` folders, the configuration, the lockfile) are byte for byte those its committed
// incremental file was made from is not run again: Stryker would only read every result back, after running all the
// group's tests once to learn their coverage. reports/stryker-inputs.json keeps those fingerprints.
//
// StrykerJS 10's CLI refuses Node.js < 22, which the project supports (engines >= 20.19): Stryker's runner is
// started through its API, which is what the CLI calls and works unchanged on Node 20.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
process.chdir(root);

/** The modules of the mutation report: a score for each, against the goal. */
const MODULES = [
  ["crypto", "packages/core/src/crypto/"],
  ["integrations", "packages/core/src/integrations/"],
  ["http", "packages/core/src/http/"],
  ["chatwoot/failure", "packages/core/src/chatwoot/failure.ts"],
  ["routing/outbound", "packages/core/src/routing/outbound.ts"],
  ["routing/inbound", "packages/core/src/routing/inbound.ts"],
  ["routing/webhook", "packages/core/src/routing/webhook.ts"],
  ["realtime/ownership", "packages/core/src/realtime/ownership.ts"],
  ["knex/outbox-store", "packages/knex/src/outbox-store.ts"],
  ["knex/lease-store", "packages/knex/src/lease-store.ts"],
];
const DETECTED = new Set(["Killed", "Timeout"]);
const UNDETECTED = new Set(["Survived", "NoCoverage"]);
/** Biome formats (and checks) JSON files up to this size; the incremental files are committed. */
const BIOME_MAX_SIZE = 1024 * 1024;
/** Per group, the fingerprint of the inputs its committed incremental file was made from. */
const INPUTS_FILE = "reports/stryker-inputs.json";
/** Files every group's results depend on, besides its own `inputs`. */
const CONFIGURATION = [
  "stryker.config.mjs",
  "scripts/mutation/run.mjs",
  "scripts/mutation/vitest.config.mjs",
  "scripts/mutation/link-sandbox.mjs",
  "scripts/mutation/tsconfig.knex.json",
  "vitest.config.ts",
  "vitest.workspace.ts",
  "pnpm-lock.yaml",
  "tsconfig.json",
  "tsconfig.base.json",
];

const args = process.argv.slice(2);
const option = (name) => args.includes(name);
const values = (name) =>
  args.flatMap((arg, index) => (arg === name && args[index + 1] ? [args[index + 1]] : []));

if (option("--stryker")) {
  // One group, in its own process (the config reads MUTATION_GROUP once, at import).
  const require = createRequire(import.meta.url);
  const core = dirname(require.resolve("@stryker-mutator/core/package.json"));
  const { Stryker } = await import(pathToFileURL(join(core, "dist", "src", "stryker.js")).href);
  const mutate = values("--mutate");
  const overrides = {
    configFile: "stryker.config.mjs",
    ...(option("--force") ? { force: true } : {}),
    ...(mutate.length > 0 ? { mutate } : {}),
    // A partial run must neither read nor overwrite the committed results.
    ...(mutate.length > 0 || process.env.MUTATION_TESTS ? { incremental: false } : {}),
    ...(option("--no-typecheck") ? { checkers: [] } : {}),
    ...(option("--recheck")
      ? {
          disableBail: true,
          reporters: ["progress-append-only", "json"],
          jsonReporter: { fileName: recheckReport(process.env.MUTATION_GROUP) },
          thresholds: { high: 90, low: 85, break: null },
        }
      : {}),
  };
  try {
    await new Stryker(overrides).runMutationTest();
    process.exit(process.exitCode ?? 0);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
}

const { groups } = await import(pathToFileURL(join(root, "stryker.config.mjs")).href);
const selected = values("--group");
for (const name of selected)
  if (!groups[name]) throw new Error(`unknown group "${name}" (${Object.keys(groups)})`);
const names = selected.length > 0 ? selected : Object.keys(groups);
const goal = Number(values("--goal")[0] ?? 85);
/** Runs of every module with every test write the incremental files, and record what they were made from. */
const complete = !["--mutate", "--tests"].some(option);
/** A plain run may reuse the results of a group whose inputs did not change. */
const reusable = complete && !option("--force");
const budget = values("--budget")[0];
if (budget !== undefined && !(Number(budget) > 0))
  throw new Error(`--budget: a number of minutes above 0, got "${budget}"`);
const deadline = budget === undefined ? Number.POSITIVE_INFINITY : Date.now() + Number(budget) * 60_000;
let overBudget = false;

let status = 0;
const timings = [];
/** Where each group's results are read from for the summary. */
const sources = new Map();
const recorded = readJson(INPUTS_FILE) ?? {};
if (!option("--summary")) {
  for (const name of names) {
    const started = Date.now();
    const incrementalFile = `reports/stryker-incremental-${name}.json`;
    const inputs = fingerprint(groups[name]);
    if (reusable && recorded[name] === inputs && existsSync(incrementalFile)) {
      // Nothing Stryker reads for this group changed since its results were recorded: a run would only read
      // them back (after its initial test run), so they are the answer as they are.
      console.log(
        `\n=== mutation testing: group ${name}: inputs unchanged since ${incrementalFile}, reused ===`,
      );
      sources.set(name, incrementalFile);
      const { score } = scoreOf(
        Object.values(readJson(incrementalFile).files).flatMap((file) => file.mutants),
      );
      if (score < groups[name].break) {
        console.error(
          `group ${name}: mutation score ${score.toFixed(2)} under its break threshold ${groups[name].break}`,
        );
        status = 1;
      }
      timings.push(`${name} ${formatDuration(Date.now() - started)} (reused)`);
      continue;
    }
    console.log(`\n=== mutation testing: group ${name} ===`);
    const result = stryker(args, {
      MUTATION_GROUP: name,
      ...(values("--tests").length > 0 ? { MUTATION_TESTS: values("--tests").join(";") } : {}),
    });
    const report = `dist/mutation/${name}.json`;
    const finished = existsSync(report) && statSync(report).mtimeMs >= started;
    // Whether the group's results may be recorded as those of its inputs: a run that finished, survivors rechecked.
    let trusted = finished;
    if (!finished) status = result.status || 1;
    else {
      sources.set(name, report);
      if (!recheck(name, report, complete ? incrementalFile : null)) {
        trusted = false;
        status = 1;
      }
      // The group's score decides (Stryker's own verdict came before the recheck).
      const { score } = scoreOf(Object.values(readJson(report).files).flatMap((file) => file.mutants));
      if (score < groups[name].break) {
        console.error(
          `group ${name}: mutation score ${score.toFixed(2)} under its break threshold ${groups[name].break}`,
        );
        status = 1;
      }
    }
    // Stryker finished and wrote its incremental file: the results hold for the inputs as they were when it
    // started. (An interrupted Stryker saves a partial incremental file: a later run goes on from it, so its inputs
    // are not recorded as done.)
    if (complete && existsSync(incrementalFile) && statSync(incrementalFile).mtimeMs >= started) {
      formatIncrementalFile(incrementalFile);
      if (trusted) {
        recorded[name] = inputs;
        writeFileSync(INPUTS_FILE, `${JSON.stringify(recorded, null, 2)}\n`);
      }
    }
    timings.push(`${name} ${formatDuration(Date.now() - started)}${result.status === 0 ? "" : " (failed)"}`);
  }
} else {
  for (const name of names) {
    const report = `dist/mutation/${name}.json`;
    const incrementalFile = `reports/stryker-incremental-${name}.json`;
    const newest = [report, incrementalFile]
      .filter((file) => existsSync(file))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    if (newest) sources.set(name, newest);
  }
}
summarise();
if (timings.length > 0) console.log(`time: ${timings.join(", ")}`);
if (overBudget) {
  console.error(
    `mutation testing: the budget of ${budget} minutes ran out. The committed results (reports/) are behind the ` +
      "code: run `npm run test:mutation` and commit reports/ with the change.",
  );
  status = 1;
}
process.exit(status);

/**
 * One Stryker run (this script with --stryker) in its own process, within what is left of the budget: past it, the
 * run is interrupted (Stryker stops its workers on SIGINT) and its sandbox removed.
 */
function stryker(extra, env) {
  const remaining = deadline - Date.now();
  if (remaining <= 0) {
    overBudget = true;
    return { status: 1 };
  }
  const sandboxes = join(tmpdir(), "ryze-chatwoot-stryker");
  const before = new Set(existsSync(sandboxes) ? readdirSync(sandboxes) : []);
  const result = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--stryker", ...extra], {
    stdio: "inherit",
    env: { ...process.env, ...env },
    ...(Number.isFinite(remaining) ? { timeout: remaining, killSignal: "SIGINT" } : {}),
  });
  if (result.error?.code === "ETIMEDOUT") {
    overBudget = true;
    for (const entry of existsSync(sandboxes) ? readdirSync(sandboxes) : [])
      if (!before.has(entry)) rmSync(join(sandboxes, entry), { recursive: true, force: true });
  }
  return result;
}

/** Where a recheck of a group writes its report. */
function recheckReport(name) {
  return `dist/mutation/${name}-recheck.json`;
}

/**
 * Stryker's vitest runner bails at a mutant's first failing test by cancelling vitest's run; that cancellation can
 * land in the next run and cut it short, and a mutant whose tests did not run "survives". So every survivor that ran
 * fewer tests than cover it is tested again, without bail, and its result replaces the first one in the report and in
 * the incremental file. Answers whether the group's survivors can be trusted: the recheck finished, and each ran
 * tests.
 */
function recheck(name, report, incrementalFile) {
  const suspects = Object.entries(readJson(report).files).flatMap(([file, result]) =>
    result.mutants
      .filter(
        (mutant) =>
          mutant.status === "Survived" &&
          (!mutant.testsCompleted || mutant.testsCompleted < (mutant.coveredBy?.length ?? 0)),
      )
      .map((mutant) => ({ ...mutant, file: isAbsolute(file) ? relative(root, file) : file })),
  );
  if (suspects.length === 0) return true;
  console.log(
    `\n=== group ${name}: ${suspects.length} survivors whose tests did not all run, again without bail ===`,
  );
  const ranges = suspects.flatMap(({ file, location: { start, end } }) => [
    "--mutate",
    `${file}:${start.line}:${Math.max(0, start.column - 1)}-${end.line}:${end.column}`,
  ]);
  const result = stryker(["--recheck", ...ranges, ...(option("--no-typecheck") ? ["--no-typecheck"] : [])], {
    MUTATION_GROUP: name,
  });
  const again = readJson(recheckReport(name));
  if (result.status !== 0 || !again) {
    console.error(`group ${name}: the recheck did not finish; its survivors stay as they are`);
    return false;
  }
  const key = (file, mutant) =>
    [file, mutant.mutatorName, mutant.replacement, JSON.stringify(mutant.location)].join("\0");
  const results = new Map(
    Object.entries(again.files).flatMap(([file, result]) =>
      result.mutants.map((mutant) => [key(isAbsolute(file) ? relative(root, file) : file, mutant), mutant]),
    ),
  );
  // Test ids are a report's own: a test is the same by its file and name.
  const testKey = (file, test) => `${isAbsolute(file) ? relative(root, file) : file}\0${test.name}`;
  const testsOf = (parsed) =>
    Object.entries(parsed.testFiles ?? {}).flatMap(([file, { tests }]) => tests.map((test) => [file, test]));
  const recheckedTests = new Map(testsOf(again).map(([file, test]) => [test.id, testKey(file, test)]));
  let changed = 0;
  for (const target of [report, incrementalFile]) {
    if (!target || !existsSync(target)) continue;
    const parsed = readJson(target);
    const ids = new Map(testsOf(parsed).map(([file, test]) => [testKey(file, test), test.id]));
    const translate = (list) =>
      list?.flatMap((id) => {
        const translated = ids.get(recheckedTests.get(id));
        return translated === undefined ? [] : [translated];
      });
    for (const [file, result] of Object.entries(parsed.files)) {
      for (const mutant of result.mutants) {
        const rechecked = results.get(key(isAbsolute(file) ? relative(root, file) : file, mutant));
        if (!rechecked || mutant.status !== "Survived") continue;
        Object.assign(mutant, {
          status: rechecked.status,
          statusReason: rechecked.statusReason,
          killedBy: translate(rechecked.killedBy),
          coveredBy: translate(rechecked.coveredBy),
          testsCompleted: rechecked.testsCompleted,
          duration: rechecked.duration,
        });
        if (target === report && rechecked.status !== "Survived") changed++;
      }
    }
    writeFileSync(target, JSON.stringify(parsed, null, target === report ? 0 : 2));
  }
  console.log(`group ${name}: ${changed} of ${suspects.length} rechecked survivors were in fact detected`);
  // Without bail, a survivor runs every test that covers it. One that still ran none was given tests the runner could
  // not find by name: a test whose name changes from one run to the next (a random database name in a title, say)
  // is selected in the initial run and missing in the mutant's. Such a survival says nothing.
  const blind = Object.values(again.files).flatMap((result) =>
    result.mutants.filter(
      (mutant) =>
        mutant.status === "Survived" && !mutant.testsCompleted && (mutant.coveredBy?.length ?? 0) > 0,
    ),
  );
  if (blind.length === 0) return true;
  console.error(
    `group ${name}: ${blind.length} survivors ran none of the tests that cover them, ` +
      "even without bail: a test name that changes from run to run? Their results are not recorded as done.",
  );
  return false;
}

function readJson(file) {
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : null;
}

/**
 * A hash of everything a group's results depend on: the configuration, the lockfile, and every file under the
 * group's `inputs` (the mutated code, the tests, what they import).
 */
function fingerprint(group) {
  const hash = createHash("sha256").update(JSON.stringify(group));
  const files = [...CONFIGURATION, ...group.inputs.flatMap((folder) => filesUnder(folder))].sort();
  for (const file of files) {
    if (!existsSync(file)) continue;
    hash.update(`\0${file}\0`).update(readFileSync(file));
  }
  return hash.digest("hex");
}

/**
 * The files of a folder as a clone has them: tracked and new files, not what git ignores (node_modules, dist, logs,
 * build info), so that a fresh clone and the tree the results were recorded in agree. Outside a git work tree, the
 * folder's files but node_modules, dist and data.
 */
function filesUnder(folder) {
  const listed = spawnSync(
    "git",
    ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", folder],
    {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  if (listed.status === 0) return [...new Set(listed.stdout.split("\0").filter(Boolean))];
  return walk(folder);
}

function walk(folder) {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return ["node_modules", "dist", "data"].includes(entry.name) ? [] : walk(path);
    return entry.isFile() ? [path] : [];
  });
}

/** Keeps the committed incremental file in biome's format, so that `biome check .` passes on it. */
function formatIncrementalFile(file) {
  if (statSync(file).size > BIOME_MAX_SIZE) return;
  spawnSync(join(root, "node_modules", ".bin", "biome"), ["format", "--write", file], { stdio: "ignore" });
}

function formatDuration(ms) {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

/** Stryker's mutation score: detected (killed, timed out) over detected and undetected (survived, no coverage). */
function scoreOf(mutants) {
  const detected = mutants.filter((mutant) => DETECTED.has(mutant.status));
  const undetected = mutants.filter((mutant) => UNDETECTED.has(mutant.status));
  const valid = detected.length + undetected.length;
  return { detected, undetected, valid, score: valid === 0 ? 100 : (100 * detected.length) / valid };
}

function summarise() {
  const files = {};
  for (const name of names) {
    const source = sources.get(name);
    if (!source) {
      console.log(`(no results of group ${name}: its run did not finish)`);
      continue;
    }
    for (const [file, result] of Object.entries(readJson(source).files))
      files[isAbsolute(file) ? relative(root, file) : file] = result;
  }
  const lines = [];
  for (const [module, prefix] of MODULES) {
    const matching = Object.entries(files).filter(([file]) => file === prefix || file.startsWith(prefix));
    if (matching.length === 0) continue;
    const mutants = matching.flatMap(([file, result]) =>
      result.mutants.map((mutant) => ({ ...mutant, file })),
    );
    const { detected, undetected, valid, score } = scoreOf(mutants);
    const counts = `${detected.length}/${valid} detected, ${undetected.length} undetected, ${mutants.length - valid} not counted`;
    lines.push(
      `${score >= goal ? "PASS" : "FAIL"}  ${module.padEnd(20)} ${score.toFixed(2).padStart(6)}%  (${counts})`,
    );
    if (option("--survivors")) {
      for (const mutant of undetected.sort((a, b) => a.location.start.line - b.location.start.line)) {
        const where = `${mutant.file}:${mutant.location.start.line}:${mutant.location.start.column}`;
        const replacement = String(mutant.replacement ?? "")
          .replace(/\s+/g, " ")
          .slice(0, 100);
        lines.push(`        ${mutant.status.padEnd(10)} ${where} ${mutant.mutatorName}: ${replacement}`);
      }
    }
  }
  console.log(`\nmutation score per module (goal ${goal}%):\n${lines.join("\n")}`);
}
