import {
  areJidsSameUser,
  type Chat,
  type Contact,
  type GroupMetadata,
  isJidGroup,
  isLidUser,
  isPnUser,
  jidNormalizedUser,
  type WAMessageKey,
} from "baileys";
import { type BaileysEventSocket, BoundedMap } from "./socket.js";

/** A person, by phone JID (`…@s.whatsapp.net`) and LID (`…@lid`) when known. */
export interface Person {
  pn: string | null;
  lid: string | null;
  /** The JID the person is addressed by: the phone JID when known, else the LID, else the JID as given. */
  jid: string;
}

const normalized = (jid: string | null | undefined): string | null => (jid ? jidNormalizedUser(jid) : null);

/** How long a lookup of the socket's own LID store may take before the message goes on without it. */
const LOOKUP_TIMEOUT_MS = 2_000;

/** How long a group whose subject could not be read is not asked again. */
const SUBJECT_RETRY_MS = 5 * 60_000;

function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(fallback);
      },
    );
  });
}

/**
 * What one attachment learns about the people and groups of its socket: LID ↔ phone JID pairs (Baileys 7's
 * `lid-mapping.update`, the `remoteJidAlt`/`participantAlt` of message keys, contacts, history sync), the names
 * the account saved, and group subjects.
 */
export function createIdentities(socket: BaileysEventSocket, options: { fetchGroupSubjects: boolean }) {
  const pnOfLid = new BoundedMap<string, string>(20_000);
  const lidOfPn = new BoundedMap<string, string>(20_000);
  const savedNames = new BoundedMap<string, string>(20_000);
  const subjects = new BoundedMap<string, string>(5_000);
  const subjectLookups = new Map<string, Promise<string | null>>();
  /** Groups whose metadata could not be read, and when: not asked again for a while. */
  const subjectMisses = new BoundedMap<string, number>(5_000);

  const isMe = (jid: string) =>
    areJidsSameUser(jid, socket.user?.id) || (!!socket.user?.lid && areJidsSameUser(jid, socket.user.lid));

  /** Remembers that `a` and `b` are the same person, when one is a LID and the other a phone JID. */
  function pair(a: string | null | undefined, b: string | null | undefined): void {
    const x = normalized(a);
    const y = normalized(b);
    if (!x || !y) return;
    const [lid, pn] =
      isLidUser(x) && isPnUser(y) ? [x, y] : isPnUser(x) && isLidUser(y) ? [y, x] : [null, null];
    if (!lid || !pn) return;
    pnOfLid.set(lid, pn);
    lidOfPn.set(pn, lid);
  }

  /** The person behind `jid`, with its other JID when `alt` (or what was learnt before) gives it. */
  function personOf(jid: string, alt: string | null | undefined, options: { trustAlt: boolean }): Person {
    const primary = normalized(jid) ?? jid;
    const other = options.trustAlt ? normalized(alt) : null;
    if (isPnUser(primary)) {
      const lid = other && isLidUser(other) ? other : (lidOfPn.get(primary) ?? null);
      return { pn: primary, lid, jid: primary };
    }
    if (isLidUser(primary)) {
      const pn = other && isPnUser(other) ? other : (pnOfLid.get(primary) ?? null);
      return { pn, lid: primary, jid: pn ?? primary };
    }
    return { pn: null, lid: null, jid: primary };
  }

  /** Completes a LID-only person from the socket's own LID store (Baileys 7 keeps one with the auth state). */
  async function completed(person: Person): Promise<Person> {
    if (person.pn || !person.lid) return person;
    const lookup = socket.signalRepository?.lidMapping?.getPNForLID(person.lid);
    if (!lookup) return person;
    const pn = normalized(await withTimeout(lookup, LOOKUP_TIMEOUT_MS, null));
    if (!pn || !isPnUser(pn)) return person;
    pair(person.lid, pn);
    return { pn, lid: person.lid, jid: pn };
  }

  return {
    isMe,
    pair,
    /** Learns from a message key: the chat's and the participant's alternative JIDs. */
    learnKey(key: WAMessageKey): void {
      if (!isJidGroup(key.remoteJid ?? undefined)) {
        // On a message we sent, the alternative JID may be our own rather than the contact's.
        if (key.remoteJidAlt && !isMe(key.remoteJidAlt)) pair(key.remoteJid, key.remoteJidAlt);
      } else if (key.participant && key.participantAlt) {
        pair(key.participant, key.participantAlt);
      }
    },
    learnContacts(contacts: Array<Partial<Contact>>): void {
      for (const contact of contacts) {
        pair(contact.id, contact.lid ?? contact.phoneNumber);
        pair(contact.lid, contact.phoneNumber);
        const name = contact.name ?? contact.verifiedName;
        if (name) for (const jid of [contact.id, contact.lid, contact.phoneNumber]) setName(jid, name);
      }
    },
    learnChats(chats: Array<Partial<Chat>>): void {
      for (const chat of chats) {
        if (chat.id && chat.name && isJidGroup(chat.id)) subjects.set(chat.id, chat.name);
      }
    },
    learnGroups(groups: Array<Partial<GroupMetadata>>): void {
      for (const group of groups) if (group.id && group.subject) subjects.set(group.id, group.subject);
    },
    /** A private chat's contact: `remoteJid` and `remoteJidAlt`. */
    async chatPerson(key: WAMessageKey): Promise<Person> {
      const trustAlt = !key.remoteJidAlt || !isMe(key.remoteJidAlt);
      return completed(personOf(key.remoteJid!, key.remoteJidAlt, { trustAlt }));
    },
    /** A group message's author: `participant` and `participantAlt`. */
    async participant(key: WAMessageKey): Promise<Person | null> {
      if (!key.participant) return null;
      return completed(personOf(key.participant, key.participantAlt, { trustAlt: true }));
    },
    /** The chat JID a key's events are ordered by, without waiting for any lookup. */
    orderingJid(key: WAMessageKey): string {
      const remote = key.remoteJid!;
      if (isJidGroup(remote)) return remote;
      const trustAlt = !key.remoteJidAlt || !isMe(key.remoteJidAlt);
      return personOf(remote, key.remoteJidAlt, { trustAlt }).jid;
    },
    savedName(person: Person): string | null {
      return (
        (person.pn ? savedNames.get(person.pn) : undefined) ??
        (person.lid ? savedNames.get(person.lid) : undefined) ??
        null
      );
    },
    /** A group's subject: learnt from events, else asked once from the socket (`groupMetadata`). */
    async subject(groupJid: string): Promise<string | null> {
      const known = subjects.get(groupJid);
      if (known) return known;
      if (!options.fetchGroupSubjects || !socket.groupMetadata) return null;
      const missed = subjectMisses.get(groupJid);
      if (missed !== undefined && Date.now() - missed < SUBJECT_RETRY_MS) return null;
      let lookup = subjectLookups.get(groupJid);
      if (!lookup) {
        lookup = withTimeout(
          socket.groupMetadata(groupJid).then((metadata) => metadata.subject ?? null),
          LOOKUP_TIMEOUT_MS * 2,
          null,
        );
        subjectLookups.set(groupJid, lookup);
        void lookup.then((subject) => {
          subjectLookups.delete(groupJid);
          if (subject) subjects.set(groupJid, subject);
          else subjectMisses.set(groupJid, Date.now());
        });
      }
      return lookup;
    },
  };

  function setName(jid: string | null | undefined, name: string): void {
    const key = normalized(jid);
    if (key) savedNames.set(key, name);
  }
}

export type Identities = ReturnType<typeof createIdentities>;
