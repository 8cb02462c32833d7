import { fileURLToPath } from "node:url";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";

const entries = ["./index.ts", "./adapter.ts", "./testing.ts", "./store-entry.ts"] as const;
const names = new Map<string, string[]>();

/** Every name an entry exports (values and types), as a consumer's compiler sees it. */
const exportsOf = (entry: (typeof entries)[number]) => names.get(entry)!;

// One program for the three entries: building it is the slow part (seconds on a busy machine).
beforeAll(() => {
  const files = entries.map((entry) => fileURLToPath(new URL(entry, import.meta.url)));
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  entries.forEach((entry, index) => {
    const symbol = checker.getSymbolAtLocation(program.getSourceFile(files[index]!)!)!;
    names.set(
      entry,
      checker.getExportsOfModule(symbol).map((exported) => exported.name),
    );
  });
}, 180_000);

describe("the core's entries", () => {
  it("the main entry is a small front door: at most 45 names, none of them internals", () => {
    const names = exportsOf("./index.ts");
    expect(names.length).toBeLessThanOrEqual(45);
    for (const internal of [
      "OutboxDispatcher",
      "createRealtimeHub",
      "readStream",
      "backoffDelay",
      "createMemoryStore",
      "HttpRequest",
      "profileSchema",
      "OutboxStore",
      "MappingStore",
    ]) {
      expect(names).not.toContain(internal);
    }
  });

  it("adapters and tests find what they need in their own entries", () => {
    expect(exportsOf("./adapter.ts")).toEqual(
      expect.arrayContaining([
        "HttpHandler",
        "HttpRequest",
        "HttpResponse",
        "toHttpRequest",
        "WEBHOOK_BODY_LIMIT",
      ]),
    );
    expect(exportsOf("./testing.ts")).toEqual(
      expect.arrayContaining(["createMemoryStore", "createChatwootApi", "ChatwootRequestError"]),
    );
    // A store implementation (as @ryze/chatwoot-knex) finds every port and row type in `/store`.
    expect(exportsOf("./store-entry.ts")).toEqual(
      expect.arrayContaining([
        "StoragePort",
        "OutboxStore",
        "MappingStore",
        "IntegrationStore",
        "LeaseStore",
      ]),
    );
  });
});
