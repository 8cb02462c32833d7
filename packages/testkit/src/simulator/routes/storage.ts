/**
 * ActiveStorage's public URLs for attachment bytes. An attachment's `data_url` is a blob redirect
 * URL that answers 302 (as `url_for(file)` does with the default redirect mode) to the storage
 * service, which serves the bytes. `runtime.attachmentRedirects` sets how many 302s come first
 * (default 1; 0 serves the bytes at `data_url` itself, like the proxy mode).
 */
import { rubyToI } from "../rails-params.js";
import type { PublicContext, Route, RouteReply } from "../router.js";
import type { AttachmentRecord } from "../store.js";

const STORAGE = "/rails/active_storage";

/** Types ActiveStorage serves inline (`content_types_allowed_inline`, simplified); others as attachment. */
function disposition(attachment: AttachmentRecord): string {
  const inline =
    /^(image|audio|video)\//.test(attachment.contentType) || attachment.contentType === "application/pdf";
  const name = attachment.fileName.replace(/["\\]/g, "_");
  return `${inline ? "inline" : "attachment"}; filename="${name}"; filename*=UTF-8''${encodeURIComponent(attachment.fileName)}`;
}

function findBlob({ store, params }: PublicContext): AttachmentRecord | undefined {
  const key = String(params["key"] ?? "");
  for (const attachment of store.attachments.values()) if (attachment.blobKey === key) return attachment;
  return undefined;
}

const notFound = (): RouteReply => ({ status: 404, raw: "", headers: { "content-type": "text/html" } });

function bytes(attachment: AttachmentRecord): RouteReply {
  return {
    raw: attachment.data,
    headers: { "content-type": attachment.contentType, "content-disposition": disposition(attachment) },
  };
}

function redirect(location: string): RouteReply {
  return { status: 302, raw: "", headers: { location, "content-type": "text/html; charset=utf-8" } };
}

/** The redirect chain: `hop` counts the redirects already followed. */
function redirectOrServe(ctx: PublicContext, path: string): RouteReply {
  const attachment = findBlob(ctx);
  if (!attachment) return notFound();
  const total = Math.max(0, ctx.runtime.attachmentRedirects);
  if (total === 0) return bytes(attachment);
  const hop = rubyToI(ctx.params["hop"] ?? 0);
  const fileName = encodeURIComponent(attachment.fileName);
  if (hop + 1 < total) return redirect(`${ctx.runtime.baseUrl}${path}?hop=${hop + 1}`);
  return redirect(`${ctx.runtime.baseUrl}${STORAGE}/disk/${attachment.blobKey}/${fileName}`);
}

export const storageRoutes: Route[] = [
  {
    method: "GET",
    pattern: `${STORAGE}/blobs/redirect/:key/:filename`,
    scope: "public",
    handle: (ctx) => {
      const fileName = encodeURIComponent(String(ctx.params["filename"]));
      return redirectOrServe(ctx, `${STORAGE}/blobs/redirect/${String(ctx.params["key"])}/${fileName}`);
    },
  },
  {
    method: "GET",
    pattern: `${STORAGE}/representations/redirect/:key/:variation/:filename`,
    scope: "public",
    handle: (ctx) => {
      const fileName = encodeURIComponent(String(ctx.params["filename"]));
      const variation = encodeURIComponent(String(ctx.params["variation"]));
      return redirectOrServe(
        ctx,
        `${STORAGE}/representations/redirect/${String(ctx.params["key"])}/${variation}/${fileName}`,
      );
    },
  },
  {
    method: "GET",
    pattern: `${STORAGE}/disk/:key/:filename`,
    scope: "public",
    handle: (ctx) => {
      const attachment = findBlob(ctx);
      return attachment ? bytes(attachment) : notFound();
    },
  },
];
