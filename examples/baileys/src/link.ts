import { rm } from "node:fs/promises";
import {
  type AttachBaileysOptions,
  attachBaileys,
  type BaileysEventSocket,
  type BaileysSendSocket,
  type ConnectionState,
  type DetachBaileys,
  DisconnectReason,
  type ExampleRuntime,
  type UserFacingSocketConfig,
  useMultiFileAuthState,
} from "./deps.js";

type Logger = ExampleRuntime["logger"];

/** What the example uses of a Baileys socket (`makeWASocket` returns one). */
export type ExampleSocket = BaileysEventSocket &
  BaileysSendSocket & {
    end(error: Error | undefined): void;
    requestPairingCode?(phoneNumber: string): Promise<string>;
  };

/** Makes a socket: Baileys' `makeWASocket` in production, a fake in tests. */
export type MakeSocket = (config: UserFacingSocketConfig) => ExampleSocket;

export type LinkState = "connecting" | "waiting-for-scan" | "open" | "closed" | "stopped";

/** One instance's WhatsApp link: a Baileys socket, replaced on every reconnect, attached to the bridge. */
export interface WhatsAppLink {
  readonly instance: string;
  state(): LinkState;
  /** The socket while it is open (the gateway sends through it), else null. */
  openSocket(): ExampleSocket | null;
  stop(): Promise<void>;
}

export interface LinkOptions {
  instance: string;
  /** `<data>/baileys-auth/<instance>`: Baileys' credentials and keys (`useMultiFileAuthState`). */
  authDir: string;
  bridge: Parameters<typeof attachBaileys>[0];
  makeSocket: MakeSocket;
  logger: Logger;
  /** Where the QR code (or the pairing code) is printed: the console. */
  out: (line: string) => void;
  /** Link with a pairing code for this phone number (digits) instead of a QR code. */
  pairingPhone?: string | undefined;
  /** Wait before the n-th reconnect in a row (from 1). */
  reconnectDelayMs?: (attempt: number) => number;
  attach?: AttachBaileysOptions;
}

const defaultDelay = (attempt: number) => Math.min(30_000, 1_000 * 2 ** (attempt - 1));

/** Baileys closes with a Boom error; its HTTP-like status says why (`DisconnectReason`). */
function statusCodeOf(error: unknown): number | undefined {
  const output = (error as { output?: { statusCode?: unknown } } | undefined)?.output;
  return typeof output?.statusCode === "number" ? output.statusCode : undefined;
}

/** Baileys' logger interface over the example's: Baileys' chatter at `info` becomes our `debug`. */
function baileysLogger(logger: Logger, bindings: Record<string, unknown>) {
  const object = (value: unknown) => ({
    ...bindings,
    ...(typeof value === "object" && value ? value : { msg: value }),
  });
  const wrapped = {
    level: "info",
    child: (more: Record<string, unknown>) => baileysLogger(logger, { ...bindings, ...more }),
    trace: () => {},
    debug: () => {},
    info: (obj: unknown, msg?: string) => logger.debug(object(obj), msg),
    warn: (obj: unknown, msg?: string) => logger.warn(object(obj), msg),
    error: (obj: unknown, msg?: string) => logger.error(object(obj), msg),
  };
  return wrapped;
}

/** Starts linking an instance: prints its QR code until a phone scans it, then keeps the link up. */
export async function startLink(options: LinkOptions): Promise<WhatsAppLink> {
  const { instance, authDir, logger, out } = options;
  const delay = options.reconnectDelayMs ?? defaultDelay;
  let state: LinkState = "connecting";
  let socket: ExampleSocket | null = null;
  let detach: DetachBaileys | null = null;
  let stopped = false;
  let attempts = 0;
  let timer: NodeJS.Timeout | null = null;

  async function connect(): Promise<void> {
    if (stopped) return;
    state = "connecting";
    const auth = await useMultiFileAuthState(authDir);
    const current = options.makeSocket({
      auth: auth.state,
      logger: baileysLogger(logger, { instance, module: "baileys" }),
      markOnlineOnConnect: false,
    });
    socket = current;
    detach = attachBaileys(options.bridge, instance, current, { logger, ...options.attach });
    current.ev.on("creds.update", () => {
      auth
        .saveCreds()
        .catch((error: unknown) =>
          logger.error({ instance, err: String(error) }, "baileys: creds not saved"),
        );
    });
    let pairingRequested = false;
    current.ev.on("connection.update", (update: Partial<ConnectionState>) => {
      if (current !== socket) return; // a socket we already replaced
      if (update.qr) {
        state = "waiting-for-scan";
        if (options.pairingPhone && current.requestPairingCode) {
          if (!pairingRequested) {
            pairingRequested = true;
            current.requestPairingCode(options.pairingPhone).then(
              (code) =>
                out(
                  `WhatsApp instance "${instance}": on the phone ${options.pairingPhone}, open WhatsApp → Linked devices → ` +
                    `Link a device → Link with phone number instead, and enter the code ${code}`,
                ),
              (error: unknown) => {
                logger.warn(
                  { instance, err: String(error) },
                  "baileys: pairing code refused, showing the QR code",
                );
                printQr(update.qr!);
              },
            );
          }
        } else {
          printQr(update.qr);
        }
      }
      if (update.connection === "open") {
        state = "open";
        attempts = 0;
        out(`WhatsApp instance "${instance}": linked${current.user ? ` as ${current.user.id}` : ""}`);
      }
      if (update.connection === "close") void closed(statusCodeOf(update.lastDisconnect?.error));
    });
  }

  function printQr(qr: string): void {
    out(
      `WhatsApp instance "${instance}": scan this QR code with the phone (WhatsApp → Linked devices → Link a device). ` +
        "No QR renderer is installed here: render this text as a QR code (e.g. `npx qrcode-terminal '<text>'`), " +
        "or start with BAILEYS_PAIRING_PHONE=<digits> to link with a code instead.",
    );
    out(qr);
  }

  async function closed(code: number | undefined): Promise<void> {
    socket = null;
    state = "closed";
    const oldDetach = detach;
    detach = null;
    await oldDetach?.();
    if (stopped) return;
    if (code === DisconnectReason.loggedOut) {
      // Unlinked from the phone: these credentials are dead; start over with a new QR code.
      out(
        `WhatsApp instance "${instance}": logged out from the phone; the auth state is cleared, a new QR code follows`,
      );
      await rm(authDir, { recursive: true, force: true });
      attempts = 0;
    } else {
      attempts++;
    }
    // After a scan WhatsApp asks for a restart (515): at once. Otherwise back off.
    const wait = code === DisconnectReason.restartRequired || attempts === 0 ? 0 : delay(attempts);
    logger.info({ instance, code, reconnectInMs: wait }, "baileys: connection closed, reconnecting");
    timer = setTimeout(() => {
      timer = null;
      connect().catch((error: unknown) =>
        logger.error({ instance, err: String(error) }, "baileys: reconnect failed"),
      );
    }, wait);
  }

  await connect();
  return {
    instance,
    state: () => state,
    openSocket: () => (state === "open" ? socket : null),
    async stop() {
      stopped = true;
      state = "stopped";
      if (timer) clearTimeout(timer);
      const current = socket;
      socket = null;
      await detach?.();
      current?.end(undefined);
    },
  };
}
