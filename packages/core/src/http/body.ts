import { BridgeError, errorMessage, MESSAGES } from "../errors/index.js";
import type { HttpRequest } from "./types.js";

export const SET_BODY_LIMIT = 64 * 1024;
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

function header(request: HttpRequest, name: string): string | undefined {
  for (const [key, value] of Object.entries(request.headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(", ") : value;
  }
  return undefined;
}

export { header as readHeader };

const jsonSize = (value: unknown): number =>
  value === undefined
    ? 0
    : Buffer.byteLength(typeof value === "string" ? value : (JSON.stringify(value) ?? ""));
const tooLarge = () => new BridgeError("BODY_TOO_LARGE", MESSAGES.bodyTooLarge);
const invalid = (reason: string) => new BridgeError("INVALID_BODY", `invalid body: ${reason}`);

/** Reads a stream up to `limit` bytes; throws BODY_TOO_LARGE past it (without buffering the rest). */
export async function readStream(stream: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

export interface ReadBody {
  /** The parsed JSON value (undefined for an empty body). */
  value: unknown;
  /** The exact bytes, when known (signature checks need them); null when only a host's parsed body exists. */
  raw: Buffer | null;
}

/** The bytes as a Buffer, without copying them (a string is UTF-8 encoded). */
function asBuffer(bytes: Uint8Array | string): Buffer {
  if (typeof bytes === "string") return Buffer.from(bytes, "utf8");
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Gets the JSON body of a request, whichever way the adapter delivered it: parsed by the host (used as is, with the
 * raw bytes when the host kept them), raw, or as an unread stream. Enforces the size cap, and the JSON content type
 * on the bodies it parses itself.
 */
export async function readJsonBody(request: HttpRequest, limit: number): Promise<ReadBody> {
  const declared = Number(header(request, "content-length"));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const kept = request.rawBody === undefined ? null : asBuffer(request.rawBody);
  if (request.body !== undefined) {
    // Without its bytes, a body of unknown length (streamed) is judged by its JSON form.
    if (kept ? kept.length > limit : !Number.isFinite(declared) && jsonSize(request.body) > limit) {
      throw tooLarge();
    }
    return { value: request.body, raw: kept };
  }
  const raw = kept ?? (request.stream ? await readStream(request.stream, limit) : null);
  if (raw === null) return { value: undefined, raw: null };
  if (raw.length > limit) throw tooLarge();
  if (raw.length === 0) return { value: undefined, raw };
  const type = (header(request, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json" && !type.endsWith("+json")) {
    throw invalid(`Content-Type must be application/json, got ${type ? `"${type}"` : "none"}`);
  }
  try {
    return { value: JSON.parse(raw.toString("utf8")), raw };
  } catch (error) {
    throw invalid(errorMessage(error));
  }
}
