/**
 * A small checker for the OpenAPI 3.0 subset Chatwoot's swagger uses (`$ref`, type, nullable,
 * properties, required, items, enum, allOf/oneOf/anyOf, format), for the swagger conformance
 * tests. zod is not a testkit dependency, and `z.fromJSONSchema` would not report "listed but
 * absent" or undocumented properties. Findings are "kind path detail" lines.
 */
import { readFileSync } from "node:fs";

export type Schema = {
  $ref?: string;
  type?: string;
  nullable?: boolean;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  format?: string;
  allOf?: Schema[];
  oneOf?: Schema[];
  anyOf?: Schema[];
};

interface Operation {
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}

export const swagger = JSON.parse(
  readFileSync(new URL("../../fixtures/chatwoot-swagger.json", import.meta.url), "utf8"),
) as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};

function resolve(schema: Schema): Schema {
  let current = schema;
  while (current.$ref) {
    const name = current.$ref.replace("#/components/schemas/", "");
    const target = swagger.components.schemas[name];
    if (!target) throw new Error(`unresolved $ref ${current.$ref}`);
    current = target;
  }
  return current;
}

/** allOf merged into one schema (properties and required lists combined). */
function flatten(schema: Schema): Schema {
  const resolved = resolve(schema);
  if (!resolved.allOf) return resolved;
  const parts = resolved.allOf.map(flatten);
  return {
    ...resolved,
    allOf: undefined,
    type: resolved.type ?? parts.find((p) => p.type)?.type,
    properties: Object.assign({}, ...parts.map((p) => p.properties ?? {}), resolved.properties ?? {}),
    required: [...(resolved.required ?? []), ...parts.flatMap((p) => p.required ?? [])],
  };
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

/**
 * Findings for `value` against `schema`, as "kind path detail" lines. `listed: "present"` (used for
 * responses) also reports properties the swagger lists but the value lacks; requests only send what
 * they need, so there only `required` counts. Undocumented properties are reported in both modes.
 */
export function check(schema: Schema, value: unknown, listed: "present" | "optional", path = "$"): string[] {
  const s = flatten(schema);
  const alternatives = s.oneOf ?? s.anyOf;
  if (alternatives) {
    const results = alternatives.map((alt) => check(alt, value, listed, path));
    return results.some((r) => r.length === 0) ? [] : [`oneOf ${path}: matches no alternative`];
  }
  if (value === null) {
    return s.nullable || s.type === undefined ? [] : [`null ${path}: swagger says ${s.type}, not nullable`];
  }
  if (s.type && !hasType(value, s.type))
    return [`type ${path}: ${typeOf(value)} where swagger says ${s.type}`];
  const issues: string[] = [];
  if (s.enum && !s.enum.includes(value))
    issues.push(`enum ${path}: ${JSON.stringify(value)} not in swagger enum`);
  if (s.format === "date-time" && (typeof value !== "string" || Number.isNaN(Date.parse(value)))) {
    issues.push(`format ${path}: not a date-time`);
  }
  if (Array.isArray(value) && s.items) {
    for (const item of value) issues.push(...check(s.items, item, listed, `${path}[]`));
  }
  if (typeOf(value) === "object" && s.properties) {
    const object = value as Record<string, unknown>;
    for (const [key, propertySchema] of Object.entries(s.properties)) {
      if (key in object) issues.push(...check(propertySchema, object[key], listed, `${path}.${key}`));
      else if (listed === "present" || s.required?.includes(key)) issues.push(`missing ${path}.${key}`);
    }
    for (const key of Object.keys(object)) {
      if (!(key in s.properties)) issues.push(`undocumented ${path}.${key}`);
    }
  }
  return [...new Set(issues)];
}

/** The swagger operation for a path template; the swagger spells some paths with a trailing slash. */
export function operation(method: string, template: string): Operation | undefined {
  const normalise = (p: string) => p.replace(/\/$/, "");
  for (const [path, operations] of Object.entries(swagger.paths)) {
    if (normalise(path) === normalise(template) && operations[method.toLowerCase()]) {
      return operations[method.toLowerCase()];
    }
  }
  return undefined;
}

export function checkRequest(method: string, template: string, body: unknown): string[] {
  const op = operation(method, template);
  if (!op) return [`operation ${method} ${template} not documented`];
  const schema = op.requestBody?.content?.["application/json"]?.schema;
  return schema ? check(schema, body, "optional") : ["request body not documented"];
}

export function checkResponse(method: string, template: string, status: number, body: unknown): string[] {
  const op = operation(method, template);
  if (!op) return [`operation ${method} ${template} not documented`];
  const documented = op.responses[String(status)];
  if (!documented)
    return [`status ${status} not documented (swagger: ${Object.keys(op.responses).join(", ")})`];
  const schema = documented.content?.["application/json"]?.schema;
  return schema ? check(schema, body, "present") : [];
}

/** Sorted copy, to compare finding lists regardless of order. */
export const sorted = (lines: string[]) => [...lines].sort();
