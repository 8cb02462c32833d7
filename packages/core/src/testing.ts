/**
 * `@ryze/chatwoot-core/testing`: test doubles and seams (the memory store and its internals, the Chatwoot
 * client and its error, the rate limiter, the AAD of sealed columns). Not for production code.
 */
export { type ChatwootApi, createChatwootApi } from "./chatwoot/api.js";
export { type ChatwootFailure, ChatwootRequestError } from "./chatwoot/failure.js";
export { secretAad } from "./crypto/index.js";
export { createRateLimiter, type RateLimiter } from "./http/rate-limit.js";
export { createRetention, RETENTION_LEASE, type RetentionOptions } from "./routing/retention.js";
export {
  createMemoryStore,
  type MemoryLeaseRecord,
  type MemoryOutboxRecord,
  type MemoryStore,
  type MemoryStoreInternals,
} from "./store/memory.js";
