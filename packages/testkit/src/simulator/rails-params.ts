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

/** A file part of a `multipart/form-data` request (`ActionDispatch::Http::UploadedFile`). */
export class UploadedFile {
  constructor(
    readonly fileName: string,
    /** The part's declared Content-Type (`application/octet-stream` when it declares none). */
    readonly contentType: string,
    readonly data: Buffer,
  ) {}
}

/**
 * Rack's `normalize_params`: assigns a value under a form field name such as `a`, `a[b]`, `a[]`
 * or `a[][b]`, building nested hashes and arrays as Rails does for query strings and form bodies.
 */
export function assignParam(params: Params, name: string, value: unknown): void {
  const match = /^([^[\]]*)((?:\[[^\]]*\])*)$/.exec(name);
  const head = match?.[1] ?? name;
  const keys = match?.[2] ? [...match[2].matchAll(/\[([^\]]*)\]/g)].map((m) => m[1] ?? "") : [];
  if (head === "") return;
  assignPath(params, head, keys, value);
}

function assignPath(target: Params, key: string, rest: string[], value: unknown): void {
  if (rest.length === 0) {
    target[key] = value;
    return;
  }
  const [next, ...tail] = rest as [string, ...string[]];
  if (next === "") {
    const list = Array.isArray(target[key]) ? (target[key] as unknown[]) : [];
    target[key] = list;
    if (tail.length === 0) {
      list.push(value);
      return;
    }
    // `a[][b]`: fill the last hash unless it already has this key, then start a new one.
    const [childKey] = tail as [string];
    const last = list[list.length - 1];
    if (isPlainObject(last) && !(childKey in last)) assignPath(last, childKey, tail.slice(1), value);
    else {
      const fresh: Params = {};
      assignPath(fresh, childKey, tail.slice(1), value);
      list.push(fresh);
    }
    return;
  }
  const child = isPlainObject(target[key]) ? (target[key] as Params) : {};
  target[key] = child;
  assignPath(child, next, tail, value);
}

/** Parses form-style pairs (query string, urlencoded body) into nested params. */
export function formParams(pairs: Iterable<[string, unknown]>): Params {
  const params: Params = {};
  for (const [name, value] of pairs) assignParam(params, name, value);
  return params;
}

/**
 * Parses a request body the way Rails' params parsers do: JSON (invalid JSON is a 400), urlencoded
 * and `multipart/form-data` (files become `UploadedFile`s). `undefined` for other or empty bodies.
 */
export async function parseBody(contentType: string | undefined, raw: Buffer): Promise<Params | undefined> {
  if (raw.length === 0 || !contentType) return undefined;
  const json = parseJsonBody(contentType, raw);
  if (json !== undefined) return isPlainObject(json) ? json : { _json: json };
  if (/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
    return formParams(new URLSearchParams(raw.toString("utf8")));
  }
  if (!/^multipart\/form-data\b/i.test(contentType)) return undefined;
  let form: FormData;
  try {
    // Node's WHATWG Request parses multipart bodies; no extra dependency is needed.
    form = await new Request("http://simulator.invalid/", {
      method: "POST",
      headers: { "content-type": contentType },
      body: new Uint8Array(raw),
    }).formData();
  } catch {
    throw railsPublicException(400);
  }
  const pairs: Array<[string, unknown]> = [];
  for (const [name, value] of form) {
    if (typeof value === "string") pairs.push([name, value]);
    else {
      const data = Buffer.from(await value.arrayBuffer());
      pairs.push([name, new UploadedFile(value.name, value.type || "application/octet-stream", data)]);
    }
  }
  return formParams(pairs);
}

/**
 * Rails' params for a request: query string, then the body, then path parameters, later sources
 * winning.
 */
export function mergeParams(
  query: URLSearchParams,
  body: Params | undefined,
  pathParams: Record<string, string>,
): Params {
  const params: Params = formParams(query);
  if (body) Object.assign(params, body);
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
