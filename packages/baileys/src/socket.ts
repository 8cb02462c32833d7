import type { BaileysEventEmitter, WAMessage, WASocket } from "baileys";

/**
 * What `attachBaileys` uses of a Baileys socket (`makeWASocket(...)` satisfies it): its event emitter, and when
 * present the account (`user`, to tell our own JIDs from a contact's), group metadata (group subjects), media
 * re-upload requests (expired media) and the LID ↔ phone number store.
 */
export interface BaileysEventSocket {
  ev: Pick<BaileysEventEmitter, "on" | "off">;
  user?: { id: string; lid?: string | undefined } | undefined;
  groupMetadata?: (jid: string) => Promise<{ subject?: string | undefined }>;
  updateMediaMessage?: (message: WAMessage) => Promise<WAMessage>;
  signalRepository?: { lidMapping?: { getPNForLID(lid: string): Promise<string | null> } };
}

/** What `createBaileysGateway` uses of a Baileys socket: `sendMessage`. */
export type BaileysSendSocket = Pick<WASocket, "sendMessage">;

/** A map that forgets its oldest entries beyond `max` (insertion order, refreshed on `set`). */
export class BoundedMap<K, V> {
  readonly #entries = new Map<K, V>();
  constructor(readonly max: number) {}
  get(key: K): V | undefined {
    return this.#entries.get(key);
  }
  has(key: K): boolean {
    return this.#entries.has(key);
  }
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }
  get size(): number {
    return this.#entries.size;
  }
}

/** How many recent messages a socket keeps for quotes, reactions and revokes sent through the gateway. */
export const RECENT_MESSAGES = 500;

/**
 * What `attachBaileys` and `createBaileysGateway` share about one socket: the recent messages by id (Baileys
 * needs the quoted message itself, and a reaction or a revoke needs the target's full key), and the ids of the
 * revokes and reactions the gateway sent (their echoes are not mirrored back to Chatwoot).
 */
export interface SocketState {
  recent: BoundedMap<string, WAMessage>;
  sentAnnotations: BoundedMap<string, true>;
}

const states = new WeakMap<object, SocketState>();

export function stateOf(socket: object): SocketState {
  let state = states.get(socket);
  if (!state) {
    state = { recent: new BoundedMap(RECENT_MESSAGES), sentAnnotations: new BoundedMap(RECENT_MESSAGES) };
    states.set(socket, state);
  }
  return state;
}
