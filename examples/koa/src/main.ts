import { announceTokens, readConfig } from "@ryze/example-shared";
import { buildApp } from "./app.js";

const config = readConfig();
const example = await buildApp(config);
const server = example.app.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  example.logger.info({ url: `http://${config.host}:${port}` }, "example (koa) listening");
  announceTokens(config);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.close();
    void example.close().then(() => process.exit(0));
  });
}
