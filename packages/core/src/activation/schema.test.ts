import { describe, expect, it } from "vitest";
import { activateBodySchema, formatIssues } from "./schema.js";

const valid = { chatwootBaseUrl: "https://cw.example.com/", chatwootAccountId: 5, chatwootApiToken: "tok" };
const issues = (body: unknown) => {
  const result = activateBodySchema.safeParse(body);
  return result.success ? "" : formatIssues(result.error);
};

describe("activate body", () => {
  it("applies defaults and removes every trailing slash", () => {
    expect(activateBodySchema.parse({ ...valid, chatwootBaseUrl: "https://cw.example.com/sub///" })).toEqual({
      chatwootBaseUrl: "https://cw.example.com/sub",
      chatwootAccountId: 5,
      chatwootApiToken: "tok",
      inboxName: "RyzeAPI",
      signMessages: false,
      ignoreGroups: false,
      startAsPending: false,
      reopenResolved: false,
      importHistoryDays: 0,
    });
  });

  it("names every failing field with its reason", () => {
    expect(issues({ chatwootBaseUrl: "https://x.example", chatwootAccountId: 0 })).toBe(
      "chatwootAccountId: must be greater than 0; chatwootApiToken: required",
    );
    expect(issues({})).toBe(
      "chatwootBaseUrl: required; chatwootAccountId: required; chatwootApiToken: required",
    );
  });

  it.each([
    [{ ...valid, chatwootAccountId: "5" }, "chatwootAccountId: must be an integer"],
    [{ ...valid, chatwootAccountId: 1.5 }, "chatwootAccountId: must be an integer"],
    [{ ...valid, chatwootApiToken: "   " }, "chatwootApiToken: must not be empty"],
    [{ ...valid, chatwootApiToken: "x".repeat(257) }, "chatwootApiToken: must be at most 256 characters"],
    [{ ...valid, inboxName: " " }, "inboxName: must not be empty"],
    [{ ...valid, inboxName: "x".repeat(256) }, "inboxName: must be at most 255 characters"],
    [{ ...valid, signMessages: "yes" }, "signMessages: must be a boolean"],
    [{ ...valid, chatwootBaseUrl: "ftp://cw.example.com" }, "chatwootBaseUrl: must use http or https"],
    [
      { ...valid, chatwootBaseUrl: "cw.example.com" },
      "chatwootBaseUrl: must be an absolute http or https URL",
    ],
    [
      { ...valid, chatwootBaseUrl: "https://u:p@cw.example.com" },
      "chatwootBaseUrl: must not contain credentials",
    ],
    [
      { ...valid, chatwootBaseUrl: "https://cw.example.com/?a=1" },
      "chatwootBaseUrl: must not contain a query or fragment",
    ],
    [
      { ...valid, chatwootBaseUrl: "https://cw.example.com/#x" },
      "chatwootBaseUrl: must not contain a query or fragment",
    ],
    [{ ...valid, extra: 1 }, "extra: unknown field"],
  ])("rejects %j", (body, message) => {
    expect(issues(body)).toBe(message);
  });
});
