import { randomBytes } from "node:crypto";
import type { ChatwootAccountTarget } from "../chatwoot/index.js";
import { type Cipher, secretAad } from "../crypto/index.js";
import type { Clock } from "../observability/index.js";
import type {
  IntegrationPatch,
  IntegrationRow,
  IntegrationStatus,
  IntegrationStore,
} from "../store/ports.js";

/** An integration with its secrets opened. Only this module seals and opens; stores see ciphertext only. */
export interface Integration extends Omit<IntegrationRow, "apiToken" | "webhookSecret" | "signingSecret"> {
  apiToken: string;
  webhookSecret: string | null;
  /** The Chatwoot inbox's webhook-signing secret (4.13+, webhook mode), opened; null when it has none. */
  signingSecret: string | null;
}

/** What `insert` takes: the signing secret and Chatwoot's version default to null (a first activation has neither). */
export type IntegrationInsert = Omit<
  Integration,
  "version" | "createdAt" | "updatedAt" | "signingSecret" | "chatwootVersion"
> &
  Partial<Pick<Integration, "signingSecret" | "chatwootVersion">>;

export type IntegrationUpdate = Partial<
  Omit<Integration, "id" | "instance" | "version" | "createdAt" | "updatedAt">
>;

/** An integration whose first activation completed: it has its inbox. */
export type ProvisionedIntegration = Integration & {
  status: Exclude<IntegrationStatus, "provisioning">;
  inboxId: number;
};

/**
 * Whether the instance has an integration: its first activation completed (a row still `provisioning` is an
 * activation in progress, not an integration). Such an integration accepts work, `list` shows it, `delete`
 * removes it; a paused one keeps its work until it is re-activated.
 */
export function isProvisioned(integration: Integration | null): integration is ProvisionedIntegration {
  return integration !== null && integration.status !== "provisioning" && integration.inboxId !== null;
}

/**
 * Whether an integration is serving: provisioned and not paused (`active`, or `error` while its realtime link
 * is retried), so its work is delivered now and its realtime subscription is held.
 */
export function isServing(integration: Integration | null): integration is ProvisionedIntegration {
  return isProvisioned(integration) && (integration.status === "active" || integration.status === "error");
}

/** Where and as whom to call Chatwoot for an integration. */
export function chatwootTargetOf(integration: Integration): ChatwootAccountTarget {
  return { baseUrl: integration.baseUrl, accountId: integration.accountId, apiToken: integration.apiToken };
}

const TABLE = "chatwoot_integrations";
/**
 * Opened secrets kept (oldest dropped first): the API token of ~2,000 busy integrations, or all three secrets of ~700 in
 * webhook mode (URL secret and inbox signing secret too).
 */
const OPENED_CACHE_SIZE = 2_048;
/** The sealed columns: each is sealed with the AAD `chatwoot_integrations.<column>:<id>`. */
const SEALED = {
  apiToken: "api_token",
  webhookSecret: "webhook_secret",
  signingSecret: "signing_secret",
} as const;
/** Rows read per page by `all()` and `rotateKeys()` unless the caller says otherwise. */
const BATCH_SIZE = 100;

/** A new `bridge_integration_id`: `int_` + 16 URL-safe random characters. */
export function newIntegrationId(): string {
  return `int_${randomBytes(12).toString("base64url")}`;
}

/** What one `rotateKeys()` pass did; rotation is complete when a pass answers `busy: 0`. */
export interface RotateKeysResult {
  /** Rows re-sealed under the current key by this pass. */
  resealed: number;
  /** Rows whose every secret was already under the current key. */
  alreadyCurrent: number;
  /**
   * Rows still under an old key that this pass could not re-seal: an activation held them, or they changed between
   * the read and the write. Run `rotateKeys()` again until this is 0.
   */
  busy: number;
}

/** The core-side tier over an IntegrationStore: seals and opens secrets, sets timestamps. */
export interface IntegrationRepository {
  get(instance: string): Promise<Integration | null>;
  getById(id: string): Promise<Integration | null>;
  /** Null when the instance already has an integration. */
  insert(integration: IntegrationInsert): Promise<Integration | null>;
  /** Compare-and-set against `current.version`; null to the loser. */
  update(current: Integration, patch: IntegrationUpdate): Promise<Integration | null>;
  delete(id: string, expectedVersion?: number): Promise<boolean>;
  /** Every integration, in batches (start-up, background jobs). */
  all(batchSize?: number): AsyncIterable<Integration>;
  /**
   * Re-seals every stored secret under the current key. Resumable: rows already under the current key are
   * counted as `alreadyCurrent`; rows a running activation holds, and rows changed concurrently (a lost
   * compare-and-set), as `busy`: run it again until `busy` is 0.
   */
  rotateKeys(options?: { batchSize?: number }): Promise<RotateKeysResult>;
}

export function createIntegrationRepository(
  store: IntegrationStore,
  cipher: Cipher,
  clock: Clock,
): IntegrationRepository {
  const aad = (id: string, column: string) => secretAad(TABLE, column, id);

  // Routing reads the row for every message (the store stays the source of truth); what is memoised is only
  // the decryption, keyed by the exact sealed value and its AAD. A sealed value (random IV) always opens to the
  // same plaintext, so a hit can never be stale: a rotated or re-activated token is a different sealed value.
  const opened = new Map<string, string>();
  const openSecret = (sealed: string, id: string, column: string): string => {
    const additional = aad(id, column);
    const key = `${additional}\u0000${sealed}`;
    const hit = opened.get(key);
    if (hit !== undefined) return hit;
    const plaintext = cipher.open(sealed, additional);
    if (opened.size >= OPENED_CACHE_SIZE) opened.delete(opened.keys().next().value!);
    opened.set(key, plaintext);
    return plaintext;
  };

  const openNullable = (sealed: string | null, id: string, column: string) =>
    sealed === null ? null : openSecret(sealed, id, column);
  const sealNullable = (plaintext: string | null, id: string, column: string) =>
    plaintext === null ? null : cipher.seal(plaintext, aad(id, column));

  const open = (row: IntegrationRow): Integration => ({
    ...row,
    apiToken: openSecret(row.apiToken, row.id, SEALED.apiToken),
    webhookSecret: openNullable(row.webhookSecret, row.id, SEALED.webhookSecret),
    signingSecret: openNullable(row.signingSecret, row.id, SEALED.signingSecret),
  });

  const sealPatch = (id: string, patch: IntegrationUpdate): IntegrationPatch => {
    const { apiToken, webhookSecret, signingSecret, ...rest } = patch;
    const sealed: IntegrationPatch = { ...rest, updatedAt: clock.now() };
    if (apiToken !== undefined) sealed.apiToken = cipher.seal(apiToken, aad(id, SEALED.apiToken));
    if (webhookSecret !== undefined)
      sealed.webhookSecret = sealNullable(webhookSecret, id, SEALED.webhookSecret);
    if (signingSecret !== undefined)
      sealed.signingSecret = sealNullable(signingSecret, id, SEALED.signingSecret);
    return sealed;
  };

  async function* rows(batchSize: number): AsyncIterable<IntegrationRow> {
    let afterId: string | undefined;
    for (;;) {
      const batch = await store.list(
        afterId === undefined ? { limit: batchSize } : { afterId, limit: batchSize },
      );
      yield* batch;
      if (batch.length < batchSize) return;
      afterId = batch[batch.length - 1]!.id;
    }
  }

  return {
    async get(instance) {
      const row = await store.get(instance);
      return row && open(row);
    },
    async getById(id) {
      const row = await store.getById(id);
      return row && open(row);
    },
    async insert(integration) {
      const now = clock.now();
      const row: IntegrationRow = {
        ...integration,
        apiToken: cipher.seal(integration.apiToken, aad(integration.id, SEALED.apiToken)),
        webhookSecret: sealNullable(integration.webhookSecret, integration.id, SEALED.webhookSecret),
        signingSecret: sealNullable(integration.signingSecret ?? null, integration.id, SEALED.signingSecret),
        chatwootVersion: integration.chatwootVersion ?? null,
        version: 1,
        createdAt: now,
        updatedAt: now,
      };
      const inserted = await store.insert(row);
      return inserted && open(inserted);
    },
    async update(current, patch) {
      const row = await store.update(current.id, current.version, sealPatch(current.id, patch));
      return row && open(row);
    },
    delete(id, expectedVersion) {
      return store.delete(id, expectedVersion);
    },
    async *all(batchSize = BATCH_SIZE) {
      for await (const row of rows(batchSize)) yield open(row);
    },
    async rotateKeys(options = {}) {
      const result: RotateKeysResult = { resealed: 0, alreadyCurrent: 0, busy: 0 };
      for await (const row of rows(options.batchSize ?? BATCH_SIZE)) {
        const stale = [row.apiToken, row.webhookSecret, row.signingSecret].some(
          (sealed) => sealed !== null && cipher.keyIdOf(sealed) !== cipher.currentKeyId,
        );
        if (!stale) {
          result.alreadyCurrent++;
          continue;
        }
        // A running activation owns the row; touching it would make its final compare-and-set fail.
        const claimed =
          row.provisioningUntil !== null && row.provisioningUntil.getTime() > clock.now().getTime();
        if (claimed) {
          result.busy++;
          continue;
        }
        const opened = open(row);
        const patch: IntegrationUpdate = {
          apiToken: opened.apiToken,
          webhookSecret: opened.webhookSecret,
          signingSecret: opened.signingSecret,
        };
        // The loser of a race (an activation or a webhook wrote the row since it was read) is tried on the next pass.
        const updated = await store.update(row.id, row.version, sealPatch(row.id, patch));
        if (updated) result.resealed++;
        else result.busy++;
      }
      return result;
    },
  };
}
