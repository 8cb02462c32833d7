import { once } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNetworkPolicy } from "../net/index.js";
import { createMediaFetcher, MediaUnavailableError } from "./media.js";

interface Listener {
  server: Server;
  url: string;
  connections: number;
  /** Bytes the handler managed to write before the client went away (the endless route). */
  written: number;
  closedEarly: Promise<void>;
}

async function listen(
  host: string,
  route: (listener: Listener, path: string, res: ServerResponse) => void,
): Promise<Listener> {
  let closed!: () => void;
  const listener: Listener = {
    server: createServer(),
    url: "",
    connections: 0,
    written: 0,
    closedEarly: new Promise<void>((resolve) => {
      closed = resolve;
    }),
  };
  listener.server.on("request", (req, res) => {
    res.on("close", () => {
      if (!res.writableFinished) closed();
    });
    route(listener, req.url ?? "/", res);
  });
  listener.server.on("connection", () => listener.connections++);
  listener.server.listen(0, host);
  await once(listener.server, "listening");
  listener.url = `http://${host}:${(listener.server.address() as AddressInfo).port}`;
  return listener;
}

describe("media downloads", () => {
  let origin: Listener;
  let denied: Listener;

  beforeAll(async () => {
    denied = await listen("127.0.0.2", () => {});
    origin = await listen("127.0.0.1", (listener, path, res) => {
      if (path === "/to-denied") {
        res.writeHead(302, { location: `${denied.url}/file.png` }).end();
      } else if (path === "/endless") {
        // A body with no announced length that never ends: only the cap stops it.
        res.writeHead(200, { "content-type": "video/mp4" });
        const chunk = Buffer.alloc(16 * 1024, 1);
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) listener.written += chunk.length;
          if (!res.destroyed) res.once("drain", pump);
        };
        pump();
      } else {
        res.writeHead(200, { "content-type": "image/png" }).end(Buffer.from("png"));
      }
    });
  });
  afterAll(async () => {
    for (const listener of [origin, denied]) {
      listener.server.closeAllConnections();
      listener.server.close();
    }
  });

  const fetcher = (deny: string[] = ["127.0.0.2/32"], maxBytes = 1024 * 1024) =>
    createMediaFetcher({ maxBytes, timeoutMs: 5_000, network: createNetworkPolicy({ deny }) });

  it("never connects to a refused host, directly or through a redirect, and says why", async () => {
    const media = fetcher();
    try {
      for (const url of [`${denied.url}/file.png`, `${origin.url}/to-denied`]) {
        const error = await media.download(url).catch((caught: unknown) => caught);
        expect(error, url).toBeInstanceOf(MediaUnavailableError);
        expect((error as MediaUnavailableError).message).toBe(
          "download refused: 127.0.0.2 is in a refused network (127.0.0.2/32)",
        );
        expect((error as MediaUnavailableError).permanent).toBe(true);
      }
      expect(denied.connections).toBe(0);
      // The same fetcher still downloads from allowed hosts.
      expect((await media.download(`${origin.url}/ok.png`)).data.toString()).toBe("png");
    } finally {
      await media.close();
    }
  });

  // Only addresses that reach this host if the policy ever failed (0.0.0.0 is this host on Linux): no test may
  // depend on a real connection elsewhere, the cloud metadata address included (policy.test.ts covers it).
  it("refuses the unspecified address always, and private networks when the host says so, before any lookup", async () => {
    const media = createMediaFetcher({
      maxBytes: 1024,
      timeoutMs: 5_000,
      network: createNetworkPolicy({ allowPrivateNetworks: false }),
    });
    try {
      const port = new URL(origin.url).port;
      const before = origin.connections;
      const unspecified = await media.download(`http://0.0.0.0:${port}/ok.png`).catch((e: unknown) => e);
      expect((unspecified as Error).message).toBe(
        "download refused: 0.0.0.0 is in a refused network (unspecified)",
      );
      const local = await media.download(`${origin.url}/ok.png`).catch((e: unknown) => e);
      expect((local as Error).message).toBe("download refused: 127.0.0.1 is in a refused network (loopback)");
      expect(origin.connections).toBe(before);
    } finally {
      await media.close();
    }
  });

  it("the default fetcher refuses the always-refused networks too", async () => {
    const media = createMediaFetcher({ maxBytes: 1024, timeoutMs: 5_000 });
    try {
      const before = origin.connections;
      const port = new URL(origin.url).port;
      const error = await media.download(`http://[::ffff:0.0.0.0]:${port}/ok.png`).catch((e: unknown) => e);
      expect((error as Error).message).toBe(
        "download refused: ::ffff:0:0 is in a refused network (unspecified)",
      );
      expect(origin.connections).toBe(before);
    } finally {
      await media.close();
    }
  });

  it("streams a body of no announced length to the cap and aborts it there", async () => {
    const cap = 256 * 1024;
    const media = fetcher([], cap);
    try {
      const error = await media.download(`${origin.url}/endless`).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(MediaUnavailableError);
      expect((error as Error).message).toBe("file larger than the 256 KiB limit (more than 256 KiB)");
      expect((error as MediaUnavailableError).permanent).toBe(true);
      // The server sees the download go away: the body is not read to its end (it has none).
      await origin.closedEarly;
      expect(origin.written).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await media.close();
    }
  });
});
