import type { Logger } from "@ryze/chatwoot-core";
import { downloadMediaMessage, type WAMessage } from "baileys";
import type { BaileysEventSocket } from "./socket.js";

/**
 * Fetches and decrypts the file of a media message. The default is Baileys' `downloadMediaMessage` (with a
 * re-upload request when WhatsApp's copy expired); tests and hosts with a media store of their own inject one.
 * It may return the bytes, or a stream of them, which is read only up to the size cap.
 */
export type MediaDownloader = (
  message: WAMessage,
  context: { signal: AbortSignal },
) => Promise<Uint8Array | AsyncIterable<Uint8Array>>;

/** Why a file is not passed on (logged; the bridge then says in Chatwoot that the file did not arrive). */
export class MediaSkipped extends Error {
  override name = "MediaSkipped";
}

export function formatBytes(bytes: number): string {
  const [value, unit] =
    bytes >= 1024 * 1024
      ? [bytes / (1024 * 1024), "MiB"]
      : bytes >= 1024
        ? [bytes / 1024, "KiB"]
        : [bytes, "bytes"];
  return `${value.toFixed(1).replace(/\.0$/, "")} ${unit}`;
}

const tooLarge = (maxBytes: number, size: string) =>
  new MediaSkipped(`file larger than the ${formatBytes(maxBytes)} limit (${size})`);

/** Reads `source` into one buffer, refusing (and closing a stream) past `maxBytes`. */
export async function readCapped(
  source: Uint8Array | AsyncIterable<Uint8Array>,
  maxBytes: number,
): Promise<Buffer> {
  if (source instanceof Uint8Array) {
    if (source.byteLength > maxBytes) throw tooLarge(maxBytes, formatBytes(source.byteLength));
    return Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.byteLength;
    // Leaving the loop early closes the stream (its iterator's return()).
    if (size > maxBytes) throw tooLarge(maxBytes, `more than ${formatBytes(maxBytes)}`);
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks, size);
}

/** Baileys' own logger interface, over the bridge's logging port (Baileys' `info` is our `debug`). */
function baileysLogger(logger: Logger) {
  const wrapped = {
    level: "info",
    child: () => wrapped,
    trace: () => {},
    debug: () => {},
    info: (obj: unknown, msg?: string) =>
      logger.debug(typeof obj === "object" && obj ? obj : { msg: obj }, msg),
    warn: (obj: unknown, msg?: string) =>
      logger.warn(typeof obj === "object" && obj ? obj : { msg: obj }, msg),
    error: (obj: unknown, msg?: string) =>
      logger.error(typeof obj === "object" && obj ? obj : { msg: obj }, msg),
  };
  return wrapped;
}

/** The default downloader: Baileys' `downloadMediaMessage` as a stream, asking the phone to re-upload expired media. */
export function baileysDownloader(socket: BaileysEventSocket, logger: Logger): MediaDownloader {
  return (message, { signal }) => {
    const reupload = socket.updateMediaMessage;
    return downloadMediaMessage(
      message,
      "stream",
      { options: { signal } },
      reupload ? { reuploadRequest: reupload, logger: baileysLogger(logger) } : undefined,
    );
  };
}

/** At most `limit` tasks at once. */
export function createLimiter(limit: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async function run<T>(task: () => Promise<T>): Promise<T> {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
