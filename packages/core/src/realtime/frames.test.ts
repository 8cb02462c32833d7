import { describe, expect, it } from "vitest";
import { ObjectFrameEncoder } from "./frames.js";

// Found by fuzzing the realtime frames (packages/testkit/src/fuzz/realtime.fuzz.test.ts): @anycable/core destructures a
// decoded `null`, uses `identifier` as a property key and calls what it finds there, where nothing catches the
// TypeError: one such frame ended the process.
describe("ObjectFrameEncoder", () => {
  const encoder = new ObjectFrameEncoder();

  it("decodes JSON objects as they are", () => {
    expect(encoder.decode('{"type":"ping","message":1}')).toEqual({ type: "ping", message: 1 });
    const frame = JSON.stringify({
      identifier: '{"channel":"RoomChannel"}',
      message: { event: "message.created" },
    });
    expect(encoder.decode(frame)).toEqual(JSON.parse(frame));
    expect(encoder.encode({ command: "subscribe" })).toBe('{"command":"subscribe"}');
  });

  it("drops every other frame like text that is not JSON", () => {
    for (const raw of [
      "null",
      "[]",
      "[null]",
      "7",
      '"welcome"',
      "true",
      "{",
      "",
      '{"identifier":{"a":1},"message":{}}',
      '{"identifier":null,"message":{}}',
      '{"type":["ping"]}',
      '{"type":"welcome","sid":{}}',
      '{"type":"confirm_subscription","identifier":"constructor"}',
      '{"type":"confirm_subscription","identifier":"__proto__"}',
      '{"identifier":"toString","message":{}}',
    ]) {
      expect(encoder.decode(raw), raw).toBeUndefined();
    }
  });
});
