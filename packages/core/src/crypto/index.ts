import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { BridgeError } from "../errors/index.js";

/**
 * Secrets at rest: AES-256-GCM with a 12-byte random IV and a 16-byte tag, stored as
 * `cw1:<keyId>:<base64url(iv | ciphertext | tag)>`. The AAD binds a value to its row and column, so a
 * ciphertext copied into another row does not open.
 */
export interface Cipher {
  /** Id of the key new values are sealed with. */
  readonly currentKeyId: string;
  seal(plaintext: string, aad: string): string;
  /** Throws BridgeError (never echoing the value) when the value is tampered, foreign or sealed under an unknown key. */
  open(sealed: string, aad: string): string;
  /** The key id a sealed value was written with (null when the value is not in our format). */
  keyIdOf(sealed: string): string | null;
}

export interface KeyringOptions {
  /** The key new values are sealed with. */
  current: { id: string; key: string | Uint8Array };
  /** Older keys that can still open values. */
  previous?: Array<{ id: string; key: string | Uint8Array }>;
}

const FORMAT = "cw1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** Parses a 32-byte key given as base64, base64url or 64 hex characters. */
export function parseKey(input: string | Uint8Array, label = "key"): Buffer {
  if (typeof input !== "string") {
    if (input.length !== 32) throw invalidKey(label, `must be 32 bytes, got ${input.length}`);
    return Buffer.from(input);
  }
  const text = input.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, "hex") : Buffer.from(text, "base64");
  if (bytes.length !== 32)
    throw invalidKey(label, `must decode to 32 bytes (base64 or hex), got ${bytes.length}`);
  return bytes;
}

function invalidKey(label: string, reason: string): BridgeError {
  return new BridgeError("INVALID_OPTIONS", `invalid options: ${label}: ${reason}`);
}

export function createKeyring(options: KeyringOptions): Cipher {
  const keys = new Map<string, Buffer>();
  for (const entry of [options.current, ...(options.previous ?? [])]) {
    if (!KEY_ID.test(entry.id)) throw invalidKey(`key id "${entry.id}"`, "must match [A-Za-z0-9_-]{1,32}");
    if (keys.has(entry.id)) throw invalidKey(`key id "${entry.id}"`, "is listed twice");
    keys.set(entry.id, parseKey(entry.key, `key "${entry.id}"`));
  }
  const currentKeyId = options.current.id;

  function unopenable(reason: string): BridgeError {
    return new BridgeError("INTERNAL", `stored secret cannot be opened: ${reason}`);
  }

  return {
    currentKeyId,
    seal(plaintext, aad) {
      const key = keys.get(currentKeyId)!;
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(aad, "utf8"));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      const packed = Buffer.concat([iv, body, cipher.getAuthTag()]);
      return `${FORMAT}:${currentKeyId}:${packed.toString("base64url")}`;
    },
    open(sealed, aad) {
      const parts = sealed.split(":");
      if (parts.length !== 3 || parts[0] !== FORMAT) throw unopenable("not in cw1 format");
      const keyId = parts[1]!;
      const key = keys.get(keyId);
      if (!key) throw unopenable(`unknown key id "${keyId}"`);
      const packed = Buffer.from(parts[2]!, "base64url");
      if (packed.length < IV_BYTES + TAG_BYTES) throw unopenable("value is truncated");
      const iv = packed.subarray(0, IV_BYTES);
      const tag = packed.subarray(packed.length - TAG_BYTES);
      const body = packed.subarray(IV_BYTES, packed.length - TAG_BYTES);
      const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(aad, "utf8"));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
      } catch {
        throw unopenable("authentication failed (tampered, or sealed for another row)");
      }
    },
    keyIdOf(sealed) {
      const parts = sealed.split(":");
      return parts.length === 3 && parts[0] === FORMAT ? (parts[1] ?? null) : null;
    },
  };
}

/** The AAD that binds a sealed value to one row and column. */
export function secretAad(table: string, column: string, rowId: string): string {
  return `${table}.${column}:${rowId}`;
}
