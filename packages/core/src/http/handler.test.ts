import { describe, expect, it } from "vitest";
import { BridgeError } from "../errors/index.js";
import type { Logger } from "../observability/index.js";
import { readJsonBody } from "./body.js";
import { createHttpHandler } from "./handler.js";
import { json } from "./response.js";
import { anyone, defineRoute, type Route } from "./routes.js";
import type { HttpRequest } from "./types.js";

function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  return { lines, logger };
}

const request = (method: string, path: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method,
  path,
  headers: {},
  ...extra,
});

/** Routes of the shapes later issues add: no parameter, one, two, and a public page. */
const routes: Route[] = [
  defineRoute({
    path: "status",
    methods: ["GET", "HEAD"],
    access: async ({ headers }) => {
      headers["x-ratelimit-limit"] = "5";
      return "granted";
    },
    handle: async ({ grant }) => json(200, { grant }),
  }),
  defineRoute({
    path: "dead-letters/:instance",
    methods: ["GET"],
    access: anyone,
    handle: async ({ params, query }) =>
      json(200, { instance: params.instance, after: query("after") ?? null }),
  }),
  defineRoute({
    path: "dead-letters/:instance/:id/retry",
    methods: ["POST"],
    access: async ({ params }) => {
      if (params.id === "forbidden") throw new BridgeError("INSTANCE_FORBIDDEN", "no");
      if (params.id === "broken") throw new Error("directory down: ECONNRESET");
      return params.instance;
    },
    handle: async ({ params, grant }) => {
      if (params.id === "store") throw new Error("disk I/O error", { cause: new Error("SQLITE_IOERR") });
      return json(202, { instance: grant, id: params.id });
    },
  }),
  defineRoute({ path: "ui", methods: ["GET"], access: anyone, handle: async () => json(200, "page") }),
];

describe("the route table", () => {
  const { lines, logger } = recordingLogger();
  const http = createHttpHandler({ enabled: true, prefix: "/api/chatwoot", routes, logger });

  it("matches 0, 1 and 2 path parameters, decoded, with the query", async () => {
    expect((await http.handle(request("GET", "/api/chatwoot/status")))?.body).toBe('{"grant":"granted"}');
    expect((await http.handle(request("GET", "/api/chatwoot/ui")))?.body).toBe('"page"');
    const one = await http.handle(request("GET", "/api/chatwoot/dead-letters/s%C3%A3o%20paulo?after=7"));
    expect(JSON.parse(one!.body!)).toEqual({ instance: "são paulo", after: "7" });
    const two = await http.handle(request("POST", "/api/chatwoot/dead-letters/suporte/ob_1/retry"));
    expect([two?.status, JSON.parse(two!.body!)]).toEqual([202, { instance: "suporte", id: "ob_1" }]);
  });

  it("returns null for what no route serves: other paths, other methods, empty or undecodable params", async () => {
    for (const [method, path] of [
      ["GET", "/elsewhere"],
      ["GET", "/api/chatwoot"],
      ["GET", "/api/chatwoot/"],
      ["GET", "/api/chatwoot/status/extra"],
      ["OPTIONS", "/api/chatwoot/status"],
      ["POST", "/api/chatwoot/status"],
      ["GET", "/api/chatwoot/dead-letters/"],
      ["GET", "/api/chatwoot/dead-letters/%E0%A4%A"],
      ["GET", "/api/chatwoot/dead-letters/suporte/ob_1/retry"],
      ["POST", "/api/chatwoot/dead-letters/suporte//retry"],
    ] as const) {
      expect(await http.handle(request(method, path)), `${method} ${path}`).toBeNull();
    }
  });

  it("keeps headers set by access on the answer, and answers HEAD without a body", async () => {
    const head = await http.handle(request("HEAD", "/api/chatwoot/status"));
    expect(head).toEqual({
      status: 200,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "x-ratelimit-limit": "5",
        "content-length": String('{"grant":"granted"}'.length),
      },
      body: null,
    });
  });

  it("has one error path: a BridgeError answers as itself, anything else 500 with one log line and its cause", async () => {
    lines.length = 0;
    const refused = await http.handle(request("POST", "/api/chatwoot/dead-letters/suporte/forbidden/retry"));
    expect([refused?.status, refused?.body]).toEqual([403, '{"success":false,"error":{"message":"no"}}']);
    expect(lines).toEqual([]);
    for (const [id, cause] of [
      ["broken", "directory down: ECONNRESET"],
      ["store", "disk I/O error: SQLITE_IOERR"],
    ]) {
      lines.length = 0;
      const failed = await http.handle(request("POST", `/api/chatwoot/dead-letters/suporte/${id}/retry`));
      // The cause stays in the log; the answer carries a reference to that log line (docs/security.md).
      const ref = /^\{"success":false,"error":\{"message":"internal error \(ref ([0-9a-f]{12})\)"\}\}$/.exec(
        failed?.body ?? "",
      )?.[1];
      expect([failed?.status, ref], failed?.body ?? "").toEqual([500, expect.any(String)]);
      expect(failed?.body).not.toContain(cause);
      expect(lines).toEqual([
        {
          level: "error",
          msg: "chatwoot: request failed",
          obj: {
            method: "POST",
            route: "dead-letters/:instance/:id/retry",
            params: { instance: "suporte", id },
            ref,
            err: cause,
          },
        },
      ]);
    }
  });

  it("answers 503 on every route when the module is switched off, before access", async () => {
    const off = createHttpHandler({ enabled: false, prefix: "/", routes, logger });
    const answer = await off.handle(request("POST", "/dead-letters/suporte/broken/retry"));
    expect([answer?.status, answer?.headers["x-ratelimit-limit"]]).toEqual([503, undefined]);
    expect(await off.handle(request("PUT", "/status"))).toBeNull();
  });

  it("refuses a malformed table", () => {
    for (const path of ["/status", "status/", "a//b", "a/:", "a/:x/:x"]) {
      const route = defineRoute({ path, methods: ["GET"], access: anyone, handle: async () => json(200, 1) });
      expect(() => createHttpHandler({ enabled: true, prefix: "/", routes: [route], logger }), path).toThrow(
        /route path/,
      );
    }
  });
});

describe("readJsonBody", () => {
  it("uses a host's parsed body as is and keeps the bytes its parser read", async () => {
    const rawBody = Buffer.from('{"a":"\\u003c"}');
    const read = await readJsonBody(request("POST", "/", { body: { a: "<" }, rawBody }), 100);
    expect(read).toEqual({ value: { a: "<" }, raw: rawBody });
    await expect(readJsonBody(request("POST", "/", { body: { a: 1 }, rawBody }), 10)).rejects.toMatchObject({
      code: "BODY_TOO_LARGE",
    });
  });

  it("parses raw bytes or a string (UTF-8) alone, with the JSON content type", async () => {
    const headers = { "content-type": "application/json" };
    const fromString = await readJsonBody(request("POST", "/", { headers, rawBody: '{"a":"café"}' }), 100);
    expect(fromString.value).toEqual({ a: "café" });
    expect(fromString.raw?.length).toBe(13);
  });
});
