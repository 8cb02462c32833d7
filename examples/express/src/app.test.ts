import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { runExampleAppSuite } from "@ryze/example-shared/app-suite";
import { buildApp } from "./app.js";

await runExampleAppSuite({
  name: "express",
  database: "sqlite",
  async start(config, options) {
    const runtime = await buildApp(config, options);
    const server = runtime.app.listen(0, "127.0.0.1");
    await once(server, "listening");
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      runtime,
      async close() {
        server.closeAllConnections();
        server.close();
        await runtime.close();
      },
    };
  },
});
