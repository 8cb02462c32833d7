import { chatwootExpress } from "@ryze/chatwoot-express";
import {
  createExampleRuntime,
  createOperationsRoutes,
  type ExampleConfig,
  type ExampleRuntime,
  type RuntimeOptions,
} from "@ryze/example-shared";
import express, { type Express } from "express";

export interface ExpressExample extends ExampleRuntime {
  app: Express;
}

/** The Express example: the bridge's routes, the simulated WhatsApp side, and the operator's routes (`/metrics`, `/health`, `/ready`). */
export async function buildApp(config: ExampleConfig, options: RuntimeOptions = {}): Promise<ExpressExample> {
  const runtime = await createExampleRuntime(config, options);
  const app = express();
  app.disable("x-powered-by");
  // Our routes go before the host's body parser, so that a malformed body gets the contract's 400 answer.
  app.use(chatwootExpress(runtime.bridge));
  app.use(chatwootExpress(runtime.devWhatsApp));
  // GET /metrics, /health (liveness), /ready (readiness): docs/operations.md.
  app.use(chatwootExpress(createOperationsRoutes(runtime.bridge)));
  app.use(express.json());
  return { ...runtime, app };
}
