import { format } from "node:util";
import { afterAll } from "vitest";
import { checkForSecrets, takeLeaks } from "./secrets.js";

/**
 * A vitest setup file (every project of this repository lists it in `vitest.config.ts`): checks what a test file
 * writes (console, stdout, stderr) against the secrets the tests registered (`secrets.ts`), and fails the file in
 * `afterAll` when a registered secret was logged or answered, naming the secret's kind, never its value. The
 * harnesses' loggers and the HTTP conformance suite's answers report to the same registry.
 */
const INSTALLED = Symbol.for("@ryze/chatwoot-testkit/secrets-setup");
const holder = globalThis as { [INSTALLED]?: true };

if (!holder[INSTALLED]) {
  holder[INSTALLED] = true;
  for (const stream of [process.stdout, process.stderr] as const) {
    const name = stream === process.stdout ? "stdout" : "stderr";
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk === "string" || chunk instanceof Uint8Array) {
        checkForSecrets(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"), name);
      }
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
  for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      checkForSecrets(format(...args), `console.${method}`);
      original(...args);
    };
  }
}

afterAll(() => {
  const leaks = takeLeaks();
  if (leaks.length > 0) {
    throw new Error(`secrets used by the tests appeared where they must not:\n- ${leaks.join("\n- ")}`);
  }
});
