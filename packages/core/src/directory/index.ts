import { createHash, timingSafeEqual } from "node:crypto";

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

const digest = (token: string) => createHash("sha256").update(token, "utf8").digest();

/** A fixed directory (example apps, tests). Tokens are compared by digest, in constant time. */
export function createStaticDirectory(options: StaticDirectoryOptions): InstanceDirectory {
  const principals: Array<{ digest: Buffer; principal: Principal }> = [];
  const instances = new Map<string, InstanceInfo>();
  for (const account of options.accounts) {
    principals.push({ digest: digest(account.token), principal: { kind: "account", accountId: account.id } });
    for (const instance of account.instances) {
      principals.push({
        digest: digest(instance.token),
        principal: { kind: "instance", instance: instance.name },
      });
      instances.set(instance.name, { name: instance.name, accountId: account.id });
    }
  }
  return {
    resolveToken(token) {
      const wanted = digest(token);
      let found: Principal | null = null;
      for (const entry of principals) if (timingSafeEqual(entry.digest, wanted)) found = entry.principal;
      return found;
    },
    getInstance(name) {
      return instances.get(name) ?? null;
    },
  };
}
