import { describe, expect, it } from "vitest";
import { shieldFromLiquid, toWhatsApp } from "./markdown.js";

/**
 * The reference is Chatwoot's own WhatsApp channel: `Messages::MarkdownRendererService#render_whatsapp` with
 * `app/services/messages/markdown_renderers/whats_app_renderer.rb` (cases from
 * `spec/services/messages/markdown_renderer_service_spec.rb` are marked "spec"). Rows marked "differs" are where
 * the agent's formatting would otherwise be lost on WhatsApp.
 */
const cases: Array<[string, string, string]> = [
  // spec
  ["bold", "**bold text**", "*bold text*"],
  ["italic with underscores", "_italic text_", "_italic text_"],
  ["inline code", "`code`", "`code`"],
  ["link → its URL", "[link text](https://example.com)", "https://example.com"],
  [
    "combined",
    "**bold** _italic_ `code` [link](https://example.com)",
    "*bold* _italic_ `code` https://example.com",
  ],
  ["nested", "**bold _italic_**", "*bold _italic_*"],
  ["dash list", "- item 1\n- item 2\n- item 3", "- item 1\n- item 2\n- item 3"],
  ["asterisk list → dashes", "* item 1\n* item 2\n* item 3", "- item 1\n- item 2\n- item 3"],
  ["ordered list keeps numbers (4.11+)", "1. first step\n2. second step", "1. first step\n2. second step"],
  ["single newlines", "Line 1\nLine 2\nLine 3", "Line 1\nLine 2\nLine 3"],
  ["blank lines kept", "Para 1\n\n\n\nPara 2", "Para 1\n\n\n\nPara 2"],
  ["indented code → plain", "    indented code line", "indented code line"],
  ["indented code, emoji", "    first line\n    🌐 second line\n", "first line\n🌐 second line"],
  // CommonMark as cmark parses it
  ["italic with asterisks", "*italic*", "_italic_"],
  ["bold with underscores", "__bold__", "*bold*"],
  ["bold and italic", "***both***", "_*both*_"],
  ["intraword bold", "foo**bar**baz", "foo*bar*baz"],
  ["snake_case stays", "use snake_case_names", "use snake_case_names"],
  ["lone asterisks stay", "2 * 3 * 4", "2 * 3 * 4"],
  ["unclosed stays", "**unclosed", "**unclosed"],
  ["code span is literal", "`**not bold**`", "`**not bold**`"],
  ["editor escapes", "2\\*3 = 6, \\_x\\_ and \\[a\\]", "2*3 = 6, _x_ and [a]"],
  ["Shift+Enter (backslash newline)", "line 1\\\nline 2", "line 1\nline 2"],
  ["two-space hard break", "line 1  \nline 2", "line 1\nline 2"],
  ["trailing newlines", "hi\n\n", "hi"],
  ["whitespace-only lines", "a\n  \nb", "a\n\nb"],
  ["ordered list start", "3. three\n4. four", "3. three\n4. four"],
  ["list then text", "1. a\n2. b\n\nThanks", "1. a\n2. b\n\nThanks"],
  ["heading → its text", "# Title\nbody", "Title\nbody"],
  ["autolink", "see <https://x.example/a?b=1>", "see https://x.example/a?b=1"],
  ["image → alt text", "![our logo](https://x.example/logo.png)", "our logo"],
  ["link with emphasis", "[**Track it**](https://t.example/1)", "https://t.example/1"],
  ["entity", "AT&amp;T &#42;", "AT&T *"],
  ["WhatsApp-style bold typed through the API is italic", "Hello *World*!", "Hello _World_!"],
  ["URL with underscores", "https://example.com/a_b_c", "https://example.com/a_b_c"],
  [
    "CSAT link",
    "Please rate this conversation, http://127.0.0.1:3000/survey/responses/1f0c-4b2e",
    "Please rate this conversation, http://127.0.0.1:3000/survey/responses/1f0c-4b2e",
  ],
  ["quote", "> quoted", "> quoted"],
  ["signature-like prefix", "*Jane*:\nHi", "_Jane_:\nHi"],
  // differs from render_whatsapp
  ["strikethrough (differs: Chatwoot leaves ~~x~~)", "~~strike~~ this", "~strike~ this"],
  ["single tildes stay", "~x~ and ~~~y~~~", "~x~ and ~~~y~~~"],
  ["code block → monospace (differs: Chatwoot drops fences)", "```\ncode here\n```", "```code here```"],
  [
    "code block with info and blank line",
    "```js\nconst a = 1;\n\nlog(a);\n```",
    "```const a = 1;\n\nlog(a);```",
  ],
  ["text around a code block", "before\n```\nx\n```\nafter", "before\n```x```\nafter"],
  ["multi-line quote (differs: Chatwoot quotes the first line)", "> one\n> two", "> one\n> two"],
  ["HTML kept (differs: Chatwoot drops it)", "x < y and <b>bold</b>", "x < y and <b>bold</b>"],
  ["nested list indented (differs: Chatwoot flattens)", "- a\n  - b\n- c", "- a\n  - b\n- c"],
  ["multi-line item", "1. first\n   more\n2. second", "1. first\n   more\n2. second"],
];

describe("toWhatsApp: Chatwoot Markdown → WhatsApp markup", () => {
  it.each(cases)("%s", (_, markdown, whatsapp) => {
    expect(toWhatsApp(markdown)).toBe(whatsapp);
  });

  it("leaves text without Markdown unchanged", () => {
    const plain = "Olá! Seu pedido 1234 foi enviado hoje, chega amanhã.";
    expect(toWhatsApp(plain)).toBe(plain);
    expect(toWhatsApp("")).toBe("");
  });

  it("stays linear on long and pathological input (quadratic work takes tens of seconds here)", () => {
    const started = Date.now();
    expect(toWhatsApp("*a* _b_ **c** [d](e) `f` ~~g~~ \\\n".repeat(2_000)).length).toBeGreaterThan(0);
    expect(toWhatsApp("*_".repeat(20_000)).length).toBeGreaterThan(0);
    expect(toWhatsApp("[".repeat(20_000) + "**a").length).toBeGreaterThan(0);
    expect(toWhatsApp("[a](b".repeat(20_000)).length).toBeGreaterThan(0);
    expect(toWhatsApp("`a ``b ".repeat(20_000)).length).toBeGreaterThan(0);
    expect(toWhatsApp(">".repeat(5_000) + " deep").length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

/**
 * Chatwoot renders Liquid in outgoing messages created through the API (`app/models/concerns/liquidable.rb`,
 * before_create for `outgoing` and `template`), wrapping backtick spans in `{% raw %}` itself. The shielded text must
 * render back to the original.
 */
describe("shieldFromLiquid", () => {
  it.each([
    ["no Liquid", "hello {world} }} {", "hello {world} }} {"],
    ["a variable", "Hi {{name}}", 'Hi {{ "{" }}{{ "{" }}name}}'],
    ["a tag", "{% if x %}", '{{ "{" }}% if x %}'],
    ["inside backticks only (Chatwoot protects those)", "`{{x}}`", "`{{x}}`"],
    ["outside and inside backticks", "{{a}} `{{b}}`", '{{ "{" }}{{ "{" }}a}} `{{b}}`'],
  ])("%s", (_, text, shielded) => {
    expect(shieldFromLiquid(text)).toBe(shielded);
  });
});
