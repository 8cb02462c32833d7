import { type BaileysExample, buildApp } from "./app.js";
import { listenOnNode, runExample } from "./deps.js";

const pairingPhone = process.env["BAILEYS_PAIRING_PHONE"]?.replace(/\D/g, "") || undefined;

await runExample<BaileysExample>("baileys", (config) => buildApp(config, { pairingPhone }), listenOnNode);
