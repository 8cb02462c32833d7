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
  /** The exact bytes, when known (signature checks need them). */
  raw: Buffer | null;
}

/**
 * Gets the JSON body of a request, whichever way the adapter delivered it: parsed by the host, raw, or as an
 * unread stream. Enforces the size cap and the JSON content type.
 */
export async function readJsonBody(request: HttpRequest, limit: number): Promise<ReadBody> {
  const declared = Number(header(request, "content-length"));
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  let raw: Buffer | null = null;
  if (request.rawBody !== undefined) raw = Buffer.from(request.rawBody);
  else if (request.body === undefined && request.stream) raw = await readStream(request.stream, limit);
  if (raw === null) {
    // Parsed by the host from a body of unknown length (streamed): judge its size by its JSON form.
    if (!Number.isFinite(declared) && jsonSize(request.body) > limit) throw tooLarge();
    return { value: request.body, raw: null };
  }
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
