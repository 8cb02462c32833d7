import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { chatwootExpress } from "@ryze/chatwoot-express";
import type { AdapterMount, StartedServer } from "@ryze/chatwoot-testkit/conformance";
import express from "express";

const HOST_NOT_FOUND = '{"host":"not found"}';

async function listening(server: Server): Promise<StartedServer> {
  if (!server.listening) await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Express with the adapter mounted, as the HTTP conformance suite expects. */
export const expressMount: AdapterMount = {
  name: "express",
  async start({ handlers, hostBodyParser }) {
    const app = express();
    if (hostBodyParser) app.use(express.json({ limit: "1mb" }));
    for (const handler of handlers) app.use(chatwootExpress(handler));
    app.get("/host/ping", (_req, res) => {
      res.type("text/plain").send("pong");
    });
    app.use((_req: express.Request, res: express.Response) => {
      res.status(404).type("application/json").send(HOST_NOT_FOUND);
    });
    return listening(app.listen(0, "127.0.0.1"));
  },
};
