import { afterAll, describe, expect, it } from "vitest";
import { type HttpCase, httpCases } from "./cases.js";
import { type AdapterMount, type Answer, type Harness, startHarness } from "./harness.js";

export type { HttpCase } from "./cases.js";
export { httpCases, webhookSignatureCases } from "./cases.js";
export type { AdapterMount, Answer, Harness, LogLine, StartedServer } from "./harness.js";
export { startHarness } from "./harness.js";

/** Answers recorded per case and framework, for the cross-framework comparison. */
export type AnswerBook = Map<string, Map<string, Answer>>;

/**
 * Replaces what legitimately differs between runs (random ids, ports, times) so that answers of different
 * frameworks can be compared byte for byte.
 */
export function normalizeAnswer(answer: Answer, h: Harness): Answer {
  const body = answer.body
    .replaceAll(h.adminToken, "<admin token>")
    .replaceAll(h.agentToken, "<agent token>")
    .replaceAll(h.strangerToken, "<stranger token>")
    .replaceAll(h.sim.url, "<chatwoot>")
    .replace(/int_[A-Za-z0-9_-]{12,}/g, "int_<id>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g, "<time>")
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
    .replace(/\(ref [0-9a-f]{12}\)/g, "(ref <ref>)")
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>");
  const headers = { ...answer.headers };
  if (headers["x-ratelimit-reset"]) headers["x-ratelimit-reset"] = "<reset>";
  if (headers["retry-after"]) headers["retry-after"] = "<seconds>";
  return { status: answer.status, headers, body };
}

async function runCase(
  mount: AdapterMount,
  testCase: HttpCase,
): Promise<{ answer: Answer; normalized: Answer }> {
  const h = await startHarness({ mount, ...testCase.harness });
  try {
    const answer = await testCase.run(h);
    return { answer, normalized: normalizeAnswer(answer, h) };
  } finally {
    await h.close();
  }
}

/**
 * The HTTP contract (`docs/http-api.md`) over real sockets against one framework adapter. Every case starts
 * the framework on 127.0.0.1 port 0 with the adapter mounted, in front of a Chatwoot simulator. Pass a shared
 * `book` to record the answers for {@link compareAnswerBooks}, or `cases` to run a subset (e.g.
 * `webhookSignatureCases` against a host configured another way).
 */
export function runHttpAdapterConformance(
  mount: AdapterMount,
  options: { book?: AnswerBook; cases?: readonly HttpCase[] } = {},
): void {
  describe(`HTTP contract on ${mount.name}`, () => {
    for (const testCase of options.cases ?? httpCases) {
      it(testCase.name, async () => {
        const { normalized } = await runCase(mount, testCase);
        if (options.book) {
          const byFramework = options.book.get(testCase.name) ?? new Map<string, Answer>();
          byFramework.set(mount.name, normalized);
          options.book.set(testCase.name, byFramework);
        }
      });
    }
  });
}

/** Asserts that every case was answered identically (status, our headers, body) by every framework. */
export function compareAnswerBooks(book: AnswerBook, frameworks: string[]): void {
  describe("the same answer on every framework", () => {
    afterAll(() => book.clear());
    it("every case has the same status, headers and body", () => {
      expect(book.size).toBe(httpCases.length);
      for (const [name, answers] of book) {
        expect([...answers.keys()].sort(), name).toEqual([...frameworks].sort());
        const [first, ...others] = [...answers.entries()];
        for (const [framework, answer] of others) {
          expect(answer, `${name}: ${framework} vs ${first![0]}`).toEqual(first![1]);
        }
      }
    });
  });
}
