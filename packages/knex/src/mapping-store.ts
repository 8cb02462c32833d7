import type { ChatMapping, HistoryChange, IdentityLink, MappingStore } from "@ryze/chatwoot-core/store";
import { batched, firstIndexes, groupBy, WRITES } from "./batch.js";
import { chatColumns, chatFromRow, checkKey, messageColumns, messageFromRow, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { type Dialect, insertUnlessDuplicate, isUniqueViolation } from "./dialect.js";
import { COLUMN_LIMITS } from "./migrations.js";
import { createPreparedQuery } from "./prepared.js";

interface Keyed {
  integrationId: string;
  key: string;
}

const MESSAGE_KEY = ["integration_id", "wa_message_id", "part"];
const messageKey = (row: Row) =>
  `${String(row.integration_id)}\u0000${String(row.wa_message_id)}\u0000${String(row.part)}`;

/**
 * The (integration, key) pairs of a batch as the relation `k(integration_id, wanted)`, then the join keyword for the
 * table looked up, so that one statement text serves every batch: PostgreSQL binds two text arrays (`$first` and the
 * next), SQLite one JSON array of pairs (`keyPairValues`), whose `cross join` keeps the pairs the outer loop (each
 * pair one descent of the table's key index).
 */
function keyPairsJoin(dialect: Dialect, first: number): string {
  return dialect === "postgresql"
    ? `unnest($${first}::text[], $${first + 1}::text[]) as k(integration_id, wanted) join`
    : "(select json_extract(value, '$[0]') as integration_id, json_extract(value, '$[1]') as wanted " +
        "from json_each(?)) as k cross join";
}

/** The values `keyPairsJoin` binds, each pair once. */
function keyPairValues(dialect: Dialect, pairs: Keyed[]): unknown[] {
  const unique = [...new Map(pairs.map((pair) => [`${pair.integrationId}\u0000${pair.key}`, pair])).values()];
  return dialect === "postgresql"
    ? [unique.map((pair) => pair.integrationId), unique.map((pair) => pair.key)]
    : [JSON.stringify(unique.map((pair) => [pair.integrationId, pair.key]))];
}

/** Columns and their PostgreSQL types, for rows bound as one value per column (`rowsSelect`). */
type Columns = ReadonlyArray<readonly [name: string, pgType: string]>;
const HISTORY_COLUMNS: Columns = [
  ["integration_id", "text"],
  ["chat_jid", "text"],
  ["last_wa_at", "bigint"],
  ["conversation_id", "bigint"],
  ["queued", "integer"],
  ["imported", "integer"],
  ["skipped", "integer"],
];
const MESSAGE_COLUMNS: Columns = [
  ["integration_id", "text"],
  ["wa_message_id", "text"],
  ["part", "integer"],
  ["chatwoot_message_id", "bigint"],
  ["conversation_id", "bigint"],
  ["direction", "text"],
  ["created_at", "bigint"],
];

/**
 * A SELECT of the rows of a multi-row write whose text is the same for every batch size: PostgreSQL binds one array
 * per column (`unnest`), SQLite one JSON array of rows. (SQLite's `where true` keeps its parser from reading an
 * `on conflict` after it as a join constraint.)
 */
function rowsSelect(dialect: Dialect, columns: Columns): string {
  return dialect === "postgresql"
    ? `select * from unnest(${columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ")})`
    : `select ${columns.map((_, i) => `json_extract(value, '$[${i}]')`).join(", ")} from json_each(?) where true`;
}

/** The values `rowsSelect` binds. */
function rowValues(dialect: Dialect, columns: Columns, rows: Row[]): unknown[] {
  return dialect === "postgresql"
    ? columns.map(([column]) => rows.map((row) => row[column] ?? null))
    : [JSON.stringify(rows.map((row) => columns.map(([column]) => row[column] ?? null)))];
}

const identityFromRow = (row: Row): IdentityLink => ({
  integrationId: String(row.integration_id),
  lid: String(row.lid),
  jid: String(row.jid),
  createdAt: new Date(Number(row.created_at)),
});

export function createMappingStore({
  knex,
  dialect,
  tables: t,
  preparedStatements,
}: StoreContext): MappingStore {
  const readChat = async (where: Row): Promise<ChatMapping | null> => {
    const row: Row | undefined = await knex(t.chatMappings)
      .where(where)
      .orderBy("updated_at", "desc")
      .first();
    return row ? chatFromRow(row) : null;
  };

  const prepared = preparedStatements && dialect !== "mysql" ? createPreparedQuery(knex) : null;

  /**
   * The rows a batch of (integration, key) look-ups finds, with each integration's look-ups: on the prepared path one
   * statement for the whole batch (`sql`, bound with the batch's pairs, `bindTwice` for a text that joins them
   * twice), whatever its integrations; on knex's path one query per integration (`perIntegration`, given that
   * integration's distinct keys). Rows keep the order their statement gave them.
   */
  const lookUp = async (
    wanted: Keyed[],
    sql: string,
    perIntegration: (integrationId: string, keys: string[]) => Promise<Row[]>,
    { bindTwice = false } = {},
  ): Promise<Array<{ rows: Row[]; group: Array<{ item: Keyed; index: number }> }>> => {
    const groups = groupBy(wanted, (entry) => entry.integrationId);
    if (prepared) {
      const pairs = keyPairValues(dialect, wanted);
      const rows = await prepared(sql, bindTwice && dialect !== "postgresql" ? [...pairs, ...pairs] : pairs);
      const byIntegration = groupBy(rows, (row) => String(row.integration_id));
      return [...groups].map(([integrationId, group]) => ({
        rows: (byIntegration.get(integrationId) ?? []).map((entry) => entry.item),
        group,
      }));
    }
    const answers = [];
    for (const [integrationId, group] of groups)
      answers.push({
        rows: await perIntegration(integrationId, [...new Set(group.map(({ item }) => item.key))]),
        group,
      });
    return answers;
  };

  /**
   * Rows of `table` whose `column` is one of the keys, one statement for concurrent callers (every routed message
   * reads its chat and its message mappings), answered per key in `order`. On the prepared path the batch's
   * (integration, key) pairs are bound as one value (SQLite: a JSON array) or two arrays (PostgreSQL), so one text
   * serves every batch, whatever its integrations; knex's path takes one statement per integration.
   */
  const readByKey = (table: string, column: string, order: { column: string; direction: "asc" | "desc" }) => {
    const sql =
      `select t.* from ${keyPairsJoin(dialect, 1)} ${knex.client.wrapIdentifier(table)} as t ` +
      `on t.integration_id = k.integration_id and t.${column} = k.wanted order by t.${order.column} ${order.direction}`;
    return batched(async (wanted: Keyed[]): Promise<Row[][]> => {
      const answers: Row[][] = wanted.map(() => []);
      const found = await lookUp(wanted, sql, (integrationId, keys) =>
        knex(table)
          .where({ integration_id: integrationId })
          .whereIn(column, keys)
          .orderBy(order.column, order.direction),
      );
      for (const { rows, group } of found) {
        const byKey = groupBy(rows, (row) => String(row[column]));
        for (const { item, index } of group)
          answers[index] = (byKey.get(item.key) ?? []).map((entry) => entry.item);
      }
      return answers;
    });
  };
  // Several mappings for one chat should not happen; if it does, the latest wins (as in `readChat`).
  const chatRows = readByKey(t.chatMappings, "chat_jid", { column: "updated_at", direction: "desc" });
  const messageRows = readByKey(t.messageMappings, "wa_message_id", { column: "part", direction: "asc" });

  /**
   * Inserts message mappings in one statement where the database says which rows it inserted (`ON CONFLICT DO
   * NOTHING RETURNING`); MySQL/MariaDB insert one at a time.
   */
  const insertMessagesSql =
    `insert into ${knex.client.wrapIdentifier(t.messageMappings)} ` +
    `(${MESSAGE_COLUMNS.map(([column]) => column).join(", ")}) ${rowsSelect(dialect, MESSAGE_COLUMNS)} ` +
    `on conflict (${MESSAGE_KEY.join(", ")}) do nothing returning ${MESSAGE_KEY.join(", ")}`;
  const insertMessages = batched(async (rows: Row[]): Promise<boolean[]> => {
    const oneByOne = async (some: Row[]) => {
      const inserted: boolean[] = [];
      for (const row of some)
        inserted.push(await insertUnlessDuplicate(knex, dialect, t.messageMappings, row, MESSAGE_KEY));
      return inserted;
    };
    if (rows.length === 1 && !prepared) return oneByOne(rows);
    const first = firstIndexes(rows, messageKey);
    if (dialect === "mysql") {
      // No RETURNING: read which keys are stored already, then insert the others in one plain multi-row INSERT,
      // atomic as a statement. Should another writer store one of them in between, the INSERT fails as a whole on
      // its duplicate and those rows go one by one.
      const unique = rows.filter((_, index) => first[index] === index);
      const stored = new Set<string>();
      for (const [integrationId, group] of groupBy(unique, (row) => String(row.integration_id))) {
        const found: Row[] = await knex(t.messageMappings)
          .select(MESSAGE_KEY)
          .where({ integration_id: integrationId })
          .whereIn("wa_message_id", [...new Set(group.map(({ item }) => String(item.wa_message_id)))]);
        for (const row of found) stored.add(messageKey(row));
      }
      const fresh = unique.filter((row) => !stored.has(messageKey(row)));
      let written: Set<string>;
      try {
        if (fresh.length > 0) await knex(t.messageMappings).insert(fresh);
        written = new Set(fresh.map(messageKey));
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        const alone = await oneByOne(fresh);
        written = new Set(fresh.filter((_, index) => alone[index]).map(messageKey));
      }
      return rows.map((row, index) => first[index] === index && written.has(messageKey(row)));
    }
    const unique = rows.filter((_, index) => first[index] === index);
    const inserted: Row[] = prepared
      ? await prepared(insertMessagesSql, rowValues(dialect, MESSAGE_COLUMNS, unique))
      : await knex(t.messageMappings).insert(unique).onConflict(MESSAGE_KEY).ignore().returning(MESSAGE_KEY);
    const stored = new Set(inserted.map(messageKey));
    return rows.map((row, index) => first[index] === index && stored.has(messageKey(row)));
  }, WRITES);

  /**
   * The identity link of each address (looked up as a LID, else as a phone JID: the most recent link), one statement
   * for concurrent callers on the prepared path, else one per integration (every routed private-chat message looks
   * its person up).
   */
  const identitiesSql =
    `select l.* from ${keyPairsJoin(dialect, 1)} ${knex.client.wrapIdentifier(t.identityLinks)} as l ` +
    "on l.integration_id = k.integration_id and l.lid = k.wanted union all " +
    `select l.* from ${keyPairsJoin(dialect, 1)} ${knex.client.wrapIdentifier(t.identityLinks)} as l ` +
    "on l.integration_id = k.integration_id and l.jid = k.wanted order by created_at desc, lid asc";
  const identities = batched(async (wanted: Keyed[]): Promise<(IdentityLink | null)[]> => {
    const answers: (IdentityLink | null)[] = wanted.map(() => null);
    // Newest first, as the single lookup of a phone JID orders its links. On the prepared path, one statement for
    // the batch (a row found as a LID and as a phone JID comes twice, which the look-up below does not mind).
    const found = await lookUp(
      wanted,
      identitiesSql,
      (integrationId, keys) =>
        knex(t.identityLinks)
          .where({ integration_id: integrationId })
          .andWhere((where) => where.whereIn("lid", keys).orWhereIn("jid", keys))
          .orderBy([
            { column: "created_at", order: "desc" },
            { column: "lid", order: "asc" },
          ]),
      { bindTwice: true },
    );
    for (const { rows, group } of found) {
      for (const { item, index } of group) {
        const row =
          rows.find((entry) => String(entry.lid) === item.key) ??
          rows.find((entry) => String(entry.jid) === item.key);
        answers[index] = row ? identityFromRow(row) : null;
      }
    }
    return answers;
  });

  /**
   * Adds history changes in one upsert for concurrent callers (every routed message records its chat's last routed
   * timestamp): the changes of one chat are combined first (counts added, the newest timestamp, the last
   * conversation given), then added to the stored record, so concurrent writers still add up and the timestamp
   * only rises.
   */
  const history = knex.client.wrapIdentifier(t.chatHistory);
  const historySql =
    `insert into ${history} (${HISTORY_COLUMNS.map(([column]) => column).join(", ")}) ` +
    `${rowsSelect(dialect, HISTORY_COLUMNS)} on conflict (integration_id, chat_jid) do update set ` +
    `last_wa_at = case when ${history}.last_wa_at < excluded.last_wa_at then excluded.last_wa_at ` +
    `else ${history}.last_wa_at end, ` +
    `conversation_id = coalesce(excluded.conversation_id, ${history}.conversation_id), ` +
    ["queued", "imported", "skipped"]
      .map((column) => `${column} = ${history}.${column} + excluded.${column}`)
      .join(", ");
  const writeHistory = batched(
    async (calls: { integrationId: string; chatJid: string; change: HistoryChange }[]) => {
      const rows = new Map<
        string,
        Row & { last_wa_at: number; queued: number; imported: number; skipped: number }
      >();
      for (const { integrationId, chatJid, change } of calls) {
        const key = `${integrationId}\u0000${chatJid}`;
        const row = rows.get(key) ?? {
          integration_id: integrationId,
          chat_jid: chatJid,
          last_wa_at: 0,
          conversation_id: null,
          queued: 0,
          imported: 0,
          skipped: 0,
        };
        row.last_wa_at = Math.max(row.last_wa_at, change.routedAt?.getTime() ?? 0);
        if (change.conversationId !== undefined) row.conversation_id = change.conversationId;
        row.queued += change.queued ?? 0;
        row.imported += change.imported ?? 0;
        row.skipped += change.skipped ?? 0;
        rows.set(key, row);
      }
      if (prepared) {
        await prepared(historySql, rowValues(dialect, HISTORY_COLUMNS, [...rows.values()]));
        return calls.map(() => undefined);
      }
      const [stored, added] =
        dialect === "mysql"
          ? [
              (column: string) => knex.raw("??", [column]),
              (column: string) => knex.raw("values(??)", [column]),
            ]
          : [
              (column: string) => knex.raw("??.??", [t.chatHistory, column]),
              (column: string) => knex.raw("excluded.??", [column]),
            ];
      const sum = (column: string) => knex.raw("? + ?", [stored(column), added(column)]);
      await knex(t.chatHistory)
        .insert([...rows.values()])
        .onConflict(["integration_id", "chat_jid"])
        .merge({
          last_wa_at: knex.raw("case when ? < ? then ? else ? end", [
            stored("last_wa_at"),
            added("last_wa_at"),
            added("last_wa_at"),
            stored("last_wa_at"),
          ]),
          conversation_id: knex.raw("coalesce(?, ?)", [added("conversation_id"), stored("conversation_id")]),
          queued: sum("queued"),
          imported: sum("imported"),
          skipped: sum("skipped"),
        });
      return calls.map(() => undefined);
    },
    WRITES,
  );

  return {
    async getChat(integrationId, chatJid) {
      const [row] = await chatRows({ integrationId, key: chatJid });
      return row ? chatFromRow(row) : null;
    },

    // Several chats on one conversation should not happen; if it does, the latest mapping wins.
    getChatByConversation: (integrationId, conversationId) =>
      readChat({ integration_id: integrationId, conversation_id: conversationId }),

    async putChat(mapping) {
      const columns = chatColumns(mapping);
      const key = { integration_id: mapping.integrationId, chat_jid: mapping.chatJid };
      // Retried only if the row another writer inserted vanished again before we could read it.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await insertUnlessDuplicate(knex, dialect, t.chatMappings, columns, Object.keys(key))) {
          return chatFromRow(columns);
        }
        const existing = await readChat(key);
        if (existing) return existing;
      }
      throw new Error(`chat mapping ${mapping.chatJid} could not be written or read`);
    },

    async setChatConversation(integrationId, chatJid, conversationId) {
      checkKey("chatJid", chatJid);
      // The port passes no clock here; the wall clock marks when the mapping last changed.
      const changed = await knex(t.chatMappings)
        .where({ integration_id: integrationId, chat_jid: chatJid })
        .update({ conversation_id: conversationId, updated_at: Date.now() });
      return changed > 0;
    },

    // Validated per call (`messageColumns` throws), so a bad mapping fails alone before it joins a batch.
    putMessage: async (mapping) => insertMessages(messageColumns(mapping)),

    async getMessagesByWa(integrationId, waMessageId) {
      return (await messageRows({ integrationId, key: waMessageId })).map(messageFromRow);
    },

    async getMessagesByChatwoot(integrationId, chatwootMessageId) {
      const rows: Row[] = await knex(t.messageMappings)
        .where({ integration_id: integrationId, chatwoot_message_id: chatwootMessageId })
        .orderBy([
          { column: "part", order: "asc" },
          { column: "wa_message_id", order: "asc" },
        ]);
      return rows.map(messageFromRow);
    },
    async lastMessages(integrationId) {
      // One index descent per direction (`<prefix>message_mappings_recent_idx`, migration 0008).
      const newest = async (direction: "inbound" | "outbound") => {
        const row: Row | undefined = await knex(t.messageMappings)
          .select("created_at")
          .where({ integration_id: integrationId, direction })
          .orderBy("created_at", "desc")
          .first();
        return row ? new Date(Number(row.created_at)) : null;
      };
      return { inbound: await newest("inbound"), outbound: await newest("outbound") };
    },

    async setChatContact(integrationId, chatJid, contactId) {
      checkKey("chatJid", chatJid);
      const changed = await knex(t.chatMappings)
        .where({ integration_id: integrationId, chat_jid: chatJid })
        .update({ contact_id: contactId, updated_at: Date.now() });
      return changed > 0;
    },

    async linkIdentity(link) {
      checkKey("lid", link.lid);
      checkKey("jid", link.jid);
      const where = { integration_id: link.integrationId, lid: link.lid };
      const row = { ...where, jid: link.jid, created_at: link.createdAt.getTime() };
      // Retried only if the row another writer inserted vanished again (integration deleted) before we could read it.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await insertUnlessDuplicate(knex, dialect, t.identityLinks, row, Object.keys(where))) {
          return { ...link, createdAt: new Date(row.created_at) };
        }
        const existing: Row | undefined = await knex(t.identityLinks).where(where).first();
        if (!existing) continue;
        if (String(existing.jid) === link.jid) return identityFromRow(existing);
        // The person changed numbers: the newest link wins (guarded, so a concurrent change is not overwritten blindly).
        const changed = await knex(t.identityLinks)
          .where({ ...where, jid: String(existing.jid) })
          .update({ jid: link.jid, created_at: row.created_at });
        if (changed > 0) return { ...link, createdAt: new Date(row.created_at) };
      }
      throw new Error(`identity link ${link.lid} could not be written or read`);
    },

    async resolveIdentity(integrationId, address) {
      if (address.length > COLUMN_LIMITS.key) return null;
      return identities({ integrationId, key: address });
    },

    // Validated per call (`checkKey` throws), so a bad chat JID fails alone before it joins a batch.
    async recordHistory(integrationId, chatJid, change) {
      checkKey("chatJid", chatJid);
      return writeHistory({ integrationId, chatJid, change });
    },

    async getHistory(integrationId, chatJid) {
      const row: Row | undefined =
        chatJid.length > COLUMN_LIMITS.key
          ? undefined
          : await knex(t.chatHistory).where({ integration_id: integrationId, chat_jid: chatJid }).first();
      const at = row ? Number(row.last_wa_at) : 0;
      return {
        lastRoutedAt: at > 0 ? new Date(at) : null,
        conversationId: row?.conversation_id == null ? null : Number(row.conversation_id),
      };
    },

    async historyProgress(integrationId) {
      const row: Row | undefined = await knex(t.chatHistory)
        .where({ integration_id: integrationId })
        .sum({ queued: "queued", imported: "imported", skipped: "skipped" })
        .first();
      return {
        queued: Number(row?.queued ?? 0),
        imported: Number(row?.imported ?? 0),
        skipped: Number(row?.skipped ?? 0),
      };
    },
  };
}
