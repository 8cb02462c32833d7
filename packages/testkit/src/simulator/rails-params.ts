/**
 * How Rails reads request parameters and casts them into columns: strong-parameter scalars,
 * ActiveModel's boolean cast, Ruby's `to_i` for ids. Chatwoot's behaviour on odd input comes from
 * these rules, so the simulator applies the same ones.
 */
import { railsPublicException } from "./errors.js";

export type Params = Record<string, unknown>;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A value strong parameters keep for a scalar key (JSON strings, numbers, booleans and null). */
export function isPermittedScalar(value: unknown): value is string | number | boolean | null {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

/** Ruby's `String#to_i`, which ActiveRecord uses to cast ids: "12abc" → 12, "abc" → 0. */
export function rubyToI(value: unknown): number {
  if (typeof value === "number") return Math.trunc(value);
  const match = /^\s*([+-]?\d+)/.exec(String(value ?? ""));
  return match?.[1] ? Number.parseInt(match[1], 10) : 0;
}

const FALSE_VALUES = new Set<unknown>([false, 0, "0", "f", "F", "false", "FALSE", "off", "OFF"]);

/** `ActiveModel::Type::Boolean#cast`: blank strings become nil, listed false values false, the rest true. */
export function castBoolean(value: string | number | boolean | null): boolean | null {
  if (value === null || value === "") return null;
  return !FALSE_VALUES.has(value);
}

/** `ActiveModel::Type::String#cast`: numbers become their text, booleans "t"/"f". */
export function castString(value: string | number | boolean | null): string | null {
  if (value === null) return null;
  if (typeof value === "boolean") return value ? "t" : "f";
  return String(value);
}

/** `ActiveModel::Type::Integer#cast`; non-numeric text becomes nil. */
export function castInteger(value: string | number | boolean | null): number | null {
  if (typeof value === "number") return Math.trunc(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === null || !/^\s*[+-]?\d/.test(value)) return null;
  return rubyToI(value);
}

/**
 * A strong-parameters spec: a key name permits a scalar; `{ key: "scalars" }` an array of scalars;
 * `{ key: "any" }` any hash (Rails' `key: {}`); `{ key: [...] }` a nested hash, or an array of them.
 */
export type PermitSpec = ReadonlyArray<string | Readonly<Record<string, PermitSpec | "scalars" | "any">>>;

/** `ActionController::Parameters#permit`: keeps what the spec allows and silently drops the rest. */
export function permit(params: Params, spec: PermitSpec): Params {
  const permitted: Params = {};
  for (const entry of spec) {
    if (typeof entry === "string") {
      if (entry in params && isPermittedScalar(params[entry])) permitted[entry] = params[entry];
      continue;
    }
    for (const [key, nested] of Object.entries(entry)) {
      const value = params[key];
      if (nested === "scalars") {
        if (Array.isArray(value)) permitted[key] = value.filter(isPermittedScalar);
      } else if (nested === "any") {
        if (isPlainObject(value)) permitted[key] = structuredClone(value);
      } else if (isPlainObject(value)) {
        permitted[key] = permit(value, nested);
      } else if (Array.isArray(value)) {
        permitted[key] = value.filter(isPlainObject).map((item) => permit(item, nested));
      }
    }
  }
  return permitted;
}

/** Whether a value is Ruby-`blank?`: nil, false, whitespace-only strings, empty arrays and hashes. */
export function isBlank(value: unknown): boolean {
  if (value === null || value === undefined || value === false) return true;
  if (typeof value === "string") return value.trim() === "";
  if (Array.isArray(value)) return value.length === 0;
  if (isPlainObject(value)) return Object.keys(value).length === 0;
  return false;
}

/**
 * Rails' params for a request: query string, then the JSON body (when the content type is JSON),
 * then path parameters, later sources winning. Invalid JSON is a 400 parse error.
 */
export function mergeParams(
  query: URLSearchParams,
  body: unknown,
  pathParams: Record<string, string>,
): Params {
  const params: Params = {};
  for (const [key, value] of query) params[key] = value;
  if (isPlainObject(body)) Object.assign(params, body);
  Object.assign(params, pathParams);
  return params;
}

/** Parses a request body the way Rails' JSON params parser does; `undefined` when it does not apply. */
export function parseJsonBody(contentType: string | undefined, raw: Buffer): unknown {
  if (raw.length === 0 || !contentType || !/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)) {
    return undefined;
  }
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw railsPublicException(400);
  }
}
