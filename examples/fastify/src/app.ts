import { chatwootFastify } from "@ryze/chatwoot-fastify";
import {
  createExampleRuntime,
  type ExampleConfig,
  type ExampleRuntime,
  type RuntimeOptions,
} from "@ryze/example-shared";
import Fastify, { type FastifyInstance } from "fastify";

export interface FastifyExample extends ExampleRuntime {
  app: FastifyInstance;
}

/** The Fastify example: the bridge's routes, the simulated WhatsApp side, and a health route of the host. */
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
  app.get("/health", async () => ({ ok: true }));
  return { ...runtime, app };
}
