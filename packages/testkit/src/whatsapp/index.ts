import { createHash, randomBytes } from "node:crypto";
import {
  BridgeError,
  type WhatsAppEvent,
  type WhatsAppGateway,
  type WhatsAppSend,
} from "@ryze/chatwoot-core";
import {
  type CallerGuard,
  errorResponse,
  type HttpHandler,
  type HttpRequest,
  jsonResponse as json,
  readJsonBody,
  toBridgeError,
} from "@ryze/chatwoot-core/adapter";

/** What the simulated gateway recorded for one send (`GET /dev/whatsapp/:instance/sent`). */
export interface SentRecord {
  id: string;
  to: string;
  type: WhatsAppSend["kind"];
  text?: string;
  caption?: string;
  media?: { mimetype: string; fileName: string | null; size: number; sha256: string };
  replyTo: string | null;
  targetId?: string;
  emoji?: string;
  at: string;
}

/** A WhatsApp gateway double: records every send, can be told to fail the next N sends of an instance. */
export interface SimulatedWhatsAppGateway extends WhatsAppGateway {
  sent(instance: string): SentRecord[];
  failNext(instance: string, times: number, error: string): void;
}

export function createSimulatedWhatsAppGateway(): SimulatedWhatsAppGateway {
  const sent = new Map<string, SentRecord[]>();
  const failures = new Map<string, { times: number; error: string }>();
  return {
    supportsRevoke: true,
    async send(message) {
      const failure = failures.get(message.instance);
      if (failure && failure.times > 0) {
        failure.times--;
        throw new Error(failure.error);
      }
      const record: SentRecord = {
        id: `SIM${randomBytes(6).toString("hex").toUpperCase()}`,
        to: message.to,
        type: message.kind,
        replyTo: message.replyTo ?? null,
        at: new Date().toISOString(),
      };
      if (message.text !== undefined) record.text = message.text;
      if (message.caption !== undefined) record.caption = message.caption;
      if (message.targetId !== undefined) record.targetId = message.targetId;
      if (message.emoji !== undefined) record.emoji = message.emoji;
      if (message.media) {
        record.media = {
          mimetype: message.media.mimetype,
          fileName: message.media.fileName ?? null,
          size: message.media.data.length,
          sha256: createHash("sha256").update(message.media.data).digest("hex"),
        };
      }
      const list = sent.get(message.instance) ?? [];
      list.push(record);
      sent.set(message.instance, list);
      return { id: record.id };
    },
    sent(instance) {
      return [...(sent.get(instance) ?? [])];
    },
    failNext(instance, times, error) {
      failures.set(instance, { times, error });
    },
  };
}

export interface DevWhatsAppOptions {
  /** The bridge's caller checks: the dev routes take the same tokens. */
  guard: CallerGuard;
  prefix?: string;
  gateway?: SimulatedWhatsAppGateway;
  /** The bridge's `ingest`; without it the routes answer 501. */
  ingest?: (instance: string, event: WhatsAppEvent) => Promise<{ id: string }>;
}

export interface DevWhatsApp {
  readonly http: HttpHandler;
  readonly gateway: SimulatedWhatsAppGateway;
}

const unavailable = () =>
  new BridgeError(
    "FEATURE_UNAVAILABLE",
    "the simulated WhatsApp side has no ingest function: pass createDevWhatsApp({ ingest })",
  );

/**
 * The example apps' simulated WhatsApp side (`docs/dev-whatsapp.md`): `POST :prefix/:instance/events` hands an
 * event to `ingest`, `GET :prefix/:instance/sent` lists what was sent, `POST :prefix/:instance/fail` makes the
 * next sends fail. Framework-neutral, mounted with the same adapters as the bridge.
 */
export function createDevWhatsApp(options: DevWhatsAppOptions): DevWhatsApp {
  const prefix = (options.prefix ?? "/dev/whatsapp").replace(/\/+$/, "");
  const gateway = options.gateway ?? createSimulatedWhatsAppGateway();
  const routes: Record<string, string> = { events: "POST", sent: "GET", fail: "POST" };

  async function serve(action: string, instance: string, request: HttpRequest, query: URLSearchParams) {
    if (!options.ingest) throw unavailable();
    if (action === "sent") {
      const since = query.get("since");
      const to = query.get("to");
      const sent = gateway
        .sent(instance)
        .filter((record) => (since ? record.at >= new Date(since).toISOString() : true))
        .filter((record) => (to ? record.to === to : true));
      return json(200, { sent });
    }
    const { value } = await readJsonBody(request, 1024 * 1024);
    if (action === "fail") {
      const body = (value ?? {}) as { times?: unknown; error?: unknown };
      const times =
        typeof body.times === "number" && Number.isInteger(body.times) && body.times >= 0 ? body.times : null;
      if (times === null)
        throw new BridgeError("INVALID_BODY", "invalid body: times: must be a non-negative integer");
      gateway.failNext(instance, times, typeof body.error === "string" ? body.error : "simulated failure");
      return json(200, { failing: times });
    }
    // Any JSON: `ingest` validates it and answers 400 naming the field.
    const accepted = await options.ingest(instance, value as WhatsAppEvent);
    return json(202, { accepted: true, id: accepted.id });
  }

  return {
    gateway,
    http: {
      async handle(request) {
        const [path = "", search = ""] = request.path.split("?", 2);
        if (!path.startsWith(`${prefix}/`)) return null;
        const parts = path.slice(prefix.length + 1).split("/");
        const [rawInstance, action] = parts;
        if (
          parts.length !== 2 ||
          !rawInstance ||
          !action ||
          routes[action] !== request.method.toUpperCase()
        ) {
          return null;
        }
        let instance: string;
        try {
          instance = decodeURIComponent(rawInstance);
        } catch {
          // A malformed escape (`%E0%A4%A`) is no instance of ours: the host answers it, like any unknown path.
          return null;
        }
        // WhatsApp traffic, not API calls: the caller token is checked, the 100-per-minute quota is not spent.
        const auth = await options.guard.authorize(request, instance, { quota: false });
        if ("status" in auth) return auth;
        try {
          const response = await serve(action, instance, request, new URLSearchParams(search));
          return { ...response, headers: { ...response.headers, ...auth.headers } };
        } catch (error) {
          return errorResponse(toBridgeError(error), auth.headers);
        }
      },
    },
  };
}
