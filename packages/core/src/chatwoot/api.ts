import { Agent, type Dispatcher, request } from "undici";
import * as z from "zod";
import { ChatwootRequestError } from "./failure.js";

/** Where and as whom to call Chatwoot. */
export interface ChatwootTarget {
  baseUrl: string;
  apiToken: string;
}
export interface ChatwootAccountTarget extends ChatwootTarget {
  accountId: number;
}

export interface CallOptions {
  /** Aborts the call (e.g. the activation deadline or a client that went away). */
  signal?: AbortSignal;
  /** Overrides the per-call deadline. */
  timeoutMs?: number;
}

const accountSchema = z.looseObject({ id: z.number(), role: z.string().optional() });
export const profileSchema = z.looseObject({
  id: z.number(),
  name: z.string().nullish(),
  available_name: z.string().nullish(),
  pubsub_token: z.string(),
  accounts: z.array(accountSchema),
});
export type ChatwootProfile = z.infer<typeof profileSchema>;

export const inboxSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  channel_type: z.string().optional(),
  webhook_url: z.string().nullish(),
  lock_to_single_conversation: z.boolean().optional(),
  secret: z.string().nullish(),
});
export type ChatwootInbox = z.infer<typeof inboxSchema>;

export interface CreateInboxInput {
  name: string;
  /** Empty for realtime delivery. */
  webhookUrl: string;
}

/** Observability hook: one call per Chatwoot request. */
export interface ChatwootRequestEvent {
  method: string;
  /** The route template, e.g. `/api/v1/accounts/:id/inboxes`. */
  endpoint: string;
  status: number | null;
  durationMs: number;
}

/** Typed calls to Chatwoot's Application API. Every call throws ChatwootRequestError on failure. */
export interface ChatwootApi {
  getProfile(target: ChatwootTarget, options?: CallOptions): Promise<ChatwootProfile>;
  createInbox(
    target: ChatwootAccountTarget,
    input: CreateInboxInput,
    options?: CallOptions,
  ): Promise<ChatwootInbox>;
  getInbox(target: ChatwootAccountTarget, inboxId: number, options?: CallOptions): Promise<ChatwootInbox>;
  updateInbox(
    target: ChatwootAccountTarget,
    inboxId: number,
    patch: { name?: string; webhookUrl?: string },
    options?: CallOptions,
  ): Promise<ChatwootInbox>;
  deleteInbox(target: ChatwootAccountTarget, inboxId: number, options?: CallOptions): Promise<void>;
  /** Releases pooled connections. */
  close(): Promise<void>;
}

export interface ChatwootApiOptions {
  /** Deadline of each call. Default 15 s. */
  timeoutMs?: number;
  /** An undici dispatcher to use instead of the built-in keep-alive pool. */
  dispatcher?: Dispatcher;
  onRequest?: (event: ChatwootRequestEvent) => void;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The default ChatwootApi over undici: a keep-alive pool per origin, a deadline on every call. */
export function createChatwootApi(options: ChatwootApiOptions = {}): ChatwootApi {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const ownDispatcher = options.dispatcher ? null : new Agent({ keepAliveTimeout: 30_000, connections: 32 });
  const dispatcher = options.dispatcher ?? ownDispatcher!;

  async function call<T>(
    target: ChatwootTarget,
    method: "GET" | "POST" | "PATCH" | "DELETE",
    endpoint: string,
    path: string,
    schema: z.ZodType<T> | null,
    body: unknown,
    callOptions: CallOptions = {},
  ): Promise<T> {
    const url = `${target.baseUrl}${path}`;
    const deadline = callOptions.timeoutMs ?? timeoutMs;
    const timeout = AbortSignal.timeout(deadline);
    const signal = callOptions.signal ? AbortSignal.any([timeout, callOptions.signal]) : timeout;
    const started = performance.now();
    let status: number | null = null;
    try {
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, {
          method,
          dispatcher,
          signal,
          headers: {
            api_access_token: target.apiToken,
            accept: "application/json",
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        throw new ChatwootRequestError({
          kind: "transport",
          method,
          url,
          ...transportCause(error, timeout, deadline),
        });
      }
      status = response.statusCode;
      let text: string;
      try {
        text = await readText(response.body);
      } catch (error) {
        throw new ChatwootRequestError({
          kind: "transport",
          method,
          url,
          ...transportCause(error, timeout, deadline),
        });
      }
      if (status < 200 || status >= 300) {
        throw new ChatwootRequestError({ kind: "http", method, url, status, body: text });
      }
      if (!schema) return undefined as T;
      const parsed = schema.safeParse(parseJson(text));
      if (!parsed.success) {
        throw new ChatwootRequestError({ kind: "http", method, url, status, body: text, notChatwoot: true });
      }
      return parsed.data;
    } finally {
      options.onRequest?.({ method, endpoint, status, durationMs: performance.now() - started });
    }
  }

  const accountPath = (target: ChatwootAccountTarget) => `/api/v1/accounts/${target.accountId}`;

  return {
    getProfile(target, callOptions) {
      return call(target, "GET", "/api/v1/profile", "/api/v1/profile", profileSchema, undefined, callOptions);
    },
    createInbox(target, input, callOptions) {
      const payload = {
        name: input.name,
        // One Chatwoot conversation per resolved episode: with `true`, Chatwoot would hand back a resolved
        // conversation and `reopenResolved: false` could not be honoured.
        lock_to_single_conversation: false,
        channel: { type: "api", webhook_url: input.webhookUrl },
      };
      return call(
        target,
        "POST",
        "/api/v1/accounts/:id/inboxes",
        `${accountPath(target)}/inboxes`,
        inboxSchema,
        payload,
        callOptions,
      );
    },
    getInbox(target, inboxId, callOptions) {
      return call(
        target,
        "GET",
        "/api/v1/accounts/:id/inboxes/:inbox",
        `${accountPath(target)}/inboxes/${inboxId}`,
        inboxSchema,
        undefined,
        callOptions,
      );
    },
    updateInbox(target, inboxId, patch, callOptions) {
      const payload: Record<string, unknown> = {};
      if (patch.name !== undefined) payload.name = patch.name;
      if (patch.webhookUrl !== undefined) payload.channel = { webhook_url: patch.webhookUrl };
      return call(
        target,
        "PATCH",
        "/api/v1/accounts/:id/inboxes/:inbox",
        `${accountPath(target)}/inboxes/${inboxId}`,
        inboxSchema,
        payload,
        callOptions,
      );
    },
    async deleteInbox(target, inboxId, callOptions) {
      await call(
        target,
        "DELETE",
        "/api/v1/accounts/:id/inboxes/:inbox",
        `${accountPath(target)}/inboxes/${inboxId}`,
        null,
        undefined,
        callOptions,
      );
    },
    async close() {
      await ownDispatcher?.close();
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readText(body: Dispatcher.ResponseData["body"]): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      throw new Error(`response body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function transportCause(
  error: unknown,
  timeout: AbortSignal,
  deadlineMs: number,
): { cause: string; code?: string } {
  if (timeout.aborted) return { cause: `timed out after ${deadlineMs}ms`, code: "TIMEOUT" };
  const err = error as { code?: unknown; message?: unknown; cause?: unknown; name?: unknown };
  if (err?.name === "AbortError") return { cause: "request aborted", code: "ABORTED" };
  const inner = (err?.cause ?? null) as { code?: unknown; message?: unknown } | null;
  const code =
    typeof err?.code === "string" ? err.code : typeof inner?.code === "string" ? inner.code : undefined;
  const message = typeof err?.message === "string" && err.message ? err.message : String(error);
  return code ? { cause: message, code } : { cause: message };
}
