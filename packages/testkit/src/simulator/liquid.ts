/**
 * The part of Liquid (5.4, lax) that Chatwoot applies to outgoing and template message content
 * (`app/models/concerns/liquidable.rb`): `{{ contact.name }}`-style variables from its drops and string
 * literals (`{{ "{" }}`), `{% raw %}…{% endraw %}`, and text inside backticks left alone (Chatwoot wraps
 * it in `raw`). Unknown variables render as empty strings, as in Liquid. Content Liquid refuses (an
 * unterminated `{{`, an unclosed `raw`) is kept unchanged, as Chatwoot keeps it when Liquid raises; so
 * is content with any other tag, which the simulator does not interpret.
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

/** Liquid 5.4's `Tokenizer`: `source.split(TemplateParser)` (tags, variables, a lone `{%`/`{{`, and the text between). */
const TEMPLATE_PARSER = /(\{%[\s\S]*?%\}|\{\{[\s\S]*?\}\}?|\{%|\{\{)/;
const FULL_TOKEN = /^\{%-?\s*(\w+)\s*([\s\S]*?)-?%\}$/;
const FULL_TOKEN_POSSIBLY_INVALID = /^([\s\S]*)\{%-?\s*(\w+)\s*([\s\S]*)?-?%\}$/;
const CONTENT_OF_VARIABLE = /^\{\{-?([\s\S]*?)-?\}\}$/;
/** `Variable#lax_parse`: the first quoted fragment is the name, the rest the filters. */
const MARKUP_WITH_QUOTED_FRAGMENT = /("[^"]*"|'[^']*'|(?:[^\s,|'"]|"[^"]*"|'[^']*')+)([\s\S]*)/;

/** A `Liquid::Error` (Chatwoot keeps the content), or a tag the simulator does not interpret. */
class KeepContent extends Error {}

/** `{{ markup }}`: a string literal, or a `drop.attribute` lookup, with the `default` filter. */
function evaluate(drops: LiquidDrops, markup: string): string {
  const match = MARKUP_WITH_QUOTED_FRAGMENT.exec(markup);
  if (!match) return "";
  const name = match[1] ?? "";
  const literal = /^(["'])([\s\S]*)\1$/.exec(name);
  if (literal) return literal[2] ?? "";
  if (/^-?\d+(?:\.\d+)?$/.test(name)) return name;
  if (name === "true" || name === "false") return name;
  return lookup(drops, `${name}${match[2] ?? ""}`);
}

/**
 * Renders `content` against `drops` the way `process_liquid_in_content` would: backtick spans wrapped in
 * `{% raw %}` first (`modified_liquid_content`), then Liquid's tokens: text, `{{ … }}` outputs, `{% raw %}…{% endraw %}`
 * (its body kept as written). Anything Liquid would refuse (an unterminated tag or output, an unclosed raw) keeps the
 * content unchanged, as Chatwoot rescues `Liquid::Error`; so does any other tag, which the simulator does not run.
 */
export function renderLiquid(content: string, drops: LiquidDrops): string {
  const modified = content.replace(/`([\s\S]*?)`/g, "{% raw %}`$1`{% endraw %}");
  const tokens = modified.split(TEMPLATE_PARSER).filter((token) => token !== "");
  try {
    let out = "";
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i] ?? "";
      if (token.startsWith("{%")) {
        const tag = FULL_TOKEN.exec(token);
        if (tag?.[1] !== "raw" || (tag[2] ?? "").trim() !== "") throw new KeepContent();
        // `Raw#parse`: every token up to the first one ending in `{% endraw %}` is the body.
        let closed = false;
        while (++i < tokens.length) {
          const body = tokens[i] ?? "";
          const end = FULL_TOKEN_POSSIBLY_INVALID.exec(body);
          if (end && end[2] === "endraw") {
            out += end[1] ?? "";
            closed = true;
            break;
          }
          out += body;
        }
        if (!closed) throw new KeepContent();
      } else if (token.startsWith("{{")) {
        const variable = CONTENT_OF_VARIABLE.exec(token);
        if (!variable) throw new KeepContent();
        out += evaluate(drops, variable[1] ?? "");
      } else {
        out += token;
      }
    }
    return out;
  } catch (error) {
    if (error instanceof KeepContent) return content;
    throw error;
  }
}
