import { Agent, buildConnector } from "undici";
import type { NetworkPolicy } from "./policy.js";

/**
 * An undici connector that asks the policy first: a host written as an address is refused before any socket
 * exists, a name is resolved through the policy's `lookup` (so what is checked is the address connected to, and a
 * DNS answer that changes between two lookups cannot slip through). Every request of a dispatcher built on it goes
 * through it, each redirect hop included.
 */
export function policyConnector(
  policy: NetworkPolicy,
  options: buildConnector.BuildOptions = {},
): buildConnector.connector {
  const connect = buildConnector({ ...options, lookup: policy.lookup } as buildConnector.BuildOptions);
  return (target, callback) => {
    const refused = policy.checkHost(target.hostname);
    if (refused) {
      // Asynchronously, as a failed connect would be reported.
      process.nextTick(callback, refused, null);
      return;
    }
    connect(target, callback);
  };
}

/** An undici Agent (keep-alive pool per origin) whose every connection is checked by the policy. */
export function createPolicyAgent(
  policy: NetworkPolicy,
  options: Omit<Agent.Options, "connect"> & { connect?: buildConnector.BuildOptions } = {},
): Agent {
  const { connect, ...rest } = options;
  return new Agent({ ...rest, connect: policyConnector(policy, connect) });
}
