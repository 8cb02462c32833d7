/**
 * The packages as a stranger gets them. Every package under packages/ that is not private is packed with pnpm (or
 * the tarballs `npm test` packed for publint and attw are reused, `RYZE_PACKED_DIR`) and installed, with its peers,
 * into a fresh project under the OS temp directory, outside the workspace. There, the README's host blocks (the
 * fenced blocks after a `<!-- pack-test: <file> -->` marker) are type-checked with strict, noUnusedLocals and
 * NodeNext against the installed types (skipLibCheck off, with every published entry in the program), and the host
 * block is run: the simulator of the installed testkit (its `chatwoot-simulator` bin), set and list through the
 * installed Express adapter on the installed knex store (SQLite), one WhatsApp message in and one agent reply out.
 *
 * The install is pnpm's, offline from the workspace's store (online only for what the store lacks), with build
 * scripts off: better-sqlite3's native binary is copied from the workspace's install instead of compiled again.
 * Runs in its own vitest project (`vitest run --project pack`), after the others. Without RYZE_PACKED_DIR it packs
 * what `npm run build` left in the packages' dist/. RYZE_PACK_KEEP=1 keeps the fresh project for a look.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  packageManager: string;
};
const pnpmVersion = rootManifest.packageManager.split("@")[1]!;
type Exports = Record<string, string | Record<string, string>>;

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  exports: Exports;
  publishConfig?: { exports?: Exports };
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** The published packages: every package under packages/ that is not private, by directory. */
const published = readdirSync(join(root, "packages"))
  .filter((dir) => existsSync(join(root, "packages", dir, "package.json")))
  .map((dir) => ({
    dir,
    manifest: JSON.parse(readFileSync(join(root, "packages", dir, "package.json"), "utf8")) as Manifest,
  }))
  .filter(({ manifest }) => !manifest.private);

/** A package's entries as import specifiers (`exports` keys, without `./package.json`). */
const entriesOf = (manifest: Manifest) =>
  Object.keys(manifest.exports)
    .filter((key) => key !== "./package.json")
    .map((key) => (key === "." ? manifest.name : `${manifest.name}${key.slice(1)}`));
const entries = published.flatMap(({ manifest }) => entriesOf(manifest));
/** Entries whose declarations need an optional peer the fresh project does not install (vitest). */
const needsOptionalPeer = new Set(["@ryze/chatwoot-testkit/conformance"]);
/**
 * Entries whose peer's own declarations fail a strict NodeNext check with skipLibCheck off: Baileys 7 (rc14) ships
 * extension-less relative imports and types that need `@types/ws`. Ours are checked when the workspace builds them.
 */
const peerTypesUncheckable = new Set(["@ryze/chatwoot-baileys"]);

/** What a workspace `exports` map publishes as: the same, without the workspace-only `@ryze/source` condition. */
function withoutSourceCondition(exports: Exports): Exports {
  return Object.fromEntries(
    Object.entries(exports).map(([key, target]) => [
      key,
      typeof target === "string"
        ? target
        : Object.fromEntries(Object.entries(target).filter(([condition]) => condition !== "@ryze/source")),
    ]),
  );
}

const ACCOUNT_TOKEN = "pack-account-token";
const INSTANCE_TOKEN = "pack-instance-token";
const CHAT = "5511999990001@s.whatsapp.net";

interface Run {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion within `timeoutMs`; a failure carries the command's whole output. */
function exec(
  command: string,
  args: string[],
  options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
) {
  return new Promise<Run>((done, fail) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        timeout: options.timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        env: options.env ?? process.env,
      },
      (error, stdout, stderr) => {
        if (!error) return done({ stdout, stderr });
        const why = error.killed ? `killed after ${options.timeoutMs} ms` : `exit ${String(error.code)}`;
        fail(new Error(`${command} ${args.join(" ")} (in ${options.cwd}): ${why}\n${stdout}\n${stderr}`));
      },
    );
  });
}

const pnpm = (args: string[], cwd: string, timeoutMs: number) =>
  exec("npx", ["--prefer-offline", "--yes", `pnpm@${pnpmVersion}`, ...args], {
    cwd,
    timeoutMs,
    env: { ...process.env, CI: "true", npm_config_update_notifier: "false" },
  });

/** The README blocks marked `<!-- pack-test: <file> -->`, by file name. */
function readmeBlocks(): Map<string, string> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const blocks = new Map<string, string>();
  for (const match of readme.matchAll(/<!-- pack-test: (\S+) -->\r?\n```ts\r?\n([\s\S]*?)\r?\n```/g)) {
    if (!/^src\/[a-z-]+\.ts$/.test(match[1]!)) throw new Error(`README: bad pack-test file name ${match[1]}`);
    blocks.set(match[1]!, `${match[2]!}\n`);
  }
  return blocks;
}

/** The version of `name` the workspace installed for `from` (a package, or the root): pnpm has it in its store. */
function installedVersion(from: string, name: string): string {
  const manifest = join(root, from, "node_modules", name, "package.json");
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
}

/** The workspace's pnpm store (`node_modules/.modules.yaml`), or null to let pnpm pick its default. */
function workspaceStore(): string | null {
  const modules = join(root, "node_modules", ".modules.yaml");
  if (!existsSync(modules)) return null;
  return /"?storeDir"?:\s*"?([^"\n]+)"?/.exec(readFileSync(modules, "utf8"))?.[1]?.trim() ?? null;
}

/** `src/whatsapp.ts` of the fresh project: the README's "your WhatsApp side", driven over stdin and stdout. */
const WHATSAPP_FAKE = `import { createInterface } from "node:readline";

export interface IncomingMessage {
  id: string;
  chatJid: string;
  pushName: string | null;
  fromMe: boolean;
  timestamp: Date;
  text: string;
}

type Handler = (instance: string, message: IncomingMessage) => Promise<void>;
const handlers: Handler[] = [];
let sent = 0;

// One JSON line per incoming message on stdin; every send and every ingest is reported as a JSON line on stdout.
createInterface({ input: process.stdin }).on("line", (line) => {
  const { instance, message } = JSON.parse(line) as { instance: string; message: IncomingMessage };
  for (const handler of handlers) {
    handler(instance, { ...message, timestamp: new Date(message.timestamp) }).then(
      () => console.log(JSON.stringify({ ingested: message.id })),
      (error: unknown) => console.log(JSON.stringify({ ingestFailed: String(error) })),
    );
  }
});

export const whatsapp = {
  async sendText(instance: string, to: string, text: string): Promise<string> {
    const id = \`FAKE\${++sent}\`;
    console.log(JSON.stringify({ sent: { instance, to, text, id } }));
    return id;
  },
  onMessage(handler: Handler): void {
    handlers.push(handler);
  },
};
`;

/** `src/frameworks.ts` of the fresh project: the Koa and Fastify adapters mount a bridge too (type-checked only). */
const FRAMEWORKS = `import type { ChatwootBridge } from "@ryze/chatwoot-core";
import { chatwootFastify } from "@ryze/chatwoot-fastify";
import { chatwootKoa } from "@ryze/chatwoot-koa";
import Fastify from "fastify";
import Koa from "koa";

export async function mountElsewhere(bridge: ChatwootBridge) {
  const koa = new Koa();
  koa.use(chatwootKoa(bridge));
  const fastify = Fastify();
  await fastify.register(chatwootFastify, { bridge, prefix: bridge.prefix });
  return { koa, fastify };
}
`;

/**
 * `src/entries.ts` of the fresh project: every published entry's declarations in the program, so that, with
 * skipLibCheck off, a broken or dangling `.d.ts` fails the type check.
 */
const ENTRIES = entries
  .filter((entry) => !needsOptionalPeer.has(entry) && !peerTypesUncheckable.has(entry))
  .map((entry, index) => `export type * as entry${index} from "${entry}";\n`)
  .join("");

/** Resolves every published entry from the fresh project (also run under the workspace-only condition). */
const RESOLVE_ENTRIES = `const entries = ${JSON.stringify(entries)};
console.log(JSON.stringify(entries.map((entry) => import.meta.resolve(entry))));
`;

/** A child process whose stdout lines are kept and can be waited for. */
class Child {
  readonly lines: string[] = [];
  output = "";
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    let pending = "";
    this.process.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.output += chunk;
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      this.lines.push(...parts);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.process.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.output += chunk;
    });
    this.process.on("exit", () => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** The first stdout line (past or future) that `match` accepts, within `timeoutMs`. */
  async line<T>(match: (line: string) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.lines) {
        const found = match(line);
        if (found !== undefined) return found;
      }
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`${this.name} exited while waiting for ${what}:\n${this.output}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms:\n${this.output}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, Math.min(left, 1_000));
        this.waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((done) => this.process.once("exit", () => done()));
    this.process.stdin?.end();
    this.process.kill("SIGTERM");
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** A JSON line of the fake WhatsApp side (`{"sent": …}`, `{"ingested": …}`), or undefined. */
function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Polls `probe` until it returns a value (not undefined), or fails with the last reason. */
async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = "nothing yet";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms (last: ${String(last)})`);
    await new Promise((wake) => setTimeout(wake, 200));
  }
}

describe("the packed packages in a fresh project", () => {
  let work = "";
  let project = "";
  const children: Child[] = [];
  const blocks = readmeBlocks();
  const installed = (name: string) => join(project, "node_modules", ...name.split("/"));

  beforeAll(async () => {
    const started = Date.now();
    work = mkdtempSync(join(tmpdir(), "ryze-chatwoot-pack-"));
    project = join(work, "host");
    // 1. Tarballs: the ones npm test packed for publint and attw, or packed now from the built dist/.
    let packed = process.env["RYZE_PACKED_DIR"];
    if (!packed) {
      for (const { dir } of published) {
        if (!existsSync(join(root, "packages", dir, "dist"))) {
          throw new Error(`packages/${dir}/dist is missing: run \`npm run build\` first`);
        }
      }
      packed = join(work, "tarballs");
      await pnpm(["-r", "--filter", "./packages/*", "pack", "--pack-destination", packed], root, 60_000);
    }
    // pnpm names a tarball after the package: @ryze/chatwoot-core@0.1.0 → ryze-chatwoot-core-0.1.0.tgz.
    const tarballs = new Map(
      published.map(({ manifest: { name, version } }) => {
        const file = join(packed, `${name.replace(/^@/, "").replace("/", "-")}-${version}.tgz`);
        if (!existsSync(file)) throw new Error(`${name} was not packed: no ${file}`);
        return [name, `file:${file}`];
      }),
    );

    // 2. The fresh project: every tarball, each one's peers, and the host's tools, at the versions the workspace
    // installed (so pnpm finds them in its store).
    mkdirSync(join(project, "src"), { recursive: true });
    const peers = published.flatMap(({ dir, manifest }) =>
      Object.keys(manifest.peerDependencies ?? {})
        .filter((peer) => !manifest.peerDependenciesMeta?.[peer]?.optional)
        .map((peer) => [peer, installedVersion(`packages/${dir}`, peer)]),
    );
    const tools = {
      "better-sqlite3": installedVersion("packages/knex", "better-sqlite3"), // the README host's database
      "@types/express": installedVersion("packages/express", "@types/express"),
      "@types/koa": installedVersion("packages/koa", "@types/koa"),
      "@types/node": installedVersion(".", "@types/node"),
      typescript: installedVersion(".", "typescript"),
    };
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify(
        {
          name: "fresh-chatwoot-host",
          private: true,
          type: "module",
          dependencies: { ...Object.fromEntries(tarballs), ...Object.fromEntries(peers), ...tools },
          // The tarballs depend on one another by version: take those from the tarballs, never from a registry.
          pnpm: { overrides: Object.fromEntries(tarballs), onlyBuiltDependencies: [] },
        },
        null,
        2,
      ),
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify(
        {
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            noUnusedLocals: true,
            noUnusedParameters: true,
            skipLibCheck: false,
            types: ["node"],
            rootDir: "src",
            outDir: "dist",
          },
          include: ["src"],
        },
        null,
        2,
      ),
    );
    for (const [file, text] of blocks) writeFileSync(join(project, file), text);
    writeFileSync(join(project, "src", "whatsapp.ts"), WHATSAPP_FAKE);
    writeFileSync(join(project, "src", "frameworks.ts"), FRAMEWORKS);
    writeFileSync(join(project, "src", "entries.ts"), ENTRIES);
    writeFileSync(join(project, "resolve-entries.mjs"), RESOLVE_ENTRIES);

    // 3. Install: offline from the workspace's store; online for the metadata only the first time.
    const store = workspaceStore();
    const install = ["install", "--reporter=append-only", ...(store ? ["--store-dir", store] : [])];
    try {
      await pnpm([...install, "--offline"], project, 45_000);
    } catch (offline) {
      console.warn(
        `pack test: the offline install failed, installing online:\n${String(offline).slice(0, 2_000)}`,
      );
      await pnpm([...install, "--prefer-offline"], project, 90_000);
    }

    // better-sqlite3 was installed without its build script: its binary is the workspace's (same version, same
    // Node). Only written where missing: an existing file may be hard-linked into pnpm's store.
    const binary = (dir: string) => join(realpathSync(dir), "build", "Release", "better_sqlite3.node");
    const fromWorkspace = binary(join(root, "packages", "knex", "node_modules", "better-sqlite3"));
    const inProject = binary(installed("better-sqlite3"));
    if (!existsSync(inProject)) {
      mkdirSync(dirname(inProject), { recursive: true });
      copyFileSync(fromWorkspace, inProject);
    }
    console.info(`pack test: packed and installed in ${Date.now() - started} ms`);
  }, 150_000);

  afterAll(async () => {
    await Promise.all(children.map((child) => child.stop()));
    if (!work) return;
    if (process.env["RYZE_PACK_KEEP"]) console.info(`pack test: kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });

  it("finds the README's host blocks", () => {
    expect([...blocks.keys()].sort()).toEqual(["src/directory.ts", "src/host.ts"]);
  });

  it("installs README, LICENSE and dist only, and the workspace's entries without the source condition", () => {
    for (const { manifest } of published) {
      const files = readdirSync(installed(manifest.name))
        .filter((file) => file !== "node_modules") // pnpm's links for the package's own peers' bins
        .sort();
      expect(files, manifest.name).toEqual(["LICENSE", "README.md", "dist", "package.json"]);
      const text = readFileSync(join(installed(manifest.name), "package.json"), "utf8");
      expect(text, manifest.name).not.toContain("@ryze/source");
      expect(text, manifest.name).not.toContain("workspace:");
      // `publishConfig.exports` must follow `exports` (an entry added to one only would be lost or dangling).
      const exports = withoutSourceCondition(manifest.exports);
      expect(manifest.publishConfig?.exports, `${manifest.name}: publishConfig.exports`).toEqual(exports);
      expect((JSON.parse(text) as Manifest).exports, manifest.name).toEqual(exports);
    }
  });

  it("type-checks the README's host with strict, noUnusedLocals and NodeNext", async () => {
    const tsc = join(project, "node_modules", "typescript", "bin", "tsc");
    const result = await exec(process.execPath, [tsc, "-p", "tsconfig.json"], {
      cwd: project,
      timeoutMs: 75_000,
    });
    expect(result.stdout + result.stderr).toBe("");
  }, 80_000);

  it("resolves every entry to dist, even under the workspace's source condition, and require()s the core", async () => {
    for (const flags of [[], ["--conditions=@ryze/source"]]) {
      const { stdout } = await exec(process.execPath, [...flags, "resolve-entries.mjs"], {
        cwd: project,
        timeoutMs: 15_000,
      });
      const resolved = JSON.parse(stdout) as string[];
      expect(resolved).toHaveLength(entries.length);
      for (const url of resolved)
        expect(url).toMatch(/\/node_modules\/@ryze\/chatwoot-[a-z]+\/dist\/.+\.js$/);
    }
    const { stdout } = await exec(
      process.execPath,
      ["-e", "console.log(typeof require('@ryze/chatwoot-core').createChatwootBridge)"],
      { cwd: project, timeoutMs: 15_000 },
    );
    expect(stdout.trim()).toBe("function");
  });

  it("runs the README's host against the installed simulator: set, list, a message each way", async () => {
    const env = { PATH: process.env["PATH"], HOME: process.env["HOME"] };
    // The simulator, from the testkit's bin.
    const simulator = new Child(
      "chatwoot-simulator",
      spawn(join(project, "node_modules", ".bin", "chatwoot-simulator"), [], {
        cwd: project,
        env: { ...env, PORT: "0" },
      }),
    );
    children.push(simulator);
    const setting = (key: string) =>
      simulator.line(
        (line) => (line.startsWith(`${key}=`) ? line.slice(key.length + 1) : undefined),
        15_000,
        key,
      );
    const chatwootUrl = await setting("CHATWOOT_URL");
    const accountId = Number(await setting("CHATWOOT_ACCOUNT_ID"));
    const adminToken = await setting("CHATWOOT_ADMIN_TOKEN");
    const chatwoot = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${chatwootUrl}/api/v1/accounts/${accountId}${path}`, {
        ...init,
        headers: { api_access_token: adminToken, "content-type": "application/json" },
      });
      expect(response.status, path).toBe(200);
      return (await response.json()) as Record<string, unknown>;
    };

    // The README's host, compiled by the previous test.
    const port = await freePort();
    const host = new Child(
      "README host",
      spawn(process.execPath, [join("dist", "host.js")], {
        cwd: project,
        env: {
          ...env,
          PORT: String(port),
          DATABASE_FILE: join(work, "chatwoot.sqlite"),
          ACCOUNT_TOKEN,
          INSTANCE_TOKEN,
          CHATWOOT_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
        },
        stdio: ["pipe", "pipe", "pipe"],
      }),
    );
    children.push(host);
    const withLogs = (error: unknown): never => {
      throw new Error(
        `${String(error)}\n--- README host ---\n${host.output}\n--- simulator ---\n${simulator.output}`,
      );
    };
    const api = `http://127.0.0.1:${port}/api/chatwoot`;
    const list = () => fetch(`${api}/list/suporte`, { headers: { token: INSTANCE_TOKEN } });
    await until(
      async () => {
        if (host.process.exitCode !== null) throw new Error(`the host exited:\n${host.output}`);
        return (await list()).status;
      },
      20_000,
      "answer from the host",
    ).catch(withLogs);

    // set, then list (the instance token works too; exposeApiToken: false hides the Chatwoot token).
    const set = await fetch(`${api}/set/suporte`, {
      method: "POST",
      headers: { token: ACCOUNT_TOKEN, "content-type": "application/json" },
      body: JSON.stringify({
        chatwootBaseUrl: chatwootUrl,
        chatwootAccountId: accountId,
        chatwootApiToken: adminToken,
        inboxName: "WhatsApp - Pack",
      }),
    });
    const setBody = (await set.json()) as Record<string, unknown>;
    expect({ status: set.status, body: setBody }, host.output).toMatchObject({
      status: 201,
      body: { instance: "suporte", status: "active" },
    });
    const listed = await list();
    const status = (await listed.json()) as Record<string, unknown>;
    expect(listed.status).toBe(200);
    expect(status).toMatchObject({ instance_name: "suporte", status: "active", chatwoot_api_token: null });
    const inboxId = status["chatwoot_inbox_id"];
    expect(inboxId).toEqual(expect.any(Number));

    // WhatsApp → Chatwoot: the fake WhatsApp side hands a message to the README's onMessage, which ingests it.
    const text = "Olá, preciso de ajuda";
    host.process.stdin?.write(
      `${JSON.stringify({
        instance: "suporte",
        message: {
          id: "3EB0PACK0001",
          chatJid: CHAT,
          pushName: "Maria",
          fromMe: false,
          timestamp: new Date().toISOString(),
          text,
        },
      })}\n`,
    );
    await host.line(
      (line) => (jsonLine(line)?.["ingested"] === "3EB0PACK0001" ? true : undefined),
      15_000,
      "ingest",
    );
    const conversationId = await until(
      async () => {
        const listing = (await chatwoot("/conversations?status=all")) as {
          data: { payload: Array<{ id: number; inbox_id: number }> };
        };
        const conversation = listing.data.payload.find((entry) => entry.inbox_id === inboxId);
        if (!conversation) return undefined;
        const messages = (await chatwoot(`/conversations/${conversation.id}/messages`)) as {
          payload: Array<{ content: string | null; message_type: number }>;
        };
        return messages.payload.some((message) => message.content === text && message.message_type === 0)
          ? conversation.id
          : undefined;
      },
      20_000,
      "incoming message in Chatwoot",
    ).catch(withLogs);

    // Chatwoot → WhatsApp: an agent reply reaches the README's gateway.
    const reply = "Olá Maria, como posso ajudar?";
    await chatwoot(`/conversations/${conversationId}/messages`, {
      method: "POST",
      body: JSON.stringify({ content: reply, message_type: "outgoing" }),
    });
    const sent = await host.line(
      (line) => {
        const entry = jsonLine(line)?.["sent"] as
          | { text?: string; to?: string; instance?: string }
          | undefined;
        return entry?.text === reply ? entry : undefined;
      },
      20_000,
      "send to WhatsApp",
    );
    expect(sent).toMatchObject({ instance: "suporte", to: CHAT });

    await host.stop();
    expect(host.process.exitCode ?? host.process.signalCode, host.output).toBe(0);
  }, 90_000);
});
