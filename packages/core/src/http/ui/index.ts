import { createHash } from "node:crypto";
import { anyone, defineRoute, type Route } from "../routes.js";
import { STATUS_PAGE_BODY, STATUS_PAGE_SCRIPT, STATUS_PAGE_STYLE } from "./page.js";

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/** The page, built once: the same bytes on every request. */
export const STATUS_PAGE_HTML =
  '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
  '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
  '<meta name="referrer" content="no-referrer">\n<title>Chatwoot bridge status</title>\n' +
  `<style>${STATUS_PAGE_STYLE}</style>\n</head>\n<body>${STATUS_PAGE_BODY}<script>${STATUS_PAGE_SCRIPT}</script>\n</body>\n</html>\n`;

/**
 * Only the page's own inline style and script (by hash) run; it may talk to its own origin only (the status and
 * dead-letter routes), load nothing else, post no form, and not be framed.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(STATUS_PAGE_SCRIPT)}`,
  `style-src ${sha256(STATUS_PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * `GET <prefix>/ui`: the status page (in the spirit of bull-board). Anyone may load it: it holds no secret and no
 * data; the data routes it calls check the caller token it asks for. The module switch applies (503 when off).
 */
export function statusPageRoute(): Route {
  return defineRoute({
    path: "ui",
    methods: ["GET", "HEAD"],
    access: anyone,
    async handle() {
      return {
        status: 200,
        headers: {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy": STATUS_PAGE_CSP,
          "x-content-type-options": "nosniff",
          "x-frame-options": "DENY",
          "referrer-policy": "no-referrer",
          "cache-control": "no-cache",
        },
        body: STATUS_PAGE_HTML,
      };
    },
  });
}
