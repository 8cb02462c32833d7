import { randomBytes } from "node:crypto";
import { isIP, isIPv4 } from "node:net";
import * as z from "zod";

/**
 * The environment every example app reads (the configuration table of the repository's `README.md`),
 * validated once. Unset caller tokens are generated; `generated` lists them so the app can print them once.
 */
const envSchema = z.object({
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: z.string().default("sqlite:./data/chatwoot.sqlite"),
  CHATWOOT_ENCRYPTION_KEY: z.string().optional(),
  CHATWOOT_PREVIOUS_KEYS: z.string().optional(),
  RYZE_ACCOUNT_TOKEN: z.string().optional(),
  RYZE_INSTANCES: z.string().optional(),
  CHATWOOT_ENABLED: z.enum(["true", "false"], { error: 'must be "true" or "false"' }).default("true"),
  CHATWOOT_DELIVERY: z.enum(["realtime", "webhook"]).default("realtime"),
  PUBLIC_URL: z.string().optional(),
  REDIS_URL: z.string().optional(),
  RATE_LIMIT_STORE: z.enum(["memory", "redis", "database"]).optional(),
  RATE_LIMIT_FAIL: z.enum(["open", "closed"]).default("open"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  CHATWOOT_ALLOW_PRIVATE_NETWORKS: z
    .enum(["true", "false"], { error: 'must be "true" or "false"' })
    .default("true"),
  CHATWOOT_DENY_NETWORKS: z.string().optional(),
});

/** A CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address; IPv4 in its four-part decimal form. */
function isCidr(value: string): boolean {
  const [address = "", prefix, ...rest] = value.split("/");
  const bits = isIPv4(address) ? 32 : isIP(address) === 6 ? 128 : 0;
  if (bits === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
}

export interface ExampleConfig {
  host: string;
  port: number;
  databaseUrl: string;
  encryptionKey: string | undefined;
  previousKeys: Array<{ id: string; key: string }>;
  accountToken: string;
  instances: Array<{ name: string; token: string }>;
  enabled: boolean;
  delivery: "realtime" | "webhook";
  publicUrl: string | undefined;
  redisUrl: string | undefined;
  /**
   * Where the per-token rate limit counts: in this process (`memory`), in Redis (`redis`, needs REDIS_URL) or in
   * the app's database (`database`, PostgreSQL or MySQL/MariaDB). Default: `redis` when REDIS_URL is set.
   */
  rateLimitStore: "memory" | "redis" | "database";
  /** What the rate limit does when its store is down: let requests through (`open`) or refuse them. */
  rateLimitFail: "open" | "closed";
  logLevel: string;
  /**
   * The bridge's network policy (`docs/security.md`): private networks (loopback, RFC 1918, CGNAT, unique-local)
   * allowed unless CHATWOOT_ALLOW_PRIVATE_NETWORKS=false; CHATWOOT_DENY_NETWORKS refused in addition.
   */
  network: { allowPrivateNetworks: boolean; deny: string[] };
  /** Which tokens were generated because they were unset. */
  generated: { accountToken: boolean; instances: string[] };
}

const newToken = () => randomBytes(24).toString("base64url");

export function readConfig(env: Record<string, string | undefined> = process.env): ExampleConfig {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "")));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
    throw new Error(`invalid environment: ${issues}`);
  }
  const values = parsed.data;
  const rateLimitStore = values.RATE_LIMIT_STORE ?? (values.REDIS_URL ? "redis" : "memory");
  if (rateLimitStore === "redis" && !values.REDIS_URL) {
    throw new Error("invalid environment: RATE_LIMIT_STORE: redis needs REDIS_URL");
  }
  if (rateLimitStore === "database" && values.DATABASE_URL.startsWith("sqlite:")) {
    throw new Error(
      "invalid environment: RATE_LIMIT_STORE: database needs PostgreSQL or MySQL/MariaDB; SQLite serves one " +
        "process only, so use memory (or redis with REDIS_URL)",
    );
  }
  const generatedInstances: string[] = [];
  const instances = (values.RYZE_INSTANCES ?? "suporte").split(",").map((entry, index) => {
    const [name, ...rest] = entry.trim().split(":");
    if (!name) throw new Error(`invalid environment: RYZE_INSTANCES: entry ${index + 1} has no name`);
    const token = rest.join(":");
    if (token) return { name, token };
    generatedInstances.push(name);
    return { name, token: newToken() };
  });
  const deny = (values.CHATWOOT_DENY_NETWORKS ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry);
  deny.forEach((entry, index) => {
    if (!isCidr(entry)) {
      throw new Error(
        `invalid environment: CHATWOOT_DENY_NETWORKS: entry ${index + 1} (${JSON.stringify(entry)}) must be a CIDR such as 10.0.0.0/8 or fd00::/8`,
      );
    }
  });
  const previousKeys = (values.CHATWOOT_PREVIOUS_KEYS ?? "")
    .split(",")
    .filter((entry) => entry.trim())
    .map((entry, index) => {
      const [id, ...key] = entry.trim().split(":");
      if (!id || key.length === 0) {
        throw new Error(
          `invalid environment: CHATWOOT_PREVIOUS_KEYS: entry ${index + 1} must be keyId:base64key`,
        );
      }
      return { id, key: key.join(":") };
    });
  return {
    host: values.HOST,
    port: values.PORT,
    databaseUrl: values.DATABASE_URL,
    encryptionKey: values.CHATWOOT_ENCRYPTION_KEY,
    previousKeys,
    accountToken: values.RYZE_ACCOUNT_TOKEN ?? newToken(),
    instances,
    enabled: values.CHATWOOT_ENABLED === "true",
    delivery: values.CHATWOOT_DELIVERY,
    publicUrl: values.PUBLIC_URL,
    redisUrl: values.REDIS_URL,
    rateLimitStore,
    rateLimitFail: values.RATE_LIMIT_FAIL,
    logLevel: values.LOG_LEVEL,
    network: { allowPrivateNetworks: values.CHATWOOT_ALLOW_PRIVATE_NETWORKS === "true", deny },
    generated: { accountToken: values.RYZE_ACCOUNT_TOKEN === undefined, instances: generatedInstances },
  };
}
