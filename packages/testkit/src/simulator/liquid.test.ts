import { describe, expect, it } from "vitest";
import { renderLiquid } from "./liquid.js";

// Liquidable#process_liquid_in_content (app/models/concerns/liquidable.rb) with Liquid 5.4 (lax): what Chatwoot stores
// for an outgoing or template message created with this content.
const drops = { contact: { name: "Alice", first_name: "Alice" }, agent: { name: "Jane" } };

describe("renderLiquid", () => {
  it.each([
    ["variables", "Hi {{contact.name}} from {{ agent.name }}", "Hi Alice from Jane"],
    ["unknown variables are empty", "Hi {{nope.x}}!", "Hi !"],
    ["default filter", "Hi {{ contact.email | default: 'there' }}", "Hi there"],
    ["number literals", "code {{1234}} {{ 1.5 }} {{true}}", "code 1234 1.5 true"],
    ["string literals", 'a {{ "{" }}{{ "{" }}b}} {{ \'x\' }}', "a {{b}} x"],
    ["raw keeps its body", "{% raw %}{{contact.name}} {% if %}{% endraw %}!", "{{contact.name}} {% if %}!"],
    ["backtick spans are raw", "`{{contact.name}}` {{contact.name}}", "`{{contact.name}}` Alice"],
    ["unterminated output: unchanged", "Hi {{contact.name", "Hi {{contact.name"],
    ["single closing brace: unchanged", "Hi {{contact.name} x", "Hi {{contact.name} x"],
    ["unclosed raw: unchanged", "{% raw %}{{contact.name}}", "{% raw %}{{contact.name}}"],
    // A raw wrapper around backticks is cut short by Chatwoot's own raw tags: Liquid raises, content unchanged.
    ["raw around backticks: unchanged", "{% raw %}{{x}} `y`{% endraw %}", "{% raw %}{{x}} `y`{% endraw %}"],
    [
      "other tags are not run: unchanged",
      "{% if true %}x{% endif %} {{contact.name}}",
      "{% if true %}x{% endif %} {{contact.name}}",
    ],
    ["lone braces", "a { b } }} c", "a { b } }} c"],
  ])("%s", (_, content, stored) => {
    expect(renderLiquid(content, drops)).toBe(stored);
  });
});
