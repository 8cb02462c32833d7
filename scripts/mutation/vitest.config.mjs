// The vitest configuration Stryker runs (stryker.config.mjs, `vitest.configFile`): the repository's projects, each
// narrowed to the test files of the mutation group (MUTATION_GROUP). The narrowing lives here rather than in
// Stryker's `testFiles` option because with `testFiles` Stryker activates a static mutant (one that only runs while
// a module loads, e.g. a constant) after the modules are loaded, so such a mutant could never be killed.
import { defineConfig } from "vitest/config";
import { groups } from "../../stryker.config.mjs";
import base from "../../vitest.config.ts";

// MUTATION_TESTS narrows further for a quick run (`run.mjs --tests "core:src/crypto/*.test.ts;knex:src/x.test.ts"`).
const tests = process.env.MUTATION_TESTS
  ? parse(process.env.MUTATION_TESTS)
  : groups[process.env.MUTATION_GROUP ?? "units"].tests;

/** `project:pattern;project:pattern` → { project: [pattern, …] } */
function parse(list) {
  const parsed = {};
  for (const entry of list.split(";")) {
    const [project, pattern] = entry.split(/:(.*)/s);
    if (!pattern) throw new Error(`MUTATION_TESTS: "${entry}" is not <vitest project>:<pattern>`);
    parsed[project] = [...(parsed[project] ?? []), pattern];
  }
  return parsed;
}

// Each project by name (two projects may share a root), with the group's patterns as its include.
const projects = base.test.projects.flatMap((project) => {
  const include = tests[project.test.name] ?? [];
  return include.length > 0 ? [{ ...project, test: { ...project.test, include } }] : [];
});

export default defineConfig({ test: { ...base.test, projects } });
