/**
 * Chatwoot versions as `GET /api` answers them (`app/controllers/api_controller.rb`: `Chatwoot.config[:version]`, the
 * `version` of `config/app.yml`, e.g. `"4.13.0"`), and the versions where what the bridge sees changes
 * (docs/chatwoot-versions.md).
 */

/** The oldest Chatwoot the library supports; activation refuses older ones. */
export const OLDEST_SUPPORTED_VERSION = "4.10.0";

/**
 * From this version API-inbox webhooks are signed with the inbox's `secret` (`lib/webhooks/trigger.rb`,
 * `app/listeners/webhook_listener.rb`, PR #13892), which administrators see in the inbox JSON.
 */
export const SIGNED_WEBHOOKS_SINCE = "4.13.0";

/** At most this long when stored (`chatwoot_version`); longer answers are not versions. */
const MAX_LENGTH = 64;

const PATTERN = /^v?(\d{1,4})\.(\d{1,4})(?:\.(\d{1,6}))?(?:[-+.][0-9A-Za-z.+-]*)?$/;

/**
 * The version Chatwoot answered, trimmed, when it looks like one (`4.13.0`, `4.12`, `v4.11.2`, `4.13.0-ee`); null
 * when it does not (then the version is unknown).
 */
export function parseChatwootVersion(answer: unknown): string | null {
  if (typeof answer !== "string") return null;
  const version = answer.trim();
  return version.length <= MAX_LENGTH && PATTERN.test(version) ? version : null;
}

function parts(version: string): [number, number, number] | null {
  const match = PATTERN.exec(version.trim());
  if (!match) return null;
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

/** Whether `version` is `since` or newer; false when either is not a version. */
export function isAtLeast(version: string | null, since: string): boolean {
  if (version === null) return false;
  const a = parts(version);
  const b = parts(since);
  if (!a || !b) return false;
  for (let index = 0; index < 3; index++) {
    if (a[index]! !== b[index]!) return a[index]! > b[index]!;
  }
  return true;
}

/** Whether the library supports this (known) version. */
export function isSupportedVersion(version: string): boolean {
  return isAtLeast(version, OLDEST_SUPPORTED_VERSION);
}

/** Whether this Chatwoot signs API-inbox webhooks; false when the version is unknown. */
export function signsWebhooks(version: string | null): boolean {
  return isAtLeast(version, SIGNED_WEBHOOKS_SINCE);
}
