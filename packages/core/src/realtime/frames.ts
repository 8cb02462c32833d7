import { JSONEncoder } from "@anycable/core";

/** The fields of an ActionCable frame that @anycable/core uses as strings (keys, ids), when present. */
const STRING_FIELDS = ["type", "identifier", "sid", "reason"] as const;

/**
 * ActionCable frames as @anycable/core handles them safely: JSON objects whose `type`, `identifier`, `sid` and `reason`
 * are strings when present, and whose `identifier` is a JSON object's text. Anything else is dropped like text that
 * is not JSON. @anycable/core 1.1 destructures a decoded `null`, uses `identifier` as a property key (an object without
 * a prototype cannot be one) and calls what it finds under it (`constructor` is found on every object), all in the
 * socket's message handler, where the TypeError is uncaught: one such frame from whatever answers on a
 * `chatwootBaseUrl` (a caller chooses it) would end the host's process. Found by fuzzing the frames (issue 15).
 */
export class ObjectFrameEncoder extends JSONEncoder {
  override decode(raw: string): object | undefined {
    const value = super.decode(raw);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    const frame = value as Record<string, unknown>;
    const wellTyped = STRING_FIELDS.every(
      (name) => frame[name] === undefined || typeof frame[name] === "string",
    );
    // An identifier is the JSON of a subscription's params (`{"channel":"RoomChannel",...}`); anything else could
    // name a property every object has (`__proto__`, `constructor`), which @anycable/core takes for a subscription.
    const identifier = frame["identifier"];
    return wellTyped && (identifier === undefined || (identifier as string).startsWith("{"))
      ? frame
      : undefined;
  }
}
