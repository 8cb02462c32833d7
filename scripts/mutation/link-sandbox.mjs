#!/usr/bin/env node
// Stryker's build command, run inside its sandbox (the current directory); stryker.config.mjs gives it the
// repository root in RYZE_MUTATION_REPOSITORY.
//
// Stryker copies the source tree into a sandbox and would symlink every node_modules folder back to the
// repository. In a pnpm workspace that is not enough: `packages/testkit/node_modules/@ryze/chatwoot-core` links
// to `../../../core`, which from a symlinked folder is the repository's core, not the sandbox's mutated copy, so
// every test that imports a package by name would test the original code. Here each node_modules folder of the
// sandbox is a real folder instead: workspace links point into the sandbox, everything else to the repository.
import { existsSync } from "node:fs";
import { lstat, mkdir, readdir, realpath, symlink } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";

const sandbox = process.cwd();
const given = process.env.RYZE_MUTATION_REPOSITORY ?? "";
const repository = resolve(given);
if (!given || !existsSync(join(repository, "node_modules")))
  throw new Error(
    `RYZE_MUTATION_REPOSITORY must name the repository root (with node_modules), got "${given}"`,
  );
if (sandbox === repository)
  throw new Error("link-sandbox.mjs runs in a Stryker sandbox, not in the repository");

const SKIP = new Set(["node_modules", ".git", "dist", "data", "coverage", "reports"]);
const inside = (path, folder) => path === folder || path.startsWith(folder + sep);

/** The node_modules folders of the workspace packages (relative paths), found as Stryker finds them. */
async function nodeModulesFolders(folder = "") {
  const found = [];
  for (const entry of await readdir(join(repository, folder), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(folder, entry.name);
    if (entry.name === "node_modules") found.push(path);
    else if (!SKIP.has(entry.name) && !entry.name.startsWith("."))
      found.push(...(await nodeModulesFolders(path)));
  }
  return found;
}

/** Where the sandbox's copy of `entry` (a path in the repository's node_modules) should point. */
async function targetOf(entry) {
  const real = await realpath(entry);
  const workspace =
    inside(real, repository) && !real.slice(repository.length).split(sep).includes("node_modules");
  return workspace ? join(sandbox, relative(repository, real)) : entry;
}

async function link(from, to) {
  await symlink(to, from, process.platform === "win32" ? "junction" : "dir");
}

/** Recreates one node_modules folder of the sandbox, entry by entry (scopes one level down). */
async function mirror(folder) {
  const source = join(repository, folder);
  const target = join(sandbox, folder);
  await mkdir(target, { recursive: true });
  for (const entry of await readdir(source)) {
    const path = join(source, entry);
    if (entry.startsWith("@") && (await lstat(path)).isDirectory()) {
      await mkdir(join(target, entry), { recursive: true });
      for (const scoped of await readdir(path))
        await link(join(target, entry, scoped), await targetOf(join(path, scoped)));
    } else {
      await link(join(target, entry), await targetOf(path));
    }
  }
}

// The root node_modules holds the tools (vitest, tsx) and pnpm's store: one link is enough.
await link(join(sandbox, "node_modules"), join(repository, "node_modules"));
let mirrored = 0;
for (const folder of await nodeModulesFolders()) {
  if (folder === "node_modules") continue; // linked above
  if (!existsSync(join(sandbox, folder, ".."))) continue; // a package the sandbox does not copy
  await mirror(folder);
  mirrored++;
}
console.log(`link-sandbox: ${mirrored} node_modules folders with workspace links into ${sandbox}`);
