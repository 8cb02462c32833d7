/**
 * `@ryze/chatwoot-core`: what a host uses. The factory and its types, the ports a host implements (store,
 * directory, gateway, cipher; a store implementation
 * finds the storage ports' types in `@ryze/chatwoot-core/store`), the error class, and the WhatsApp event envelope (`docs/events.md`).
 * Framework adapters import `@ryze/chatwoot-core/adapter`; tests import `@ryze/chatwoot-core/testing`.
 */
export type { ActivateBody } from "./activation/schema.js";
export {
  type ChatwootBridge,
  type ChatwootBridgeOptions,
  createChatwootBridge,
  type InlineActivationResult,
} from "./bridge.js";
export { type Cipher, createKeyring, type KeyringOptions, parseKey } from "./crypto/index.js";
export {
  createStaticDirectory,
  type InstanceDirectory,
  type InstanceInfo,
  type Principal,
  type StaticDirectoryOptions,
} from "./directory/index.js";
export { BridgeError, type ErrorCode, isBridgeError } from "./errors/index.js";
export type { RotateKeysResult } from "./integrations/index.js";
export type { HealthReport } from "./observability/health.js";
export type { Clock, Logger } from "./observability/index.js";
export type {
  ContactIdentityEvent,
  MessageExchangeEvent,
  MessageStatusEvent,
  ReceiptStatus,
  WhatsAppEvent,
  WhatsAppMessage,
} from "./routing/events.js";
export type { WhatsAppGateway, WhatsAppSend } from "./routing/gateway.js";
export type { IngestResult } from "./routing/service.js";
export type { StoragePort } from "./store/ports.js";
