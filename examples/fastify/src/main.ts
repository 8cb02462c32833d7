import { runExample } from "@ryze/example-shared";
import { buildApp } from "./app.js";

await runExample("fastify", buildApp, async (example, config) => ({
  url: await example.app.listen({ port: config.port, host: config.host }),
  close: () => example.app.close(),
}));
