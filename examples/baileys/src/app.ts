import { resolve } from "node:path";
import {
  buildExpressApp,
  createBaileysGateway,
  type ExampleConfig,
  type ExpressExample,
  makeWASocket,
  type RuntimeOptions,
} from "./deps.js";
import { type MakeSocket, startLink, type WhatsAppLink } from "./link.js";

export interface BaileysExampleOptions extends RuntimeOptions {
  /** Makes each Baileys socket (default Baileys' `makeWASocket`; tests pass a fake). */
  makeSocket?: MakeSocket;
  /** Where QR codes and link messages are printed (default the console). */
  out?: (line: string) => void;
  /** Link with a pairing code for this phone number (digits) instead of a QR code (`BAILEYS_PAIRING_PHONE`). */
  pairingPhone?: string | undefined;
  /** Wait before the n-th reconnect in a row (default 1 s doubling up to 30 s). */
  reconnectDelayMs?: (attempt: number) => number;
}

export interface BaileysExample extends ExpressExample {
  /** Each instance's WhatsApp link, by instance name. */
  links: Map<string, WhatsAppLink>;
}

/**
 * The Baileys example: the Express example (the bridge's routes, `/dev/whatsapp/...`, `GET /metrics`, `/health`,
 * `/ready`) with a real WhatsApp behind it. Each configured instance (RYZE_INSTANCES) links a phone through its own Baileys socket,
 * whose auth state lives in `<data>/baileys-auth/<instance>`; the bridge sends through the socket that is open.
 */
export async function buildApp(
  config: ExampleConfig,
  options: BaileysExampleOptions = {},
): Promise<BaileysExample> {
  const {
    makeSocket = makeWASocket,
    out = console.log,
    pairingPhone,
    reconnectDelayMs,
    ...runtime
  } = options;
  const links = new Map<string, WhatsAppLink>();
  const gateway = createBaileysGateway((instance) => links.get(instance)?.openSocket() ?? null);
  const example = await buildExpressApp(config, { ...runtime, bridge: { ...runtime.bridge, gateway } });
  const dataDir = resolve(runtime.dataDir ?? "data");
  try {
    for (const { name } of config.instances) {
      const link = await startLink({
        instance: name,
        authDir: resolve(dataDir, "baileys-auth", encodeURIComponent(name)),
        bridge: example.bridge,
        makeSocket,
        logger: example.logger,
        out,
        pairingPhone,
        ...(reconnectDelayMs ? { reconnectDelayMs } : {}),
      });
      links.set(name, link);
    }
  } catch (error) {
    for (const link of links.values()) await link.stop();
    await example.close();
    throw error;
  }
  return {
    ...example,
    links,
    async close() {
      for (const link of links.values()) await link.stop();
      await example.close();
    },
  };
}
