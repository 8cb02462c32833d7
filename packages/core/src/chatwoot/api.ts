import { Agent, type Dispatcher, FormData, request } from "undici";
import * as z from "zod";
import { deadline } from "../net/deadline.js";
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
/** `GET /api`: `{"version","timestamp","queue_services","data_services"}`. */
const versionSchema = z.looseObject({ version: z.string() });

export const inboxSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  channel_type: z.string().optional(),
  webhook_url: z.string().nullish(),
  lock_to_single_conversation: z.boolean().optional(),
  secret: z.string().nullish(),
});
export type ChatwootInbox = z.infer<typeof inboxSchema>;

const contactSchema = z.looseObject({ id: z.number() });
const createContactSchema = z.looseObject({
  payload: z.looseObject({
    contact: contactSchema,
    contact_inbox: z.looseObject({ source_id: z.string().nullish() }).nullish(),
  }),
});
const searchContactsSchema = z.looseObject({
  payload: z.array(
    z.looseObject({
      id: z.number(),
      phone_number: z.string().nullish(),
      identifier: z.string().nullish(),
      contact_inboxes: z
        .array(z.looseObject({ source_id: z.string(), inbox: z.looseObject({ id: z.number() }) }))
        .optional(),
    }),
  ),
});
export const conversationSchema = z.looseObject({
  id: z.number(),
  status: z.string(),
  inbox_id: z.number().optional(),
  contact_inbox: z.looseObject({ source_id: z.string().nullish() }).nullish(),
  meta: z.looseObject({ sender: z.looseObject({ id: z.number().optional() }).nullish() }).nullish(),
  /** The last message (or the last unread ones): after a create with a first message, usually that message. */
  messages: z.array(z.looseObject({ id: z.number(), source_id: z.string().nullish() })).nullish(),
});
export type ChatwootConversation = z.infer<typeof conversationSchema>;
const conversationListSchema = z.looseObject({
  data: z.looseObject({ payload: z.array(conversationSchema) }),
});
const attachmentSchema = z.looseObject({
  id: z.number().optional(),
  file_type: z.string().nullish(),
  data_url: z.string().nullish(),
  extension: z.string().nullish(),
  file_size: z.number().nullish(),
});
export const messageSchema = z.looseObject({
  id: z.number(),
  content: z.string().nullish(),
  conversation_id: z.number().optional(),
  inbox_id: z.number().optional(),
  message_type: z.union([z.number(), z.string()]),
  private: z.boolean().optional(),
  source_id: z.string().nullish(),
  status: z.string().nullish(),
  content_attributes: z.record(z.string(), z.unknown()).nullish(),
  created_at: z.union([z.number(), z.string()]).optional(),
  sender_type: z.string().nullish(),
  sender: z
    .looseObject({
      name: z.string().nullish(),
      available_name: z.string().nullish(),
      type: z.string().nullish(),
    })
    .nullish(),
  attachments: z.array(attachmentSchema).nullish(),
});
export type ChatwootMessage = z.infer<typeof messageSchema>;
const messageListSchema = z.looseObject({ payload: z.array(messageSchema) });

export interface CreateContactInput {
  inboxId: number;
  sourceId: string;
  name: string;
  identifier: string;
  phoneNumber?: string;
  additionalAttributes?: Record<string, unknown>;
}

export interface CreateConversationInput {
  inboxId: number;
  contactId: number;
  sourceId: string;
  /** `resolved`: imported history (`docs/history.md`). */
  status: "open" | "pending" | "resolved";
  /**
   * The first message, created in the same request and transaction (`params[:message]` through
   * `Messages::MessageBuilder`, Chatwoot ≥ 1.15): messages#create's parameters, attachments included.
   */
  message?: CreateMessageInput;
}

export interface Upload {
  data: Uint8Array;
  mimetype: string;
  fileName: string;
}

export interface CreateMessageInput {
  content: string;
  messageType: "incoming" | "outgoing";
  private?: boolean;
  sourceId?: string;
  contentAttributes?: Record<string, unknown>;
  attachments?: Upload[];
}

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
  /**
   * `GET {base}/api` (no authentication; `app/controllers/api_controller.rb`): the `version` Chatwoot answers, e.g.
   * `"4.13.0"`. Throws like every call when the answer is not Chatwoot's.
   */
  getVersion(target: ChatwootTarget, options?: CallOptions): Promise<string>;
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
  /**
   * Creates a contact together with its contact-inbox (`source_id`) in one request; returns the contact id and the
   * `source_id` of the contact inbox Chatwoot answered (null when it made none).
   */
  createContact(
    target: ChatwootAccountTarget,
    input: CreateContactInput,
    options?: CallOptions,
  ): Promise<{ id: number; sourceId: string | null }>;
  /** The contact of an inbox's `source_id`, or null (Chatwoot answers 404). */
  findContactBySourceId(
    target: ChatwootAccountTarget,
    inboxId: number,
    sourceId: string,
    options?: CallOptions,
  ): Promise<{ id: number } | null>;
  searchContacts(
    target: ChatwootAccountTarget,
    query: string,
    options?: CallOptions,
  ): Promise<z.infer<typeof searchContactsSchema>["payload"]>;
  /** Adds a contact-inbox with our `source_id` to an existing contact. */
  attachContactInbox(
    target: ChatwootAccountTarget,
    contactId: number,
    input: { inboxId: number; sourceId: string },
    options?: CallOptions,
  ): Promise<void>;
  /** `PATCH …/contacts/{id}` (`ContactsController#update`): sets the given fields; 422 when one is refused. */
  updateContact(
    target: ChatwootAccountTarget,
    contactId: number,
    patch: { phoneNumber?: string },
    options?: CallOptions,
  ): Promise<void>;
  /**
   * `POST …/actions/contact_merge` (`ContactMergeAction`): the mergee's conversations and contact inboxes move to the
   * base contact and the mergee is deleted. 404 when either contact is gone.
   */
  mergeContacts(
    target: ChatwootAccountTarget,
    baseContactId: number,
    mergeeContactId: number,
    options?: CallOptions,
  ): Promise<void>;
  /** JSON, or multipart (`message[attachments][]`) when the first message has uploads. */
  createConversation(
    target: ChatwootAccountTarget,
    input: CreateConversationInput,
    options?: CallOptions,
  ): Promise<ChatwootConversation>;
  /** The inbox's conversations (all statuses) of a contact inbox `source_id`, most recently active first (25). */
  listConversationsBySourceId(
    target: ChatwootAccountTarget,
    inboxId: number,
    sourceId: string,
    options?: CallOptions,
  ): Promise<ChatwootConversation[]>;
  /** Conversations of an inbox updated within the last `updatedWithinSeconds` (all statuses). */
  listRecentConversations(
    target: ChatwootAccountTarget,
    inboxId: number,
    updatedWithinSeconds: number,
    options?: CallOptions,
  ): Promise<ChatwootConversation[]>;
  /** One conversation (display id); its JSON carries the `uuid` of the CSAT survey link. */
  getConversation(
    target: ChatwootAccountTarget,
    conversationId: number,
    options?: CallOptions,
  ): Promise<ChatwootConversation>;
  toggleConversationStatus(
    target: ChatwootAccountTarget,
    conversationId: number,
    status: "open" | "resolved" | "pending",
    options?: CallOptions,
  ): Promise<void>;
  /** JSON, or multipart with `attachments[]` when there are uploads. */
  createMessage(
    target: ChatwootAccountTarget,
    conversationId: number,
    input: CreateMessageInput,
    options?: CallOptions,
  ): Promise<ChatwootMessage>;
  /**
   * The latest 20 messages of a conversation, the (up to 100) after `afterId`, or the 20 before `beforeId`; always
   * ascending (`MessageFinder`).
   */
  listMessages(
    target: ChatwootAccountTarget,
    conversationId: number,
    query?: { afterId?: number; beforeId?: number },
    options?: CallOptions,
  ): Promise<ChatwootMessage[]>;
  /** Delivery status of a message in an API inbox (`sent`, `delivered`, `read`, `failed`). */
  updateMessageStatus(
    target: ChatwootAccountTarget,
    conversationId: number,
    messageId: number,
    input: { status: "sent" | "delivered" | "read" | "failed"; externalError?: string },
    options?: CallOptions,
  ): Promise<void>;
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
    accept404 = false,
  ): Promise<T> {
    const url = `${target.baseUrl}${path}`;
    const limitMs = callOptions.timeoutMs ?? timeoutMs;
    const limit = deadline(limitMs, callOptions.signal);
    const { signal } = limit;
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
            ...(body === undefined || body instanceof FormData ? {} : { "content-type": "application/json" }),
          },
          body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
        });
      } catch (error) {
        throw new ChatwootRequestError({
          kind: "transport",
          method,
          url,
          ...transportCause(error, limit.timedOut, limitMs),
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
          ...transportCause(error, limit.timedOut, limitMs),
        });
      }
      if (status === 404 && accept404) return null as T;
      if (status < 200 || status >= 300) {
        throw new ChatwootRequestError({ kind: "http", method, url, status, body: text });
      }
      if (!schema) return undefined as T;
      const json = parseJson(text);
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        // Which fields are wrong, never the answer itself (a profile carries the user's access and pubsub tokens).
        const invalid = json === undefined ? "not JSON" : describeIssues(parsed.error);
        throw new ChatwootRequestError({
          kind: "http",
          method,
          url,
          status,
          body: "",
          notChatwoot: true,
          invalid,
        });
      }
      return parsed.data;
    } finally {
      limit.done();
      options.onRequest?.({ method, endpoint, status, durationMs: performance.now() - started });
    }
  }

  const accountPath = (target: ChatwootAccountTarget) => `/api/v1/accounts/${target.accountId}`;
  const conversationPath = (target: ChatwootAccountTarget, id: number) =>
    `${accountPath(target)}/conversations/${id}`;

  return {
    getProfile(target, callOptions) {
      return call(target, "GET", "/api/v1/profile", "/api/v1/profile", profileSchema, undefined, callOptions);
    },
    async getVersion(target, callOptions) {
      // Chatwoot needs no token here (it ignores the one every call sends).
      const answer = await call(target, "GET", "/api", "/api", versionSchema, undefined, callOptions);
      return answer.version;
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
    async createContact(target, input, callOptions) {
      const payload: Record<string, unknown> = {
        inbox_id: input.inboxId,
        source_id: input.sourceId,
        name: input.name,
        identifier: input.identifier,
      };
      if (input.phoneNumber) payload.phone_number = input.phoneNumber;
      if (input.additionalAttributes) payload.additional_attributes = input.additionalAttributes;
      const created = await call(
        target,
        "POST",
        "/api/v1/accounts/:id/contacts",
        `${accountPath(target)}/contacts`,
        createContactSchema,
        payload,
        callOptions,
      );
      return { id: created.payload.contact.id, sourceId: created.payload.contact_inbox?.source_id ?? null };
    },
    async findContactBySourceId(target, inboxId, sourceId, callOptions) {
      const found = await call(
        target,
        "POST",
        "/api/v1/accounts/:id/contact_inboxes/filter",
        `${accountPath(target)}/contact_inboxes/filter`,
        contactSchema.nullable(),
        { inbox_id: inboxId, source_id: sourceId },
        callOptions,
        true,
      );
      return found ? { id: found.id } : null;
    },
    async searchContacts(target, query, callOptions) {
      const found = await call(
        target,
        "GET",
        "/api/v1/accounts/:id/contacts/search",
        `${accountPath(target)}/contacts/search?q=${encodeURIComponent(query)}&include_contact_inboxes=true`,
        searchContactsSchema,
        undefined,
        callOptions,
      );
      return found.payload;
    },
    async attachContactInbox(target, contactId, input, callOptions) {
      await call(
        target,
        "POST",
        "/api/v1/accounts/:id/contacts/:contact/contact_inboxes",
        `${accountPath(target)}/contacts/${contactId}/contact_inboxes`,
        null,
        { inbox_id: input.inboxId, source_id: input.sourceId },
        callOptions,
      );
    },
    async updateContact(target, contactId, patch, callOptions) {
      const body: Record<string, unknown> = {};
      if (patch.phoneNumber !== undefined) body.phone_number = patch.phoneNumber;
      await call(
        target,
        "PATCH",
        "/api/v1/accounts/:id/contacts/:contact",
        `${accountPath(target)}/contacts/${contactId}`,
        null,
        body,
        callOptions,
      );
    },
    async mergeContacts(target, baseContactId, mergeeContactId, callOptions) {
      await call(
        target,
        "POST",
        "/api/v1/accounts/:id/actions/contact_merge",
        `${accountPath(target)}/actions/contact_merge`,
        null,
        { base_contact_id: baseContactId, mergee_contact_id: mergeeContactId },
        callOptions,
      );
    },
    createConversation(target, input, callOptions) {
      const fields = {
        inbox_id: input.inboxId,
        contact_id: input.contactId,
        source_id: input.sourceId,
        status: input.status,
      };
      let body: unknown = fields;
      if (input.message?.attachments && input.message.attachments.length > 0) {
        const form = new FormData();
        for (const [name, value] of Object.entries(fields)) form.set(name, String(value));
        appendMessageFields(form, input.message, "message");
        body = form;
      } else if (input.message) {
        body = { ...fields, message: messageJson(input.message) };
      }
      return call(
        target,
        "POST",
        "/api/v1/accounts/:id/conversations",
        `${accountPath(target)}/conversations`,
        conversationSchema,
        body,
        callOptions,
      );
    },
    async listConversationsBySourceId(target, inboxId, sourceId, callOptions) {
      const query = `inbox_id=${inboxId}&status=all&assignee_type=all&source_id=${encodeURIComponent(sourceId)}`;
      const list = await call(
        target,
        "GET",
        "/api/v1/accounts/:id/conversations",
        `${accountPath(target)}/conversations?${query}`,
        conversationListSchema,
        undefined,
        callOptions,
      );
      return list.data.payload;
    },
    async listRecentConversations(target, inboxId, updatedWithinSeconds, callOptions) {
      const query = `inbox_id=${inboxId}&status=all&assignee_type=all&updated_within=${Math.ceil(updatedWithinSeconds)}`;
      const list = await call(
        target,
        "GET",
        "/api/v1/accounts/:id/conversations",
        `${accountPath(target)}/conversations?${query}`,
        conversationListSchema,
        undefined,
        callOptions,
      );
      return list.data.payload;
    },
    getConversation(target, conversationId, callOptions) {
      return call(
        target,
        "GET",
        "/api/v1/accounts/:id/conversations/:conversation",
        conversationPath(target, conversationId),
        conversationSchema,
        undefined,
        callOptions,
      );
    },
    async toggleConversationStatus(target, conversationId, status, callOptions) {
      await call(
        target,
        "POST",
        "/api/v1/accounts/:id/conversations/:conversation/toggle_status",
        `${conversationPath(target, conversationId)}/toggle_status`,
        null,
        { status },
        callOptions,
      );
    },
    createMessage(target, conversationId, input, callOptions) {
      let body: unknown;
      if (input.attachments && input.attachments.length > 0) {
        const form = new FormData();
        appendMessageFields(form, input);
        body = form;
      } else {
        body = messageJson(input);
      }
      return call(
        target,
        "POST",
        "/api/v1/accounts/:id/conversations/:conversation/messages",
        `${conversationPath(target, conversationId)}/messages`,
        messageSchema,
        body,
        callOptions,
      );
    },
    async listMessages(target, conversationId, query = {}, callOptions) {
      const params = [
        ...(query.afterId === undefined ? [] : [`after=${query.afterId}`]),
        ...(query.beforeId === undefined ? [] : [`before=${query.beforeId}`]),
      ];
      const suffix = params.length === 0 ? "" : `?${params.join("&")}`;
      const list = await call(
        target,
        "GET",
        "/api/v1/accounts/:id/conversations/:conversation/messages",
        `${conversationPath(target, conversationId)}/messages${suffix}`,
        messageListSchema,
        undefined,
        callOptions,
      );
      return list.payload;
    },
    async updateMessageStatus(target, conversationId, messageId, input, callOptions) {
      await call(
        target,
        "PATCH",
        "/api/v1/accounts/:id/conversations/:conversation/messages/:message",
        `${conversationPath(target, conversationId)}/messages/${messageId}`,
        null,
        { status: input.status, ...(input.externalError ? { external_error: input.externalError } : {}) },
        callOptions,
      );
    },
    async close() {
      await ownDispatcher?.close();
    },
  };
}

/** `path: reason` of the first few schema issues (zod's messages name the expected type, never the value). */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "answer"}: ${issue.message}`)
    .join("; ");
}

/** A message create's JSON body (messages#create, or the `message` of conversations#create). */
function messageJson(input: CreateMessageInput): Record<string, unknown> {
  return {
    content: input.content,
    message_type: input.messageType,
    private: input.private ?? false,
    ...(input.sourceId ? { source_id: input.sourceId } : {}),
    ...(input.contentAttributes ? { content_attributes: input.contentAttributes } : {}),
  };
}

/**
 * A message create's multipart fields, top-level (`content`, `attachments[]`) or nested (`message[content]`,
 * `message[attachments][]`); `content_attributes` travels as a JSON string, which `MessageBuilder` parses.
 */
function appendMessageFields(form: FormData, input: CreateMessageInput, scope?: string): void {
  const name = (field: string) => (scope ? `${scope}[${field}]` : field);
  form.set(name("content"), input.content);
  form.set(name("message_type"), input.messageType);
  form.set(name("private"), String(input.private ?? false));
  if (input.sourceId) form.set(name("source_id"), input.sourceId);
  if (input.contentAttributes) form.set(name("content_attributes"), JSON.stringify(input.contentAttributes));
  for (const upload of input.attachments ?? []) {
    form.append(
      `${name("attachments")}[]`,
      new Blob([upload.data], { type: upload.mimetype }),
      upload.fileName,
    );
  }
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
      body.on("error", () => {});
      body.destroy();
      throw new Error(`response body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function transportCause(
  error: unknown,
  timedOut: boolean,
  deadlineMs: number,
): { cause: string; code?: string } {
  if (timedOut) return { cause: `timed out after ${deadlineMs}ms`, code: "TIMEOUT" };
  const err = error as { code?: unknown; message?: unknown; cause?: unknown; name?: unknown };
  if (err?.name === "AbortError") return { cause: "request aborted", code: "ABORTED" };
  const inner = (err?.cause ?? null) as { code?: unknown; message?: unknown } | null;
  const code =
    typeof err?.code === "string" ? err.code : typeof inner?.code === "string" ? inner.code : undefined;
  const message = typeof err?.message === "string" && err.message ? err.message : String(error);
  return code ? { cause: message, code } : { cause: message };
}
