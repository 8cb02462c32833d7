import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import * as z from "zod";

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Networks refused whatever the options say: nothing legitimate (a Chatwoot server, a media host) lives there, and
 * some of them reach this machine or its cloud provider (0.0.0.0 is this host on Linux; 169.254.169.254 and
 * fd00:ec2::254 answer instance credentials).
 */
const IPV4_ALWAYS: Record<string, string> = {
  unspecified: "unspecified",
  broadcast: "broadcast",
  multicast: "multicast",
  linkLocal: "link-local",
  reserved: "reserved",
};
const IPV6_ALWAYS: Record<string, string> = {
  unspecified: "unspecified",
  linkLocal: "link-local",
  multicast: "multicast",
};
/** Private networks: refused only with `allowPrivateNetworks: false`. */
const IPV4_PRIVATE: Record<string, string> = {
  loopback: "loopback",
  private: "private",
  carrierGradeNat: "carrier-grade NAT",
};
const IPV6_PRIVATE: Record<string, string> = {
  loopback: "loopback",
  uniqueLocal: "unique-local",
};
/** Cloud metadata services that are not on a link-local address (AWS IPv6, Google IPv6, Alibaba). */
const METADATA: Array<[Address, number]> = [
  "fd00:ec2::254/128",
  "fd20:ce::254/128",
  "100.100.100.200/32",
].map((cidr) => ipaddr.parseCIDR(cidr));
/** Global unicast IPv6 (2000::/3); what lies outside it and is not named above is reserved. */
const GLOBAL_UNICAST = ipaddr.parseCIDR("2000::/3");

/** What the host decides about outbound connections (`network` option of `createChatwootBridge`). */
export interface NetworkPolicyOptions {
  /**
   * Loopback (127.0.0.0/8, ::1), RFC 1918 (10/8, 172.16/12, 192.168/16), carrier-grade NAT (100.64/10) and
   * unique-local (fc00::/7) addresses. Default `true`: a self-hosted Chatwoot on the same host or network is the
   * common case.
   */
  allowPrivateNetworks?: boolean;
  /** CIDRs (or single addresses) refused in addition, e.g. `["10.0.0.0/8", "fd00::/8"]`. */
  deny?: readonly string[];
}

/** A CIDR such as `10.0.0.0/8` or `fd00::/8`, or a single address; IPv4 in its four-part decimal form only. */
export function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.trim().split("/");
  if (!address || rest.length > 0) return false;
  const bits = isIP(address) === 4 ? 32 : isIP(address) === 6 ? 128 : 0;
  if (bits === 0 || (bits === 32 && !ipaddr.IPv4.isValidFourPartDecimal(address))) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= bits;
}

/** The `network` option's schema: validated with the bridge's other options, every issue named by its path. */
export const networkOptionsSchema = z
  .strictObject({
    allowPrivateNetworks: z.boolean({ error: "must be a boolean" }).default(true),
    deny: z
      .array(
        z.string({ error: "must be a string" }).refine(isCidr, {
          error: "must be a CIDR such as 10.0.0.0/8 or fd00::/8 (or a single address)",
        }),
        { error: "must be an array of CIDRs" },
      )
      .default([]),
  })
  .prefault({});

/** A connection the policy refused; `code` is `ERR_NETWORK_REFUSED`, the message says which address and why. */
export class NetworkRefusedError extends Error {
  readonly code = "ERR_NETWORK_REFUSED";
  /** The host as asked for: a name or an address. */
  readonly host: string;
  /** The refused network, e.g. `loopback`, `link-local` or a denied CIDR. */
  readonly network: string;
  constructor(host: string, network: string, resolved: boolean) {
    super(
      resolved
        ? `${host} resolves to a refused network (${network})`
        : `${host} is in a refused network (${network})`,
    );
    this.name = "NetworkRefusedError";
    this.host = host;
    this.network = network;
  }
}

export function isNetworkRefusedError(value: unknown): value is NetworkRefusedError {
  return value instanceof Error && (value as { code?: unknown }).code === "ERR_NETWORK_REFUSED";
}

/** `dns.lookup`'s shape, as `net.connect` calls it (`all: true` when it tries several addresses). */
export type LookupFunction = (
  hostname: string,
  options: { family?: number | string; hints?: number; all?: boolean; order?: string; verbatim?: boolean },
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

export interface NetworkPolicy {
  readonly allowPrivateNetworks: boolean;
  readonly deny: readonly string[];
  /** The refused network an IP address is in (e.g. `loopback`), or null when a connection to it is allowed. */
  refusedNetwork(address: string): string | null;
  /**
   * Checks a URL before any lookup: a host written as an address (`127.0.0.1`, `2130706433`, `[::ffff:7f00:1]`,
   * all normalised by URL parsing) is refused at once; a name is checked when it is resolved (`lookup`).
   */
  checkUrl(url: string): NetworkRefusedError | null;
  /** Checks a host about to be connected to when it is an address (connectors call it; names go to `lookup`). */
  checkHost(host: string): NetworkRefusedError | null;
  /** `dns.lookup` that drops refused addresses, and fails with NetworkRefusedError when none is left. */
  readonly lookup: LookupFunction;
}

/** Internals for tests: the resolver behind `lookup` (default `dns.lookup`). */
export interface NetworkPolicyInternals {
  resolve?: LookupFunction;
}

function parseCidr(text: string): [Address, number] {
  const value = text.trim();
  const [address, prefix] = value.includes("/") ? ipaddr.parseCIDR(value) : toHostCidr(ipaddr.parse(value));
  // `::ffff:10.0.0.0/104` names IPv4 addresses: compare it with them.
  if (address.kind() === "ipv6" && prefix >= 96 && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [(address as ipaddr.IPv6).toIPv4Address(), prefix - 96];
  }
  return [address, prefix];
}

function toHostCidr(address: Address): [Address, number] {
  return [address, address.kind() === "ipv4" ? 32 : 128];
}

/** The IPv4 address carried inside an IPv6 one (NAT64, IPv4-translated, 6to4, IPv4-compatible), or null. */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  const parts = address.parts;
  const last32 = () => new ipaddr.IPv4([parts[6]! >> 8, parts[6]! & 0xff, parts[7]! >> 8, parts[7]! & 0xff]);
  switch (address.range()) {
    case "rfc6052": // 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64)
    case "rfc6145": // ::ffff:0:0:0/96 (IPv4-translated)
      return last32();
    case "6to4": // 2002:AABB:CCDD::/48
      return new ipaddr.IPv4([parts[1]! >> 8, parts[1]! & 0xff, parts[2]! >> 8, parts[2]! & 0xff]);
    default:
      // ::a.b.c.d, the deprecated IPv4-compatible form (:: and ::1 are named ranges of their own).
      return parts.slice(0, 6).every((part) => part === 0) && address.range() === "unicast" ? last32() : null;
  }
}

/** Builds the policy every outbound connection of the bridge goes through (REST, realtime socket, media). */
export function createNetworkPolicy(
  options: NetworkPolicyOptions = {},
  internals: NetworkPolicyInternals = {},
): NetworkPolicy {
  const allowPrivateNetworks = options.allowPrivateNetworks ?? true;
  const deny = [...(options.deny ?? [])];
  const denied = deny.map((text) => ({ text: text.trim(), cidr: parseCidr(text) }));
  const resolve = internals.resolve ?? (dnsLookup as unknown as LookupFunction);

  function refusedIPv4(address: ipaddr.IPv4): string | null {
    const range = address.range();
    return IPV4_ALWAYS[range] ?? null;
  }

  function deniedBy(address: Address): string | null {
    for (const entry of denied) {
      if (entry.cidr[0].kind() === address.kind() && address.match(entry.cidr)) return entry.text;
    }
    return null;
  }

  function classify(address: Address): string | null {
    for (const cidr of METADATA) {
      if (cidr[0].kind() === address.kind() && address.match(cidr)) return "cloud metadata";
    }
    if (address.kind() === "ipv4") {
      const v4 = address as ipaddr.IPv4;
      const always = refusedIPv4(v4);
      if (always) return always;
      const listed = deniedBy(v4);
      if (listed) return listed;
      const privateRange = IPV4_PRIVATE[v4.range()];
      return privateRange && !allowPrivateNetworks ? privateRange : null;
    }
    const v6 = address as ipaddr.IPv6;
    const range = v6.range();
    const always = IPV6_ALWAYS[range];
    if (always) return always;
    const embedded = embeddedIPv4(v6);
    if (embedded) return deniedBy(v6) ?? classify(embedded);
    const privateRange = IPV6_PRIVATE[range];
    if (!privateRange && (range !== "unicast" || !v6.match(GLOBAL_UNICAST))) return "reserved";
    const listed = deniedBy(v6);
    if (listed) return listed;
    return privateRange && !allowPrivateNetworks ? privateRange : null;
  }

  function refusedNetwork(text: string): string | null {
    let address: Address;
    try {
      // process(): `::ffff:127.0.0.1` is 127.0.0.1.
      address = ipaddr.process(text);
    } catch {
      return "reserved"; // an address net accepts but ipaddr.js cannot read: refuse rather than guess
    }
    return classify(address);
  }

  function checkHost(host: string): NetworkRefusedError | null {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    if (isIP(bare) === 0) return null;
    const network = refusedNetwork(bare);
    return network ? new NetworkRefusedError(bare, network, false) : null;
  }

  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolve(hostname, { ...lookupOptions, all: true }, (error, result) => {
      if (error) return callback(error, "");
      const addresses = Array.isArray(result) ? result : [];
      let refusal: string | null = null;
      const allowed: LookupAddress[] = [];
      for (const entry of addresses) {
        const network = refusedNetwork(entry.address);
        if (network === null) allowed.push(entry);
        else refusal ??= network;
      }
      const first = allowed[0];
      if (!first) {
        if (refusal !== null) return callback(new NetworkRefusedError(hostname, refusal, true), "");
        const none: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        none.code = "ENOTFOUND";
        return callback(none, "");
      }
      if (lookupOptions.all) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };

  return {
    allowPrivateNetworks,
    deny,
    refusedNetwork,
    checkHost,
    checkUrl(url) {
      let hostname: string;
      try {
        hostname = new URL(url).hostname;
      } catch {
        return null; // not a URL: the request itself fails
      }
      return checkHost(hostname);
    },
    lookup,
  };
}
