import { describe, expect, it } from "vitest";
import type { ActivationService, IntegrationStatusView } from "../activation/service.js";
import { createStaticDirectory } from "../directory/index.js";
import type { Integration } from "../integrations/index.js";
import type { Logger } from "../observability/index.js";
import { createMemoryStore } from "../store/memory.js";
import type { IntegrationRow } from "../store/ports.js";
import { activationRoutes } from "./activation-routes.js";
import { createCallerChecks } from "./caller.js";
import { createHttpHandler } from "./handler.js";
import { createRateLimiter } from "./rate-limit.js";
import { statusRoutes } from "./status-routes.js";
import type { HttpRequest } from "./types.js";

// What `list`, `status` and `dead-letters` answer (docs/http-api.md, docs/operations.md), field by field, through the
// HTTP handler with a memory store: the history-sync counts, times to the second, the answers no cache may keep, the
// dead-letter page's `limit`, what a dead letter says of its chat, and which integrations `status` shows in what
// order. Found by mutation testing (docs/testing.md, "Mutation report"): the framework suites see these answers only
// for an integration without history, dead letters or neighbours.

const ACCOUNT = "acct-token-answers-0001";
const OTHER = "acct-token-answers-0002";
const INSTANCE_TOKEN = "inst-token-answers-0001";
const NOW = new Date("2031-03-04T05:06:07.890Z");
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function row(instance: string, patch: Partial<IntegrationRow> = {}): IntegrationRow {
  return {
    id: `int_${instance}`,
    instance,
    status: "active",
    version: 1,
    baseUrl: "https://chatwoot.example.test",
    accountId: 1,
    apiToken: "sealed",
    webhookSecret: null,
    signingSecret: null,
    chatwootVersion: "4.13.0",
    inboxId: 7,
    inboxName: "WhatsApp",
    chatwootUserId: 1,
    deliveryMode: "realtime",
    signMessages: false,
    ignoreGroups: false,
    startAsPending: false,
    reopenResolved: false,
    lastError: "",
    provisioningUntil: null,
    createdAt: new Date("2031-01-02T03:04:05.678Z"),
    updatedAt: new Date("2031-01-02T03:04:05.678Z"),
    ...patch,
  };
}

async function setup(instances: string[] = ["suporte"]) {
  const store = createMemoryStore();
  const directory = createStaticDirectory({
    accounts: [
      {
        id: "acme",
        token: ACCOUNT,
        instances: instances.map((name, i) => ({
          name,
          token: i === 0 ? INSTANCE_TOKEN : `inst-answers-${i}`,
        })),
      },
      { id: "other", token: OTHER, instances: [{ name: "alheio", token: "inst-answers-other" }] },
    ],
  });
  const caller = createCallerChecks({
    directory,
    rateLimiter: createRateLimiter({ points: 1000, durationSeconds: 60, onStoreError: "open" }),
  });
  const history = { queued: 0, imported: 0, skipped: 0 };
  const activation = {
    async status(instance: string): Promise<IntegrationStatusView> {
      const found = await store.integrations.get(instance);
      if (!found) throw new Error(`no integration ${instance}`);
      return { integration: found as unknown as Integration, status: "active", lastError: "" };
    },
  } as unknown as ActivationService;
  const http = createHttpHandler({
    enabled: true,
    prefix: "/api/chatwoot",
    logger: silent,
    routes: [
      ...activationRoutes({
        activation,
        caller,
        exposeApiToken: false,
        history: async () => history,
        realtime: async () => "connected",
      }),
      ...statusRoutes({
        caller,
        directory,
        store,
        clock: { now: () => NOW },
        live: async () => ({ status: "active", lastError: "", realtime: "connected" }),
      }),
    ],
  });
  const get = async (path: string, token = ACCOUNT) => {
    const request: HttpRequest = { method: "GET", path: `/api/chatwoot/${path}`, headers: { token } };
    const answer = await http.handle(request);
    return {
      status: answer?.status,
      headers: answer?.headers ?? {},
      body: answer?.body === undefined ? null : JSON.parse(String(answer.body)),
    };
  };
  const post = async (path: string, body: string) => {
    const request: HttpRequest = {
      method: "POST",
      path: `/api/chatwoot/${path}`,
      headers: { token: ACCOUNT, "content-type": "application/json" },
      rawBody: body,
    };
    const answer = await http.handle(request);
    return {
      status: answer?.status,
      body: answer?.body ? JSON.parse(String(answer.body)) : null,
    };
  };
  return { store, history, get, post };
}

describe("list", () => {
  it("counts the history sync: imported, skipped, and pending as queued minus both, never below 0", async () => {
    const { store, history, get } = await setup();
    await store.integrations.insert(row("suporte", { importHistoryDays: 3 }));
    Object.assign(history, { queued: 10, imported: 4, skipped: 3 });
    const answer = await get("list/suporte");
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      import_history_days: 3,
      history: { imported: 4, skipped: 3, pending: 3 },
      realtime: "connected",
      created_at: "2031-01-02T03:04:05Z",
      chatwoot_api_token: null,
    });
    // More done than queued (a message counted twice by a retry): nothing pending, not a negative count.
    Object.assign(history, { queued: 2, imported: 4, skipped: 3 });
    expect((await get("list/suporte")).body.history).toEqual({ imported: 4, skipped: 3, pending: 0 });
  });

  it("is kept by no cache (it may carry the Chatwoot token), and says 0 days when history import is off", async () => {
    const { store, get } = await setup();
    await store.integrations.insert(row("suporte"));
    const answer = await get("list/suporte");
    expect(answer.headers["cache-control"]).toBe("no-store");
    expect(answer.body.import_history_days).toBe(0);
  });
});

describe("status", () => {
  it("shows the caller's provisioned integrations by instance name, times to the second, kept by no cache", async () => {
    const { store, get } = await setup(["vendas", "suporte", "atendimento", "novo"]);
    // Stored in another order than their names (the store lists by id).
    await store.integrations.insert(row("vendas", { id: "int_a" }));
    await store.integrations.insert(row("suporte", { id: "int_c" }));
    await store.integrations.insert(row("atendimento", { id: "int_b" }));
    await store.integrations.insert(row("novo", { status: "provisioning" }));
    await store.integrations.insert(row("alheio", { accountId: 2 }));
    const answer = await get("status");
    expect(answer.status).toBe(200);
    expect(answer.headers["cache-control"]).toBe("no-store");
    expect(answer.body.generated_at).toBe("2031-03-04T05:06:07Z");
    expect(answer.body.integrations.map((entry: { instance: string }) => entry.instance)).toEqual([
      "atendimento",
      "suporte",
      "vendas",
    ]);
  });

  it("reads every page of integrations (more than 200)", async () => {
    const names = Array.from({ length: 205 }, (_, i) => `inst${String(i).padStart(3, "0")}`);
    const { store, get } = await setup(names);
    for (const name of names) await store.integrations.insert(row(name));
    const answer = await get("status");
    expect(answer.body.integrations).toHaveLength(205);
    expect(answer.body.integrations.at(-1).instance).toBe("inst204");
  });

  it("an instance token sees its own integration, and nothing while it is being provisioned", async () => {
    const { store, get } = await setup();
    await store.integrations.insert(row("suporte", { status: "provisioning" }));
    expect((await get("status", INSTANCE_TOKEN)).body.integrations).toEqual([]);
    await store.integrations.update("int_suporte", 1, { status: "active" });
    expect((await get("status", INSTANCE_TOKEN)).body.integrations).toHaveLength(1);
  });
});

describe("set", () => {
  it("refuses a body that is no JSON object, saying so, before anything is activated", async () => {
    const { post } = await setup();
    for (const body of ["null", "[]", '"suporte"', "7", "true"]) {
      const answer = await post("set/suporte", body);
      expect({ body, status: answer.status, message: answer.body.error.message }).toEqual({
        body,
        status: 400,
        message: "invalid body: expected a JSON object",
      });
    }
  });
});

describe("dead-letters", () => {
  it("of an integration still being provisioned: 404, as for none, for the list and for a retry", async () => {
    const { store, get, post } = await setup();
    await store.integrations.insert(row("suporte", { status: "provisioning" }));
    expect((await get("dead-letters/suporte")).status).toBe(404);
    expect((await post("dead-letters/suporte/ob_1/retry", "")).status).toBe(404);
  });

  async function withDeadLetters(
    count: number,
    payload: (i: number) => unknown,
    chatKey = (i: number) => `in:${i}`,
  ) {
    const context = await setup();
    await context.store.integrations.insert(row("suporte"));
    for (let i = 0; i < count; i++) {
      await context.store.outbox.enqueue(
        {
          integrationId: "int_suporte",
          direction: chatKey(i).startsWith("in:") ? "inbound" : "outbound",
          chatKey: chatKey(i),
          dedupeKey: `d${i}`,
          payload: payload(i),
        },
        NOW,
      );
    }
    for (const item of await context.store.outbox.claim({
      owner: "p",
      limit: count,
      claimTtlMs: 60_000,
      now: NOW,
    }))
      await context.store.outbox.markDead(item.id, "p", "refused");
    return context;
  }

  it("pages from 1 to 100 letters; 0, 101, 1000, 10000 or a non-number is refused naming `limit`", async () => {
    const { get } = await withDeadLetters(3, () => ({ kind: "text" }));
    expect((await get("dead-letters/suporte?limit=1")).body.dead_letters).toHaveLength(1);
    expect((await get("dead-letters/suporte?limit=100")).status).toBe(200);
    for (const limit of ["0", "101", "1000", "10000", "5a", ""]) {
      const answer = await get(`dead-letters/suporte?limit=${limit}`);
      expect({ limit, status: answer.status, message: answer.body.error.message }).toEqual({
        limit,
        status: 400,
        message: "invalid query: limit: must be an integer from 1 to 100",
      });
    }
  });

  it("names each letter's chat, conversation and kind (an outbound letter's chat is its contact's source id)", async () => {
    const { get } = await withDeadLetters(
      3,
      (i) =>
        [
          { kind: "text" },
          { kind: "outbound", conversationId: 42, contactSourceId: "5511999990001@s.whatsapp.net" },
          { conversationId: "42" },
        ][i],
      (i) => [`in:5511999990000@s.whatsapp.net`, "out:42", "out:43"][i]!,
    );
    const answer = await get("dead-letters/suporte");
    expect(answer.headers["cache-control"]).toBe("no-store");
    const letters = answer.body.dead_letters as Array<Record<string, unknown>>;
    expect(
      letters.map(({ kind, chat, conversation_id, created_at }) => ({
        kind,
        chat,
        conversation_id,
        created_at,
      })),
    ).toEqual([
      { kind: "unknown", chat: null, conversation_id: null, created_at: "2031-03-04T05:06:07Z" },
      {
        kind: "outbound",
        chat: "5511999990001@s.whatsapp.net",
        conversation_id: 42,
        created_at: "2031-03-04T05:06:07Z",
      },
      {
        kind: "text",
        chat: "5511999990000@s.whatsapp.net",
        conversation_id: null,
        created_at: "2031-03-04T05:06:07Z",
      },
    ]);
  });
});
