// One person, one conversation (docs/identity.md), tried the way a user would: WhatsApp events posted to the example
// app's /dev/whatsapp/:instance/events, Chatwoot simulated, an agent answering in the conversation.
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChatwootSimulator, eventually, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import { readConfig } from "@ryze/example-shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type ExpressExample } from "./app.js";

const ACCOUNT_TOKEN = "identity-account-token";
const INSTANCE_TOKEN = "identity-instance-token";

type Json = Record<string, unknown>;

describe("examples/express: one person, one conversation", () => {
  const dir = mkdtempSync(join(tmpdir(), "cw-example-identity-"));
  let sim: ChatwootSimulator;
  let runtime: ExpressExample;
  let server: ReturnType<ExpressExample["app"]["listen"]>;
  let url: string;
  let accountId: number;
  let agentId: number;
  let sequence = 0;

  beforeAll(async () => {
    sim = await startChatwootSimulator();
    accountId = sim.createAccount({ name: "Acme" }).id;
    const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
    const config = readConfig({
      DATABASE_URL: `sqlite:${join(dir, "chatwoot.sqlite")}`,
      RYZE_ACCOUNT_TOKEN: ACCOUNT_TOKEN,
      RYZE_INSTANCES: `suporte:${INSTANCE_TOKEN}`,
    });
    runtime = await buildApp(config, { dataDir: dir });
    server = runtime.app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const set = await fetch(`${url}/api/chatwoot/set/suporte`, {
      method: "POST",
      headers: { token: ACCOUNT_TOKEN, "content-type": "application/json" },
      body: JSON.stringify({
        chatwootBaseUrl: sim.url,
        chatwootAccountId: accountId,
        chatwootApiToken: admin.accessToken,
      }),
    });
    expect(set.status, await set.clone().text()).toBe(201);
    const agent = sim.createUser({ name: "Maria", accounts: [{ accountId, role: "agent" }] });
    sim.addInboxMember((sim.inboxes(accountId).at(-1) as { id: number }).id, agent.id);
    agentId = agent.id;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    server?.close();
    await runtime?.close();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (event: Json) => {
    const answer = await fetch(`${url}/dev/whatsapp/suporte/events`, {
      method: "POST",
      headers: { token: INSTANCE_TOKEN, "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    expect(answer.status, await answer.clone().text()).toBe(202);
  };

  /** A customer's text, addressed as WhatsApp addressed it. */
  const say = (text: string, chat: Json, sender: Json = chat) => {
    const id = `3EB0IDENTITY${String(++sequence).padStart(6, "0")}`;
    return post({
      event: "message.exchange",
      data: {
        id,
        message: {
          id,
          direction: "incoming",
          chat: { ...chat, type: "private" },
          sender,
          content: { text },
        },
      },
    });
  };

  /** The conversation that shows `text`, once it does. */
  const conversationShowing = (text: string) =>
    eventually(() =>
      (sim.conversations(accountId) as Array<Json & { id: number }>).find((conversation) =>
        sim.messages(accountId, conversation.id).some((message) => message.content === text),
      ),
    );

  /** The person's contacts: those with one of their addresses as identifier, phone number or contact inbox. */
  const contactsOf = (addresses: string[]) =>
    (sim.contacts(accountId) as Array<Json & { id: number }>).filter(
      (contact) =>
        addresses.includes(String(contact.identifier)) ||
        addresses.includes(String(contact.phone_number)) ||
        (contact.contact_inboxes as Array<{ source_id: string }>).some((inbox) =>
          addresses.includes(inbox.source_id),
        ),
    );

  const openConversationsOf = (contactId: number) =>
    (sim.conversations(accountId) as Array<Json & { id: number; meta: { sender: { id: number } } }>).filter(
      (conversation) => conversation.meta.sender.id === contactId && conversation.status === "open",
    );

  const texts = (conversationId: number) =>
    sim.messages(accountId, conversationId).map((message) => message.content);

  /** The agent answers in the conversation; resolves with the JID the reply was sent to. */
  const replyTo = async (conversationId: number) => {
    const content = `Resposta ${++sequence}`;
    sim.postAgentMessage({ accountId, conversationId, userId: agentId, content });
    const sent = await eventually(async () => {
      const answer = await fetch(`${url}/dev/whatsapp/suporte/sent`, { headers: { token: INSTANCE_TOKEN } });
      const body = (await answer.json()) as { sent: Array<{ to: string; text: string }> };
      return body.sent.find((entry) => entry.text === content);
    });
    return sent.to;
  };

  /** Exactly one contact and one open conversation for the person, holding `messages`; answers both. */
  const onePerson = (addresses: string[], messages: string[]) => {
    const contacts = contactsOf(addresses);
    expect(contacts.map((contact) => contact.id)).toHaveLength(1);
    const open = openConversationsOf(contacts[0]!.id);
    expect(open.map((conversation) => conversation.id)).toHaveLength(1);
    expect(texts(open[0]!.id)).toEqual(expect.arrayContaining(messages));
    return { contact: contacts[0]!, conversation: open[0]! };
  };

  it("LID first, then the phone number: one contact that gets the phone number, one conversation", async () => {
    const lid = "210000000000001@lid";
    const pn = "14155550101@s.whatsapp.net";
    await say("first, by LID", { jid: lid, name: "Ana" });
    await conversationShowing("first, by LID");
    await say("then by phone", { jid: pn, lid, name: "Ana" }, { jid: pn, lid, name: "Ana" });
    const conversation = await conversationShowing("then by phone");
    const { contact } = onePerson([lid, pn, "+14155550101"], ["first, by LID", "then by phone"]);
    expect(conversation.meta).toMatchObject({ sender: { id: contact.id } });
    expect(contact.phone_number).toBe("+14155550101");
    expect(await replyTo(conversation.id)).toBe(pn);
  });

  it("phone number first, then the LID only: the same contact and conversation", async () => {
    const lid = "210000000000002@lid";
    const pn = "14155550102@s.whatsapp.net";
    await say("first, by phone", { jid: pn, lid, name: "Bia" }, { jid: pn, lid, name: "Bia" });
    await conversationShowing("first, by phone");
    await say("then by LID", { jid: lid, name: "Bia" });
    const conversation = await conversationShowing("then by LID");
    const { contact } = onePerson([lid, pn, "+14155550102"], ["first, by phone", "then by LID"]);
    expect(contact.phone_number).toBe("+14155550102");
    // The LID is never a phone number.
    expect(
      sim.contacts(accountId).some((entry) => String(entry.phone_number).includes("210000000000002")),
    ).toBe(false);
    expect(await replyTo(conversation.id)).toBe(pn);
  });

  it("two split contacts, then contact.identity: merged into the one with the phone number, one conversation continues", async () => {
    const lid = "210000000000003@lid";
    const pn = "14155550103@s.whatsapp.net";
    await say("by LID, link unknown", { jid: lid, name: "Caio" });
    await conversationShowing("by LID, link unknown");
    await say("by phone, link unknown", { jid: pn, name: "Caio" });
    await conversationShowing("by phone, link unknown");
    const split = contactsOf([lid, pn, "+14155550103"]);
    expect(split).toHaveLength(2);
    const withPhone = split.find((contact) => contact.phone_number === "+14155550103")!;

    await post({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => contactsOf([lid, pn, "+14155550103"]).length === 1 || null);
    await eventually(() => openConversationsOf(withPhone.id).length === 1 || null);
    await say("after the merge, by LID", { jid: lid, name: "Caio" });
    const conversation = await conversationShowing("after the merge, by LID");
    const { contact } = onePerson(
      [lid, pn, "+14155550103"],
      ["by phone, link unknown", "after the merge, by LID"],
    );
    expect(contact.id).toBe(withPhone.id);
    expect(await replyTo(conversation.id)).toBe(pn);
  });

  it("Brazil: a contact an agent saved with the 9th digit is reused for the JID without it", async () => {
    const saved = sim.createContact(accountId, { name: "Dona Maria", phone_number: "+5511988887777" });
    const jid = "551188887777@s.whatsapp.net";
    await say("olá, sem o nono dígito", { jid, name: "Maria" });
    const conversation = await conversationShowing("olá, sem o nono dígito");
    const { contact } = onePerson(["+5511988887777", "+551188887777", jid], ["olá, sem o nono dígito"]);
    expect(contact.id).toBe(saved.id);
    expect(contact.phone_number).toBe("+5511988887777");
    // Replies go to the JID WhatsApp uses.
    expect(await replyTo(conversation.id)).toBe(jid);
  });
});
