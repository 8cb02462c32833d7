import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "./index.js";
import { type AnyJson, call, openConversation, type Seed, seed } from "./test-support.js";

let sim: ChatwootSimulator;
let s: Seed;
let conversationId: number;

beforeEach(async () => {
  sim = await startChatwootSimulator();
  s = seed(sim);
  ({ conversationId } = await openConversation(sim, s));
});

afterEach(async () => {
  await sim.close();
});

const png = randomBytes(2048);
const pdf = Buffer.from("%PDF-1.4 simulated");

/** Follows redirects by hand, counting them, and returns the final response's bytes. */
async function download(url: string) {
  let hops = 0;
  let current = url;
  for (;;) {
    const res = await fetch(current, { redirect: "manual" });
    if (res.status !== 302) {
      return {
        status: res.status,
        hops,
        type: res.headers.get("content-type"),
        data: Buffer.from(await res.arrayBuffer()),
      };
    }
    hops += 1;
    current = res.headers.get("location") ?? "";
  }
}

async function postMultipart() {
  const form = new FormData();
  form.append("content", "two files");
  form.append("message_type", "incoming");
  form.append("source_id", "WAMID.M1");
  form.append("content_attributes", JSON.stringify({ in_reply_to_external_id: null, wa: { kind: "media" } }));
  form.append("attachments[]", new Blob([png], { type: "image/png" }), "photo.png");
  form.append("attachments[]", new Blob([pdf], { type: "application/pdf" }), "invoice.pdf");
  return call(sim, "POST", s.path(`/conversations/${conversationId}/messages`), {
    token: s.admin.accessToken,
    form,
  });
}

describe("multipart messages with attachments[]", () => {
  it("stores each file with file_type from its content type and content_attributes parsed from JSON", async () => {
    const reply = await postMultipart();
    expect(reply.status).toBe(200);
    const message = reply.json as AnyJson;
    expect(message).toMatchObject({
      content: "two files",
      message_type: 0,
      source_id: "WAMID.M1",
      content_attributes: { wa: { kind: "media" } },
    });
    expect(message.attachments).toMatchObject([
      {
        message_id: message.id,
        file_type: "image",
        account_id: s.accountId,
        file_size: png.length,
        extension: null,
      },
      { message_id: message.id, file_type: "file", file_size: pdf.length, thumb_url: "" },
    ]);
    expect(message.attachments[0].thumb_url).toMatch(/\/rails\/active_storage\/representations\/redirect\//);
    expect(sim.attachmentBytes(message.attachments[1].id)).toEqual({
      data: pdf,
      contentType: "application/pdf",
      fileName: "invoice.pdf",
    });
  });

  it("serves the bytes behind data_url through one 302 by default, with the content type", async () => {
    const message = (await postMultipart()).json as AnyJson;
    const image = await download(message.attachments[0].data_url);
    expect(image).toMatchObject({ status: 200, hops: 1, type: "image/png" });
    expect(image.data.equals(png)).toBe(true);
    const document = await download(message.attachments[1].data_url);
    expect(document.data.equals(pdf)).toBe(true);
    // fetch follows the chain by itself too.
    const followed = await fetch(message.attachments[0].data_url);
    expect(Buffer.from(await followed.arrayBuffer()).equals(png)).toBe(true);
  });

  it("makes the redirect chain longer or removes it (setAttachmentRedirects)", async () => {
    const message = (await postMultipart()).json as AnyJson;
    sim.setAttachmentRedirects(3);
    const long = await download(message.attachments[0].data_url);
    expect(long.hops).toBe(3);
    expect(long.data.equals(png)).toBe(true);
    sim.setAttachmentRedirects(0);
    const direct = await download(message.attachments[0].data_url);
    expect(direct).toMatchObject({ hops: 0, status: 200 });
    expect(direct.data.equals(png)).toBe(true);
  });

  it("maps audio and video content types; a single `attachments` field (no []) is refused as in Chatwoot", async () => {
    const form = new FormData();
    form.append("attachments[]", new Blob([Buffer.from("ogg")], { type: "audio/ogg" }), "voice.ogg");
    form.append("attachments[]", new Blob([Buffer.from("mp4")], { type: "video/mp4" }), "clip.mp4");
    const path = s.path(`/conversations/${conversationId}/messages`);
    const reply = (await call(sim, "POST", path, { token: s.admin.accessToken, form })).json as AnyJson;
    expect(reply.attachments.map((a: AnyJson) => a.file_type)).toEqual(["audio", "video"]);
    expect(reply.attachments[0]).toHaveProperty("transcribed_text", "");
    const single = new FormData();
    single.append("attachments", new Blob([png], { type: "image/png" }), "photo.png");
    expect(await call(sim, "POST", path, { token: s.admin.accessToken, form: single })).toMatchObject({
      status: 422,
      json: { error: "undefined method 'each' for an instance of ActionDispatch::Http::UploadedFile" },
    });
  });

  it("agents attach files too; deleting the message removes the attachments", async () => {
    const message = sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.admin.id,
      content: "see attached",
      attachments: [{ data: png, mimetype: "image/jpeg", fileName: "shot.jpg" }],
    }) as AnyJson;
    const url = message.attachments[0].data_url;
    expect((await download(url)).data.equals(png)).toBe(true);
    const deleted = sim.deleteMessage({
      accountId: s.accountId,
      conversationId,
      messageId: message.id,
    }) as AnyJson;
    expect(deleted).not.toHaveProperty("attachments");
    expect((await download(url)).status).toBe(404);
    expect(sim.attachmentBytes(message.attachments[0].id)).toBeUndefined();
  });
});
