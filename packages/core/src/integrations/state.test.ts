import { describe, expect, it } from "vitest";
import type { IntegrationStatus } from "../store/ports.js";
import { chatwootTargetOf, type Integration, isProvisioned, isServing } from "./index.js";

const integration = (status: IntegrationStatus, inboxId: number | null = 7): Integration => ({
  id: "int_x",
  instance: "suporte",
  status,
  baseUrl: "https://cw.example.com",
  accountId: 1,
  apiToken: "token",
  webhookSecret: null,
  signingSecret: null,
  chatwootVersion: null,
  inboxId,
  inboxName: "WhatsApp",
  chatwootUserId: 3,
  deliveryMode: "realtime",
  signMessages: false,
  ignoreGroups: false,
  startAsPending: false,
  reopenResolved: false,
  lastError: "",
  provisioningUntil: null,
  version: 1,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

describe("integration state", () => {
  it("isProvisioned: a first activation completed, whatever the status since (paused included)", () => {
    expect(isProvisioned(null)).toBe(false);
    expect(isProvisioned(integration("provisioning", null))).toBe(false);
    for (const status of ["active", "paused", "error"] as const) {
      expect(isProvisioned(integration(status)), status).toBe(true);
    }
  });

  it("isServing: provisioned and not paused", () => {
    expect(isServing(null)).toBe(false);
    expect(isServing(integration("provisioning", null))).toBe(false);
    expect(isServing(integration("paused"))).toBe(false);
    expect(isServing(integration("active"))).toBe(true);
    expect(isServing(integration("error"))).toBe(true);
  });

  it("chatwootTargetOf: where and as whom to call Chatwoot", () => {
    expect(chatwootTargetOf(integration("active"))).toEqual({
      baseUrl: "https://cw.example.com",
      accountId: 1,
      apiToken: "token",
    });
  });
});
