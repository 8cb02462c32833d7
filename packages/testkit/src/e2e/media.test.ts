import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const PHONE = "5511922221111";

// A WhatsApp media server: /file/<name> serves bytes, /hop/<n>/<name> redirects n times first.
const files = new Map<string, { data: Buffer; type: string }>();
let mediaServer: Server;
let mediaUrl: string;
beforeAll(async () => {
  mediaServer = createServer((req, res) => {
    const hop = /^\/hop\/(\d+)\/(.+)$/.exec(req.url ?? "");
    if (hop) {
      const left = Number(hop[1]) - 1;
      res.writeHead(302, { location: left > 0 ? `/hop/${left}/${hop[2]}` : `/file/${hop[2]}` }).end();
      return;
    }
    // /declare/<bytes>: announces a body of that size (over the default cap) and never sends it.
    const declared = /^\/declare\/(\d+)$/.exec(req.url ?? "");
    if (declared) {
      res.writeHead(200, { "content-type": "video/mp4", "content-length": declared[1] }).flushHeaders();
      return;
    }
    // /stall/headers: never answers; /stall/body: answers the headers and half of the body, then stalls.
    if (req.url === "/stall/headers") return;
    if (req.url === "/stall/body") {
      res.writeHead(200, { "content-type": "audio/ogg", "content-length": 2048 }).write(randomBytes(1024));
      return;
    }
    const file = files.get((req.url ?? "").replace(/^\/file\//, ""));
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": file.type, "content-length": file.data.length }).end(file.data);
  });
  mediaServer.listen(0, "127.0.0.1");
  await once(mediaServer, "listening");
  mediaUrl = `http://127.0.0.1:${(mediaServer.address() as AddressInfo).port}`;
});
afterAll(
  () =>
    new Promise<void>((resolve) => {
      mediaServer.closeAllConnections();
      mediaServer.close(() => resolve());
    }),
);

function mediaEvent(media: Record<string, unknown>, extra: { text?: string; id?: string } = {}) {
  const event = textEvent({ phone: PHONE, text: extra.text ?? "", ...(extra.id ? { id: extra.id } : {}) });
  const message = event.data.message as Record<string, unknown>;
  if (!extra.text) delete message.content;
  message.media = media;
  return event;
}

async function lastMessage(harness: RoutingHarness, count: number) {
  await eventually(() => totalMessages(harness) === count, { what: `${count} messages` });
  const [conversation] = conversationsOf(harness);
  return chatMessages(harness, conversation!.id).at(-1)!;
}

const kinds = [
  { type: "image", mimetype: "image/jpeg", fileType: "image", via: "base64" },
  { type: "video", mimetype: "video/mp4", fileType: "video", via: "url" },
  { type: "audio", mimetype: "audio/mpeg", fileType: "audio", via: "base64" },
  { type: "ptt", mimetype: "audio/ogg", fileType: "audio", via: "url" },
  { type: "document", mimetype: "application/pdf", fileType: "file", via: "url", fileName: "contract.pdf" },
  { type: "sticker", mimetype: "image/webp", fileType: "image", via: "base64" },
] as const;

describe("media from WhatsApp to Chatwoot", () => {
  it("uploads every kind as an attachment, byte for byte, with its caption as text", async () => {
    h = await startRoutingHarness();
    let count = 0;
    for (const kind of kinds) {
      const data = randomBytes(2048 + count * 100);
      const name = `${kind.type}-${count}`;
      files.set(name, { data, type: kind.mimetype });
      const media = {
        type: kind.type,
        mimetype: kind.mimetype,
        caption: `a ${kind.type}`,
        ...("fileName" in kind ? { fileName: kind.fileName } : {}),
        ...(kind.via === "base64"
          ? { base64: data.toString("base64") }
          : { url: `${mediaUrl}/file/${name}` }),
      };
      await h.ingest(mediaEvent(media));
      const message = await lastMessage(h, ++count);
      expect(message.content).toBe(`a ${kind.type}`);
      expect(message.attachments).toHaveLength(1);
      const attachment = message.attachments![0]!;
      expect(attachment.file_type).toBe(kind.fileType);
      const stored = h.sim.attachmentBytes(attachment.id as number)!;
      expect(sha(stored.data)).toBe(sha(data));
      expect(stored.contentType).toBe(kind.mimetype);
      if ("fileName" in kind) expect(stored.fileName).toBe(kind.fileName);
    }
  });

  it("follows a redirect chain to the file", async () => {
    h = await startRoutingHarness();
    const data = randomBytes(4096);
    files.set("redirected", { data, type: "image/png" });
    await h.ingest(mediaEvent({ type: "image", url: `${mediaUrl}/hop/3/redirected` }));
    const message = await lastMessage(h, 1);
    expect(sha(h.sim.attachmentBytes(message.attachments![0]!.id as number)!.data)).toBe(sha(data));
  });

  it("posts an explanatory text in place of a file over the cap or that cannot be downloaded", async () => {
    h = await startRoutingHarness({ bridge: { media: { maxBytes: 10_000 } } });
    files.set("big", { data: randomBytes(20_000), type: "video/mp4" });
    await h.ingest(mediaEvent({ type: "video", url: `${mediaUrl}/file/big` }, { text: "look at this" }));
    const big = await lastMessage(h, 1);
    expect(big.content).toBe(
      "look at this\n[video from WhatsApp not delivered: file larger than the 9.8 KiB limit (19.5 KiB)]",
    );
    expect(big.attachments ?? []).toHaveLength(0);
    await h.ingest(mediaEvent({ type: "image", base64: randomBytes(20_000).toString("base64") }));
    const inline = await lastMessage(h, 2);
    expect(inline.content).toMatch(/^\[image from WhatsApp not delivered: file larger than the .* limit/);
    await h.ingest(mediaEvent({ type: "document", url: `${mediaUrl}/file/missing`, fileName: "x.pdf" }));
    const missing = await lastMessage(h, 3);
    expect(missing.content).toBe("[document from WhatsApp not delivered: download failed: HTTP 404]");
    expect(h.bridge.counters().media_unavailable).toBe(3);
  });

  it("caps files at 40 MiB by default, without downloading what is announced larger", async () => {
    h = await startRoutingHarness();
    await h.ingest(mediaEvent({ type: "video", url: `${mediaUrl}/declare/${41 * 1024 * 1024}` }));
    const message = await lastMessage(h, 1);
    expect(message.content).toBe(
      "[video from WhatsApp not delivered: file larger than the 40 MiB limit (41 MiB)]",
    );
    expect(message.attachments ?? []).toHaveLength(0);
    expect(h.bridge.counters().media_unavailable).toBe(1);
  });

  it("gives up a download after its deadline, whether the headers or the body stall", async () => {
    h = await startRoutingHarness({ bridge: { media: { timeoutMs: 300 } } });
    await h.ingest(mediaEvent({ type: "ptt", url: `${mediaUrl}/stall/headers` }, { text: "hello?" }));
    const headers = await lastMessage(h, 1);
    expect(headers.content).toBe(
      "hello?\n[voice note from WhatsApp not delivered: download failed: timed out after 0.3s]",
    );
    await h.ingest(mediaEvent({ type: "ptt", url: `${mediaUrl}/stall/body` }));
    const body = await lastMessage(h, 2);
    expect(body.content).toMatch(/^\[voice note from WhatsApp not delivered: download failed: /);
    expect(body.attachments ?? []).toHaveLength(0);
    expect(h.bridge.counters().media_unavailable).toBe(2);
  });
});

describe("media from Chatwoot to WhatsApp", () => {
  async function conversation(harness: RoutingHarness): Promise<number> {
    await harness.ingest(textEvent({ phone: PHONE, text: "send me the files" }));
    await eventually(() => totalMessages(harness) === 1);
    return conversationsOf(harness)[0]!.id;
  }

  it("sends text and each attachment as its own WhatsApp message, by kind, byte for byte", async () => {
    h = await startRoutingHarness();
    h.sim.setAttachmentRedirects(2);
    const conversationId = await conversation(h);
    const attachments = [
      { data: randomBytes(1000), mimetype: "image/png", fileName: "photo.png" },
      { data: randomBytes(1500), mimetype: "video/mp4", fileName: "clip.mp4" },
      { data: randomBytes(1200), mimetype: "audio/mpeg", fileName: "voice.mp3" },
      { data: randomBytes(900), mimetype: "application/pdf", fileName: "invoice.pdf" },
    ];
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId,
      userId: h.agent.id,
      content: "here you go",
      attachments,
    });
    await eventually(() => h!.gateway.sent("suporte").length === 5);
    const sent = h.gateway.sent("suporte");
    expect(sent.map((entry) => entry.type)).toEqual(["text", "image", "video", "audio", "document"]);
    expect(sent[0]!.text).toBe("here you go");
    for (const [index, attachment] of attachments.entries()) {
      expect(sent[index + 1]!.media).toMatchObject({
        sha256: sha(attachment.data),
        size: attachment.data.length,
        mimetype: attachment.mimetype,
      });
    }
    expect(sent[4]!.media!.fileName).toBe("invoice.pdf");
  });

  it("retries after a failure in the middle without sending any part twice", async () => {
    h = await startRoutingHarness();
    const conversationId = await conversation(h);
    const attachments = [1, 2, 3].map((n) => ({
      data: randomBytes(500 + n),
      mimetype: "image/jpeg",
      fileName: `p${n}.jpg`,
    }));
    // Let the text and the first image through, then fail once.
    const gateway = h.gateway;
    const original = gateway.send.bind(gateway);
    let calls = 0;
    gateway.send = async (message, options) => {
      calls++;
      if (calls === 3) throw new Error("socket closed by WhatsApp");
      return original(message, options);
    };
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId,
      userId: h.agent.id,
      content: "three photos",
      attachments,
    });
    await eventually(() => gateway.sent("suporte").length === 4, { what: "4 parts" });
    expect(calls).toBe(5);
    const sent = gateway.sent("suporte");
    expect(sent.map((entry) => entry.type)).toEqual(["text", "image", "image", "image"]);
    expect(sent.slice(1).map((entry) => entry.media!.sha256)).toEqual(attachments.map((a) => sha(a.data)));
  });
});

describe("media from Chatwoot to WhatsApp, over the cap", () => {
  it("sends what fits, and marks the reply failed with a note naming the attachment over the cap", async () => {
    h = await startRoutingHarness({ bridge: { media: { maxBytes: 10_000 } } });
    await h.ingest(textEvent({ phone: PHONE, text: "send me the files" }));
    await eventually(() => totalMessages(h!) === 1);
    const conversationId = conversationsOf(h)[0]!.id;
    const small = randomBytes(2_000);
    const reply = h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId,
      userId: h.agent.id,
      content: "two files",
      attachments: [
        { data: small, mimetype: "image/png", fileName: "small.png" },
        { data: randomBytes(20_000), mimetype: "video/mp4", fileName: "big.mp4" },
      ],
    }) as { id: number };
    const failed = await eventually(() => {
      const message = chatMessages(h!, conversationId).find((m) => m.id === reply.id);
      return message?.status === "failed" ? message : null;
    });
    expect(failed.content_attributes).toMatchObject({
      external_error: expect.stringMatching(/attachment 2: file larger than the 9\.8 KiB limit/),
    });
    // Not retried (nothing to gain): the text and the image that fit went out once, the video never.
    await eventually(() =>
      chatMessages(h!, conversationId).some((m) => m.private && m.content?.includes("attachment 2")),
    );
    const sent = h.gateway.sent("suporte");
    expect(sent.map((entry) => entry.type)).toEqual(["text", "image"]);
    expect(sent[1]!.media!.sha256).toBe(sha(small));
  });
});
