#!/usr/bin/env node
// The README's commands: install what is missing (pnpm pinned in package.json, fetched through npx), then run.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
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
const [task, ...rest] = process.argv.slice(2);
ensureInstalled();

switch (task) {
  case "start:express":
  case "start:koa":
  case "start:fastify":
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
    run(bin("vitest"), ["run", ...rest]);
    break;
  case "bench":
    run(node, [...source, join("bench", "run.ts"), ...rest]);
    break;
  default:
    console.error(`unknown task: ${task}`);
    process.exit(2);
}
