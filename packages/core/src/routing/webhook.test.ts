import { describe, expect, it } from "vitest";
import { railsJson } from "./webhook.js";

describe("railsJson (the fallback when a host parser kept no bytes)", () => {
  it("escapes <, >, &, U+2028 and U+2029 as Rails does, and leaves other non-ASCII as UTF-8", () => {
    const value = { content: "<b>Tom & Jerry</b> café 日本語 😀\u2028\u2029", n: [1, 2.5, null, true] };
    expect(railsJson(value)).toBe(
      '{"content":"\\u003cb\\u003eTom \\u0026 Jerry\\u003c/b\\u003e café 日本語 😀\\u2028\\u2029","n":[1,2.5,null,true]}',
    );
    expect(Buffer.from(railsJson(value), "utf8").toString("hex")).toContain(
      Buffer.from("café 日本語 😀", "utf8").toString("hex"),
    );
  });

  it("keeps JSON's own escapes (quotes, backslashes, control characters) and a literal \\u003c text", () => {
    expect(railsJson({ a: '"\\\n\u0001', b: "\\u003c" })).toBe('{"a":"\\"\\\\\\n\\u0001","b":"\\\\u003c"}');
    expect(railsJson(null)).toBe("null");
  });
});
