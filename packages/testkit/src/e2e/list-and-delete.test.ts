import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@ryze/chatwoot-core";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { totalMessages } from "./inspect.js";

// docs/http-api.md, over a real socket: `list`'s live check of the inbox (a 10 s budget, cached 30 s), `list` of a
// paused integration, and `delete?deleteInbox=true` when the inbox is already gone in Chatwoot (404 counts as done).

let h: RoutingHarness | undefined;
let server: Server | undefined;
afterEach(async () => {
  await h?.close();
  server?.closeAllConnections();
  server?.close();
  h = undefined;
  server = undefined;
});

interface LogLine {
  level: string;
  msg: string | undefined;
  obj: Record<string, unknown>;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (obj: object, msg?: string) => {
    lines.push({ level, msg, obj: { ...obj } });
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** The bridge behind a node:http host; `call` sends a request with the account's caller token. */
async function served(options: Parameters<typeof startRoutingHarness>[0] = {}) {
  let started: RoutingHarness | null = null;
  const site = createServer((req, res) => {
    void (async () => {
      const answer = await started?.bridge.http.handle({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        stream: req,
      });
      if (!answer) return void res.writeHead(404).end();
      res.writeHead(answer.status, answer.headers).end(answer.body ?? undefined);
    })();
  });
  server = site;
  site.listen(0, "127.0.0.1");
  await once(site, "listening");
  const url = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  h = started = await startRoutingHarness(options);
  const call = async (path: string, method = "GET") => {
    const answer = await fetch(`${url}${path}`, { method, headers: { token: "t" } });
    return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
  };
  return { harness: started, call };
}

describe("list: the live check of the inbox (docs/http-api.md)", () => {
  it("answers within its 10 s budget when Chatwoot does not answer the inbox check, and checks at most once per 30 s", async () => {
    // Pings far apart: on a busy machine a late ping must not turn the realtime link's state into the answer.
    const { harness, call } = await served({ bridge: { realtime: { pingIntervalMs: 30_000 } } });
    const inboxPath = `/api/v1/accounts/${harness.accountId}/inboxes/${harness.inboxId}`;
    // Chatwoot takes a minute to answer the inbox read.
    harness.sim.faults.inject({ method: "GET", path: inboxPath, delayMs: 60_000 });
    const first = await call("/api/chatwoot/list/suporte");
    expect(first.status).toBe(200);
    // The check gave up at its budget: the request is answered, saying why the live state is unknown.
    expect(first.body).toMatchObject({ instance_name: "suporte", status: "error" });
    const lastError = String(first.body.last_error);
    expect(lastError).toMatch(
      new RegExp(`^Chatwoot is unreachable at .* Detail: GET "${harness.sim.url}${inboxPath}": `),
    );
    expect(/timed out after (\d+)ms$/.exec(lastError)?.[1], "the live check's deadline, in ms").toBe("10000");
    // The result is cached: polling list again does not send Chatwoot another check.
    const second = await call("/api/chatwoot/list/suporte");
    expect(second).toEqual(first);
    expect(harness.sim.countRequests({ method: "GET", path: inboxPath })).toBe(1);
  }, 30_000);
});

describe("list: a paused integration (docs/routing.md, docs/http-api.md)", () => {
  it("shows status paused with the reason after Chatwoot rejected the stored token", async () => {
    // Short leases: the paused integration leaves its subscription on the next ownership round (300 ms).
    const { harness, call } = await served({
      bridge: { realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000, leaseTtlMs: 900 } },
    });
    expect((await call("/api/chatwoot/list/suporte")).body).toMatchObject({
      status: "active",
      last_error: "",
    });
    harness.sim.revokeAccessToken(harness.agent.id);
    await harness.ingest(textEvent({ phone: "5511977770000", text: "anyone?" }));
    await eventually(async () => (await harness.store.integrations.get("suporte"))?.status === "paused", {
      what: "the integration paused",
    });
    // A paused integration leaves its realtime subscription: list must still say paused, not "link down".
    await eventually(() => harness.sim.cable.subscriptions().length === 0, { what: "the subscription left" });
    const answer = await call("/api/chatwoot/list/suporte");
    expect(answer.status).toBe(200);
    expect(answer.body.instance_name).toBe("suporte");
    expect(answer.body.status, `list answered last_error: ${String(answer.body.last_error)}`).toBe("paused");
    expect(answer.body.last_error).toMatch(
      /^Chatwoot rejected the stored API token - re-activate the integration\./,
    );
    expect(totalMessages(harness)).toBe(0);
  });
});

describe("delete?deleteInbox=true when the inbox is already gone (docs/http-api.md)", () => {
  it("answers 200 and removes the integration; Chatwoot's 404 for the inbox counts as done, not as a failure", async () => {
    const logs: LogLine[] = [];
    const { harness, call } = await served({ bridge: { logger: recordingLogger(logs) } });
    const inboxPath = `/api/v1/accounts/${harness.accountId}/inboxes/${harness.inboxId}`;
    // Someone deleted the inbox in Chatwoot's dashboard already.
    const removed = await fetch(`${harness.sim.url}${inboxPath}`, {
      method: "DELETE",
      headers: { api_access_token: harness.agent.accessToken },
    });
    expect(removed.status).toBe(200);
    expect(harness.sim.inboxes(harness.accountId)).toHaveLength(0);

    const answer = await call("/api/chatwoot/delete/suporte?deleteInbox=true", "DELETE");
    expect(answer).toEqual({ status: 200, body: { message: "chatwoot integration deactivated" } });
    // The delete was tried, and Chatwoot said the inbox does not exist.
    expect(
      harness.sim.requests
        .filter((request) => request.method === "DELETE" && request.path === inboxPath)
        .map((r) => r.status),
    ).toEqual([200, 404]);
    expect(await call("/api/chatwoot/list/suporte")).toEqual({
      status: 404,
      body: { success: false, error: { message: "no chatwoot integration for this instance" } },
    });
    expect(await harness.store.integrations.get("suporte")).toBeNull();
    // Done, not a problem: nothing is logged as a failure.
    expect(
      logs
        .filter((line) => line.level === "warn" || line.level === "error")
        .map((line) => `${line.level}: ${line.msg}`),
    ).toEqual([]);
  });
});
