/**
 * Chatwoot's jbuilder views as functions from records to JSON: key order, nulls and conditional keys
 * follow the views at 4.10 (`app/views/api/v1/models/_user.json.jbuilder`, `_inbox.json.jbuilder`).
 */
import {
  type AccountUserRecord,
  accountUsersOf,
  activeAccountUser,
  type InboxRecord,
  type SimulatorStore,
  type UserRecord,
  webhookSigningOf,
} from "./store.js";

/** `_user.json.jbuilder` as rendered by `GET /api/v1/profile` (CHATWOOT_INBOX_HMAC_KEY not configured). */
export function renderUser(store: SimulatorStore, user: UserRecord): Record<string, unknown> {
  const active = activeAccountUser(store, user.id);
  return {
    access_token: user.accessToken,
    account_id: active?.accountId ?? null,
    available_name: user.displayName?.trim() ? user.displayName : user.name,
    avatar_url: "",
    confirmed: true,
    display_name: user.displayName,
    message_signature: user.messageSignature,
    email: user.email,
    id: user.id,
    inviter_id: active?.inviterId ?? null,
    name: user.name,
    provider: "email",
    pubsub_token: user.pubsubToken,
    // Rendered only when present (`if resource.custom_attributes.present?`).
    ...(Object.keys(user.customAttributes).length > 0 ? { custom_attributes: user.customAttributes } : {}),
    role: active?.role ?? null,
    ui_settings: user.uiSettings,
    uid: user.email,
    type: user.type,
    accounts: accountUsersOf(store, user.id).map((au) => renderAccountMembership(store, au)),
  };
}

function renderAccountMembership(store: SimulatorStore, au: AccountUserRecord): Record<string, unknown> {
  const account = store.accounts.get(au.accountId);
  return {
    id: au.accountId,
    name: account?.name ?? null,
    status: account?.status ?? null,
    active_at: au.activeAt.toISOString(),
    role: au.role,
    permissions: [au.role],
    availability: au.availability,
    availability_status: au.availabilityStatus,
    auto_offline: au.autoOffline,
    // Enterprise `_account_user` partial (the official images ship the enterprise folder).
    custom_role_id: null,
    custom_role: null,
  };
}

/**
 * `_inbox.json.jbuilder` for an API inbox. `administrator` is the caller's role in the account:
 * `hmac_token` is rendered for administrators only.
 */
export function renderInbox(
  store: SimulatorStore,
  inbox: InboxRecord,
  viewer: { administrator: boolean },
): Record<string, unknown> {
  const channel = store.apiChannels.get(inbox.channelId);
  return {
    id: inbox.id,
    avatar_url: "",
    channel_id: inbox.channelId,
    name: inbox.name,
    channel_type: inbox.channelType,
    greeting_enabled: inbox.greetingEnabled,
    greeting_message: inbox.greetingMessage,
    working_hours_enabled: inbox.workingHoursEnabled,
    enable_email_collect: inbox.enableEmailCollect,
    csat_survey_enabled: inbox.csatSurveyEnabled,
    csat_config: inbox.csatConfig,
    enable_auto_assignment: inbox.enableAutoAssignment,
    auto_assignment_config: inbox.autoAssignmentConfig,
    out_of_office_message: inbox.outOfOfficeMessage,
    working_hours: inbox.workingHours.map((wh) => ({
      day_of_week: wh.dayOfWeek,
      closed_all_day: wh.closedAllDay,
      open_hour: wh.openHour,
      open_minutes: wh.openMinutes,
      close_hour: wh.closeHour,
      close_minutes: wh.closeMinutes,
      open_all_day: wh.openAllDay,
    })),
    timezone: inbox.timezone,
    // Only Twilio, SMS, LINE and WhatsApp inboxes have a callback URL.
    callback_webhook_url: null,
    allow_messages_after_resolved: inbox.allowMessagesAfterResolved,
    lock_to_single_conversation: inbox.lockToSingleConversation,
    sender_name_type: inbox.senderNameType,
    business_name: inbox.businessName,
    // Web-widget and Twilio attributes: `channel.try(...)` is nil for API channels, except hmac_mandatory.
    allowed_domains: null,
    widget_color: null,
    website_url: null,
    hmac_mandatory: channel?.hmacMandatory ?? null,
    welcome_title: null,
    welcome_tagline: null,
    web_widget_script: null,
    website_token: null,
    selected_feature_flags: null,
    reply_time: null,
    messaging_service_sid: null,
    phone_number: null,
    ...(viewer.administrator ? { hmac_token: channel?.hmacToken ?? null } : {}),
    // Chatwoot ≥ 4.13 renders the webhook-signing secret to administrators (`json.secret … if
    // Current.account_user&.administrator?`); before 4.13 there is no such column, unless the simulator is told to sign.
    ...(viewer.administrator &&
    channel &&
    (store.settings.features.inboxSecret || webhookSigningOf(store, channel) !== "off")
      ? { secret: channel.secret }
      : {}),
    webhook_url: channel?.webhookUrl ?? null,
    inbox_identifier: channel?.identifier ?? null,
    additional_attributes: channel?.additionalAttributes ?? {},
    provider: null,
  };
}
