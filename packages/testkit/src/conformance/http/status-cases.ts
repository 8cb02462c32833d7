import { expect } from "vitest";
import type { HttpCase } from "./cases.js";
import {
  ACCOUNT_TOKEN,
  type Answer,
  activateBody,
  errorOf,
  FOREIGN_ACCOUNT_TOKEN,
  type Harness,
  INSTANCE_TOKEN,
  OTHER_INSTANCE_TOKEN,
  send,
} from "./harness.js";

const STATUS = "/api/chatwoot/status";
const DEAD = "/api/chatwoot/dead-letters/suporte";
const JSON_TYPE = "application/json; charset=utf-8";
const CHAT = "5511999990001@s.whatsapp.net";

async function activate(h: Harness, instance: string): Promise<string> {
  const answer = await send(h.server, `/api/chatwoot/set/${instance}`, {
    method: "POST",
    token: ACCOUNT_TOKEN,
    body: activateBody(h, { inboxName: `WhatsApp - ${instance}` }),
  });
  expect(answer.status, answer.body).toBe(201);
  return (JSON.parse(answer.body) as { bridge_integration_id: string }).bridge_integration_id;
}

/**
 * A dead letter as the dispatcher leaves one (claimed, then given up on), written through the store: the bridge of
 * these cases runs no dispatcher. The e2e test makes one through a real Chatwoot failure.
 */
async function deadLetter(h: Harness, integrationId: string, n: number): Promise<string> {
  const { id } = await h.store.outbox.enqueue(
    {
      integrationId,
      direction: "inbound",
      chatKey: `in:${CHAT}`,
      dedupeKey: `wa:DEAD${n}`,
      payload: { kind: "message", message: { id: `DEAD${n}`, text: "private words" } },
    },
    new Date(),
  );
  const claimed = await h.store.outbox.claim({
    owner: "conformance",
    limit: 10,
    claimTtlMs: 60_000,
    now: new Date(),
  });
  expect(claimed.map((item) => item.id)).toContain(id);
  for (const other of claimed) {
    if (other.id === id) continue;
    const back = { retryAt: other.availableAt, error: other.lastError, attempted: false };
    expect(await h.store.outbox.fail(other.id, "conformance", back)).toBe(true);
  }
  expect(await h.store.outbox.markDead(id, "conformance", `Chatwoot rejected message ${n}`)).toBe(true);
  return id;
}

function expectError(answer: Answer, status: number, message: string): void {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.headers["content-type"]).toBe(JSON_TYPE);
  expect(errorOf(answer)).toBe(message);
}

/** `GET status`, `GET dead-letters/:instance`, `POST dead-letters/:instance/:id/retry` (`docs/http-api.md`). */
export const statusCases: HttpCase[] = [
  {
    name: "status: every integration of the caller's account, with its outbox, dead letters and last messages",
    async run(h) {
      const suporte = await activate(h, "suporte");
      await activate(h, "vendas");
      await deadLetter(h, suporte, 1);
      await h.store.outbox.enqueue(
        { integrationId: suporte, direction: "inbound", chatKey: "in:x", dedupeKey: "wa:Q", payload: {} },
        new Date(Date.now() - 1_000),
      );
      await h.store.mappings.putMessage({
        integrationId: suporte,
        waMessageId: "WA1",
        part: 0,
        chatwootMessageId: 1,
        conversationId: 1,
        direction: "inbound",
        createdAt: new Date(),
      });
      const answer = await send(h.server, STATUS, { token: ACCOUNT_TOKEN });
      expect(answer.status, answer.body).toBe(200);
      expect(answer.headers["content-type"]).toBe(JSON_TYPE);
      expect(answer.headers["x-ratelimit-limit"]).toBe("10000");
      const body = JSON.parse(answer.body) as {
        generated_at: string;
        integrations: Array<Record<string, unknown>>;
      };
      expect(Object.keys(body)).toEqual(["generated_at", "integrations"]);
      expect(body.integrations.map((row) => row.instance)).toEqual(["suporte", "vendas"]);
      const [first, second] = body.integrations;
      expect(Object.keys(first!)).toEqual([
        "instance",
        "bridge_integration_id",
        "status",
        "realtime",
        "delivery",
        "chatwoot_base_url",
        "chatwoot_account_id",
        "chatwoot_inbox_id",
        "chatwoot_version",
        "outbox_depth",
        "oldest_due_at",
        "dead_letters",
        "last_error",
        "last_inbound_at",
        "last_outbound_at",
      ]);
      expect(first).toMatchObject({
        bridge_integration_id: suporte,
        status: "active",
        realtime: "connected",
        delivery: "realtime",
        chatwoot_base_url: h.sim.url,
        chatwoot_account_id: h.accountId,
        outbox_depth: 1,
        dead_letters: 1,
        last_error: "",
        last_outbound_at: null,
      });
      expect(first!.oldest_due_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(first!.last_inbound_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(second).toMatchObject({
        outbox_depth: 0,
        dead_letters: 0,
        oldest_due_at: null,
        last_inbound_at: null,
      });
      // No secret in the answer: not the Chatwoot token, not the caller token.
      expect(answer.body).not.toContain(h.adminToken);
      expect(answer.body).not.toContain(ACCOUNT_TOKEN);

      // An instance token sees its own instance only; another account's token sees none of these.
      const own = JSON.parse(
        (await send(h.server, STATUS, { token: OTHER_INSTANCE_TOKEN })).body,
      ) as typeof body;
      expect(own.integrations.map((row) => row.instance)).toEqual(["vendas"]);
      const foreign = JSON.parse(
        (await send(h.server, STATUS, { token: FOREIGN_ACCOUNT_TOKEN })).body,
      ) as typeof body;
      expect(foreign.integrations).toEqual([]);
      return answer;
    },
  },
  {
    name: "status: the caller checks of every route (401 without or with an unknown token)",
    async run(h) {
      expectError(await send(h.server, STATUS, { token: null }), 401, "Missing token");
      const answer = await send(h.server, STATUS, { token: "no-such-token" });
      expectError(answer, 401, "Invalid token");
      return answer;
    },
  },
  {
    name: "dead-letters: newest first, paged with limit and before, without the message content",
    async run(h) {
      const suporte = await activate(h, "suporte");
      const ids = [
        await deadLetter(h, suporte, 1),
        await deadLetter(h, suporte, 2),
        await deadLetter(h, suporte, 3),
      ];
      const page = await send(h.server, `${DEAD}?limit=2`, { token: INSTANCE_TOKEN });
      expect(page.status, page.body).toBe(200);
      expect(page.headers["content-type"]).toBe(JSON_TYPE);
      const first = JSON.parse(page.body) as {
        instance: string;
        dead_letters: Array<Record<string, unknown>>;
        next_before: string | null;
      };
      expect(first.instance).toBe("suporte");
      expect(first.dead_letters.map((item) => item.id)).toEqual([ids[2], ids[1]]);
      expect(first.dead_letters[0]).toEqual({
        id: ids[2],
        direction: "inbound",
        kind: "message",
        chat: CHAT,
        conversation_id: null,
        error: "Chatwoot rejected message 3",
        attempts: 0,
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      });
      expect(page.body).not.toContain("private words");
      expect(first.next_before).toBe(ids[1]);
      const answer = await send(h.server, `${DEAD}?limit=2&before=${first.next_before}`, {
        token: ACCOUNT_TOKEN,
      });
      const second = JSON.parse(answer.body) as typeof first;
      expect(second.dead_letters.map((item) => item.id)).toEqual([ids[0]]);
      expect(second.next_before).toBeNull();
      return answer;
    },
  },
  {
    name: "dead-letters: limit and before are checked with a 400 naming the field, after the caller checks",
    async run(h) {
      await activate(h, "suporte");
      for (const limit of ["0", "101", "abc", "2.5", "-1", ""]) {
        expectError(
          await send(h.server, `${DEAD}?limit=${limit}`, { token: ACCOUNT_TOKEN }),
          400,
          "invalid query: limit: must be an integer from 1 to 100",
        );
      }
      expectError(
        await send(h.server, `${DEAD}?before=${encodeURIComponent("x' or 1=1")}`, { token: ACCOUNT_TOKEN }),
        400,
        "invalid query: before: must be the id of a dead letter (as listed)",
      );
      // The caller checks come first.
      expectError(await send(h.server, `${DEAD}?limit=0`, { token: null }), 401, "Missing token");
      expectError(
        await send(h.server, "/api/chatwoot/dead-letters/nope?limit=0", { token: ACCOUNT_TOKEN }),
        404,
        "instance not found",
      );
      expectError(
        await send(h.server, DEAD, { token: OTHER_INSTANCE_TOKEN }),
        403,
        "Instance token does not match the instance",
      );
      expectError(
        await send(h.server, DEAD, { token: FOREIGN_ACCOUNT_TOKEN }),
        403,
        "Instance does not belong to this account",
      );
      const answer = await send(h.server, "/api/chatwoot/dead-letters/vendas", { token: ACCOUNT_TOKEN });
      expectError(answer, 404, "no chatwoot integration for this instance");
      return answer;
    },
  },
  {
    name: "dead-letters retry: puts a dead letter back once (then 409), 404 for an unknown id",
    async run(h) {
      const suporte = await activate(h, "suporte");
      const id = await deadLetter(h, suporte, 1);
      const retry = (item: string, token = ACCOUNT_TOKEN) =>
        send(h.server, `${DEAD}/${encodeURIComponent(item)}/retry`, { method: "POST", token });
      expectError(await retry(id, FOREIGN_ACCOUNT_TOKEN), 403, "Instance does not belong to this account");
      const answer = await retry(id);
      expect(answer.status, answer.body).toBe(200);
      expect(answer.headers["content-type"]).toBe(JSON_TYPE);
      expect(JSON.parse(answer.body)).toEqual({
        id,
        status: "pending",
        message: "dead letter queued for retry",
      });
      const item = await h.store.outbox.find(suporte, "wa:DEAD1");
      expect(item).toMatchObject({ id, status: "pending", attempts: 0 });
      expectError(await retry(id), 409, "not a dead letter: it was retried already or is no longer dead");
      expectError(await retry("00000000-0000-4000-8000-000000000000"), 404, "dead letter not found");
      // Another integration's dead letter is not found through this instance.
      const vendas = await activate(h, "vendas");
      const foreign = await deadLetter(h, vendas, 2);
      expectError(await retry(foreign), 404, "dead letter not found");
      const listed = JSON.parse((await send(h.server, DEAD, { token: ACCOUNT_TOKEN })).body) as {
        dead_letters: unknown[];
      };
      expect(listed.dead_letters).toEqual([]);
      return answer;
    },
  },
  {
    name: "ui: the status page is one static document with a strict Content-Security-Policy and no secret",
    async run(h) {
      await activate(h, "suporte");
      const response = await fetch(`${h.server.url}/api/chatwoot/ui`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const csp = response.headers.get("content-security-policy") ?? "";
      expect(csp).toMatch(/^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-/);
      expect(csp).not.toContain("unsafe");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      const html = await response.text();
      expect(html).toMatch(/^<!doctype html>/);
      // Nothing loaded from elsewhere, and no secret or data baked in.
      expect(html).not.toMatch(/\bsrc=|<link|https?:\/\//);
      for (const secret of [h.adminToken, ACCOUNT_TOKEN, INSTANCE_TOKEN, h.sim.url])
        expect(html).not.toContain(secret);
      const answer: Answer = {
        status: response.status,
        headers: { "content-type": "text/html" },
        body: html,
      };
      return answer;
    },
  },
];
