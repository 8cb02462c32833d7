import { describe, expect, it } from "vitest";
import type { WhatsAppMessage } from "./events.js";
import { addressesOf, brazilOtherForm, contactPhoneOf, phoneFormsOf } from "./identity.js";

describe("Brazil's 9th digit (docs/identity.md)", () => {
  it("pairs a mobile number's two forms: +55, area code 11-99, 8 digits from 6-9 ↔ 9 + those 8 digits", () => {
    expect(brazilOtherForm("551188887777")).toBe("5511988887777");
    expect(brazilOtherForm("5511988887777")).toBe("551188887777");
    expect(brazilOtherForm("559961234567")).toBe("5599961234567");
    expect(brazilOtherForm("5599961234567")).toBe("559961234567");
  });

  it("leaves alone what is not a Brazilian mobile number", () => {
    for (const digits of [
      "551133334444", // a landline: the subscriber number starts with 2-5
      "5511933334444", // 9 + a landline's digits
      "551088887777", // no area code has a 0
      "550188887777",
      "14155550101", // not Brazil
      "55118888777", // too short
      "55119888877770", // too long
    ])
      expect(brazilOtherForm(digits), digits).toBeNull();
  });

  it("gives Chatwoot the form with the 9th digit, and looks both forms up; off, the JID's digits as they are", () => {
    expect(contactPhoneOf("551188887777@s.whatsapp.net", true)).toBe("+5511988887777");
    expect(contactPhoneOf("5511988887777@s.whatsapp.net", true)).toBe("+5511988887777");
    expect(contactPhoneOf("551188887777@s.whatsapp.net", false)).toBe("+551188887777");
    expect(phoneFormsOf("551188887777:12@s.whatsapp.net", true)).toEqual(["+551188887777", "+5511988887777"]);
    expect(phoneFormsOf("551188887777@s.whatsapp.net", false)).toEqual(["+551188887777"]);
    expect(contactPhoneOf("100000000000001@lid", true)).toBeNull();
  });
});

describe("a message's addresses", () => {
  const message = (fields: Partial<WhatsAppMessage>): WhatsAppMessage =>
    ({
      id: "x",
      direction: "incoming",
      chat: { jid: "1@lid", type: "private" },
      ...fields,
    }) as WhatsAppMessage;

  it("takes the phone JID and the LID from the chat and the sender", () => {
    expect(
      addressesOf(message({ chat: { jid: "14155550101@s.whatsapp.net", lid: "7@lid", type: "private" } })),
    ).toEqual({
      pn: "14155550101@s.whatsapp.net",
      lid: "7@lid",
    });
    expect(
      addressesOf(
        message({
          chat: { jid: "7@lid", type: "private" },
          sender: { jid: "14155550101@s.whatsapp.net", lid: null },
        }),
      ),
    ).toEqual({ pn: "14155550101@s.whatsapp.net", lid: "7@lid" });
  });

  it("never takes a LID for a phone JID, nor the sender's LID of a message we sent, nor a group's members", () => {
    expect(addressesOf(message({ chat: { jid: "7@lid", type: "private" } }))).toEqual({
      pn: null,
      lid: "7@lid",
    });
    expect(
      addressesOf(
        message({
          direction: "outgoing",
          chat: { jid: "14155550101@s.whatsapp.net", type: "private" },
          sender: { jid: "9@lid", lid: "9@lid" },
        }),
      ),
    ).toEqual({ pn: "14155550101@s.whatsapp.net", lid: null });
    expect(
      addressesOf(
        message({ chat: { jid: "120363000000000001@g.us", type: "group" }, sender: { jid: "7@lid" } }),
      ),
    ).toEqual({ pn: null, lid: null });
  });
});
