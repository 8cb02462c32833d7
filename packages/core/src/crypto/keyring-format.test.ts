import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isBridgeError } from "../errors/index.js";
import { createKeyring, parseKey, secretAad } from "./index.js";

// The exact format, key parsing and error texts of the keyring (mutation testing: docs/testing.md).
const raw = randomBytes(32);
const key = raw.toString("base64");

function thrown(attempt: () => unknown): { code: string; message: string } {
  try {
    attempt();
  } catch (error) {
    if (!isBridgeError(error)) throw error;
    return { code: error.code, message: error.message };
  }
  throw new Error("no error");
}

describe("parseKey", () => {
  it("takes 32 raw bytes as they are and refuses any other length, naming the key", () => {
    expect(parseKey(new Uint8Array(raw))).toEqual(raw);
    expect(thrown(() => parseKey(new Uint8Array(16)))).toEqual({
      code: "INVALID_OPTIONS",
      message: "invalid options: key: must be 32 bytes, got 16",
    });
    expect(thrown(() => parseKey(new Uint8Array(16), 'key "k1"')).message).toBe(
      'invalid options: key "k1": must be 32 bytes, got 16',
    );
  });

  it("ignores surrounding whitespace (a key read from a file ends with a newline)", () => {
    expect(parseKey(` ${raw.toString("hex")}\n`)).toEqual(raw);
    expect(parseKey(`${key}\n`)).toEqual(raw);
  });

  it("reads hex only when the whole text is 64 hex characters", () => {
    const hex = raw.toString("hex");
    // Base64 of these is not 32 bytes: a key that merely contains 64 hex characters is not a hex key.
    expect(thrown(() => parseKey(`${hex}zz`)).message).toBe(
      "invalid options: key: must decode to 32 bytes (base64 or hex), got 49",
    );
    expect(thrown(() => parseKey(`zz${hex}`)).message).toBe(
      "invalid options: key: must decode to 32 bytes (base64 or hex), got 49",
    );
  });
});

describe("createKeyring options", () => {
  it("refuses a key id outside [A-Za-z0-9_-]{1,32}, anywhere in it", () => {
    for (const id of ["bad id", "x!", "!x", "", "a".repeat(33)]) {
      expect(thrown(() => createKeyring({ current: { id, key } }))).toEqual({
        code: "INVALID_OPTIONS",
        message: `invalid options: key id "${id}": must match [A-Za-z0-9_-]{1,32}`,
      });
    }
    for (const id of ["a", "A-z_09", "k".repeat(32)])
      expect(createKeyring({ current: { id, key } }).currentKeyId).toBe(id);
  });

  it("refuses a key id listed twice and names the key whose material is wrong", () => {
    expect(
      thrown(() => createKeyring({ current: { id: "k1", key }, previous: [{ id: "k1", key }] })),
    ).toEqual({ code: "INVALID_OPTIONS", message: 'invalid options: key id "k1": is listed twice' });
    expect(
      thrown(() => createKeyring({ current: { id: "k1", key }, previous: [{ id: "k0", key: "c2hvcnQ=" }] }))
        .message,
    ).toBe('invalid options: key "k0": must decode to 32 bytes (base64 or hex), got 5');
  });
});

describe("sealed values", () => {
  const keyring = createKeyring({ current: { id: "k1", key } });
  const aad = secretAad("chatwoot_integrations", "api_token", "int_1");

  it("binds the AAD as table.column:row", () => {
    expect(secretAad("t", "c", "r")).toBe("t.c:r");
  });

  it("seal an empty secret too (a value of exactly IV and tag)", () => {
    const sealed = keyring.seal("", aad);
    expect(Buffer.from(sealed.split(":")[2]!, "base64url")).toHaveLength(28);
    expect(keyring.open(sealed, aad)).toBe("");
  });

  it("keep non-ASCII text intact", () => {
    expect(keyring.open(keyring.seal("sênha – ключ", aad), aad)).toBe("sênha – ключ");
  });

  it("open only in the cw1:<key id>:<body> format, with an INTERNAL error that says why", () => {
    const sealed = keyring.seal("secret", aad);
    const body = sealed.split(":")[2]!;
    for (const value of [`cw2:k1:${body}`, `k1:${body}`, `cw1:k1:${body}:x`, body]) {
      expect(thrown(() => keyring.open(value, aad))).toEqual({
        code: "INTERNAL",
        message: "stored secret cannot be opened: not in cw1 format",
      });
    }
    expect(thrown(() => keyring.open(`cw1:k1:${body.slice(0, 30)}`, aad))).toEqual({
      code: "INTERNAL",
      message: "stored secret cannot be opened: value is truncated",
    });
    expect(thrown(() => keyring.open(sealed, `${aad}x`))).toEqual({
      code: "INTERNAL",
      message: "stored secret cannot be opened: authentication failed (tampered, or sealed for another row)",
    });
  });

  it("name their key id only when they are in the cw1 format", () => {
    expect(keyring.keyIdOf(keyring.seal("secret", aad))).toBe("k1");
    expect(keyring.keyIdOf("cw1:k7:abc")).toBe("k7");
    for (const value of ["cw2:k1:abc", "k1:abc", "cw1:k1:abc:def", "cw1", "plain text"])
      expect(keyring.keyIdOf(value)).toBeNull();
  });
});
