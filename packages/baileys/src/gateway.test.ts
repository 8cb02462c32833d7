// Every `WhatsAppSend` kind out → what the socket's `sendMessage` received.
import type { WhatsAppSend } from "@ryze/chatwoot-core";
import { proto } from "baileys";
import { describe, expect, it } from "vitest";
import { attachBaileys } from "./attach.js";
import { createBaileysGateway } from "./gateway.js";
import { createFakeSocket } from "./test-support/fake-socket.js";
import { CONTACT_LID, CONTACT_PN, GROUP, PARTICIPANT_PN, waMessage } from "./test-support/fixtures.js";

const bytes = (size: number, seed: number) => Uint8Array.from({ length: size }, (_, i) => (i * seed) & 0xff);
const base = { instance: "suporte", to: CONTACT_PN } as const;

function setup() {
  const socket = createFakeSocket();
  const gateway = createBaileysGateway(socket);
  return { socket, gateway };
}

describe("createBaileysGateway: WhatsAppSend → sock.sendMessage", () => {
  it("text: { text }, and answers the WhatsApp id of the sent message", async () => {
    const { socket, gateway } = setup();
    const result = await gateway.send({ ...base, kind: "text", text: "*Jane*:\nOlá!" });
    expect(socket.sent).toHaveLength(1);
    expect(socket.sent[0]).toMatchObject({
      jid: CONTACT_PN,
      content: { text: "*Jane*:\nOlá!" },
      options: undefined,
    });
    expect(result).toEqual({ id: socket.sent[0]!.id });
    expect(gateway.supportsRevoke).toBe(true);
  });

  const image = bytes(3000, 7);
  const video = bytes(4000, 11);
  const mp3 = bytes(2000, 13);
  const ogg = bytes(1500, 17);
  const pdf = bytes(5000, 19);
  const webp = bytes(900, 23);
  it.each([
    [
      "image",
      { kind: "image", media: { data: image, mimetype: "image/png", fileName: "a.png" }, caption: "legenda" },
      { image: Buffer.from(image), mimetype: "image/png", caption: "legenda" },
    ],
    [
      "video",
      { kind: "video", media: { data: video, mimetype: "video/mp4" } },
      { video: Buffer.from(video), mimetype: "video/mp4" },
    ],
    [
      "audio (an audio file)",
      { kind: "audio", media: { data: mp3, mimetype: "audio/mpeg", fileName: "song.mp3" } },
      { audio: Buffer.from(mp3), mimetype: "audio/mpeg", ptt: false },
    ],
    [
      "audio in Ogg (a recorded message: a voice note)",
      { kind: "audio", media: { data: ogg, mimetype: "audio/ogg", fileName: "rec.ogg" } },
      { audio: Buffer.from(ogg), mimetype: "audio/ogg; codecs=opus", ptt: true },
    ],
    [
      "document (the empty caption the bridge gives a document is left out)",
      {
        kind: "document",
        media: { data: pdf, mimetype: "application/pdf", fileName: "contract.pdf" },
        caption: "",
      },
      { document: Buffer.from(pdf), mimetype: "application/pdf", fileName: "contract.pdf" },
    ],
    [
      "document without a file name",
      { kind: "document", media: { data: pdf, mimetype: "application/octet-stream" } },
      { document: Buffer.from(pdf), mimetype: "application/octet-stream", fileName: "file" },
    ],
    [
      "sticker",
      { kind: "sticker", media: { data: webp, mimetype: "image/webp" } },
      { sticker: Buffer.from(webp), mimetype: "image/webp" },
    ],
  ] as const)("%s", async (_kind, send, content) => {
    const { socket, gateway } = setup();
    const result = await gateway.send({ ...base, ...send } as WhatsAppSend);
    expect(socket.sent[0]!.content).toEqual(content);
    expect(result.id).toBe(socket.sent[0]!.id);
  });

  it("a media kind without media is refused, and nothing is sent", async () => {
    const { socket, gateway } = setup();
    await expect(gateway.send({ ...base, kind: "image" })).rejects.toThrow("a image send without media");
    expect(socket.sent).toHaveLength(0);
  });

  it("quoted replies: the quoted message as attachBaileys saw it", async () => {
    const { socket, gateway } = setup();
    const detach = attachBaileys({ ingest: async () => ({ id: "", duplicate: false }) }, "suporte", socket);
    const original = waMessage({
      id: "3EB0QUOTEDORIGINAL01",
      remoteJid: CONTACT_PN,
      message: { conversation: "pergunta" },
    });
    socket.emit("messages.upsert", { messages: [original], type: "notify" });
    await detach();
    await gateway.send({ ...base, kind: "text", text: "resposta", replyTo: "3EB0QUOTEDORIGINAL01" });
    expect(socket.sent[0]!.options?.quoted).toBe(original);
  });

  it("quoted replies: a message seen under the contact's LID is quoted in the phone-number chat", async () => {
    const { socket, gateway } = setup();
    const detach = attachBaileys({ ingest: async () => ({ id: "", duplicate: false }) }, "suporte", socket);
    const original = waMessage({
      id: "3EB0QUOTEDBYLID00001",
      remoteJid: CONTACT_LID,
      remoteJidAlt: CONTACT_PN,
      message: { conversation: "pelo LID" },
    });
    socket.emit("messages.upsert", { messages: [original], type: "notify" });
    await detach();
    await gateway.send({ ...base, kind: "text", text: "ok", replyTo: "3EB0QUOTEDBYLID00001" });
    expect(socket.sent[0]!.options?.quoted).toMatchObject({
      key: { remoteJid: CONTACT_PN, id: "3EB0QUOTEDBYLID00001", fromMe: false },
      message: { conversation: "pelo LID" },
    });
  });

  it("quoted replies: our own earlier send is quoted as ours", async () => {
    const { socket, gateway } = setup();
    const first = await gateway.send({ ...base, kind: "text", text: "primeira" });
    await gateway.send({ ...base, kind: "text", text: "segunda", replyTo: first.id });
    expect(socket.sent[1]!.options?.quoted).toMatchObject({ key: { id: first.id, fromMe: true } });
  });

  it("quoted replies: an unknown message gets a minimal quote in a private chat, none in a group", async () => {
    const { socket, gateway } = setup();
    await gateway.send({ ...base, kind: "text", text: "a", replyTo: "3EB0UNKNOWNQUOTED001" });
    expect(socket.sent[0]!.options).toEqual({
      quoted: {
        key: { remoteJid: CONTACT_PN, fromMe: false, id: "3EB0UNKNOWNQUOTED001" },
        message: { conversation: "" },
      },
    });
    await gateway.send({ ...base, to: GROUP, kind: "text", text: "b", replyTo: "3EB0UNKNOWNQUOTED002" });
    expect(socket.sent[1]!.options).toBeUndefined();
  });

  it("revoke: { delete: key } of the message we sent", async () => {
    const { socket, gateway } = setup();
    const sent = await gateway.send({ ...base, kind: "text", text: "oops" });
    const revoke = await gateway.send({ ...base, kind: "revoke", targetId: sent.id });
    expect(socket.sent[1]!.content).toEqual({ delete: { remoteJid: CONTACT_PN, fromMe: true, id: sent.id } });
    expect(revoke.id).toBe(socket.sent[1]!.id);
    // A message the gateway never saw (sent before a restart): ours all the same.
    await gateway.send({ ...base, kind: "revoke", targetId: "3EB0SENTBEFORERESTART" });
    expect(socket.sent[2]!.content).toEqual({
      delete: { remoteJid: CONTACT_PN, fromMe: true, id: "3EB0SENTBEFORERESTART" },
    });
  });

  it("reaction: { react: { text, key } } with the target's key (a group participant's included)", async () => {
    const { socket, gateway } = setup();
    const detach = attachBaileys({ ingest: async () => ({ id: "", duplicate: false }) }, "suporte", socket);
    socket.emit("messages.upsert", {
      messages: [
        waMessage({
          id: "3EB0REACTTARGET00001",
          remoteJid: GROUP,
          participant: PARTICIPANT_PN,
          message: { conversation: "oi" },
        }),
      ],
      type: "notify",
    });
    await detach();
    await gateway.send({
      ...base,
      to: GROUP,
      kind: "reaction",
      targetId: "3EB0REACTTARGET00001",
      emoji: "❤️",
    });
    expect(socket.sent[0]!.content).toEqual({
      react: {
        text: "❤️",
        key: { remoteJid: GROUP, fromMe: false, id: "3EB0REACTTARGET00001", participant: PARTICIPANT_PN },
      },
    });
    await gateway.send({ ...base, kind: "reaction", targetId: "3EB0UNKNOWNTARGET001" });
    expect(socket.sent[1]!.content).toEqual({
      react: { text: "", key: { remoteJid: CONTACT_PN, fromMe: false, id: "3EB0UNKNOWNTARGET001" } },
    });
  });

  it("the echo of a revoke or reaction the gateway sent is not passed to the bridge", async () => {
    const socket = createFakeSocket({ emitOwnEvents: true });
    const gateway = createBaileysGateway(socket);
    const ingested: string[] = [];
    const detach = attachBaileys(
      {
        async ingest(_instance, event) {
          ingested.push((event.data as { id: string }).id);
          return { id: "", duplicate: false };
        },
      },
      "suporte",
      socket,
    );
    const text = await gateway.send({ ...base, kind: "text", text: "oops" });
    const revoke = await gateway.send({ ...base, kind: "revoke", targetId: text.id });
    await new Promise((resolve) => setImmediate(resolve));
    await detach();
    // The text's echo goes to the bridge (which knows it as its own send); the revoke's does not.
    expect(ingested).toEqual([text.id]);
    expect(ingested).not.toContain(revoke.id);
  });

  it("a function gives each instance's current socket; none means the send fails (the bridge retries)", async () => {
    const sockets = new Map([
      ["suporte", createFakeSocket()],
      ["vendas", createFakeSocket()],
    ]);
    const gateway = createBaileysGateway((instance) => sockets.get(instance));
    await gateway.send({ ...base, instance: "vendas", kind: "text", text: "v" });
    expect(sockets.get("vendas")!.sent).toHaveLength(1);
    expect(sockets.get("suporte")!.sent).toHaveLength(0);
    await expect(gateway.send({ ...base, instance: "outra", kind: "text", text: "x" })).rejects.toThrow(
      'no WhatsApp connection for instance "outra"',
    );
  });

  it("fails when WhatsApp refuses, when Baileys answers no id, or when the bridge gave up already", async () => {
    const { socket, gateway } = setup();
    socket.failSends(new Error("Connection Closed"));
    await expect(gateway.send({ ...base, kind: "text", text: "x" })).rejects.toThrow("Connection Closed");
    socket.failSends(null);
    const silent = createBaileysGateway({ sendMessage: async () => undefined });
    await expect(silent.send({ ...base, kind: "text", text: "x" })).rejects.toThrow("without a message id");
    const aborted = new AbortController();
    aborted.abort(new Error("deadline"));
    await expect(
      gateway.send({ ...base, kind: "text", text: "x" }, { signal: aborted.signal }),
    ).rejects.toThrow("deadline");
    expect(socket.sent).toHaveLength(0);
  });

  it("answers the id of Baileys' WebMessageInfo (a proto instance)", async () => {
    const gateway = createBaileysGateway({
      sendMessage: async () =>
        proto.WebMessageInfo.fromObject({ key: { id: "3EB0PROTOANSWER00001", fromMe: true } }) as never,
    });
    expect(await gateway.send({ ...base, kind: "text", text: "x" })).toEqual({ id: "3EB0PROTOANSWER00001" });
  });
});
