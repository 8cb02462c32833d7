/**
 * A signal that aborts at a deadline or when `parent` aborts, whichever comes first, from one AbortController and
 * one timer that `done()` clears. What `AbortSignal.any([AbortSignal.timeout(ms), parent])` does, without its cost
 * on every call: on Node 20 each of those leaves a composite signal for the garbage collector to track (weak
 * references, a finalization registry) and a timer that runs to its end however soon the call returned.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Whether the deadline passed (rather than `parent` aborting). */
  readonly timedOut: boolean;
  /** Aborts now, for another reason than the deadline or `parent`. */
  abort(reason: unknown): void;
  /** Clears the timer and forgets `parent` (call it when the work ends). */
  done(): void;
}

export function deadline(ms: number, parent?: AbortSignal, reason?: () => unknown): Deadline {
  const controller = new AbortController();
  let timedOut = false;
  const onParent = () => controller.abort(parent!.reason);
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(reason ? reason() : new DOMException("The operation timed out.", "TimeoutError"));
  }, ms);
  timer.unref?.();
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener("abort", onParent, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    abort(reason) {
      controller.abort(reason);
    },
    done() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}
