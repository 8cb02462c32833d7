import { afterEach, describe, expect, it, vi } from "vitest";
import { deadline } from "./deadline.js";

// The one-timer deadline every Chatwoot call and every outbox item runs under (chatwoot/api.ts, routing/dispatcher.ts).

afterEach(() => {
  vi.useRealTimers();
});

describe("deadline", () => {
  it("aborts when the time is up, as a timeout", () => {
    vi.useFakeTimers();
    const limit = deadline(1_000);
    vi.advanceTimersByTime(999);
    expect(limit.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(limit.signal.aborted).toBe(true);
    expect(limit.timedOut).toBe(true);
    expect((limit.signal.reason as DOMException).name).toBe("TimeoutError");
  });

  it("takes the reason it is given for a timeout", () => {
    vi.useFakeTimers();
    const limit = deadline(10, undefined, () => new Error("timed out after 0.01s"));
    vi.advanceTimersByTime(10);
    expect((limit.signal.reason as Error).message).toBe("timed out after 0.01s");
  });

  it("aborts with the parent's reason when the parent aborts first, which is no timeout", () => {
    vi.useFakeTimers();
    const parent = new AbortController();
    const limit = deadline(1_000, parent.signal);
    parent.abort(new Error("stopping"));
    expect(limit.signal.aborted).toBe(true);
    expect(limit.timedOut).toBe(false);
    expect((limit.signal.reason as Error).message).toBe("stopping");
  });

  it("starts aborted under a parent that already is", () => {
    const parent = new AbortController();
    parent.abort(new Error("gone"));
    const limit = deadline(1_000, parent.signal);
    expect(limit.signal.aborted).toBe(true);
    expect((limit.signal.reason as Error).message).toBe("gone");
    limit.done();
  });

  it("aborts on demand with its own reason", () => {
    const limit = deadline(1_000);
    limit.abort(new Error("claim lost"));
    expect((limit.signal.reason as Error).message).toBe("claim lost");
    expect(limit.timedOut).toBe(false);
    limit.done();
  });

  it("once done, neither the time nor the parent aborts it, and the parent no longer holds it", () => {
    vi.useFakeTimers();
    const parent = new AbortController();
    const added = vi.spyOn(parent.signal, "addEventListener");
    const removed = vi.spyOn(parent.signal, "removeEventListener");
    const limit = deadline(1_000, parent.signal);
    limit.done();
    expect(removed.mock.calls[0]?.[1]).toBe(added.mock.calls[0]?.[1]);
    vi.advanceTimersByTime(5_000);
    parent.abort();
    expect(limit.signal.aborted).toBe(false);
    expect(limit.timedOut).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
