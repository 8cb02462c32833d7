/**
 * API-inbox webhook delivery as Chatwoot does it (`WebhookJob` → `Webhooks::Trigger`, via
 * RestClient): one POST of `payload.to_json`, a timeout (5 s), no retry, redirects not followed.
 * For `message_created`/`message_updated`, any failure (non-2xx, timeout, connection error) marks
 * the message `failed` with RestClient's error text as `external_error`. The headers follow the
 * version played (`lib/webhooks/trigger.rb`, `app/listeners/webhook_listener.rb`): none of Chatwoot's
 * own up to 4.11; `X-Chatwoot-Delivery` (a uuid fixed when the job is queued) from 4.12.0; from
 * 4.13.0 also `X-Chatwoot-Timestamp` and `X-Chatwoot-Signature`, computed when the POST is sent with
 * the inbox `secret` the job was queued with. Tests can make deliveries arrive twice (a Sidekiq
 * retry of the job) or late (a busy queue): `sim.webhooks`.
 */
import { createHmac, randomUUID } from "node:crypto";
import { request as httpRequest, STATUS_CODES } from "node:http";
import { request as httpsRequest } from "node:https";
import { updateMessageStatus } from "./messages.js";
import { toRailsJson } from "./rails-json.js";
import type { SimulatorRuntime } from "./runtime.js";
import { type InboxRecord, type WebhookSigning, webhookSigningOf } from "./store.js";

/** One webhook POST, as recorded in `sim.webhookDeliveries`. */
export interface WebhookDelivery {
  /** The delivery's uuid: the `X-Chatwoot-Delivery` header from 4.12 (kept here for reference before that). */
  id: string;
  /**
   * `message_created`, `message_updated`, `conversation_created`, `conversation_status_changed`,
   * `conversation_updated`, `conversation_typing_on`, `conversation_typing_off`.
   */
  event: string;
  inboxId: number;
  url: string;
  /** The payload object (what `body` encodes). */
  payload: Record<string, unknown>;
  /** The exact request body sent (Rails' `to_json`: `<`, `>`, `&` escaped as `\u003c` etc.). */
  body: string;
  /** Request headers sent (the signature and its timestamp once the POST went out), names in lower case. */
  headers: Record<string, string>;
  /** How this delivery was signed (`"off"`: no signature headers). */
  signing: WebhookSigning;
  /**
   * 1 for a delivery, 2 for its duplicate (`sim.webhooks.duplicateNext`): same id (`X-Chatwoot-Delivery`) and body;
   * a signed duplicate has its own timestamp and signature, computed when it is sent.
   */
  attempt: number;
  /** When it was queued: the event's time, or for a duplicate the end of the first attempt. */
  at: Date;
  /** How long it was held before its POST (`sim.webhooks.delayNext`); 0 normally. */
  delayMs: number;
  /** The receiver's HTTP status; `null` while in flight or when no response came. */
  status: number | null;
  /** What Chatwoot would record as the failure (RestClient's message); `null` on 2xx or in flight. */
  error: string | null;
  /** Milliseconds from the POST to the response or failure; `null` while held or in flight. */
  durationMs: number | null;
  /** Whether the delivery has finished (answered, failed or timed out). */
  done: boolean;
}

/** `RestClient`'s default headers besides content type and accept. */
const USER_AGENT = "rest-client/2.1.0 (linux-gnu x86_64) ruby/3.4.4p34";

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** The text RestClient / Net::HTTP exceptions carry for a failure. */
function failureText(error: NodeJS.ErrnoException, url: URL): string {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  if (error.code === "ECONNREFUSED") {
    return `Failed to open TCP connection to ${host}:${port} (Connection refused - connect(2) for "${host}" port ${port})`;
  }
  if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN") {
    return `Failed to open TCP connection to ${host}:${port} (getaddrinfo: Name or service not known)`;
  }
  if (error.code === "ECONNRESET") return "Connection reset by peer";
  return error.message;
}

/** Webhook delivery faults (`sim.webhooks`), each for the next deliveries queued, in queue order. */
export interface SimulatorWebhooks {
  /**
   * POSTs each of the next `count` deliveries twice, as a Sidekiq retry of `WebhookJob` would: the second
   * attempt once the first has finished, with the same body and `X-Chatwoot-Delivery`, and (signed) a
   * timestamp and signature of its own.
   */
  duplicateNext(count: number): void;
  /**
   * Holds each of the next `count` deliveries `delayMs` before its POST, as a busy queue would (later
   * deliveries are not held back by it); the timeout counts from the POST. Replaces an earlier
   * `delayNext`; `count` may be Infinity, and `delayNext(0, 0)` ends a delay.
   */
  delayNext(count: number, delayMs: number): void;
}

export interface WebhookSender {
  /** Queues a POST of `payload` to the inbox's webhook URL. */
  deliver(inbox: InboxRecord, url: string, payload: Record<string, unknown>): void;
  /** Aborts deliveries in flight and sends no more (used when the simulator closes). */
  abortAll(): void;
  readonly controls: SimulatorWebhooks;
}

const isCount = (count: number) =>
  count === Number.POSITIVE_INFINITY || (Number.isInteger(count) && count >= 0);

export function createWebhookSender(options: {
  rt: SimulatorRuntime;
  timeoutMs: () => number;
  record: (delivery: WebhookDelivery) => void;
  changed: () => void;
}): WebhookSender {
  const { rt } = options;
  const inFlight = new Set<() => void>();
  const held = new Set<NodeJS.Timeout>();
  let duplicates = 0;
  let delay = { count: 0, ms: 0 };
  let stopped = false;

  function finish(delivery: WebhookDelivery, started: number, status: number | null, error: string | null) {
    if (delivery.done) return;
    Object.assign(delivery, { status, error, durationMs: Date.now() - started, done: true });
    if (stopped) return;
    if (error !== null && (delivery.event === "message_created" || delivery.event === "message_updated")) {
      const message = rt.store.messages.get(Number(delivery.payload["id"]));
      if (message) updateMessageStatus(rt, message, "failed", error, null);
    }
    options.changed();
  }

  /**
   * Records the delivery and POSTs it from a background job: on the next turn, or after its delay. `key` is the
   * signing key the job was queued with (null: unsigned).
   */
  function queue(delivery: WebhookDelivery, key: string | null, onFinished?: () => void) {
    options.record(delivery);
    const run = () => {
      if (!stopped) post(delivery, key, onFinished);
    };
    if (delivery.delayMs === 0) {
      setImmediate(run);
      return;
    }
    const timer = setTimeout(() => {
      held.delete(timer);
      run();
    }, delivery.delayMs);
    held.add(timer);
  }

  function post(delivery: WebhookDelivery, key: string | null, onFinished?: () => void) {
    const started = Date.now();
    if (key !== null) {
      // `Webhooks::Trigger#request_headers`: the timestamp is the time of sending, per attempt.
      const timestamp = String(Math.floor(rt.now().getTime() / 1000));
      delivery.headers = {
        ...delivery.headers,
        "x-chatwoot-timestamp": timestamp,
        "x-chatwoot-signature": webhookSignature(key, timestamp, delivery.body),
      };
    }
    let url: URL;
    try {
      url = new URL(delivery.url);
      if (url.protocol !== "http:" && url.protocol !== "https:")
        throw new Error(`bad URI(is not URI?): ${delivery.url}`);
    } catch (error) {
      finish(delivery, started, null, (error as Error).message);
      onFinished?.();
      return;
    }
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
      method: "POST",
      headers: { ...delivery.headers, "content-length": String(Buffer.byteLength(delivery.body)) },
    });
    const abort = () => request.destroy(new Error("simulator closed"));
    inFlight.add(abort);
    const timer = setTimeout(() => {
      finish(delivery, started, null, "Timed out reading data from server");
      onFinished?.();
      request.destroy();
    }, options.timeoutMs());
    const done = (status: number | null, error: string | null) => {
      clearTimeout(timer);
      inFlight.delete(abort);
      const first = !delivery.done;
      finish(delivery, started, status, error);
      if (first) onFinished?.();
    };
    request.on("response", (response) => {
      response.resume();
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        done(status, ok ? null : `${status} ${STATUS_CODES[status] ?? "Unknown"}`);
      });
      response.on("error", (error) => done(response.statusCode ?? null, failureText(error, url)));
    });
    request.on("error", (error: NodeJS.ErrnoException) => done(null, failureText(error, url)));
    request.end(delivery.body);
  }

  return {
    deliver(inbox, url, payload) {
      if (stopped) return;
      const channel = rt.store.apiChannels.get(inbox.channelId);
      const signing: WebhookSigning = channel ? webhookSigningOf(rt.store, channel) : "off";
      const body = toRailsJson(payload);
      const id = randomUUID();
      const headers: Record<string, string> = {
        accept: "application/json",
        "user-agent": USER_AGENT,
        "content-type": "application/json",
      };
      // 4.12 passes `delivery_id:` to the job; 4.13 also `secret: inbox.channel.secret` (a signing simulator of an
      // older version sends the header too, as 4.13 would).
      if (rt.store.settings.features.deliveryHeader || signing !== "off") headers["x-chatwoot-delivery"] = id;
      const key =
        signing === "off" || !channel ? null : signing === "secret" ? channel.secret : channel.hmacToken;
      const delayMs = delay.count > 0 ? delay.ms : 0;
      if (delay.count > 0) delay.count -= 1;
      const duplicate = duplicates > 0;
      if (duplicate) duplicates -= 1;
      const delivery: WebhookDelivery = {
        id,
        event: String(payload["event"]),
        inboxId: inbox.id,
        url,
        payload,
        body,
        headers,
        signing,
        attempt: 1,
        at: new Date(),
        delayMs,
        status: null,
        error: null,
        durationMs: null,
        done: false,
      };
      // The request that caused the event has been answered by the time the job runs.
      queue(delivery, key, () => {
        if (!duplicate || stopped) return;
        queue(
          {
            ...delivery,
            headers: { ...headers },
            attempt: 2,
            at: new Date(),
            delayMs: 0,
            status: null,
            error: null,
            durationMs: null,
            done: false,
          },
          key,
        );
      });
    },
    abortAll() {
      stopped = true;
      for (const timer of held) clearTimeout(timer);
      held.clear();
      for (const abort of [...inFlight]) abort();
      inFlight.clear();
    },
    controls: {
      duplicateNext(count) {
        if (!Number.isInteger(count) || count < 0)
          throw new TypeError(`duplicateNext needs a count >= 0, got ${count}`);
        duplicates += count;
      },
      delayNext(count, delayMs) {
        if (!isCount(count)) throw new TypeError(`delayNext needs a count >= 0, got ${count}`);
        if (!(Number.isFinite(delayMs) && delayMs >= 0))
          throw new TypeError(`delayNext needs a delayMs >= 0, got ${delayMs}`);
        delay = { count, ms: delayMs };
      },
    },
  };
}
