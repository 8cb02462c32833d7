/**
 * Text between Chatwoot and WhatsApp.
 *
 * `toWhatsApp`: Chatwoot's editor writes Markdown (CommonMark: `**bold**`, `*italic*`/`_italic_`, `` `code` ``, code
 * fences, lists, links; Shift+Enter as a backslash hard break `"\\\n"`). An API inbox gets it as written (`Channel::Api`
 * has no renderer in `app/services/messages/markdown_renderer_service.rb`), so the bridge converts it the way
 * Chatwoot's own WhatsApp channel does (`render_whatsapp` with
 * `app/services/messages/markdown_renderers/whats_app_renderer.rb`): `*bold*`, `_italic_`, `` `code` `` kept, a link
 * becomes its URL, an image its alt text, a heading its text, lists `- ` and `N. `, quotes `> `, hard breaks plain
 * newlines, escapes resolved, runs of blank lines kept as they are. Where Chatwoot's renderer would lose the agent's
 * formatting, this one keeps it: `~~strike~~` → `~strike~` (Chatwoot parses no strikethrough), a fenced code block →
 * ```` ```code``` ```` monospace (Chatwoot drops the fences), every line of a quote gets `> `, nested list items are
 * indented, and inline HTML stays as typed (Chatwoot drops it).
 *
 * Incoming WhatsApp text is not converted: Chatwoot's WhatsApp channel stores it as it comes
 * (`app/services/whatsapp/incoming_message_service_helpers.rb#message_content`).
 *
 * `shieldFromLiquid`: Chatwoot renders Liquid in outgoing messages created through the API
 * (`app/models/concerns/liquidable.rb`), so text typed on the phone and mirrored as outgoing is shielded to render
 * back to itself.
 */

// ---------------------------------------------------------------------------------------------------------------
// Blocks

type Block =
  | { kind: "paragraph" | "heading"; text: string }
  | { kind: "code"; text: string; fenced: boolean }
  | { kind: "quote"; blocks: Block[] }
  | { kind: "list"; ordered: boolean; start: number; items: Block[][] }
  | { kind: "break" }
  | { kind: "gap"; count: number };

const MAX_DEPTH = 20;
const FENCE = /^( {0,3})(`{3,}|~{3,})(.*)$/;
const ATX = /^ {0,3}(#{1,6})([ \t].*|)$/;
const THEMATIC = /^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST_ITEM = /^( {0,3})([-+*]|(\d{1,9})([.)]))(?:([ \t]+)(.*))?$/;
const SETEXT = /^ {0,3}(?:=+|-+)[ \t]*$/;

const isBlank = (line: string) => /^[ \t]*$/.test(line);
const indentation = (line: string) => /^ */.exec(line)![0].length;

/** Leading tabs as spaces up to the next multiple of 4 (CommonMark's tab stops), so indentation is a count. */
function expandTabs(line: string): string {
  if (!/^[ ]*\t/.test(line)) return line;
  let out = "";
  let i = 0;
  for (; i < line.length && (line[i] === " " || line[i] === "\t"); i++) {
    out += line[i] === "\t" ? " ".repeat(4 - (out.length % 4)) : " ";
  }
  return out + line.slice(i);
}

function fenceOf(line: string): { indent: number; fence: string } | null {
  const m = FENCE.exec(line);
  if (!m) return null;
  const fence = m[2]!;
  if (fence[0] === "`" && m[3]!.includes("`")) return null;
  return { indent: m[1]!.length, fence };
}

interface ListMarker {
  ordered: boolean;
  /** The bullet character, or the ordered delimiter (`.` or `)`). */
  symbol: string;
  start: number;
  contentIndent: number;
  content: string;
}

function listMarkerOf(line: string): ListMarker | null {
  const m = LIST_ITEM.exec(line);
  if (!m) return null;
  const indent = m[1]!.length;
  const marker = m[2]!;
  const spaces = m[5] ?? "";
  let content = m[6] ?? "";
  let contentIndent = indent + marker.length + spaces.length;
  if (content === "") contentIndent = indent + marker.length + 1;
  else if (spaces.length > 4) {
    // Five spaces or more: the content starts after one (the rest is its own indentation).
    contentIndent = indent + marker.length + 1;
    content = spaces.slice(1) + content;
  }
  const ordered = m[3] !== undefined;
  return {
    ordered,
    symbol: ordered ? m[4]! : marker,
    start: ordered ? Number(m[3]) : 1,
    contentIndent,
    content,
  };
}

/** Whether a line starts a block that ends a paragraph (so it is no lazy continuation either). */
function interruptsParagraph(line: string): boolean {
  if (fenceOf(line) || ATX.test(line) || QUOTE.test(line) || THEMATIC.test(line)) return true;
  const item = listMarkerOf(line);
  return !!item && item.content.trim() !== "" && (!item.ordered || item.start === 1);
}

function parseBlocks(lines: string[], depth = 0): Block[] {
  if (depth > MAX_DEPTH) return [{ kind: "paragraph", text: lines.join("\n") }];
  const blocks: Block[] = [];
  let paragraph: string[] | null = null;
  const flush = () => {
    if (paragraph) blocks.push({ kind: "paragraph", text: paragraph.join("\n") });
    paragraph = null;
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (isBlank(line)) {
      flush();
      let count = 0;
      while (i < lines.length && isBlank(lines[i]!)) {
        count++;
        i++;
      }
      blocks.push({ kind: "gap", count });
      continue;
    }
    if (paragraph && SETEXT.test(line)) {
      blocks.push({ kind: "heading", text: (paragraph as string[]).join("\n") });
      paragraph = null;
      i++;
      continue;
    }
    if (!paragraph && indentation(line) >= 4) {
      const code: string[] = [];
      while (i < lines.length && (isBlank(lines[i]!) || indentation(lines[i]!) >= 4)) code.push(lines[i++]!);
      while (code.length > 0 && isBlank(code.at(-1)!)) {
        code.pop();
        i--;
      }
      blocks.push({ kind: "code", text: code.map((l) => l.slice(4)).join("\n"), fenced: false });
      continue;
    }
    const fence = fenceOf(line);
    if (fence) {
      flush();
      const code: string[] = [];
      const close = new RegExp(
        `^ {0,3}${fence.fence[0] === "`" ? "`" : "~"}{${fence.fence.length},}[ \\t]*$`,
      );
      i++;
      while (i < lines.length && !close.test(lines[i]!)) {
        const content = lines[i++]!;
        code.push(content.slice(Math.min(fence.indent, indentation(content))));
      }
      i++; // the closing fence (or the end)
      blocks.push({ kind: "code", text: code.join("\n"), fenced: true });
      continue;
    }
    const atx = ATX.exec(line);
    if (atx) {
      flush();
      const text = atx[2]!
        .trim()
        .replace(/(?:^|[ \t]+)#+$/, "")
        .trim();
      blocks.push({ kind: "heading", text });
      i++;
      continue;
    }
    if (THEMATIC.test(line)) {
      flush();
      blocks.push({ kind: "break" });
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      flush();
      const inner: string[] = [];
      while (i < lines.length) {
        const current = lines[i]!;
        const quoted = QUOTE.exec(current);
        if (quoted) inner.push(expandTabs(quoted[1]!));
        else if (
          !isBlank(current) &&
          inner.length > 0 &&
          !isBlank(inner.at(-1)!) &&
          !interruptsParagraph(current)
        )
          inner.push(current);
        else break;
        i++;
      }
      blocks.push({ kind: "quote", blocks: parseBlocks(inner, depth + 1) });
      continue;
    }
    const marker = listMarkerOf(line);
    if (marker && (!paragraph || (marker.content.trim() !== "" && (!marker.ordered || marker.start === 1)))) {
      flush();
      const items: Block[][] = [];
      let current: ListMarker | null = marker;
      while (current) {
        const item: string[] = [current.content];
        const { contentIndent } = current;
        current = null;
        i++;
        while (i < lines.length) {
          const next = lines[i]!;
          if (isBlank(next)) {
            let k = i;
            while (k < lines.length && isBlank(lines[k]!)) k++;
            if (k < lines.length && indentation(lines[k]!) >= contentIndent) {
              for (; i < k; i++) item.push("");
              continue;
            }
            break;
          }
          if (indentation(next) >= contentIndent) {
            item.push(next.slice(contentIndent));
            i++;
            continue;
          }
          const sibling = listMarkerOf(next);
          if (sibling && sibling.ordered === marker.ordered && sibling.symbol === marker.symbol) {
            current = sibling;
            break;
          }
          if (!isBlank(item.at(-1)!) && !interruptsParagraph(next)) {
            item.push(next.trimStart());
            i++;
            continue;
          }
          break;
        }
        items.push(parseBlocks(item, depth + 1));
      }
      blocks.push({ kind: "list", ordered: marker.ordered, start: marker.start, items });
      continue;
    }
    if (paragraph) (paragraph as string[]).push(line.trimStart());
    else paragraph = [line.trimStart()];
    i++;
  }
  flush();
  return blocks;
}

function renderBlock(block: Exclude<Block, { kind: "gap" }>): string {
  switch (block.kind) {
    case "paragraph":
    case "heading":
      return renderInline(parseInline(block.text.replace(/[ \t]+$/, "")));
    case "code": {
      const body = block.text.replace(/\n+$/, "");
      if (!block.fenced) return body;
      return body === "" ? "" : `\`\`\`${body}\`\`\``;
    }
    case "quote":
      return renderBlocks(block.blocks)
        .split("\n")
        .map((line) => (line ? `> ${line}` : ">"))
        .join("\n");
    case "list":
      return block.items
        .map((item, index) => {
          const marker = block.ordered ? `${block.start + index}. ` : "- ";
          const [first = "", ...rest] = renderBlocks(item).split("\n");
          const pad = " ".repeat(marker.length);
          return [`${marker}${first}`.trimEnd(), ...rest.map((line) => (line ? pad + line : line))].join(
            "\n",
          );
        })
        .join("\n");
    case "break":
      return "";
  }
}

/** Blocks one per line; blank lines between blocks kept; leading blank lines only when two or more. */
function renderBlocks(blocks: Block[]): string {
  let out = "";
  let started = false;
  let pending = 0;
  for (const block of blocks) {
    if (block.kind === "gap") {
      if (started) pending += block.count;
      else if (block.count >= 2) out += "\n".repeat(block.count);
      continue;
    }
    const text = renderBlock(block);
    if (text === "") continue;
    if (started) out += "\n".repeat(1 + pending);
    out += text;
    started = true;
    pending = 0;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Inlines (CommonMark's delimiter algorithm for emphasis, links and images)

type Kind =
  | "root"
  | "text"
  | "code"
  | "softbreak"
  | "hardbreak"
  | "strong"
  | "emph"
  | "strike"
  | "link"
  | "image";

class Node {
  prev: Node | null = null;
  next: Node | null = null;
  parent: Node | null = null;
  first: Node | null = null;
  last: Node | null = null;
  constructor(
    readonly kind: Kind,
    public value = "",
  ) {}

  append(child: Node): void {
    child.unlink();
    child.parent = this;
    child.prev = this.last;
    if (this.last) this.last.next = child;
    else this.first = child;
    this.last = child;
  }

  insertAfter(sibling: Node): void {
    sibling.unlink();
    sibling.parent = this.parent;
    sibling.prev = this;
    sibling.next = this.next;
    if (this.next) this.next.prev = sibling;
    else if (this.parent) this.parent.last = sibling;
    this.next = sibling;
  }

  unlink(): void {
    if (this.prev) this.prev.next = this.next;
    else if (this.parent) this.parent.first = this.next;
    if (this.next) this.next.prev = this.prev;
    else if (this.parent) this.parent.last = this.prev;
    this.prev = null;
    this.next = null;
    this.parent = null;
  }
}

interface Delimiter {
  char: string;
  count: number;
  original: number;
  node: Node;
  canOpen: boolean;
  canClose: boolean;
  prev: Delimiter | null;
  next: Delimiter | null;
}

interface Bracket {
  node: Node;
  prev: Bracket | null;
  prevDelimiter: Delimiter | null;
  image: boolean;
  active: boolean;
}

const ASCII_PUNCTUATION = /^[!-/:-@[-`{-~]$/;
const isWhitespace = (c: string) => c === "" || /^\s$/u.test(c);
const isPunctuation = (c: string) => ASCII_PUNCTUATION.test(c) || /^\p{P}$/u.test(c);
const SPECIAL = /[\n\\`*_~[\]!<&]/g;
const AUTOLINK = /<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*)>/y;
const EMAIL =
  /<([a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*)>/y;
const ENTITY = /&(?:#[xX]([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(amp|lt|gt|quot|apos|nbsp));/y;
const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

/** The code point before `index` / at `index`, as a string ("" at the ends). */
function charBefore(text: string, index: number): string {
  if (index <= 0) return "";
  const code = text.charCodeAt(index - 1);
  return code >= 0xdc00 && code <= 0xdfff && index >= 2 ? text.slice(index - 2, index) : text[index - 1]!;
}
function charAt(text: string, index: number): string {
  return index >= text.length ? "" : String.fromCodePoint(text.codePointAt(index)!);
}

function unescapeDestination(url: string): string {
  return url.replace(/\\([!-/:-@[-`{-~])/g, "$1");
}

/** How far a link destination or title is looked for (cmark also caps parentheses nesting at 32). */
const MAX_LINK_SCAN = 4096;
const MAX_PAREN_DEPTH = 32;

/** `(destination "title")` after a `]`: the destination and where the link ends, or null. */
function linkTail(text: string, start: number): { url: string; end: number } | null {
  if (text[start] !== "(") return null;
  const limit = Math.min(text.length, start + MAX_LINK_SCAN);
  const skip = (from: number) => {
    let i = from;
    let newlines = 0;
    while (i < text.length && (text[i] === " " || text[i] === "\t" || (text[i] === "\n" && newlines++ === 0)))
      i++;
    return i;
  };
  let i = skip(start + 1);
  let url: string;
  if (text[i] === "<") {
    let j = i + 1;
    while (j < limit && text[j] !== ">" && text[j] !== "\n" && text[j] !== "<") j += text[j] === "\\" ? 2 : 1;
    if (text[j] !== ">") return null;
    url = text.slice(i + 1, j);
    i = j + 1;
  } else {
    let depth = 0;
    let j = i;
    while (j < limit) {
      const c = text[j]!;
      if (c === "\\" && ASCII_PUNCTUATION.test(text[j + 1] ?? "")) {
        j += 2;
        continue;
      }
      if (c === "(") {
        if (++depth > MAX_PAREN_DEPTH) return null;
      } else if (c === ")") {
        if (depth === 0) break;
        depth--;
      } else if (c.charCodeAt(0) <= 0x20 || /\s/.test(c)) break;
      j++;
    }
    if (depth !== 0 || j >= limit) return null;
    url = text.slice(i, j);
    i = j;
  }
  const afterDestination = i;
  i = skip(i);
  const open = text[i];
  if (i > afterDestination && (open === '"' || open === "'" || open === "(")) {
    const close = open === "(" ? ")" : open;
    let j = i + 1;
    while (j < limit && text[j] !== close) j += text[j] === "\\" ? 2 : 1;
    if (j >= limit) return null;
    i = skip(j + 1);
  }
  if (text[i] !== ")") return null;
  return { url: unescapeDestination(url), end: i + 1 };
}

function parseInline(text: string): Node {
  const root = new Node("root");
  let delimiters = null as Delimiter | null;
  let brackets = null as Bracket | null;
  const unmatchedTicks = new Set<number>();
  const addText = (value: string) => {
    const node = new Node("text", value);
    root.append(node);
    return node;
  };
  const removeDelimiter = (delimiter: Delimiter) => {
    if (delimiter.prev) delimiter.prev.next = delimiter.next;
    if (delimiter.next) delimiter.next.prev = delimiter.prev;
    else delimiters = delimiter.prev;
  };

  function processEmphasis(bottom: Delimiter | null): void {
    const openersBottom = new Map<string, Delimiter | null>();
    // The first delimiter above `bottom`.
    let closer: Delimiter | null = delimiters === bottom ? null : delimiters;
    while (closer && closer.prev !== bottom) closer = closer.prev;
    while (closer) {
      if (!closer.canClose) {
        closer = closer.next;
        continue;
      }
      const key = `${closer.char}${closer.canOpen ? 1 : 0}${closer.original % 3}`;
      const floor = openersBottom.has(key) ? openersBottom.get(key)! : bottom;
      let opener: Delimiter | null = closer.prev;
      let found = false;
      while (opener && opener !== bottom && opener !== floor) {
        const oddMatch =
          (closer.canOpen || opener.canClose) &&
          closer.original % 3 !== 0 &&
          (opener.original + closer.original) % 3 === 0;
        if (
          opener.char === closer.char &&
          opener.canOpen &&
          (closer.char === "~" ? opener.count === closer.count : !oddMatch)
        ) {
          found = true;
          break;
        }
        opener = opener.prev;
      }
      if (!found || !opener) {
        const passed: Delimiter = closer;
        closer = closer.next;
        openersBottom.set(key, passed.prev);
        if (!passed.canOpen) removeDelimiter(passed);
        continue;
      }
      const use = closer.char === "~" ? 2 : closer.count >= 2 && opener.count >= 2 ? 2 : 1;
      opener.count -= use;
      closer.count -= use;
      opener.node.value = opener.node.value.slice(0, opener.node.value.length - use);
      closer.node.value = closer.node.value.slice(0, closer.node.value.length - use);
      const wrapper = new Node(closer.char === "~" ? "strike" : use === 2 ? "strong" : "emph");
      let inside = opener.node.next;
      while (inside && inside !== closer.node) {
        const next: Node | null = inside.next;
        wrapper.append(inside);
        inside = next;
      }
      opener.node.insertAfter(wrapper);
      // Delimiters between opener and closer are now inside the wrapper: drop them.
      opener.next = closer;
      closer.prev = opener;
      if (opener.count === 0) {
        opener.node.unlink();
        removeDelimiter(opener);
      }
      if (closer.count === 0) {
        closer.node.unlink();
        const next: Delimiter | null = closer.next;
        removeDelimiter(closer);
        closer = next;
      }
    }
    while (delimiters && delimiters !== bottom) removeDelimiter(delimiters);
  }

  let pos = 0;
  while (pos < text.length) {
    const c = text[pos]!;
    switch (c) {
      case "\n": {
        const last = root.last;
        let hard = false;
        if (last?.kind === "text") {
          const spaces = / +$/.exec(last.value)?.[0].length ?? 0;
          hard = spaces >= 2;
          if (spaces > 0) last.value = last.value.slice(0, last.value.length - spaces);
        }
        root.append(new Node(hard ? "hardbreak" : "softbreak"));
        pos++;
        while (text[pos] === " " || text[pos] === "\t") pos++;
        break;
      }
      case "\\": {
        const next = text[pos + 1];
        if (next === "\n") {
          // A hard break: the dashboard editor's Shift+Enter.
          root.append(new Node("hardbreak"));
          pos += 2;
          while (text[pos] === " " || text[pos] === "\t") pos++;
        } else if (next !== undefined && ASCII_PUNCTUATION.test(next)) {
          addText(next);
          pos += 2;
        } else {
          addText("\\");
          pos++;
        }
        break;
      }
      case "`": {
        let end = pos;
        while (text[end] === "`") end++;
        const length = end - pos;
        let close = -1;
        if (!unmatchedTicks.has(length)) {
          let from = end;
          while (from < text.length) {
            const at = text.indexOf("`", from);
            if (at === -1) break;
            let runEnd = at;
            while (text[runEnd] === "`") runEnd++;
            if (runEnd - at === length) {
              close = at;
              break;
            }
            from = runEnd;
          }
          if (close === -1) unmatchedTicks.add(length);
        }
        if (close === -1) {
          addText(text.slice(pos, end));
          pos = end;
          break;
        }
        let content = text.slice(end, close).replace(/\n/g, " ");
        if (content.length > 2 && content.startsWith(" ") && content.endsWith(" ") && /[^ ]/.test(content))
          content = content.slice(1, -1);
        root.append(new Node("code", content));
        pos = close + length;
        break;
      }
      case "*":
      case "_":
      case "~": {
        let end = pos;
        while (text[end] === c) end++;
        const count = end - pos;
        const before = charBefore(text, pos);
        const after = charAt(text, end);
        const left =
          !isWhitespace(after) && (!isPunctuation(after) || isWhitespace(before) || isPunctuation(before));
        const right =
          !isWhitespace(before) && (!isPunctuation(before) || isWhitespace(after) || isPunctuation(after));
        const canOpen = c === "_" ? left && (!right || isPunctuation(before)) : left;
        const canClose = c === "_" ? right && (!left || isPunctuation(after)) : right;
        const node = addText(text.slice(pos, end));
        pos = end;
        if ((canOpen || canClose) && (c !== "~" || count === 2)) {
          const delimiter: Delimiter = {
            char: c,
            count,
            original: count,
            node,
            canOpen,
            canClose,
            prev: delimiters,
            next: null,
          };
          if (delimiters) delimiters.next = delimiter;
          delimiters = delimiter;
        }
        break;
      }
      case "!":
      case "[": {
        const image = c === "!";
        if (image && text[pos + 1] !== "[") {
          addText("!");
          pos++;
          break;
        }
        const node = addText(image ? "![" : "[");
        brackets = { node, prev: brackets, prevDelimiter: delimiters, image, active: true };
        pos += image ? 2 : 1;
        break;
      }
      case "]": {
        pos++;
        const opener: Bracket | null = brackets;
        if (!opener) {
          addText("]");
          break;
        }
        const tail = opener.active ? linkTail(text, pos) : null;
        if (!tail) {
          brackets = opener.prev;
          addText("]");
          break;
        }
        pos = tail.end;
        const link = new Node(opener.image ? "image" : "link", tail.url);
        let inside = opener.node.next;
        while (inside) {
          const next: Node | null = inside.next;
          link.append(inside);
          inside = next;
        }
        root.append(link);
        processEmphasis(opener.prevDelimiter);
        brackets = opener.prev;
        opener.node.unlink();
        // No links in links.
        if (!opener.image) for (let b = brackets; b; b = b.prev) if (!b.image) b.active = false;
        break;
      }
      case "<": {
        AUTOLINK.lastIndex = pos;
        const uri = AUTOLINK.exec(text);
        EMAIL.lastIndex = pos;
        const email = uri ? null : EMAIL.exec(text);
        const match = uri ?? email;
        if (match) {
          root.append(new Node("link", match[1]!));
          pos += match[0].length;
        } else {
          // Inline HTML stays as typed.
          addText("<");
          pos++;
        }
        break;
      }
      case "&": {
        ENTITY.lastIndex = pos;
        const entity = ENTITY.exec(text);
        if (!entity) {
          addText("&");
          pos++;
          break;
        }
        const code = entity[1] ? Number.parseInt(entity[1], 16) : entity[2] ? Number(entity[2]) : null;
        const valid = code !== null && code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
        addText(code === null ? NAMED[entity[3]!]! : valid ? String.fromCodePoint(code) : "\ufffd");
        pos += entity[0].length;
        break;
      }
      default: {
        SPECIAL.lastIndex = pos + 1;
        const next = SPECIAL.exec(text);
        const end = next ? next.index : text.length;
        addText(text.slice(pos, end));
        pos = end;
      }
    }
  }
  processEmphasis(null);
  return root;
}

const MARKS: Partial<Record<Kind, string>> = { strong: "*", emph: "_", strike: "~" };

/** WhatsApp markup of parsed inlines (iterative: deeply nested emphasis cannot overflow the stack). */
function renderInline(root: Node): string {
  const out: string[] = [];
  const stack: Array<{ node: Node | null; close: string }> = [{ node: root.first, close: "" }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const node = top.node;
    if (!node) {
      out.push(top.close);
      stack.pop();
      continue;
    }
    top.node = node.next;
    switch (node.kind) {
      case "text":
        out.push(node.value);
        break;
      case "code":
        out.push(`\`${node.value}\``);
        break;
      case "softbreak":
      case "hardbreak":
        out.push("\n");
        break;
      case "link":
        // Chatwoot sends a link's URL only.
        out.push(node.value);
        break;
      case "image":
        stack.push({ node: node.first, close: "" });
        break;
      default: {
        const mark = MARKS[node.kind] ?? "";
        out.push(mark);
        stack.push({ node: node.first, close: mark });
      }
    }
  }
  return out.join("");
}

/** Chatwoot Markdown (an agent's reply, a template message) → WhatsApp markup. */
export function toWhatsApp(markdown: string): string {
  if (markdown.trim() === "") return markdown;
  const lines = markdown
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .map((line) => (isBlank(line) ? "" : expandTabs(line)));
  return renderBlocks(parseBlocks(lines)).replace(/\n+$/, "");
}

// ---------------------------------------------------------------------------------------------------------------
// Liquid

/**
 * Text that Chatwoot's Liquid rendering (`Liquidable#process_liquid_in_content`, Liquid 5.4, lax) turns back into
 * `text`. Chatwoot already wraps every backtick pair in `{% raw %}` (`modified_liquid_content`:
 * `` content.gsub(/`(.*?)`/m, …) ``); outside those, each `{` becomes the output of a string literal, `{{ "{" }}`, so
 * no tag or variable can start. A `{% raw %}` wrapper would not do: Chatwoot's own raw tags inside it (around
 * backticks) would end it early. Text with neither `{{` nor `{%` outside backticks is returned unchanged, and so is
 * text Liquid cannot parse anyway (an `endraw` inside backticks): Chatwoot then keeps the content it got.
 */
export function shieldFromLiquid(text: string): string {
  const parts = text.split(/(`[\s\S]*?`)/);
  const outside = parts.filter((_, index) => index % 2 === 0);
  if (!outside.some((part) => part.includes("{{") || part.includes("{%"))) return text;
  if (parts.some((part, index) => index % 2 === 1 && /\{%-?\s*endraw/.test(part))) return text;
  return parts.map((part, index) => (index % 2 === 1 ? part : part.replaceAll("{", '{{ "{" }}'))).join("");
}
