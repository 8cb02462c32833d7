import { hash } from "node:crypto";

/** Who is calling: an account token owns every instance of its account; an instance token owns one instance. */
export type Principal = { kind: "account"; accountId: string } | { kind: "instance"; instance: string };

export interface InstanceInfo {
  name: string;
  accountId: string;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * Host-provided: resolves caller tokens and tells which instances exist and who owns them. The library
 * never stores caller tokens.
 */
export interface InstanceDirectory {
  /** The principal a caller token stands for, or null for an unknown token. */
  resolveToken(token: string): MaybePromise<Principal | null>;
  /** The instance, or null when the host has no instance of that name. */
  getInstance(name: string): MaybePromise<InstanceInfo | null>;
}

export interface StaticDirectoryOptions {
  accounts: Array<{
    id: string;
    token: string;
    instances: Array<{ name: string; token: string }>;
  }>;
}

/** SHA-256 of a token: the directory keeps and looks up digests, never the tokens themselves. */
const digest = (token: string) => hash("sha256", token, "base64");

/**
 * A fixed directory (example apps, tests). Tokens are looked up by their SHA-256 digest: how long a look-up takes
 * can only tell about digests, which do not lead back to a token, and it costs the same with 1 or 10,000 tokens.
 */
export function createStaticDirectory(options: StaticDirectoryOptions): InstanceDirectory {
  const principals = new Map<string, Principal>();
  const instances = new Map<string, InstanceInfo>();
  for (const account of options.accounts) {
    principals.set(digest(account.token), { kind: "account", accountId: account.id });
    for (const instance of account.instances) {
      principals.set(digest(instance.token), { kind: "instance", instance: instance.name });
      instances.set(instance.name, { name: instance.name, accountId: account.id });
    }
  }
  return {
    resolveToken(token) {
      return principals.get(digest(token)) ?? null;
    },
    getInstance(name) {
      return instances.get(name) ?? null;
    },
  };
}
