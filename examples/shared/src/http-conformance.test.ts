import {
  type AnswerBook,
  compareAnswerBooks,
  runAdapterAbortConformance,
  runHttpAdapterConformance,
} from "@ryze/chatwoot-testkit/conformance";
import { expressMount, fastifyMount, koaMount } from "./mounts.js";

// One HTTP suite for every framework adapter, then a byte-for-byte comparison of their answers.
const mounts = [expressMount, koaMount, fastifyMount];
const book: AnswerBook = new Map();
for (const mount of mounts) {
  runHttpAdapterConformance(mount, { book });
  runAdapterAbortConformance(mount);
}
compareAnswerBooks(
  book,
  mounts.map((mount) => mount.name),
);
