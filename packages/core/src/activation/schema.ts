import * as z from "zod";

/** The body's wording (`docs/http-api.md`): an absent field is `required`. */
function requiredOr(message: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? "required" : message);
}

/** A schema's error that says `missing` for an absent value (options, events) and `message` otherwise. */
export function missingOr(message: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? "missing" : message);
}

/**
 * The error map of a parse (`schema.safeParse(value, { error: absentIsMissing })`): an absent value says `missing`
 * instead of zod's generic "Invalid input"; every other issue keeps its own message.
 */
export function absentIsMissing(issue: { input?: unknown }): string | undefined {
  return issue.input === undefined ? "missing" : undefined;
}

/** The longest `chatwootBaseUrl` (the stores' `base_url` column is `varchar(2048)`). */
export const MAX_BASE_URL_LENGTH = 2048;

/**
 * `chatwootBaseUrl`: absolute http(s) URL, no credentials, query or fragment; trailing `/` removed; at most 2048
 * characters as given and as normalised (URL parsing can lengthen it: percent-encoding, punycode).
 */
export const chatwootBaseUrlSchema = z
  .string({ error: requiredOr("must be a string") })
  .transform((value, ctx) => {
    const tooLong = () =>
      ctx.addIssue({ code: "custom", message: `must be at most ${MAX_BASE_URL_LENGTH} characters` });
    const text = value.trim();
    if (text.length > MAX_BASE_URL_LENGTH) {
      tooLong();
      return z.NEVER;
    }
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: "custom", message: "must be an absolute http or https URL" });
      return z.NEVER;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: "must use http or https" });
      return z.NEVER;
    }
    if (url.username || url.password) {
      ctx.addIssue({ code: "custom", message: "must not contain credentials" });
      return z.NEVER;
    }
    if (url.search || text.includes("?") || url.hash || text.includes("#")) {
      ctx.addIssue({ code: "custom", message: "must not contain a query or fragment" });
      return z.NEVER;
    }
    const normalised = `${url.origin}${url.pathname}`.replace(/\/+$/, "");
    if (normalised.length > MAX_BASE_URL_LENGTH) {
      tooLong();
      return z.NEVER;
    }
    return normalised;
  });

/** The body of `POST /set/:instance`. Unknown keys are rejected. */
export const activateBodySchema = z.strictObject({
  chatwootBaseUrl: chatwootBaseUrlSchema,
  chatwootAccountId: z
    .number({ error: requiredOr("must be an integer") })
    .int({ error: "must be an integer" })
    .gt(0, { error: "must be greater than 0" }),
  chatwootApiToken: z
    .string({ error: requiredOr("must be a string") })
    .trim()
    .min(1, { error: "must not be empty" })
    .max(256, { error: "must be at most 256 characters" }),
  inboxName: z
    .string({ error: "must be a string" })
    .trim()
    .min(1, { error: "must not be empty" })
    .max(255, { error: "must be at most 255 characters" })
    .default("RyzeAPI"),
  signMessages: z.boolean({ error: "must be a boolean" }).default(false),
  ignoreGroups: z.boolean({ error: "must be a boolean" }).default(false),
  startAsPending: z.boolean({ error: "must be a boolean" }).default(false),
  reopenResolved: z.boolean({ error: "must be a boolean" }).default(false),
  importHistoryDays: z
    .number({ error: "must be an integer" })
    .int({ error: "must be an integer" })
    .min(0, { error: "must be between 0 and 365" })
    .max(365, { error: "must be between 0 and 365" })
    .default(0),
});

/** The activate body as sent by a client (optional fields may be absent). */
export type ActivateBody = z.input<typeof activateBodySchema>;
/** The activate body after validation and defaults. */
export type ActivationConfig = z.output<typeof activateBodySchema>;

/**
 * Formats zod issues as `field: reason; field: reason` (every failing field, in order); an issue of the value
 * itself is named `root`.
 */
export function formatIssues(error: z.ZodError, root = "body"): string {
  const parts: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) parts.push(`${[...issue.path, key].join(".")}: unknown field`);
      continue;
    }
    const path = issue.path.length > 0 ? issue.path.join(".") : root;
    parts.push(`${path}: ${issue.message}`);
  }
  return parts.join("; ");
}
