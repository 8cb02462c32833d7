/**
 * `@ryze/chatwoot-core`: what a host uses. The factory and its types, the ports a host implements (store,
 * directory, gateway, cipher), the error class, and the WhatsApp event envelope (`docs/events.md`).
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
export type { Clock, Logger } from "./observability/index.js";
export type {
  MessageExchangeEvent,
  MessageStatusEvent,
  ReceiptStatus,
  WhatsAppEvent,
  WhatsAppMessage,
} from "./routing/events.js";
export type { WhatsAppGateway, WhatsAppSend } from "./routing/gateway.js";
export type { IngestResult } from "./routing/service.js";
export type {
  ChatMapping,
  EnqueueInput,
  IntegrationPatch,
  IntegrationRow,
  IntegrationStore,
  Lease,
  LeaseStore,
  MappingStore,
  MessageMapping,
  OutboxItem,
  OutboxStatus,
  OutboxStore,
  StoragePort,
} from "./store/ports.js";
