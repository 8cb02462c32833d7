/**
 * Contacts and contact inboxes as Chatwoot 4.10 keeps them: `Contact` validations
 * (`app/models/contact.rb`), `ContactInboxBuilder` (source ids, uuid fallback for API inboxes,
 * `RecordNotUnique` when the pair belongs to another contact) and the search query.
 */
import { randomUUID } from "node:crypto";
import { railsPublicException, recordInvalid, recordNotFound } from "./errors.js";
import { castBoolean, castString, isBlank, isPlainObject, type Params, rubyToI } from "./rails-params.js";
import type { SimulatorRuntime } from "./runtime.js";
import {
  type AccountRecord,
  type ContactInboxRecord,
  type ContactRecord,
  generateSecureToken,
  type InboxRecord,
  type SimulatorStore,
} from "./store.js";

type Scalar = string | number | boolean | null;

/** `validates :phone_number, format: { with: /\+[1-9]\d{1,14}\z/ }`: anchored at the end only. */
const E164 = /\+[1-9]\d{1,14}$/;
/** Devise's default `email_regexp`. */
const EMAIL = /^[^@\s]+@[^@\s]+$/;

/** Thrown where Chatwoot lets `ActiveRecord::RecordNotUnique` escape (contact_inboxes unique index). */
export class RecordNotUnique extends Error {
  constructor() {
    super("PG::UniqueViolation: duplicate key value violates unique constraint (inbox_id, source_id)");
    this.name = "RecordNotUnique";
  }
}

/** The contact columns `permitted_params` can set, cast like ActiveRecord would. */
function contactChanges(params: Params): Partial<ContactRecord> {
  const changes: Partial<ContactRecord> = {};
  const scalar = (key: string) => params[key] as Scalar;
  const isScalar = (key: string) =>
    key in params && (params[key] === null || ["string", "number", "boolean"].includes(typeof params[key]));
  if (isScalar("name")) changes.name = castString(scalar("name"));
  if (isScalar("identifier")) changes.identifier = castString(scalar("identifier"));
  if (isScalar("email")) changes.email = castString(scalar("email"));
  if (isScalar("phone_number")) changes.phoneNumber = castString(scalar("phone_number"));
  if (isScalar("blocked")) changes.blocked = castBoolean(scalar("blocked")) ?? false;
  if (isPlainObject(params["additional_attributes"]))
    changes.additionalAttributes = structuredClone(params["additional_attributes"]);
  if (isPlainObject(params["custom_attributes"]))
    changes.customAttributes = structuredClone(params["custom_attributes"]);
  return changes;
}

/**
 * `Contact` validations in declaration order; `contact` is already normalised (email lower-cased). Contacts in
 * `ignoring` count as gone (a merge validates the base contact once the mergee is destroyed).
 */
export function contactErrors(
  store: SimulatorStore,
  contact: ContactRecord,
  ignoring: ReadonlySet<number> = new Set(),
) {
  const errors: Array<{ attribute: string; fullMessage: string }> = [];
  const others = [...store.contacts.values()].filter(
    (c) => c.accountId === contact.accountId && c.id !== contact.id && !ignoring.has(c.id),
  );
  const { email, identifier, phoneNumber, name } = contact;
  if (!isBlank(email)) {
    if (others.some((c) => c.email?.toLowerCase() === email?.toLowerCase()))
      errors.push({ attribute: "email", fullMessage: "Email has already been taken" });
    if (!EMAIL.test(email ?? "")) errors.push({ attribute: "email", fullMessage: "Email Invalid email" });
  }
  if (!isBlank(identifier) && others.some((c) => c.identifier === identifier)) {
    errors.push({ attribute: "identifier", fullMessage: "Identifier has already been taken" });
  }
  if (!isBlank(phoneNumber)) {
    if (others.some((c) => c.phoneNumber === phoneNumber))
      errors.push({ attribute: "phone_number", fullMessage: "Phone number has already been taken" });
    if (!E164.test(phoneNumber ?? ""))
      errors.push({ attribute: "phone_number", fullMessage: "Phone number should be in e164 format" });
  }
  if ((name?.length ?? 0) > 255) {
    errors.push({ attribute: "name", fullMessage: "Name is too long (maximum is 255 characters)" });
  }
  return errors;
}

/** `prepare_contact_attributes`: blank email → nil, email lower-cased, blank jsonb → {}. */
function normalise(contact: ContactRecord) {
  contact.email = contact.email?.trim() ? contact.email.toLowerCase() : null;
  if (isBlank(contact.additionalAttributes)) contact.additionalAttributes = {};
  if (isBlank(contact.customAttributes)) contact.customAttributes = {};
}

/**
 * Builds and validates a new contact from request params (nothing is stored). The id is taken
 * from the sequence only once validation passed, as PostgreSQL does on INSERT.
 */
export function buildContact(store: SimulatorStore, account: AccountRecord, params: Params): ContactRecord {
  const now = new Date();
  const contact: ContactRecord = {
    id: 0,
    accountId: account.id,
    name: "",
    email: null,
    phoneNumber: null,
    identifier: null,
    blocked: false,
    additionalAttributes: {},
    customAttributes: {},
    lastActivityAt: null,
    createdAt: now,
    updatedAt: now,
    ...contactChanges(params),
  };
  normalise(contact);
  const errors = contactErrors(store, contact);
  if (errors.length > 0) throw recordInvalid(errors);
  contact.id = store.nextId("contacts");
  return contact;
}

/**
 * `ContactInboxBuilder#perform` for an API inbox, without storing: a missing source id becomes a
 * uuid, a blank one means no contact inbox (`null`); an existing row for the same contact is
 * returned as is; the pair belonging to another contact raises `RecordNotUnique`.
 */
export function prepareContactInbox(
  store: SimulatorStore,
  contact: ContactRecord,
  inbox: InboxRecord,
  rawSourceId: unknown,
): { record: ContactInboxRecord; isNew: boolean } | null {
  const given = rawSourceId === undefined || rawSourceId === null ? null : castString(rawSourceId as Scalar);
  const sourceId = given ?? randomUUID();
  if (isBlank(sourceId)) return null;
  for (const existing of store.contactInboxes.values()) {
    if (existing.inboxId !== inbox.id || existing.sourceId !== sourceId) continue;
    if (existing.contactId === contact.id) return { record: existing, isNew: false };
    throw new RecordNotUnique();
  }
  const now = new Date();
  return {
    record: {
      id: 0,
      contactId: contact.id,
      inboxId: inbox.id,
      sourceId,
      hmacVerified: false,
      pubsubToken: generateSecureToken(),
      createdAt: now,
      updatedAt: now,
    },
    isNew: true,
  };
}

/** Stores a prepared contact inbox (assigning its id) and returns it. */
export function saveContactInbox(
  store: SimulatorStore,
  prepared: { record: ContactInboxRecord; isNew: boolean },
): ContactInboxRecord {
  if (prepared.isNew) {
    prepared.record.id = store.nextId("contact_inboxes");
    store.contactInboxes.set(prepared.record.id, prepared.record);
  }
  return prepared.record;
}

/** `ContactInboxBuilder` as contacts#create and contact_inboxes#create use it: a clash is a 500. */
export function buildContactInbox(
  store: SimulatorStore,
  contact: ContactRecord,
  inbox: InboxRecord,
  sourceId: unknown,
): ContactInboxRecord | null {
  try {
    const prepared = prepareContactInbox(store, contact, inbox, sourceId);
    return prepared ? saveContactInbox(store, prepared) : null;
  } catch (error) {
    if (error instanceof RecordNotUnique) throw railsPublicException(500);
    throw error;
  }
}

/**
 * `ContactsController#update`: `@contact.assign_attributes(contact_update_params)` then `save!`, where the
 * additional and custom attributes given are merged into the stored ones (app/controllers/api/v1/accounts/
 * contacts_controller.rb). A validation error (e.g. a phone number another contact has) is a 422 and changes nothing.
 */
export function updateContact(rt: SimulatorRuntime, contact: ContactRecord, params: Params): ContactRecord {
  const changes = contactChanges(params);
  if (changes.additionalAttributes)
    changes.additionalAttributes = { ...contact.additionalAttributes, ...changes.additionalAttributes };
  if (changes.customAttributes)
    changes.customAttributes = { ...contact.customAttributes, ...changes.customAttributes };
  const updated: ContactRecord = { ...contact, ...changes };
  normalise(updated);
  const errors = contactErrors(rt.store, updated);
  if (errors.length > 0) throw recordInvalid(errors);
  Object.assign(contact, updated, { updatedAt: rt.now() });
  return contact;
}

/**
 * `ContactsController#create`: the contact is validated and saved, then the optional inbox is
 * looked up (404) and the contact inbox built (500 on a clash), all in one transaction.
 */
export function createContact(
  rt: SimulatorRuntime,
  account: AccountRecord,
  params: Params,
): { contact: ContactRecord; contactInbox: ContactInboxRecord | null } {
  const { store } = rt;
  const contact = buildContact(store, account, params);
  let prepared: ReturnType<typeof prepareContactInbox> = null;
  if (!isBlank(params["inbox_id"])) {
    const inbox = findAccountInbox(store, account.id, params["inbox_id"]);
    try {
      prepared = prepareContactInbox(store, contact, inbox, params["source_id"]);
    } catch (error) {
      if (error instanceof RecordNotUnique) throw railsPublicException(500);
      throw error;
    }
  }
  store.contacts.set(contact.id, contact);
  const contactInbox = prepared ? saveContactInbox(store, prepared) : null;
  return { contact, contactInbox };
}

/** `Current.account.inboxes.find(id)`: 404 when it is not the account's. */
export function findAccountInbox(store: SimulatorStore, accountId: number, rawId: unknown): InboxRecord {
  const inbox = store.inboxes.get(rubyToI(rawId));
  if (!inbox || inbox.accountId !== accountId) throw recordNotFound();
  return inbox;
}

/** SQL `LIKE`/`ILIKE` with `%q%`: `%` and `_` in the query are wildcards there too. */
function likeMatcher(query: string, caseInsensitive: boolean): (value: string | null) => boolean {
  let source = "";
  for (const char of query) {
    if (char === "%") source += "[\\s\\S]*";
    else if (char === "_") source += "[\\s\\S]";
    else source += char.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  const regex = new RegExp(source, caseInsensitive ? "i" : "");
  return (value) => value !== null && regex.test(value);
}

/**
 * `ContactsController#search`. Up to 4.10 over `resolved_contacts` (email, phone number or identifier set): name,
 * email, phone number and `additional_attributes.company_name` ILIKE, identifier LIKE (case-sensitive). From 4.11
 * (`features.searchesAllContacts`, PRs #12956 and #13376) over every contact of the account, without `company_name`.
 * Ordered by `last_activity_at` desc, nulls last.
 */
export function searchContacts(store: SimulatorStore, accountId: number, q: string): ContactRecord[] {
  const ilike = likeMatcher(q.trim(), true);
  const like = likeMatcher(q.trim(), false);
  const all = store.settings.features.searchesAllContacts;
  return [...store.contacts.values()]
    .filter((c) => c.accountId === accountId)
    .filter((c) => all || !!c.email || !!c.phoneNumber || !!c.identifier)
    .filter((c) => {
      const company = c.additionalAttributes["company_name"];
      return (
        ilike(c.name) ||
        ilike(c.email) ||
        ilike(c.phoneNumber) ||
        like(c.identifier) ||
        (!all && typeof company === "string" && ilike(company))
      );
    })
    .sort((a, b) => {
      const left = a.lastActivityAt?.getTime() ?? Number.NEGATIVE_INFINITY;
      const right = b.lastActivityAt?.getTime() ?? Number.NEGATIVE_INFINITY;
      return right - left || a.id - b.id;
    });
}

/** `Current.account.contacts.find(id)`: 404 when missing or another account's. */
export function findAccountContact(store: SimulatorStore, accountId: number, rawId: unknown): ContactRecord {
  const contact = store.contacts.get(rubyToI(rawId));
  if (!contact || contact.accountId !== accountId) throw recordNotFound();
  return contact;
}

/** The attributes `ContactMergeAction` carries over, `compact_blank`ed (nil, "", {} dropped). */
function mergeableAttributes(contact: ContactRecord): Record<string, unknown> {
  const attributes: Record<string, unknown> = {
    identifier: contact.identifier,
    name: contact.name,
    email: contact.email,
    phoneNumber: contact.phoneNumber,
    additionalAttributes: contact.additionalAttributes,
    customAttributes: contact.customAttributes,
  };
  return Object.fromEntries(Object.entries(attributes).filter(([, value]) => !isBlank(value)));
}

/** ActiveSupport's `Hash#deep_merge`: `other` wins, except that two hashes merge key by key. */
function deepMerge(self: Record<string, unknown>, other: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = structuredClone(self);
  for (const [key, value] of Object.entries(other)) {
    const mine = merged[key];
    merged[key] =
      isPlainObject(mine) && isPlainObject(value) ? deepMerge(mine, value) : structuredClone(value);
  }
  return merged;
}

/**
 * `POST …/actions/contact_merge` (`Actions::ContactMergesController`, `ContactMergeAction#perform`, one transaction):
 * both contacts are looked up in the account (404); the same id twice is a no-op. Otherwise the mergee's
 * conversations, the messages it sent and its contact inboxes move to the base contact, the mergee is destroyed, and
 * the base contact takes the mergee's non-blank identifier, name, email, phone number and attribute hashes wherever
 * its own are blank (`mergee.deep_merge(base)`: the base wins). A validation error of that update (422) rolls it all
 * back. Returns the base contact.
 */
export function mergeContacts(rt: SimulatorRuntime, account: AccountRecord, params: Params): ContactRecord {
  const { store } = rt;
  const base = findAccountContact(store, account.id, params["base_contact_id"]);
  const mergee = findAccountContact(store, account.id, params["mergee_contact_id"]);
  if (base.id === mergee.id) return base;
  const merged = deepMerge(mergeableAttributes(mergee), mergeableAttributes(base));
  const updated: ContactRecord = { ...base, ...(merged as Partial<ContactRecord>) };
  normalise(updated);
  // Validated first, so that a refusal leaves everything as it was (Chatwoot rolls the transaction back).
  const errors = contactErrors(store, updated, new Set([mergee.id]));
  if (errors.length > 0) throw recordInvalid(errors);
  const now = rt.now();
  for (const conversation of store.conversations.values()) {
    if (conversation.contactId !== mergee.id) continue;
    conversation.contactId = base.id;
    conversation.updatedAt = now;
  }
  for (const message of store.messages.values()) {
    if (message.senderType === "Contact" && message.senderId === mergee.id) message.senderId = base.id;
  }
  for (const contactInbox of store.contactInboxes.values()) {
    if (contactInbox.contactId !== mergee.id) continue;
    contactInbox.contactId = base.id;
    contactInbox.updatedAt = now;
  }
  store.contacts.delete(mergee.id);
  const changed = JSON.stringify(mergeableAttributes(updated)) !== JSON.stringify(mergeableAttributes(base));
  Object.assign(base, updated, changed ? { updatedAt: now } : {});
  return base;
}

/**
 * `ContactsController#destroy` after the look-up: `@contact.destroy!`. `Contact` declares `dependent: :destroy_async`
 * for its conversations (with their messages and attachments), contact inboxes and sent messages
 * (app/models/contact.rb): Chatwoot deletes them in a background job moments later; the simulator at once.
 */
export function destroyContact(rt: SimulatorRuntime, contact: ContactRecord): void {
  const { store } = rt;
  const conversationIds = new Set<number>();
  for (const [id, conversation] of store.conversations) {
    if (conversation.contactId !== contact.id) continue;
    conversationIds.add(id);
    store.conversations.delete(id);
  }
  for (const [id, message] of store.messages) {
    const sentByContact = message.senderType === "Contact" && message.senderId === contact.id;
    if (!conversationIds.has(message.conversationId) && !sentByContact) continue;
    store.messages.delete(id);
    for (const attachment of store.attachments.group(id)) store.attachments.delete(attachment.id);
  }
  for (const [id, contactInbox] of store.contactInboxes)
    if (contactInbox.contactId === contact.id) store.contactInboxes.delete(id);
  store.contacts.delete(contact.id);
}
