/**
 * Chatwoot's template messages: messages it writes itself (`message_type` template, no sender) and sends to
 * the contact like an agent's reply (`Base::SendOnChannelService#outgoing_message?` is `outgoing? ||
 * template?`; for an API inbox the webhook is the delivery):
 *
 * - `MessageTemplates::HookExecutionService` (`app/services/message_templates/hook_execution_service.rb`), run
 *   after every message is created (`Message#execute_message_template_hooks`): the out-of-office message
 *   (`template/out_of_office.rb`) and the greeting (`template/greeting.rb`). Email collect is for web widgets only.
 * - `CsatSurveyListener` → `CsatSurveyService` (`app/listeners/csat_survey_listener.rb`,
 *   `app/services/csat_survey_service.rb`, `template/csat_survey.rb`): the CSAT survey once a conversation is
 *   resolved, a job after the status change.
 * - The survey link of a CSAT message, which webhooks (not cable or REST payloads) carry in `content`
 *   (`app/presenters/message_content_presenter.rb`, `<FRONTEND_URL>/survey/responses/<conversation uuid>`).
 *
 * Template content goes through Liquid like an agent's (`app/models/concerns/liquidable.rb`).
 */
import { createActivityMessage, createTemplateMessage } from "./messages.js";
import type { EventListener, SimulatorRuntime } from "./runtime.js";
import { type ConversationRecord, type InboxRecord, type MessageRecord, messagesOf } from "./store.js";
import { canReply } from "./views-messaging.js";

/** `I18n.t('conversations.templates.csat_input_message_body')` (config/locales/en.yml). */
export const CSAT_DEFAULT_MESSAGE = "Please rate the conversation";
/** `I18n.t('conversations.activity.csat.not_sent_due_to_messaging_window')`. */
const CSAT_NOT_SENT = "CSAT survey not sent due to outgoing message restrictions";

/** The inbox's local weekday and time of day (`Time.zone.now.in_time_zone(inbox.timezone)`); UTC for unknown zones. */
function localTime(timezone: string, now: Date): { weekday: number; seconds: number } {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      weekday: "short",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      hourCycle: "h23",
    }).formatToParts(now);
  } catch {
    // Rails also knows its own zone names ("Brasilia"); the simulator reads IANA names only.
    return localTime("UTC", now);
  }
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "0";
  const weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(part("weekday"));
  return {
    weekday,
    seconds: Number(part("hour")) * 3600 + Number(part("minute")) * 60 + Number(part("second")),
  };
}

/**
 * `OutOfOffisable#out_of_office?`: working hours enabled and today's row closed now (`WorkingHour#open_at?`: between
 * the opening and the closing minute, both included; `open_all_day` is 00:00–23:59).
 */
export function outOfOffice(inbox: InboxRecord, now: Date): boolean {
  if (!inbox.workingHoursEnabled) return false;
  const { weekday, seconds } = localTime(inbox.timezone, now);
  const today = inbox.workingHours.find((row) => row.dayOfWeek === weekday);
  if (!today || today.closedAllDay) return true;
  const [openHour, openMinutes, closeHour, closeMinutes] = today.openAllDay
    ? [0, 0, 23, 59]
    : [today.openHour ?? 0, today.openMinutes ?? 0, today.closeHour ?? 0, today.closeMinutes ?? 0];
  const open = openHour * 3600 + openMinutes * 60;
  const close = closeHour * 3600 + closeMinutes * 60;
  return !(seconds >= open && seconds <= close);
}

const present = (text: string | null | undefined): text is string => !!text && text.trim() !== "";

/** `MessageTemplates::HookExecutionService#perform` for a message just created. */
export function executeTemplateHooks(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  message: MessageRecord,
): void {
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  if (!inbox) return;
  const messages = messagesOf(rt.store, conversation.id);
  // `return if conversation.last_incoming_message.blank?`
  if (!messages.some((m) => m.messageType === "incoming")) return;
  const now = rt.now();
  // should_send_out_of_office_message?: an incoming message, no public reply in the last 5 minutes, no template
  // message today (`Message.today`: the UTC date), working hours closed now, a message to send.
  const today = now.toISOString().slice(0, 10);
  if (
    message.messageType === "incoming" &&
    !messages.some(
      (m) => m.messageType === "outgoing" && !m.private && m.createdAt.getTime() > now.getTime() - 5 * 60_000,
    ) &&
    outOfOffice(inbox, now) &&
    !messages.some((m) => m.messageType === "template" && m.createdAt.toISOString().slice(0, 10) === today) &&
    present(inbox.outOfOfficeMessage)
  ) {
    createTemplateMessage(rt, conversation, { content: inbox.outOfOfficeMessage });
  }
  // should_send_greeting?: no outgoing nor template message yet (first_message_from_contact?), greeting enabled.
  const current = messagesOf(rt.store, conversation.id);
  if (
    !current.some((m) => m.messageType === "outgoing" || m.messageType === "template") &&
    inbox.greetingEnabled &&
    present(inbox.greetingMessage)
  ) {
    createTemplateMessage(rt, conversation, { content: inbox.greetingMessage });
  }
}

/** `csat_config`, as stored. */
function csatConfigOf(inbox: InboxRecord): Record<string, unknown> {
  return inbox.csatConfig ?? {};
}

/**
 * `CsatSurveyService#csat_allowed_by_survey_rules?` against the conversation's labels (the simulator keeps none, so
 * a `contains` rule with values never matches and a `does_not_contain` rule always does).
 */
function allowedBySurveyRules(config: Record<string, unknown>): boolean {
  const rules = config["survey_rules"] as { operator?: unknown; values?: unknown } | undefined;
  const values = Array.isArray(rules?.values) ? rules.values : [];
  if (values.length === 0) return true;
  const labels: string[] = [];
  const operator = rules?.operator ?? "contains";
  if (operator === "contains") return values.some((value) => labels.includes(String(value)));
  if (operator === "does_not_contain") return values.every((value) => !labels.includes(String(value)));
  return true;
}

/** `CsatSurveyService#perform` for an API inbox. */
export function sendCsatSurvey(rt: SimulatorRuntime, conversation: ConversationRecord): void {
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  if (!inbox || conversation.status !== "resolved" || !inbox.csatSurveyEnabled) return;
  if (messagesOf(rt.store, conversation.id).some((m) => m.contentType === "input_csat")) return;
  const config = csatConfigOf(inbox);
  if (!allowedBySurveyRules(config)) return;
  if (!canReply(rt, conversation)) {
    createActivityMessage(rt, conversation, CSAT_NOT_SENT);
    return;
  }
  const custom = config["message"];
  createTemplateMessage(rt, conversation, {
    content: present(custom as string) ? String(custom) : CSAT_DEFAULT_MESSAGE,
    contentType: "input_csat",
    contentAttributes: { display_type: (config["display_type"] as string | undefined) ?? "emoji" },
  });
}

/** `CsatSurveyListener#conversation_status_changed` (async dispatcher): a resolved conversation gets its survey. */
export function createCsatSurveyListener(rt: SimulatorRuntime): EventListener {
  return (event) => {
    if (event.name !== "conversation.status_changed" || event.conversation.status !== "resolved") return;
    sendCsatSurvey(rt, event.conversation);
  };
}

/**
 * `MessageContentPresenter#content_with_survey_link`: a CSAT message (not in a web widget) as webhooks carry it, the
 * custom message or the default sentence with `<FRONTEND_URL>/survey/responses/<conversation uuid>`; other messages'
 * content unchanged. FRONTEND_URL is the simulator's URL.
 */
export function contentWithSurveyLink(rt: SimulatorRuntime, message: MessageRecord): string | null {
  if (message.contentType !== "input_csat") return message.content;
  const conversation = rt.store.conversations.get(message.conversationId);
  const inbox = rt.store.inboxes.get(message.inboxId);
  if (!conversation || !inbox) return message.content;
  const link = `${rt.baseUrl}/survey/responses/${conversation.uuid}`;
  const custom = csatConfigOf(inbox)["message"];
  return present(custom as string) ? `${String(custom)} ${link}` : `Please rate this conversation, ${link}`;
}
