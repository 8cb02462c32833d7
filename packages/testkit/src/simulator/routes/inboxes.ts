/**
 * `Api::V1::Accounts::InboxesController` for API channels, with `InboxPolicy` (create, update and
 * destroy are administrator-only; show needs the inbox among the user's assigned inboxes) and the
 * `Inbox` / `Channel::Api` validations.
 */

import { registerSecret } from "../../secrets.js";
import {
  ChatwootHttpError,
  notAuthorized,
  railsPublicException,
  recordInvalid,
  recordNotFound,
} from "../errors.js";
import {
  castBoolean,
  castInteger,
  castString,
  isBlank,
  isPlainObject,
  type Params,
  type PermitSpec,
  permit,
  rubyToI,
} from "../rails-params.js";
import type { AccountContext, Route } from "../router.js";
import {
  type AccountRecord,
  type ApiChannelRecord,
  assignedInboxes,
  defaultWorkingHours,
  generateSecureToken,
  type InboxRecord,
  type SimulatorStore,
  type WorkingHourRecord,
} from "../store.js";
import { renderInbox } from "../views.js";

/** `allowed_channel_types` (+ enterprise `voice`); only `api` is simulated. */
const CHATWOOT_CHANNEL_TYPES = ["web_widget", "api", "email", "line", "telegram", "whatsapp", "sms", "voice"];

/** `Limits::URL_LENGTH_LIMIT`. */
const URL_LENGTH_LIMIT = 2048;

const INBOX_NAME_FORMAT = /^\b[^/\\<>@]*\b$/m;
const INBOX_NAME_FORMAT_MESSAGE =
  "Name should not start or end with symbols, and it should not have < > / \\\\ @ characters.";

const DELETION_MESSAGE = "Your inbox deletion request will be processed in some time.";

/** `inbox_attributes` (+ enterprise `auto_assignment_config`) and `channel: [:type, *Channel::Api::EDITABLE_ATTRS]`. */
const INBOX_PERMIT: PermitSpec = [
  "name",
  "avatar",
  "greeting_enabled",
  "greeting_message",
  "enable_email_collect",
  "csat_survey_enabled",
  "enable_auto_assignment",
  "working_hours_enabled",
  "out_of_office_message",
  "timezone",
  "allow_messages_after_resolved",
  "lock_to_single_conversation",
  "portal_id",
  "sender_name_type",
  "business_name",
  {
    csat_config: [
      "display_type",
      "message",
      "button_text",
      {
        survey_rules: ["operator", { values: "scalars" }],
        template: ["name", "template_id", "created_at", "language"],
      },
    ],
  },
  { auto_assignment_config: ["max_assignment_limit"] },
  { channel: ["type", "webhook_url", "hmac_mandatory", { additional_attributes: "any" }] },
];

const WORKING_HOURS_PERMIT: PermitSpec = [
  {
    working_hours: [
      "day_of_week",
      "closed_all_day",
      "open_hour",
      "open_minutes",
      "close_hour",
      "close_minutes",
      "open_all_day",
    ],
  },
];

type Scalar = string | number | boolean | null;

const BOOLEAN_COLUMNS = {
  greeting_enabled: "greetingEnabled",
  enable_email_collect: "enableEmailCollect",
  csat_survey_enabled: "csatSurveyEnabled",
  enable_auto_assignment: "enableAutoAssignment",
  working_hours_enabled: "workingHoursEnabled",
  allow_messages_after_resolved: "allowMessagesAfterResolved",
} as const satisfies Record<string, keyof InboxRecord>;

const STRING_COLUMNS = {
  greeting_message: "greetingMessage",
  out_of_office_message: "outOfOfficeMessage",
  business_name: "businessName",
} as const satisfies Record<string, keyof InboxRecord>;

/** `permitted_params`: the string "null" in any top-level param means nil (CW-1567 workaround). */
function permittedParams(params: Params): Params {
  const nulled: Params = {};
  for (const [key, value] of Object.entries(params)) nulled[key] = value === "null" ? null : value;
  return permit(nulled, INBOX_PERMIT);
}

/** Inbox columns that may change through create/update, cast like ActiveRecord would. */
type InboxChanges = Partial<
  Omit<InboxRecord, "id" | "accountId" | "channelType" | "channelId" | "workingHours">
>;

/** Casts permitted inbox params into column values. Invalid enum values raise in Rails (500). */
function inboxChanges(permitted: Params): InboxChanges {
  const changes: Record<string, unknown> = {};
  if ("name" in permitted) changes["name"] = castString(permitted["name"] as Scalar);
  for (const [param, column] of Object.entries(BOOLEAN_COLUMNS)) {
    if (param in permitted) changes[column] = castBoolean(permitted[param] as Scalar);
  }
  for (const [param, column] of Object.entries(STRING_COLUMNS)) {
    if (param in permitted) changes[column] = castString(permitted[param] as Scalar);
  }
  if ("timezone" in permitted) changes["timezone"] = castString(permitted["timezone"] as Scalar);
  if ("lock_to_single_conversation" in permitted) {
    changes["lockToSingleConversation"] = castBoolean(permitted["lock_to_single_conversation"] as Scalar);
  }
  if ("sender_name_type" in permitted) {
    // `enum sender_name_type: { friendly: 0, professional: 1 }`: an unknown value raises ArgumentError.
    const value = permitted["sender_name_type"];
    const mapped = value === 0 ? "friendly" : value === 1 ? "professional" : value;
    if (mapped !== "friendly" && mapped !== "professional" && mapped !== null)
      throw railsPublicException(500);
    changes["senderNameType"] = mapped;
  }
  if ("portal_id" in permitted && castInteger(permitted["portal_id"] as Scalar) !== null) {
    // The simulator has no help-center portals, so any portal id violates the foreign key (500).
    throw railsPublicException(500);
  }
  if (isPlainObject(permitted["csat_config"])) changes["csatConfig"] = permitted["csat_config"];
  if (isPlainObject(permitted["auto_assignment_config"])) {
    changes["autoAssignmentConfig"] = permitted["auto_assignment_config"];
  }
  return changes as InboxChanges;
}

function isKnownTimezone(timezone: string | null): boolean {
  if (!timezone) return false;
  try {
    const resolved = new Intl.DateTimeFormat("en-US", { timeZone: timezone }).resolvedOptions().timeZone;
    // Intl is case-insensitive; TZInfo identifiers are not.
    return resolved.toLowerCase() !== timezone.toLowerCase() || resolved === timezone;
  } catch {
    return false;
  }
}

/** `Inbox` validations for an API inbox, in declaration order. */
function inboxErrors(inbox: { name: string | null; timezone: string | null }, hasChannel: boolean) {
  const errors: Array<{ attribute: string; fullMessage: string }> = [];
  if (isBlank(inbox.name)) errors.push({ attribute: "name", fullMessage: "Name can't be blank" });
  if (hasChannel && !INBOX_NAME_FORMAT.test(inbox.name ?? "")) {
    errors.push({ attribute: "name", fullMessage: INBOX_NAME_FORMAT_MESSAGE });
  }
  if (!isKnownTimezone(inbox.timezone)) {
    errors.push({ attribute: "timezone", fullMessage: "Timezone is not included in the list" });
  }
  if (!hasChannel) errors.push({ attribute: "channel", fullMessage: "Channel must exist" });
  return errors;
}

/** `Channel::Api` columns from permitted `channel` params, checked like `create!`/`update!` would. */
function apiChannelChanges(channelParams: Params): Partial<ApiChannelRecord> {
  const changes: Partial<ApiChannelRecord> = {};
  if ("webhook_url" in channelParams) changes.webhookUrl = castString(channelParams["webhook_url"] as Scalar);
  // The bridge's webhook capability secret travels in the URL: a secret of the tests like any other.
  registerSecret(webhookUrlSecret(changes.webhookUrl), "a webhook capability secret");
  if ("hmac_mandatory" in channelParams)
    changes.hmacMandatory = castBoolean(channelParams["hmac_mandatory"] as Scalar);
  if (isPlainObject(channelParams["additional_attributes"])) {
    changes.additionalAttributes = channelParams["additional_attributes"];
  }
  if ((changes.webhookUrl?.length ?? 0) > URL_LENGTH_LIMIT) {
    throw recordInvalid([
      {
        attribute: "webhook_url",
        fullMessage: `Webhook url is too long (maximum is ${URL_LENGTH_LIMIT} characters)`,
      },
    ]);
  }
  return changes;
}

/**
 * `InboxesController#create` after authorization: creates the channel, then the inbox, in one
 * transaction (nothing is stored when anything fails). Returns the stored inbox.
 */
export function createApiInbox(store: SimulatorStore, account: AccountRecord, params: Params): InboxRecord {
  const permitted = permittedParams(params);
  const channelParams = permitted["channel"];
  // `permitted_params[:channel][:type]` on a missing channel is a NoMethodError in Chatwoot.
  if (!isPlainObject(channelParams)) throw railsPublicException(500);
  const type = channelParams["type"];
  if (type !== "api" && typeof type === "string" && CHATWOOT_CHANNEL_TYPES.includes(type)) {
    throw new ChatwootHttpError(422, {
      message: `Channel type '${type}' is not supported by the Chatwoot simulator (only 'api')`,
      attributes: ["channel"],
    });
  }
  const hasChannel = type === "api";
  const channelColumns = hasChannel ? apiChannelChanges(channelParams) : {};
  const changes = inboxChanges(permitted);
  const candidate = {
    name: changes.name ?? null,
    timezone: "timezone" in changes ? (changes.timezone ?? null) : "UTC",
  };
  const errors = inboxErrors(candidate, hasChannel);
  if (errors.length > 0) throw recordInvalid(errors);
  // NOT NULL columns given an explicit null fail in the database, not in validations.
  if (changes.lockToSingleConversation === null || changes.senderNameType === null)
    throw railsPublicException(500);

  const now = new Date();
  const channel: ApiChannelRecord = {
    id: store.nextId("channel_api"),
    accountId: account.id,
    webhookUrl: null,
    hmacMandatory: false,
    hmacToken: generateSecureToken(),
    identifier: generateSecureToken(false),
    additionalAttributes: {},
    secret: generateSecureToken(),
    webhookSigning: undefined,
    ...channelColumns,
    createdAt: now,
    updatedAt: now,
  };
  const inbox: InboxRecord = {
    id: store.nextId("inboxes"),
    accountId: account.id,
    channelType: "Channel::Api",
    channelId: channel.id,
    name: "",
    greetingEnabled: false,
    greetingMessage: null,
    enableEmailCollect: true,
    csatSurveyEnabled: false,
    csatConfig: {},
    enableAutoAssignment: true,
    autoAssignmentConfig: {},
    workingHoursEnabled: false,
    outOfOfficeMessage: null,
    timezone: "UTC",
    allowMessagesAfterResolved: true,
    lockToSingleConversation: false,
    senderNameType: "friendly",
    businessName: null,
    ...(changes as Partial<InboxRecord>),
    workingHours: defaultWorkingHours(),
    memberUserIds: new Set(),
    createdAt: now,
    updatedAt: now,
  };
  store.apiChannels.set(channel.id, channel);
  store.inboxes.set(inbox.id, inbox);
  return inbox;
}

/** `format_csat_config`: fills defaults for the keys the dashboard expects. */
function formatCsatConfig(config: Params): Record<string, unknown> {
  const rules = isPlainObject(config["survey_rules"]) ? config["survey_rules"] : {};
  const formatted: Record<string, unknown> = {
    display_type: config["display_type"] || "emoji",
    message: config["message"] || "",
    button_text: config["button_text"] || "Please rate us",
    survey_rules: { operator: rules["operator"] || "contains", values: rules["values"] || [] },
  };
  if (!isBlank(config["template"])) formatted["template"] = config["template"];
  return formatted;
}

/** `OutOfOffisable#update_working_hours`: updates the listed days; an unknown day is a 500 (nil.update). */
function updateWorkingHours(inbox: InboxRecord, items: Params[]) {
  const casts: Array<[string, keyof WorkingHourRecord, (v: Scalar) => unknown]> = [
    ["closed_all_day", "closedAllDay", castBoolean],
    ["open_hour", "openHour", castInteger],
    ["open_minutes", "openMinutes", castInteger],
    ["close_hour", "closeHour", castInteger],
    ["close_minutes", "closeMinutes", castInteger],
    ["open_all_day", "openAllDay", castBoolean],
  ];
  for (const item of items) {
    const day = inbox.workingHours.find((wh) => wh.dayOfWeek === castInteger(item["day_of_week"] as Scalar));
    if (!day) throw railsPublicException(500);
    for (const [param, column, cast] of casts) {
      if (param in item) Object.assign(day, { [column]: cast(item[param] as Scalar) });
    }
  }
}

/** `InboxesController#update` after authorization. Like Chatwoot, the inbox is saved before the channel. */
export function updateApiInbox(store: SimulatorStore, inbox: InboxRecord, params: Params): InboxRecord {
  const permitted = permittedParams(params);
  const { channel: channelParams, csat_config: csatConfig, ...inboxParams } = permitted;
  const changes = inboxChanges(inboxParams);
  if (isPlainObject(csatConfig) && !isBlank(csatConfig)) changes.csatConfig = formatCsatConfig(csatConfig);
  const candidate = {
    name: "name" in changes ? (changes.name ?? null) : inbox.name,
    timezone: "timezone" in changes ? (changes.timezone ?? null) : inbox.timezone,
  };
  const errors = inboxErrors(candidate, true);
  if (errors.length > 0) throw recordInvalid(errors);
  if (changes.lockToSingleConversation === null || changes.senderNameType === null)
    throw railsPublicException(500);
  Object.assign(inbox, changes, { updatedAt: new Date() });

  if (!isBlank(params["working_hours"])) {
    const hours = permit(params, WORKING_HOURS_PERMIT)["working_hours"];
    updateWorkingHours(inbox, Array.isArray(hours) ? (hours as Params[]) : []);
  }

  // `channel.type` is ignored on update; only Channel::Api::EDITABLE_ATTRS change.
  const channel = store.apiChannels.get(inbox.channelId);
  if (channel && isPlainObject(channelParams) && !isBlank(channelParams)) {
    Object.assign(channel, apiChannelChanges(channelParams), { updatedAt: new Date() });
  }
  return inbox;
}

/** `fetch_inbox`: the account's inbox (404), which the user must be allowed to see (`show?`, 401). */
function fetchInbox({ store, account, accountUser, params }: AccountContext): InboxRecord {
  const inbox = store.inboxes.get(rubyToI(params["id"]));
  if (!inbox || inbox.accountId !== account.id) throw recordNotFound();
  if (!assignedInboxes(store, accountUser).includes(inbox)) throw notAuthorized();
  return inbox;
}

function requireAdministrator({ accountUser }: AccountContext) {
  if (accountUser.role !== "administrator") throw notAuthorized();
}

/**
 * Removes an inbox, its channel, contact inboxes, conversations, messages and attachments
 * (Chatwoot does this in `DeleteObjectJob`; the simulator does it at once). Contacts stay.
 */
export function deleteInbox(store: SimulatorStore, inbox: InboxRecord) {
  store.inboxes.delete(inbox.id);
  store.apiChannels.delete(inbox.channelId);
  for (const [id, contactInbox] of store.contactInboxes)
    if (contactInbox.inboxId === inbox.id) store.contactInboxes.delete(id);
  for (const [id, conversation] of store.conversations)
    if (conversation.inboxId === inbox.id) store.conversations.delete(id);
  for (const [id, message] of store.messages) {
    if (message.inboxId !== inbox.id) continue;
    store.messages.delete(id);
    for (const attachment of store.attachments.group(id)) store.attachments.delete(attachment.id);
  }
}

/** `order_by_name`: `lower(name) ASC`, ties by id. */
export function byName(a: InboxRecord, b: InboxRecord) {
  const left = a.name.toLowerCase();
  const right = b.name.toLowerCase();
  return left < right ? -1 : left > right ? 1 : a.id - b.id;
}

const COLLECTION = "/api/v1/accounts/:account_id/inboxes";
const MEMBER = "/api/v1/accounts/:account_id/inboxes/:id";

export const inboxRoutes: Route[] = [
  {
    method: "GET",
    pattern: COLLECTION,
    scope: "account",
    handle: ({ store, accountUser }) => {
      const administrator = accountUser.role === "administrator";
      const inboxes = assignedInboxes(store, accountUser).sort(byName);
      return { body: { payload: inboxes.map((inbox) => renderInbox(store, inbox, { administrator })) } };
    },
  },
  {
    method: "POST",
    pattern: COLLECTION,
    scope: "account",
    handle: (ctx) => {
      requireAdministrator(ctx);
      const inbox = createApiInbox(ctx.store, ctx.account, ctx.params);
      return { body: renderInbox(ctx.store, inbox, { administrator: true }) };
    },
  },
  {
    method: "GET",
    pattern: MEMBER,
    scope: "account",
    handle: (ctx) => {
      const inbox = fetchInbox(ctx);
      return {
        body: renderInbox(ctx.store, inbox, { administrator: ctx.accountUser.role === "administrator" }),
      };
    },
  },
  {
    method: ["PATCH", "PUT"],
    pattern: MEMBER,
    scope: "account",
    handle: (ctx) => {
      const inbox = fetchInbox(ctx);
      requireAdministrator(ctx);
      updateApiInbox(ctx.store, inbox, ctx.params);
      return { body: renderInbox(ctx.store, inbox, { administrator: true }) };
    },
  },
  {
    method: "DELETE",
    pattern: MEMBER,
    scope: "account",
    handle: (ctx) => {
      const inbox = fetchInbox(ctx);
      requireAdministrator(ctx);
      deleteInbox(ctx.store, inbox);
      return { body: { message: DELETION_MESSAGE } };
    },
  },
  {
    // 4.13.0 (`config/routes.rb` `post :reset_secret`, `InboxesController#reset_secret`, `InboxPolicy#reset_secret?`):
    // administrators only; an inbox whose channel has no secret answers `head :not_found`; the new secret is rendered.
    method: "POST",
    pattern: `${MEMBER}/reset_secret`,
    scope: "account",
    handle: (ctx) => {
      if (!ctx.store.settings.features.inboxSecret) throw railsPublicException(404);
      const inbox = fetchInbox(ctx);
      requireAdministrator(ctx);
      const channel = ctx.store.apiChannels.get(inbox.channelId);
      if (!channel) return { status: 404, raw: "" };
      channel.secret = generateSecureToken();
      channel.updatedAt = new Date();
      return { body: renderInbox(ctx.store, inbox, { administrator: true }) };
    },
  },
];

/** The `secret` query parameter of a webhook URL, if it has one. */
function webhookUrlSecret(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    return new URL(url).searchParams.get("secret");
  } catch {
    return null;
  }
}
