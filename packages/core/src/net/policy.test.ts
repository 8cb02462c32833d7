import type { LookupAddress } from "node:dns";
import { describe, expect, it } from "vitest";
import {
  createNetworkPolicy,
  isCidr,
  type LookupFunction,
  NetworkRefusedError,
  networkOptionsSchema,
} from "./policy.js";

const open = createNetworkPolicy();
const closed = createNetworkPolicy({ allowPrivateNetworks: false });

/** What `new URL()` makes of a host, as every client here sees it. */
const hostOf = (url: string) => new URL(url).hostname;

describe("the network policy's ranges", () => {
  it.each([
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["169.254.169.254", "link-local"],
    ["169.254.0.1", "link-local"],
    ["fe80::1", "link-local"],
    ["fd00:ec2::254", "cloud metadata"],
    ["fd20:ce::254", "cloud metadata"],
    ["100.100.100.200", "cloud metadata"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.10", "reserved"],
    ["2001:db8::1", "reserved"],
    ["100::1", "reserved"],
    ["fec0::1", "reserved"],
    // IPv4 inside IPv6: mapped, translated, NAT64, 6to4, IPv4-compatible.
    ["::ffff:169.254.169.254", "link-local"],
    ["::ffff:a9fe:a9fe", "link-local"],
    ["::ffff:0:a9fe:a9fe", "link-local"],
    ["64:ff9b::a9fe:a9fe", "link-local"],
    ["64:ff9b:1::a9fe:a9fe", "link-local"],
    ["2002:a9fe:a9fe::1", "link-local"],
    ["::169.254.169.254", "link-local"],
    ["::ffff:0.0.0.0", "unspecified"],
  ])("always refuses %s (%s), private networks allowed or not", (address, network) => {
    expect(open.refusedNetwork(address)).toBe(network);
    expect(closed.refusedNetwork(address)).toBe(network);
  });

  it.each([
    ["127.0.0.1", "loopback"],
    ["127.1.2.3", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["64:ff9b::7f00:1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["192.168.1.1", "private"],
    ["::ffff:192.168.1.1", "private"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["fd12:3456::1", "unique-local"],
    ["fc00::1", "unique-local"],
  ])("allows %s (%s) by default and refuses it with allowPrivateNetworks: false", (address, network) => {
    expect(open.refusedNetwork(address)).toBeNull();
    expect(closed.refusedNetwork(address)).toBe(network);
  });

  it.each(["8.8.8.8", "1.1.1.1", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"])(
    "allows the public address %s either way",
    (address) => {
      expect(open.refusedNetwork(address)).toBeNull();
      expect(closed.refusedNetwork(address)).toBeNull();
    },
  );

  it("refuses denied CIDRs in addition, in every spelling of their addresses", () => {
    const policy = createNetworkPolicy({ deny: ["127.0.0.2/32", "203.0.114.0/24", "2606:4700::/32"] });
    expect(policy.refusedNetwork("127.0.0.2")).toBe("127.0.0.2/32");
    expect(policy.refusedNetwork("::ffff:127.0.0.2")).toBe("127.0.0.2/32");
    expect(policy.refusedNetwork("64:ff9b::7f00:2")).toBe("127.0.0.2/32");
    expect(policy.refusedNetwork("127.0.0.1")).toBeNull();
    expect(policy.refusedNetwork("203.0.114.9")).toBe("203.0.114.0/24");
    expect(policy.refusedNetwork("2606:4700::1111")).toBe("2606:4700::/32");
    expect(policy.refusedNetwork("2606:4701::1")).toBeNull();
    // A mapped IPv6 CIDR names IPv4 addresses; a single address is a /32 or /128.
    const mapped = createNetworkPolicy({ deny: ["::ffff:10.0.0.0/104", "8.8.4.4", "2001:4860::8888"] });
    expect(mapped.refusedNetwork("10.9.8.7")).toBe("::ffff:10.0.0.0/104");
    expect(mapped.refusedNetwork("8.8.4.4")).toBe("8.8.4.4");
    expect(mapped.refusedNetwork("2001:4860::8888")).toBe("2001:4860::8888");
  });

  it("checks URLs whose host is written as an address, in any spelling, before any lookup", () => {
    for (const url of [
      "http://127.0.0.1:3000",
      "http://2130706433:3000",
      "http://0x7f000001/",
      "http://0177.0.0.1/",
      "http://127.1/",
      "http://[::ffff:127.0.0.1]:8080",
      "http://[::1]/",
    ]) {
      const refused = closed.checkUrl(url);
      expect(refused, url).toBeInstanceOf(NetworkRefusedError);
      expect(refused?.message, url).toMatch(
        /^(127\.0\.0\.1|::ffff:7f00:1|::1) is in a refused network \(loopback\)$/,
      );
      expect(open.checkUrl(url), url).toBeNull();
    }
    expect(hostOf("http://2130706433:3000")).toBe("127.0.0.1");
    expect(open.checkUrl("http://169.254.169.254/latest/meta-data")?.message).toBe(
      "169.254.169.254 is in a refused network (link-local)",
    );
    expect(open.checkUrl("http://[fd00:ec2::254]/")?.message).toBe(
      "fd00:ec2::254 is in a refused network (cloud metadata)",
    );
    // A name is checked when it is resolved.
    expect(closed.checkUrl("http://localhost:3000")).toBeNull();
    expect(closed.checkUrl("not a url")).toBeNull();
  });
});

describe("the policy's lookup", () => {
  const resolver =
    (answers: Record<string, LookupAddress[]>): LookupFunction =>
    (hostname, _options, callback) =>
      setImmediate(() => {
        const found = answers[hostname];
        if (!found) {
          const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
          error.code = "ENOTFOUND";
          return callback(error, "");
        }
        callback(null, found);
      });
  const answers = {
    "mixed.test": [
      { address: "127.0.0.1", family: 4 },
      { address: "93.184.215.14", family: 4 },
      { address: "::1", family: 6 },
    ],
    "inside.test": [
      { address: "::1", family: 6 },
      { address: "127.0.0.1", family: 4 },
    ],
    "metadata.test": [{ address: "169.254.169.254", family: 4 }],
  };
  const call = (policy: ReturnType<typeof createNetworkPolicy>, host: string, all: boolean) =>
    new Promise<{ error: NodeJS.ErrnoException | null; address: unknown; family?: number }>((resolve) =>
      policy.lookup(host, { all }, (error, address, family) => resolve({ error, address, family })),
    );

  it("keeps only the allowed addresses, and fails with the reason when none is left", async () => {
    const policy = createNetworkPolicy({ allowPrivateNetworks: false }, { resolve: resolver(answers) });
    expect(await call(policy, "mixed.test", true)).toMatchObject({
      error: null,
      address: [{ address: "93.184.215.14", family: 4 }],
    });
    expect(await call(policy, "mixed.test", false)).toMatchObject({
      error: null,
      address: "93.184.215.14",
      family: 4,
    });
    const inside = await call(policy, "inside.test", true);
    expect(inside.error).toBeInstanceOf(NetworkRefusedError);
    expect(inside.error?.message).toBe("inside.test resolves to a refused network (loopback)");
    expect(inside.error?.code).toBe("ERR_NETWORK_REFUSED");
    const metadata = await call(
      createNetworkPolicy({}, { resolve: resolver(answers) }),
      "metadata.test",
      false,
    );
    expect(metadata.error?.message).toBe("metadata.test resolves to a refused network (link-local)");
    expect((await call(policy, "nowhere.test", false)).error?.code).toBe("ENOTFOUND");
  });

  it("resolves with the system resolver by default", async () => {
    const refused = await call(closed, "localhost", true);
    expect(refused.error?.message).toBe("localhost resolves to a refused network (loopback)");
    const allowed = await call(open, "localhost", true);
    expect(allowed.error).toBeNull();
    expect((allowed.address as LookupAddress[]).length).toBeGreaterThan(0);
  });
});

describe("the network option", () => {
  it("defaults to private networks allowed and nothing denied", () => {
    expect(networkOptionsSchema.parse(undefined)).toEqual({ allowPrivateNetworks: true, deny: [] });
  });

  it("names each bad field", () => {
    const result = networkOptionsSchema.safeParse({
      allowPrivateNetworks: "no",
      deny: ["10.0.0.0/8", "10.0.0.0/33", "example.com", "10/8"],
      allow: [],
    });
    expect(result.success).toBe(false);
    const issues = result.error!.issues.map((issue) => [issue.path.join("."), issue.message]);
    expect(issues).toEqual(
      expect.arrayContaining([
        ["allowPrivateNetworks", "must be a boolean"],
        ["deny.1", "must be a CIDR such as 10.0.0.0/8 or fd00::/8 (or a single address)"],
        ["deny.2", "must be a CIDR such as 10.0.0.0/8 or fd00::/8 (or a single address)"],
        ["deny.3", "must be a CIDR such as 10.0.0.0/8 or fd00::/8 (or a single address)"],
      ]),
    );
    expect(result.error!.issues.some((issue) => issue.code === "unrecognized_keys")).toBe(true);
  });

  it.each([
    ["10.0.0.0/8", true],
    ["127.0.0.2/32", true],
    ["127.0.0.2", true],
    ["fd00::/8", true],
    ["::ffff:10.0.0.0/104", true],
    ["0.0.0.0/0", true],
    ["10.0.0.0/", false],
    ["10.0.0.0/8/8", false],
    ["fd00::/129", false],
    ["2130706433/32", false],
    ["", false],
  ])("isCidr(%j) is %s", (text, valid) => {
    expect(isCidr(text)).toBe(valid);
  });
});
