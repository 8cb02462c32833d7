/**
 * The Chatwoot simulator: a real HTTP server with in-memory state that answers like Chatwoot 4.10
 * where the bridge talks to it, plus fault injection. Start one with `startChatwootSimulator()`.
 */

export type { FaultOptions, InjectedFault, PathPattern, SimulatorFaults } from "./faults.js";
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
} from "./server.js";
export type { AccountRole, AccountStatus } from "./store.js";
