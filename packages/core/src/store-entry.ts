/**
 * `@ryze/chatwoot-core/store`: what a store implementation needs: the storage ports and the rows and values they
 * carry (`docs/storage.md`). A host passes a store as `StoragePort`, which the main entry exports; only a package
 * that implements the ports (as `@ryze/chatwoot-knex` does) imports this entry.
 */
export type {
  ChatHistory,
  ChatMapping,
  EnqueueInput,
  HistoryChange,
  HistoryProgress,
  IdentityLink,
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
  OutboxSummary,
  StoragePort,
} from "./store/ports.js";
