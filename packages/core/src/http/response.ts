import type { BridgeError } from "../errors/index.js";
import type { HttpResponse } from "./types.js";

const JSON_TYPE = "application/json; charset=utf-8";

/** A JSON answer, serialised once (adapters write it as is). */
export function json(status: number, value: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { "content-type": JSON_TYPE, ...headers }, body: JSON.stringify(value) };
}

/** The contract's error body: `{"success": false, "error": {"message": "..."}}` with the error's status. */
export function errorResponse(error: BridgeError, headers: Record<string, string> = {}): HttpResponse {
  return json(error.status, { success: false, error: { message: error.message } }, headers);
}
