import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createKeyring, parseKey, secretAad } from "./index.js";

const key1 = randomBytes(32).toString("base64");
const key2 = randomBytes(32).toString("hex");
const aad = secretAad("chatwoot_integrations", "api_token", "int_abc");
const secret = "sk_live_super_secret_token";

describe("keyring", () => {
  it("seals in the cw1 format under the current key id and opens again", () => {
    const keyring = createKeyring({ current: { id: "k1", key: key1 } });
    const sealed = keyring.seal(secret, aad);
    expect(sealed).toMatch(/^cw1:k1:[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(secret);
    expect(keyring.open(sealed, aad)).toBe(secret);
    // A fresh IV every time.
    expect(keyring.seal(secret, aad)).not.toBe(sealed);
  });

  it("refuses tampered ciphertext", () => {
    const keyring = createKeyring({ current: { id: "k1", key: key1 } });
    const sealed = keyring.seal(secret, aad);
    const packed = Buffer.from(sealed.split(":")[2]!, "base64url");
    for (const index of [0, 14, packed.length - 1]) {
      const copy = Buffer.from(packed);
      copy[index] = copy[index]! ^ 0x01;
      expect(() => keyring.open(`cw1:k1:${copy.toString("base64url")}`, aad)).toThrow(
        /authentication failed/,
      );
    }
    expect(() => keyring.open(`cw1:k1:${packed.subarray(0, 10).toString("base64url")}`, aad)).toThrow(
      /truncated/,
    );
  });

  it("refuses a value copied from another row (AAD)", () => {
    const keyring = createKeyring({ current: { id: "k1", key: key1 } });
    const sealed = keyring.seal(secret, aad);
    expect(() => keyring.open(sealed, secretAad("chatwoot_integrations", "api_token", "int_other"))).toThrow(
      /sealed for another row/,
    );
    expect(() =>
      keyring.open(sealed, secretAad("chatwoot_integrations", "webhook_secret", "int_abc")),
    ).toThrow();
  });

  it("refuses an unknown key id and a value sealed under a different key with the same id", () => {
    const keyring = createKeyring({ current: { id: "k1", key: key1 } });
    const other = createKeyring({ current: { id: "k9", key: key2 } });
    expect(() => keyring.open(other.seal(secret, aad), aad)).toThrow(/unknown key id "k9"/);
    const impostor = createKeyring({ current: { id: "k1", key: key2 } });
    expect(() => keyring.open(impostor.seal(secret, aad), aad)).toThrow(/authentication failed/);
  });

  it("opens values of previous keys after rotation and seals under the new one", () => {
    const before = createKeyring({ current: { id: "k1", key: key1 } });
    const sealed = before.seal(secret, aad);
    const after = createKeyring({ current: { id: "k2", key: key2 }, previous: [{ id: "k1", key: key1 }] });
    expect(after.open(sealed, aad)).toBe(secret);
    expect(after.keyIdOf(sealed)).toBe("k1");
    const resealed = after.seal(after.open(sealed, aad), aad);
    expect(after.keyIdOf(resealed)).toBe("k2");
    const onlyNew = createKeyring({ current: { id: "k2", key: key2 } });
    expect(onlyNew.open(resealed, aad)).toBe(secret);
    expect(() => onlyNew.open(sealed, aad)).toThrow(/unknown key id "k1"/);
  });

  it("never puts plaintext or key material in its errors", () => {
    const keyring = createKeyring({ current: { id: "k1", key: key1 } });
    const sealed = keyring.seal(secret, aad);
    const errors: string[] = [];
    for (const attempt of [
      () => keyring.open(sealed, "wrong"),
      () => keyring.open(sealed.replace("cw1:k1", "cw1:k7"), aad),
      () => keyring.open("not-a-secret", aad),
      () => createKeyring({ current: { id: "k1", key: key1.slice(0, 20) } }),
      () => createKeyring({ current: { id: "bad id!", key: key1 } }),
    ]) {
      try {
        attempt();
        errors.push("no error");
      } catch (error) {
        errors.push(
          `${(error as Error).message} ${String((error as Error).cause ?? "")} ${JSON.stringify(error)}`,
        );
      }
    }
    expect(errors).not.toContain("no error");
    for (const text of errors) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(key1);
      expect(text).not.toContain(key1.slice(0, 20));
    }
  });

  it("accepts 32-byte keys as base64, base64url or hex and nothing else", () => {
    const raw = randomBytes(32);
    expect(parseKey(raw.toString("base64"))).toEqual(raw);
    expect(parseKey(raw.toString("base64url"))).toEqual(raw);
    expect(parseKey(raw.toString("hex"))).toEqual(raw);
    expect(() => parseKey(randomBytes(16).toString("base64"))).toThrow(/32 bytes/);
  });
});
