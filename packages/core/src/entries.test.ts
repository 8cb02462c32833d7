import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/** Every name an entry exports (values and types), as a consumer's compiler sees it. */
function exportsOf(entry: string): string[] {
  const file = fileURLToPath(new URL(entry, import.meta.url));
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
  return checker.getExportsOfModule(symbol).map((exported) => exported.name);
}

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
  });
});
