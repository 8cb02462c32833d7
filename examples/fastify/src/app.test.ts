import { runExampleAppSuite } from "@ryze/example-shared/app-suite";
import { buildApp } from "./app.js";

await runExampleAppSuite({
  name: "fastify",
  database: "postgres",
  async start(config, options) {
    const runtime = await buildApp(config, options);
    const url = await runtime.app.listen({ port: 0, host: "127.0.0.1" });
    return {
      url,
      runtime,
      async close() {
        await runtime.app.close();
        await runtime.close();
      },
    };
  },
});
