import mime from "mime-types";
import { type Dispatcher, interceptors, request } from "undici";
import { errorMessage } from "../errors/index.js";
import {
  createNetworkPolicy,
  createPolicyAgent,
  isNetworkRefusedError,
  type NetworkPolicy,
} from "../net/index.js";

/** Media bytes on their way between WhatsApp and Chatwoot. */
export interface MediaFile {
  data: Buffer;
  mimetype: string;
  fileName: string;
}

/** Why a file could not be carried over; the message says it in place of the file. */
export class MediaUnavailableError extends Error {
  /** Retrying cannot help: the file is over the cap, or the network policy refuses its host. */
  readonly permanent: boolean;
  constructor(message: string, options: { permanent?: boolean } = {}) {
    super(message);
    this.name = "MediaUnavailableError";
    this.permanent = options.permanent ?? false;
  }
}

export interface MediaFetcherOptions {
  /** Largest file carried, in bytes. */
  maxBytes: number;
  /** Deadline of one download. */
  timeoutMs: number;
  /**
   * The network policy every download and every redirect hop is checked against (default: the policy's defaults,
   * private networks allowed). Unused when a `dispatcher` is given.
   */
  network?: NetworkPolicy;
  /** An undici dispatcher to use instead of a keep-alive pool of its own. */
  dispatcher?: Dispatcher;
}

/** Redirects followed (ActiveStorage → S3 and the like). */
const MAX_REDIRECTS = 5;

export type MediaFetcher = ReturnType<typeof createMediaFetcher>;

function formatBytes(bytes: number): string {
  const [value, unit] =
    bytes >= 1024 * 1024
      ? [bytes / (1024 * 1024), "MiB"]
      : bytes >= 1024
        ? [bytes / 1024, "KiB"]
        : [bytes, "bytes"];
  return `${value.toFixed(1).replace(/\.0$/, "")} ${unit}`;
}

/**
 * Downloads with a size cap, a deadline and redirects followed, every connection (each redirect hop included) checked
 * by the network policy; decodes base64 with the same cap. A body is read as it arrives and dropped as soon as it
 * passes the cap, so no more than the cap (plus the chunk that crossed it) is ever held.
 */
export function createMediaFetcher(options: MediaFetcherOptions) {
  const { maxBytes, timeoutMs } = options;
  const dispatcher = (
    options.dispatcher ??
    createPolicyAgent(options.network ?? createNetworkPolicy(), { keepAliveTimeout: 10_000 })
  ).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
  /** `atLeast`: the body was cut short, so its size is only known to be over the cap. */
  const tooLarge = (size: number, atLeast = false) =>
    new MediaUnavailableError(
      `file larger than the ${formatBytes(maxBytes)} limit (${atLeast ? "more than " : ""}${formatBytes(size)})`,
      { permanent: true },
    );

  return {
    maxBytes,
    fromBase64(base64: string): Buffer {
      const estimate = Math.floor((base64.length * 3) / 4);
      if (estimate > maxBytes + 3) throw tooLarge(estimate);
      const data = Buffer.from(base64, "base64");
      if (data.length > maxBytes) throw tooLarge(data.length);
      return data;
    },
    async download(
      url: string,
      signal?: AbortSignal,
    ): Promise<{ data: Buffer; contentType: string | null; fileName: string | null }> {
      const timeout = AbortSignal.timeout(timeoutMs);
      const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, { method: "GET", dispatcher, signal: combined });
      } catch (error) {
        // A refused host (the network policy) is final; anything else may work next time.
        if (isNetworkRefusedError(error)) {
          throw new MediaUnavailableError(`download refused: ${error.message}`, { permanent: true });
        }
        const reason = timeout.aborted
          ? `timed out after ${timeoutMs / 1000}s`
          : error instanceof Error
            ? error.message
            : String(error);
        throw new MediaUnavailableError(`download failed: ${reason}`);
      }
      if (response.statusCode < 200 || response.statusCode >= 300) {
        discard(response.body);
        throw new MediaUnavailableError(`download failed: HTTP ${response.statusCode}`);
      }
      const declared = Number(response.headers["content-length"]);
      if (Number.isFinite(declared) && declared > maxBytes) {
        discard(response.body);
        throw tooLarge(declared);
      }
      // Streamed to the cap: the first chunk that takes the total past it ends the download.
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of response.body) {
          size += chunk.length;
          if (size > maxBytes) {
            discard(response.body);
            throw tooLarge(maxBytes, true);
          }
          chunks.push(chunk);
        }
      } catch (error) {
        if (error instanceof MediaUnavailableError) throw error;
        const reason = timeout.aborted ? `timed out after ${timeoutMs / 1000}s` : errorMessage(error);
        throw new MediaUnavailableError(`download failed: ${reason}`);
      }
      const type = response.headers["content-type"];
      return {
        data: Buffer.concat(chunks),
        contentType: typeof type === "string" ? (type.split(";")[0]?.trim() ?? null) : null,
        fileName: fileNameOf(response.headers["content-disposition"], url),
      };
    },
    close: () => dispatcher.close(),
  };
}

/** Stops reading a response body; undici reports the abort as an error event, which nobody needs. */
function discard(body: Dispatcher.ResponseData["body"]): void {
  body.on("error", () => {});
  body.destroy();
}

function fileNameOf(disposition: string | string[] | undefined, url: string): string | null {
  const header = Array.isArray(disposition) ? disposition[0] : disposition;
  const encoded = header ? /filename\*=(?:UTF-8'')?([^;]+)/i.exec(header)?.[1] : undefined;
  if (encoded) {
    try {
      return decodeURIComponent(encoded.replace(/^"|"$/g, ""));
    } catch {
      // fall through to the plain name
    }
  }
  const plain = header ? /filename="?([^";]+)"?/i.exec(header)?.[1] : undefined;
  if (plain) return plain;
  try {
    const last = new URL(url).pathname.split("/").pop();
    return last ? decodeURIComponent(last) : null;
  } catch {
    return null;
  }
}

const DEFAULT_TYPES: Record<string, string> = {
  image: "image/jpeg",
  video: "video/mp4",
  audio: "audio/ogg",
  ptt: "audio/ogg",
  ptv: "video/mp4",
  sticker: "image/webp",
  document: "application/octet-stream",
};

/** The content type and file name an upload gets: given, or guessed from the name, or from the kind. */
export function describeFile(kind: string, id: string, mimetype?: string | null, fileName?: string | null) {
  const type =
    mimetype ||
    (fileName ? mime.lookup(fileName) || null : null) ||
    DEFAULT_TYPES[kind] ||
    "application/octet-stream";
  const extension = mime.extension(type) || "bin";
  return {
    mimetype: type,
    fileName: fileName || `${kind === "ptt" ? "voice-note" : kind}-${id}.${extension}`,
  };
}

/** How a Chatwoot attachment goes to WhatsApp: images as images, video as video, audio as audio, the rest as documents. */
export function whatsappKindOf(fileType: string, mimetype: string): "image" | "video" | "audio" | "document" {
  if (fileType === "image" || (mimetype.startsWith("image/") && mimetype !== "image/svg+xml")) return "image";
  if (fileType === "video" || mimetype.startsWith("video/")) return "video";
  if (fileType === "audio" || mimetype.startsWith("audio/")) return "audio";
  return "document";
}
