import { chatwootFastify } from "@ryze/chatwoot-fastify";
import {
  createExampleRuntime,
  createOperationsRoutes,
  type ExampleConfig,
  type ExampleRuntime,
  type RuntimeOptions,
} from "@ryze/example-shared";
import Fastify, { type FastifyInstance } from "fastify";

export interface FastifyExample extends ExampleRuntime {
  app: FastifyInstance;
}

/** The Fastify example: the bridge's routes, the simulated WhatsApp side, and the operator's routes (`/metrics`, `/health`, `/ready`). */
export async function buildApp(config: ExampleConfig, options: RuntimeOptions = {}): Promise<FastifyExample> {
  const runtime = await createExampleRuntime(config, options);
  const app = Fastify();
  // Each plugin's prefix is the prefix its handler serves. Inside their scope the core reads the raw body (its
  // cap, the contract's 400); the host's own routes keep Fastify's JSON parser.
  await app.register(chatwootFastify, {
    bridge: runtime.bridge,
    prefix: runtime.bridge.prefix,
  });
  await app.register(chatwootFastify, { bridge: runtime.devWhatsApp, prefix: "/dev/whatsapp" });
  // GET /metrics, /health (liveness), /ready (readiness): docs/operations.md; Fastify's own routes answer them.
  const operations = createOperationsRoutes(runtime.bridge);
  for (const path of ["/metrics", "/health", "/ready"]) {
    app.get(path, async (request, reply) => {
      const answer = await operations.http.handle({ method: "GET", path, headers: request.headers });
      return reply.code(answer!.status).headers(answer!.headers).send(answer!.body);
    });
  }
  return { ...runtime, app };
}
