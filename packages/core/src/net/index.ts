export { createPolicyAgent, policyConnector } from "./agent.js";
export {
  createNetworkPolicy,
  isCidr,
  isNetworkRefusedError,
  type LookupFunction,
  type NetworkPolicy,
  type NetworkPolicyOptions,
  NetworkRefusedError,
  networkOptionsSchema,
} from "./policy.js";
export { websocketOptions } from "./websocket.js";
