// Every import of the example from outside examples/baileys, in one place.

export {
  type AttachBaileysOptions,
  attachBaileys,
  type BaileysEventSocket,
  type BaileysSendSocket,
  createBaileysGateway,
  type DetachBaileys,
} from "@ryze/chatwoot-baileys";
export {
  type ExampleConfig,
  type ExampleRuntime,
  listenOnNode,
  type RuntimeOptions,
  readConfig,
  runExample,
} from "@ryze/example-shared";
export {
  type AuthenticationState,
  type ConnectionState,
  DisconnectReason,
  default as makeWASocket,
  type UserFacingSocketConfig,
  useMultiFileAuthState,
} from "baileys";
export { buildApp as buildExpressApp, type ExpressExample } from "../../express/src/app.js";
