/**
 * The Chatwoot simulator: a real HTTP server with in-memory state that answers like Chatwoot 4.10 to
 * 4.13 (`version`, default the newest) where the bridge talks to it (REST, ActionCable at `/cable`, API-inbox webhooks), plus fault
 * injection and test controls. Start one with `startChatwootSimulator()`.
 */

export type {
  AgentAttachment,
  AgentMessageInput,
  AgentMessageRef,
} from "./agent-actions.js";
export type { CableSubscriptionInfo, SimulatorCable } from "./cable.js";
export type { FaultOptions, InjectedFault, PathPattern, SimulatorFaults } from "./faults.js";
export type { RecordedBroadcast } from "./listeners.js";
export type {
  BroadcastFilter,
  ChatwootMessagingApi,
  WaitOptions,
  WebhookDeliveryFilter,
} from "./messaging-api.js";
export {
  type AccountMembership,
  type ChatwootSimulator,
  type ChatwootSimulatorOptions,
  type CreateUserOptions,
  type RecordedRequest,
  type RequestFilter,
  type SimulatedAccount,
  type SimulatedUser,
  startChatwootSimulator,
  type TypingInput,
} from "./server.js";
export type {
  AccountRole,
  AccountStatus,
  ConversationStatus,
  MessageStatus,
  WebhookSigning,
} from "./store.js";
export { CHATWOOT_VERSIONS, type ChatwootVersion, NEWEST_CHATWOOT_VERSION } from "./versions.js";
export { type SimulatorWebhooks, type WebhookDelivery, webhookSignature } from "./webhooks.js";
