import { once } from "node:events";
import { connect } from "node:net";
import type { HttpRequest } from "@ryze/chatwoot-core/adapter";
import { describe, expect, it } from "vitest";
import type { AdapterMount } from "./harness.js";

/** An adapter passes a client that goes away to the core as an aborted `AbortSignal`. */
export function runAdapterAbortConformance(mount: AdapterMount): void {
  describe(`client aborts on ${mount.name}`, () => {
    it("aborts the request's signal when the client goes away", async () => {
      let entered!: (request: HttpRequest) => void;
      const handled = new Promise<HttpRequest>((resolve) => {
        entered = resolve;
      });
      const handler = {
        prefix: "/api/chatwoot",
        http: {
          async handle(request: HttpRequest) {
            entered(request);
            // Waits for the client to go away, as a slow activation would.
            await new Promise((resolve) =>
              request.signal?.addEventListener("abort", resolve, { once: true }),
            );
            return { status: 200, headers: {}, body: "too late" };
          },
        },
      };
      const server = await mount.start({ handlers: [handler], hostBodyParser: false });
      try {
        const { port, hostname } = new URL(server.url);
        const socket = connect(Number(port), hostname);
        socket.write("GET /api/chatwoot/list/suporte HTTP/1.1\r\nHost: localhost\r\n\r\n");
        const request = await handled;
        expect(request.signal?.aborted).toBe(false);
        const aborted = once(request.signal!, "abort");
        socket.destroy();
        await aborted;
        expect(request.signal?.aborted).toBe(true);
      } finally {
        await server.close();
      }
    });
  });
}
