import { runExampleAppSuite, servedBy } from "@ryze/example-shared/app-suite";
import { buildApp } from "./app.js";

await runExampleAppSuite({
  name: "koa",
  database: "mariadb",
  async start(config, options) {
    const runtime = await buildApp(config, options);
    return servedBy(runtime.app.listen(0, "127.0.0.1"), runtime);
  },
});
