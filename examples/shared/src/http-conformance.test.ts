import {
  type AnswerBook,
  compareAnswerBooks,
  runHttpAdapterConformance,
} from "@ryze/chatwoot-testkit/conformance";
import { expressMount } from "./mounts.js";

// One HTTP suite for every framework adapter, then a byte-for-byte comparison of their answers.
const mounts = [expressMount];
const book: AnswerBook = new Map();
for (const mount of mounts) runHttpAdapterConformance(mount, { book });
compareAnswerBooks(
  book,
  mounts.map((mount) => mount.name),
);
