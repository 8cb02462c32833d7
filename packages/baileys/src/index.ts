/**
 * `@ryze/chatwoot-baileys`: Baileys 7 for `@ryze/chatwoot-core`. `attachBaileys` feeds a socket's events to
 * `bridge.ingest`, `createBaileysGateway` sends the bridge's agent replies through the socket.
 */
export {
  type AttachBaileysOptions,
  attachBaileys,
  type DetachBaileys,
  RECEIPT_STATUS_OF_BAILEYS,
} from "./attach.js";
export {
  type BaileysGateway,
  type BaileysGatewayOptions,
  type BaileysSocketSource,
  createBaileysGateway,
} from "./gateway.js";
export type { MediaDownloader } from "./media.js";
export type { BaileysEventSocket, BaileysSendSocket } from "./socket.js";
