/**
 * `Api::V1::Accounts::ContactsController` (create, search, show, update, destroy),
 * `Contacts::ContactInboxesController#create`, `ContactInboxesController#filter` and
 * `Actions::ContactMergesController#create`. Any account member may use them (`ContactPolicy`) but for
 * destroy (administrators); attaching to an inbox needs the inbox to be visible.
 */
import {
  buildContactInbox,
  createContact,
  destroyContact,
  findAccountInbox,
  mergeContacts,
  searchContacts,
  updateContact,
} from "../contacts.js";
import { ChatwootHttpError, notAuthorized, railsPublicException, recordNotFound } from "../errors.js";
import { isBlank, rubyToI } from "../rails-params.js";
import type { AccountContext, Route } from "../router.js";
import { type ContactRecord, canSeeInbox } from "../store.js";
import { renderContact, renderContactInbox, renderInboxModel } from "../views-messaging.js";

/** `RESULTS_PER_PAGE` of the contacts controller. */
const PER_PAGE = 15;

const BASE = "/api/v1/accounts/:account_id";

/** `include_contact_inboxes`: true unless given and not "true". */
function includeContactInboxes(value: unknown): boolean {
  return isBlank(value) ? true : value === "true" || value === true;
}

function fetchContact({ store, account, params }: AccountContext, key = "id"): ContactRecord {
  const contact = store.contacts.get(rubyToI(params[key]));
  if (!contact || contact.accountId !== account.id) throw recordNotFound();
  return contact;
}

export const contactRoutes: Route[] = [
  {
    method: "POST",
    pattern: `${BASE}/contacts`,
    scope: "account",
    handle: ({ store, runtime, account, params }) => {
      const { contact, contactInbox } = createContact(runtime, account, params);
      const inbox = contactInbox ? store.inboxes.get(contactInbox.inboxId) : undefined;
      return {
        body: {
          payload: {
            contact: renderContact(store, contact, { withContactInboxes: true }),
            contact_inbox: {
              inbox: inbox ? renderInboxModel(inbox) : null,
              source_id: contactInbox?.sourceId ?? null,
            },
          },
        },
      };
    },
  },
  {
    method: "GET",
    pattern: `${BASE}/contacts/search`,
    scope: "account",
    handle: ({ store, account, params }) => {
      if (isBlank(params["q"])) {
        throw new ChatwootHttpError(422, { error: "Specify search string with parameter q" });
      }
      const found = searchContacts(store, account.id, String(params["q"]));
      const page = Math.max(1, rubyToI(params["page"] ?? 1));
      const withContactInboxes = includeContactInboxes(params["include_contact_inboxes"]);
      const rows = found.slice((page - 1) * PER_PAGE, page * PER_PAGE);
      const payload = rows.map((contact) => renderContact(store, contact, { withContactInboxes }));
      // 4.11+ `fetch_contacts_with_has_more`: one row more than a page is read; `count` is this page's rows.
      const meta = store.settings.features.searchesAllContacts
        ? { count: rows.length, current_page: params["page"] ?? 1, has_more: found.length > page * PER_PAGE }
        : { count: found.length, current_page: params["page"] ?? 1 };
      return { body: { meta, payload } };
    },
  },
  {
    method: "GET",
    pattern: `${BASE}/contacts/:id`,
    scope: "account",
    handle: (ctx) => {
      const contact = fetchContact(ctx);
      const withContactInboxes = includeContactInboxes(ctx.params["include_contact_inboxes"]);
      return { body: { payload: renderContact(ctx.store, contact, { withContactInboxes }) } };
    },
  },
  {
    // `ContactsController#update` (`resources :contacts`: PATCH and PUT).
    method: ["PATCH", "PUT"],
    pattern: `${BASE}/contacts/:id`,
    scope: "account",
    handle: (ctx) => {
      const contact = updateContact(ctx.runtime, fetchContact(ctx), ctx.params);
      return { body: { payload: renderContact(ctx.store, contact, { withContactInboxes: true }) } };
    },
  },
  {
    method: "DELETE",
    pattern: `${BASE}/contacts/:id`,
    scope: "account",
    handle: (ctx) => {
      // `check_authorization` (ContactPolicy#destroy?: administrators) runs before `fetch_contact`.
      if (ctx.accountUser.role !== "administrator") throw notAuthorized();
      destroyContact(ctx.runtime, fetchContact(ctx));
      // `head :ok`. (Chatwoot first answers 422 when the contact is online in a web widget; API contacts never are.)
      return { status: 200, raw: "", headers: { "content-type": "application/json" } };
    },
  },
  {
    // `Api::V1::Accounts::Actions::ContactMergesController#create` (any account member).
    method: "POST",
    pattern: `${BASE}/actions/contact_merge`,
    scope: "account",
    handle: ({ store, runtime, account, params }) => ({
      body: renderContact(store, mergeContacts(runtime, account, params)),
    }),
  },
  {
    method: "POST",
    pattern: `${BASE}/contacts/:contact_id/contact_inboxes`,
    scope: "account",
    handle: (ctx) => {
      const contact = fetchContact(ctx, "contact_id");
      const inbox = findAccountInbox(ctx.store, ctx.account.id, ctx.params["inbox_id"]);
      if (!canSeeInbox(ctx.store, ctx.user.id, inbox)) throw notAuthorized();
      const contactInbox = buildContactInbox(ctx.store, contact, inbox, ctx.params["source_id"]);
      // A blank source_id builds nothing, and the view then fails on nil.
      if (!contactInbox) throw railsPublicException(500);
      return { body: renderContactInbox(ctx.store, contactInbox) };
    },
  },
  {
    method: "POST",
    pattern: `${BASE}/contact_inboxes/filter`,
    scope: "account",
    handle: ({ store, account, user, params }) => {
      const inbox = findAccountInbox(store, account.id, params["inbox_id"]);
      if (!canSeeInbox(store, user.id, inbox)) throw notAuthorized();
      const sourceId =
        params["source_id"] === undefined || params["source_id"] === null
          ? null
          : String(params["source_id"]);
      const match = [...store.contactInboxes.values()].find(
        (ci) => ci.inboxId === inbox.id && ci.sourceId === sourceId,
      );
      const contact = match ? store.contacts.get(match.contactId) : undefined;
      // `head :not_found`: no body, the request format's content type.
      if (!contact) return { status: 404, raw: "", headers: { "content-type": "application/json" } };
      return { body: renderContact(store, contact, { withContactInboxes: true }) };
    },
  },
];
