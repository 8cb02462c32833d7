/**
 * The part of Liquid that Chatwoot applies to outgoing and template message content
 * (`app/models/concerns/liquidable.rb`): `{{ contact.name }}`-style variables from its drops, with
 * text inside backticks left alone. Unknown variables render as empty strings, as in Liquid.
 * Content with tags (`{% … %}`) or an unterminated `{{` is kept unchanged (Chatwoot keeps the
 * content when Liquid raises; the simulator does not interpret tags).
 */

/** Values a template can reach: `drop.attribute`. */
export type LiquidDrops = Record<string, Record<string, string | number | null | undefined>>;

/** Ruby's `String#capitalize`: first character upper case, the rest lower case. */
export function rubyCapitalize(value: string): string {
  return value.charAt(0).toUpperCase() + value.slice(1).toLowerCase();
}

function lookup(drops: LiquidDrops, expression: string): string {
  const [path = "", ...filters] = expression.split("|").map((part) => part.trim());
  const [dropName = "", attribute] = path.split(".");
  const value = attribute === undefined ? undefined : drops[dropName]?.[attribute];
  let text = value === null || value === undefined ? "" : String(value);
  for (const filter of filters) {
    const fallback = /^default\s*:\s*(['"])(.*)\1$/.exec(filter);
    if (fallback && text === "") text = fallback[2] ?? "";
  }
  return text;
}

/** Renders `content` against `drops` the way `process_liquid_in_content` would. */
export function renderLiquid(content: string, drops: LiquidDrops): string {
  // Split into code spans (kept verbatim) and text.
  const parts = content.split(/(`[\s\S]*?`)/);
  const text = parts.filter((_, i) => i % 2 === 0).join("");
  if (text.includes("{%")) return content;
  if (/\{\{(?![\s\S]*?\}\})/.test(text)) return content;
  return parts
    .map((part, i) =>
      i % 2 === 1 ? part : part.replace(/\{\{([\s\S]*?)\}\}/g, (_, e: string) => lookup(drops, e)),
    )
    .join("");
}
