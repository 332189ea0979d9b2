/** A small database with the features a backup most often gets wrong, and a table-by-table comparison. */

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import type { LocalPostgres } from "./localPostgres";

export const sampleSql = `
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE SCHEMA sales;
CREATE SCHEMA "Odd Schema";
CREATE TYPE sales.status AS ENUM ('new', 'paid', 'shipped', 'refunded');
CREATE TABLE sales.customers (
  id serial PRIMARY KEY,
  email citext UNIQUE NOT NULL,
  name text NOT NULL,
  attributes hstore,
  created_at timestamptz NOT NULL DEFAULT '2024-10-27 18:00:00+08'
);
CREATE TABLE sales.orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES sales.customers(id),
  status sales.status NOT NULL,
  items jsonb NOT NULL,
  tags text[] NOT NULL DEFAULT '{}',
  amounts numeric(12,2)[],
  receipt bytea
);
CREATE TABLE "Odd Schema"."Mixed Case ""Quoted"" Table" ("select" int, "naïve column" text, "from" date);
CREATE TABLE public.documents (id int PRIMARY KEY, title text, body_oid oid);
CREATE VIEW sales.paid_orders AS SELECT * FROM sales.orders WHERE status = 'paid';
CREATE INDEX orders_items_gin ON sales.orders USING gin (items);

INSERT INTO sales.customers (email, name, attributes)
SELECT 'user' || g || '@Example.com', 'Customer ' || g || ' — ' || (ARRAY['Zoë', 'José', '王芳', 'Łukasz', 'Ñandú'])[1 + g % 5],
       hstore(ARRAY['tier', 'region'], ARRAY[(g % 3)::text, (ARRAY['apac', 'emea', 'amer'])[1 + g % 3]])
FROM generate_series(1, 500) g;
INSERT INTO sales.orders (customer_id, status, items, tags, amounts, receipt)
SELECT 1 + g % 500, (ARRAY['new', 'paid', 'shipped', 'refunded']::sales.status[])[1 + g % 4],
       jsonb_build_object('sku', 'SKU-' || g, 'qty', g % 7, 'note', E'line\\nbreak "quoted" ✓'),
       ARRAY['t' || g % 5, 'emoji 🎉'], ARRAY[g * 1.25, g / 3.0]::numeric(12,2)[],
       decode(md5(g::text), 'hex') || '\\x00ff'::bytea
FROM generate_series(1, 5000) g;
INSERT INTO "Odd Schema"."Mixed Case ""Quoted"" Table" VALUES (1, 'ünïcödé ✓', '2024-02-29'), (2, NULL, NULL), (3, E'tab\\there', '1999-12-31');
INSERT INTO public.documents VALUES (1, 'large object', lo_from_bytea(0, convert_to(repeat('Large object payload ✓ ', 2000), 'UTF8')));
`;

/** Creates `database` and fills it with the sample above. */
export function createSampleDatabase(pg: LocalPostgres, database: string): void {
  pg.psql(`CREATE DATABASE "${database}"`);
  pg.psql(sampleSql, database);
}

/** The digests' line for the large objects, which are no table. */
export const largeObjects = "(large objects)";

/** What a set of digests covers, in words: "4 tables and the large objects". */
export function digestsCover(digests: Map<string, string>): string {
  const tables = [...digests.keys()].filter((name) => name !== largeObjects).length;
  return `${tables} table${tables === 1 ? "" : "s"}${digests.has(largeObjects) ? " and the large objects" : ""}`;
}

/**
 * One line per table (and one for large objects): its row count and an MD5 over its rows in a fixed
 * order. Two databases with the same lines hold the same data.
 */
export function tableDigests(pg: LocalPostgres, database: string): Map<string, string> {
  const tables = pg
    .psql(
      `SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
       WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
      database,
    )
    .split("\n")
    .filter(Boolean);
  const digests = new Map<string, string>();
  for (const table of tables) {
    digests.set(table, pg.psql(`SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') FROM ${table} t`, database));
  }
  digests.set(
    largeObjects,
    pg.psql(`SELECT count(*) || ' objects, md5 ' || coalesce(md5(string_agg(md5(lo_get(oid)), ',' ORDER BY oid)), '-') FROM pg_largeobject_metadata`, database),
  );
  return digests;
}

/** The tables whose digests differ between two databases (empty when they match). */
export function compareDatabases(pg: LocalPostgres, a: string, b: string): { table: string; a?: string; b?: string }[] {
  const left = tableDigests(pg, a);
  const right = tableDigests(pg, b);
  const names = [...new Set([...left.keys(), ...right.keys()])].sort();
  return names.filter((n) => left.get(n) !== right.get(n)).map((table) => ({ table, a: left.get(table), b: right.get(table) }));
}

/**
 * Ordinary text: sentences drawn from a 5,000-word vocabulary of made-up words, which compress about
 * as well as application text does (roughly 3:1 with gzip). Generated here and loaded with COPY: the
 * bench's databases and the drill's RTO measurement (scripts/drillRto.ts).
 */
export async function fillNotes(pg: LocalPostgres, database: string, rows: number): Promise<void> {
  pg.psql(`CREATE DATABASE ${database}`);
  pg.psql("CREATE TABLE notes (id bigint, created_at timestamptz, author text, body text)", database);
  const vocabulary = Array.from({ length: 5000 }, (_, k) => createHash("md5").update(String(k)).digest("hex").slice(0, 3 + (k % 7)));
  const copy = spawn("psql", ["-X", "-q", "-c", "COPY notes FROM STDIN"], { env: { ...process.env, ...pg.env(database) }, stdio: ["pipe", "inherit", "inherit"] });
  const done = new Promise((resolve, reject) => copy.on("close", (code) => (code === 0 ? resolve(null) : reject(new Error(`COPY exited ${code}`)))));
  const epoch = Date.UTC(2024, 9, 27);
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  for (let g = 1; g <= rows; ) {
    let chunk = "";
    for (const end = Math.min(rows, g + 9999); g <= end; g++) {
      const words = Array.from({ length: 12 + (g % 8) }, () => vocabulary[next() % 5000]).join(" ");
      chunk += `${g}\t${new Date(epoch - g * 1000).toISOString()}\tcustomer ${g % 50000}\t${words}\n`;
    }
    if (!copy.stdin.write(chunk)) await new Promise((resolve) => copy.stdin.once("drain", resolve));
  }
  copy.stdin.end();
  await done;
}
