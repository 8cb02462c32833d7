#!/usr/bin/env node
// The README's commands: install what is missing (pnpm pinned in package.json, fetched through npx), then run.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pnpmVersion = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager.split("@")[1];
const node = process.execPath;
const source = ["--conditions=@ryze/source", "--import", "tsx"];

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function pnpm(args) {
  run("npx", ["--yes", `pnpm@${pnpmVersion}`, ...args]);
}

function ensureInstalled() {
  const lock = join(root, "pnpm-lock.yaml");
  const installed = join(root, "node_modules", ".pnpm", "lock.yaml");
  const upToDate =
    existsSync(installed) &&
    existsSync(lock) &&
    readFileSync(installed, "utf8") === readFileSync(lock, "utf8");
  if (!upToDate) pnpm(["install", "--frozen-lockfile"]);
}

const bin = (name) => join(root, "node_modules", ".bin", name);

/** Runs a command with its output kept (printed by the caller); resolves to `{ ok, output }`. */
function capture(command, args) {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", (error) => done({ ok: false, output: `${output}${error}` }));
    child.on("close", (code) => done({ ok: code === 0, output }));
  });
}

/**
 * Packs every package as it is published (pnpm pack applies `publishConfig`, which drops the workspace-only
 * `@ryze/source` condition; npm pack, which `attw --pack` uses, would not) and lints each tarball: publint with
 * warnings as errors, and attw with the esm-only profile. No rule is ignored. Returns the tarballs' directory,
 * which the pack test installs (RYZE_PACKED_DIR) instead of packing again; it is removed on exit.
 */
async function packAndLint() {
  const packed = mkdtempSync(join(tmpdir(), "ryze-chatwoot-packed-"));
  process.on("exit", () => rmSync(packed, { recursive: true, force: true }));
  const pack = await capture("npx", [
    "--yes",
    `pnpm@${pnpmVersion}`,
    ...["-r", "--filter", "./packages/*", "pack", "--pack-destination", packed],
  ]);
  if (!pack.ok) {
    console.error(pack.output);
    process.exit(1);
  }
  const tarballs = readdirSync(packed).filter((file) => file.endsWith(".tgz"));
  const checks = tarballs.flatMap((file) => [
    { file, tool: "publint", command: bin("publint"), args: ["run", join(packed, file), "--strict"] },
    {
      file,
      tool: "attw",
      command: bin("attw"),
      args: [join(packed, file), "--profile", "esm-only", "--format", "table-flipped", "--no-color"],
    },
  ]);
  const results = [];
  const queue = [...checks];
  const worker = async () => {
    for (let check = queue.shift(); check; check = queue.shift()) {
      results.push({ ...check, ...(await capture(check.command, check.args)) });
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  const failed = results.filter((result) => !result.ok);
  for (const result of failed) console.error(`\n${result.tool} failed on ${result.file}:\n${result.output}`);
  for (const file of tarballs.sort()) {
    const ok = (tool) => (results.find((r) => r.file === file && r.tool === tool)?.ok ? "ok" : "FAILED");
    console.log(`${file}: publint ${ok("publint")}, attw --profile esm-only ${ok("attw")}`);
  }
  if (failed.length > 0 || tarballs.length === 0) process.exit(1);
  return packed;
}

const [task, ...rest] = process.argv.slice(2);
ensureInstalled();

switch (task) {
  case "start:express":
  case "start:koa":
  case "start:fastify":
  case "start:baileys":
    run(node, [...source, join("examples", task.split(":")[1], "src", "main.ts"), ...rest]);
    break;
  case "simulator":
    run(node, [...source, join("packages", "testkit", "src", "simulator", "cli.ts"), ...rest]);
    break;
  case "build":
    pnpm(["-r", "--filter", "./packages/*", "run", "build"]);
    break;
  case "check":
    run(bin("biome"), ["check", "."]);
    run(bin("tsc"), ["-p", "tsconfig.json"]);
    break;
  case "test":
    run(bin("biome"), ["check", "."]);
    run(bin("tsc"), ["-p", "tsconfig.json"]);
    pnpm(["-r", "--filter", "./packages/*", "run", "build"]);
    // publint and attw on every packed package; the pack test (vitest project "pack") installs these tarballs.
    process.env.RYZE_PACKED_DIR = await packAndLint();
    run(bin("vitest"), ["run", ...rest]);
    break;
  case "test:mutation":
    // StrykerJS on the critical modules, incremental; see docs/testing.md.
    run(node, [join("scripts", "mutation", "run.mjs"), ...rest]);
    break;
  case "bench":
    run(node, [...source, join("bench", "run.ts"), ...rest]);
    break;
  default:
    console.error(`unknown task: ${task}`);
    process.exit(2);
}
