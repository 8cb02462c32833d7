import { bodyParser } from "@koa/bodyparser";
import { chatwootKoa } from "@ryze/chatwoot-koa";
import {
  createExampleRuntime,
  createOperationsRoutes,
  type ExampleConfig,
  type ExampleRuntime,
  type RuntimeOptions,
} from "@ryze/example-shared";
import Koa from "koa";

export interface KoaExample extends ExampleRuntime {
  app: Koa;
}

/** The Koa example: the bridge's routes, the simulated WhatsApp side, and the operator's routes (`/metrics`, `/health`, `/ready`). */
export async function buildApp(config: ExampleConfig, options: RuntimeOptions = {}): Promise<KoaExample> {
  const runtime = await createExampleRuntime(config, options);
  const app = new Koa();
  // Our routes go before the host's body parser, so that a malformed body gets the contract's 400 answer.
  app.use(chatwootKoa(runtime.bridge));
  app.use(chatwootKoa(runtime.devWhatsApp));
  // GET /metrics, /health (liveness), /ready (readiness): docs/operations.md.
  app.use(chatwootKoa(createOperationsRoutes(runtime.bridge)));
  app.use(bodyParser());
  return { ...runtime, app };
}
