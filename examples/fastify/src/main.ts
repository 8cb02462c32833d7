import { announceTokens, readConfig } from "@ryze/example-shared";
import { buildApp } from "./app.js";

const config = readConfig();
const example = await buildApp(config);
const url = await example.app.listen({ port: config.port, host: config.host });
example.logger.info({ url }, "example (fastify) listening");
announceTokens(config);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void example.app
      .close()
      .then(() => example.close())
      .then(() => process.exit(0));
  });
}
