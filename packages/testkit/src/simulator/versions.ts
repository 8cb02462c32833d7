/**
 * The Chatwoot versions the simulator can play, and what differs between them where a bridge can see it. Sources are
 * Chatwoot's own files at the release commits (see docs/chatwoot-versions.md for the table and the commits):
 *
 * - `GET /api` (`app/controllers/api_controller.rb`) answers `config/app.yml`'s `version`;
 * - API-inbox webhooks (`app/listeners/webhook_listener.rb`, `lib/webhooks/trigger.rb`): unsigned up to 4.12, with an
 *   `X-Chatwoot-Delivery` uuid from 4.12.0, signed with `channel_api.secret` from 4.13.0 (PR #13892);
 * - the inbox JSON (`app/views/api/v1/models/_inbox.json.jbuilder`) shows `secret` to administrators from 4.13.0, and
 *   `POST …/inboxes/:id/reset_secret` exists from 4.13.0 (`config/routes.rb`);
 * - webhook `content` has the dashboard's hard breaks (`\` before a newline) stripped from 4.13.0
 *   (`app/services/messages/webhook_content_normalizer.rb`, PR #13950);
 * - `GET …/contacts/search` searches every contact, without `company_name`, with `meta.has_more`, from 4.11.0
 *   (`app/controllers/api/v1/accounts/contacts_controller.rb`, PRs #12956 and #13376).
 */

/** The Chatwoot release lines the simulator plays, oldest first. */
export const CHATWOOT_VERSIONS = ["4.10", "4.11", "4.12", "4.13"] as const;

/** A Chatwoot release line (`startChatwootSimulator({ version })`). */
export type ChatwootVersion = (typeof CHATWOOT_VERSIONS)[number];

/** What `startChatwootSimulator()` plays without a `version`: the newest line. */
export const NEWEST_CHATWOOT_VERSION: ChatwootVersion = "4.13";

/** The release each line answers in `GET /api` (the releases whose code the simulator follows). */
const RELEASES: Record<ChatwootVersion, string> = {
  "4.10": "4.10.0",
  "4.11": "4.11.2",
  "4.12": "4.12.1",
  "4.13": "4.13.0",
};

/** The behaviour switches of one version. */
export interface VersionFeatures {
  /** `config/app.yml` `version`, as `GET /api` answers it. */
  release: string;
  /** API-inbox webhooks carry `X-Chatwoot-Delivery` (4.12+). */
  deliveryHeader: boolean;
  /** API inboxes have a webhook-signing `secret`: signed deliveries, `secret` in the inbox JSON, `reset_secret` (4.13+). */
  inboxSecret: boolean;
  /** Webhook `content` has `\` before a line break removed (4.13+). */
  stripsWebhookHardBreaks: boolean;
  /** `contacts/search` over every contact, without `company_name`, with `meta.has_more` (4.11+). */
  searchesAllContacts: boolean;
}

const atLeast = (version: ChatwootVersion, oldest: ChatwootVersion) =>
  CHATWOOT_VERSIONS.indexOf(version) >= CHATWOOT_VERSIONS.indexOf(oldest);

export function featuresOf(version: ChatwootVersion): VersionFeatures {
  return {
    release: RELEASES[version],
    deliveryHeader: atLeast(version, "4.12"),
    inboxSecret: atLeast(version, "4.13"),
    stripsWebhookHardBreaks: atLeast(version, "4.13"),
    searchesAllContacts: atLeast(version, "4.11"),
  };
}

/** Refuses what is not a version the simulator plays. */
export function checkVersion(version: unknown): ChatwootVersion {
  if ((CHATWOOT_VERSIONS as readonly unknown[]).includes(version)) return version as ChatwootVersion;
  throw new TypeError(
    `chatwoot simulator: version must be one of ${CHATWOOT_VERSIONS.join(", ")}, got ${JSON.stringify(version)}`,
  );
}

/**
 * `Messages::WebhookContentNormalizer` (4.13.0): a backslash right before a line break (a CommonMark hard break, what
 * the dashboard editor stores for Shift+Enter) and the break become one `\n` in webhook `content`.
 */
export function stripHardBreaks(content: string): string {
  return content.replace(/\\\r?\n/g, "\n");
}
