import { createTestDatabase } from "@ryze/chatwoot-testkit/databases";
import { afterAll, it } from "vitest";
import { runKnexStoreSuite } from "./suite.fixture.js";

// This file's own schema, so it runs next to other test files; skipped loudly when PostgreSQL is unreachable.
const database = await createTestDatabase("postgres", "cw_knex");

if (database) {
  // A pool large enough that every concurrent caller of the conformance suite has its own connection.
  const db = database.connect({ poolMax: 12 });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });
  await runKnexStoreSuite("PostgreSQL", db);
} else {
  // The server is unreachable (warned above); CI sets CI_REQUIRE_DB=1, where this cannot happen.
  it.skipIf(true)(`runs the storage conformance suite on PostgreSQL`, () => {});
}
