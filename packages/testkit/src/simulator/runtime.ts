/**
 * What the simulator's Chatwoot logic needs besides the store: the base URL (Chatwoot's
 * FRONTEND_URL, used in attachment URLs), limits, the clock, and the event dispatcher that feeds
 * ActionCable broadcasts and API-inbox webhooks (Chatwoot's `Rails.configuration.dispatcher`).
 */
import type {
  ConversationRecord,
  ConversationStatus,
  MessageRecord,
  SimulatorStore,
  UserRecord,
} from "./store.js";

/**
 * The events the simulator dispatches (`lib/events/types.rb` names). `performer` is `Current.user`:
 * the user whose request or dashboard action caused the event, `null` for background work.
 */
export type DomainEvent =
  | { name: "message.created"; message: MessageRecord; performer: UserRecord | null; echoId: string | null }
  | {
      name: "message.updated";
      message: MessageRecord;
      performer: UserRecord | null;
      /** ActiveRecord `previous_changes` as rendered: column → [before, after]. */
      previousChanges: Record<string, [unknown, unknown]>;
    }
  | { name: "conversation.created"; conversation: ConversationRecord; performer: UserRecord | null }
  | {
      name: "conversation.status_changed";
      conversation: ConversationRecord;
      performer: UserRecord | null;
      previousStatus: ConversationStatus;
    }
  | {
      /** `CONVERSATION_TYPING_ON`/`_OFF` (`toggle_typing_status`): the typer is the performer. */
      name: "conversation.typing_on" | "conversation.typing_off";
      conversation: ConversationRecord;
      performer: UserRecord;
      isPrivate: boolean;
    };

/** Receives every dispatched event synchronously; it builds payloads at once and sends them later. */
export type EventListener = (event: DomainEvent) => void;

export interface SimulatorRuntime {
  readonly store: SimulatorStore;
  /** Base URL of the simulator, e.g. `http://127.0.0.1:41234`. */
  readonly baseUrl: string;
  /** `CONVERSATION_MESSAGE_PER_MINUTE_LIMIT` (Chatwoot default 200). */
  messageFloodLimit: number;
  /** Redirects between an attachment's `data_url` and its bytes (ActiveStorage redirect → service). */
  attachmentRedirects: number;
  now(): Date;
  /**
   * Dispatches an event. Listeners run once the current synchronous work is done (a microtask
   * later), like Chatwoot's `after_commit` callbacks: payloads show the committed state.
   */
  emit(event: DomainEvent): void;
}

export interface RuntimeOptions {
  store: SimulatorStore;
  baseUrl: string;
  messageFloodLimit: number;
  attachmentRedirects: number;
  listeners: EventListener[];
}

export function createRuntime(options: RuntimeOptions): SimulatorRuntime {
  const { listeners } = options;
  let pending: DomainEvent[] = [];
  const flush = () => {
    const events = pending;
    pending = [];
    for (const event of events) {
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          console.error("[chatwoot-simulator] event listener failed:", error);
        }
      }
    }
  };
  return {
    store: options.store,
    baseUrl: options.baseUrl,
    messageFloodLimit: options.messageFloodLimit,
    attachmentRedirects: options.attachmentRedirects,
    now: () => new Date(),
    emit(event) {
      if (pending.length === 0) queueMicrotask(flush);
      pending.push(event);
    },
  };
}
