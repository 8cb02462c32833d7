import type { ClientRequestArgs } from "node:http";
import {
  isIP,
  type LookupFunction,
  connect as netConnect,
  type Socket,
  type TcpNetConnectOpts,
} from "node:net";
import { type ConnectionOptions, connect as tlsConnect } from "node:tls";
import type { NetworkPolicy } from "./policy.js";

type CreateConnection = NonNullable<ClientRequestArgs["createConnection"]>;

/**
 * Options for a `ws` client (`new WebSocket(url, protocols, options)`, or @anycable/core's `websocketOptions`) whose
 * connection is checked by the policy: `ws` hands `createConnection` to `http.request`, which calls it with the
 * target host. An address is refused before any socket exists; a name is resolved through the policy's lookup, so
 * what is checked is the address connected to. `secure`: the URL's scheme is wss (or https).
 */
export function websocketOptions(
  policy: NetworkPolicy,
  secure: boolean,
): { createConnection: CreateConnection } {
  const createConnection = (
    options: ClientRequestArgs & { servername?: string },
    oncreate: (error: Error | null, socket?: Socket) => void,
  ): Socket | undefined => {
    const host = String(options.host ?? options.hostname ?? "");
    const refused = policy.checkHost(host);
    if (refused) {
      oncreate(refused); // http.request reports it as the request's error
      return undefined;
    }
    const connectOptions = {
      ...(options as unknown as TcpNetConnectOpts & ConnectionOptions),
      host,
      path: undefined,
      lookup: policy.lookup as unknown as LookupFunction,
    };
    if (!secure) return netConnect(connectOptions);
    // As ws does: SNI with the name, none for an address.
    if (!options.servername && options.servername !== "") connectOptions.servername = isIP(host) ? "" : host;
    return tlsConnect(connectOptions);
  };
  return { createConnection: createConnection as unknown as CreateConnection };
}
