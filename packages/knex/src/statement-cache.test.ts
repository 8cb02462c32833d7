import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { cacheStatements } from "./statement-cache.js";

describe("cacheStatements", () => {
  it("reuses a statement for the same SQL and keeps the most recently used ones", () => {
    const connection = cacheStatements(new Database(":memory:"), { size: 2 });
    const one = connection.prepare("select 1 as n");
    expect(connection.prepare("select 1 as n")).toBe(one);
    const two = connection.prepare("select 2 as n");
    expect(connection.prepare("select 1 as n")).toBe(one); // now the most recent
    connection.prepare("select 3 as n"); // evicts "select 2", the least recently used
    expect(connection.prepare("select 1 as n")).toBe(one);
    expect(connection.prepare("select 2 as n")).not.toBe(two);
    expect(connection.prepare("select 2 as n").get()).toEqual({ n: 2 });
    connection.close();
  });

  it("answers from the current schema after a table is dropped and made again", () => {
    const connection = cacheStatements(new Database(":memory:"));
    connection.exec("create table t (a integer); insert into t values (1)");
    expect(connection.prepare("select * from t").all()).toEqual([{ a: 1 }]);
    connection.exec("drop table t; create table t (a integer, b text); insert into t values (2, 'x')");
    expect(connection.prepare("select * from t").all()).toEqual([{ a: 2, b: "x" }]);
    connection.exec("drop table t");
    expect(() => connection.prepare("select * from t").all()).toThrow(/no such table: t/);
    connection.close();
  });

  it("does not keep SQL that fails to compile, and refuses a size that is not a positive integer", () => {
    const connection = cacheStatements(new Database(":memory:"));
    expect(() => connection.prepare("select * from missing")).toThrow(/no such table: missing/);
    connection.exec("create table missing (a integer)");
    expect(connection.prepare("select * from missing").all()).toEqual([]);
    connection.close();
    expect(() => cacheStatements(new Database(":memory:"), { size: 0 })).toThrow(
      "cacheStatements: size must be a positive integer, got 0",
    );
  });
});
