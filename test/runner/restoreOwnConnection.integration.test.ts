/**
 * Restore with a connection of its own, against a real PostgreSQL: the backup runs as a read-only user
 * without CREATEDB (as a backup user should), so `restore --create` with only the backup's settings
 * cannot create the database and says which options to give; with `--user` and RESTORE_PG_PASSWORD of
 * a user that may create databases it restores, with no backup secret set. The restore's tools are
 * wrapped by stand-ins that record their argv and environment, to show the password is on neither.
 */

import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { fakeBin, runCli, which } from "../support/runner";

const readerPassword = "Reader-Secret-4711";
const restorerPassword = "Restorer-Secret-9031";
let pg: LocalPostgres;
let s3: LocalS3;
let bin: { dir: string; path: string };
const record = join(tmpdir(), `restore-tools-${process.pid}`);

beforeAll(async () => {
  pg = await startLocalPostgres();
  s3 = await startLocalS3();
  pg.psql("CREATE DATABASE ledger");
  pg.psql(
    `CREATE TABLE entries (id int PRIMARY KEY, amount numeric(12,2) NOT NULL, memo text);
     INSERT INTO entries SELECT g, g * 1.5, 'entry ' || g FROM generate_series(1, 1000) g;
     CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
     INSERT INTO accounts (name) VALUES ('cash'), ('bank'), ('payables');`,
    "ledger",
  );
  // A read-only backup user: reads every table and sequence through the predefined role pg_read_all_data
  // (PostgreSQL 14+, "Predefined Roles", https://www.postgresql.org/docs/14/predefined-roles.html), may not create databases.
  pg.psql(`CREATE ROLE ledger_reader LOGIN NOCREATEDB PASSWORD '${readerPassword}'; GRANT pg_read_all_data TO ledger_reader;`);
  // A user that may create databases, and owns what it restores with --no-owner; not a superuser.
  pg.psql(`CREATE ROLE ledger_restorer LOGIN CREATEDB PASSWORD '${restorerPassword}'`);
  // Stand-ins that record how they were called, then run the real tool.
  const wrap = (tool: string) => `#!/bin/bash
{ echo "$0 argv: $*"; env | grep -E 'PASSWORD|Secret' | sed 's/^/env: /'; } >> ${record}
exec ${which(tool)} "$@"
`;
  bin = fakeBin({ createdb: wrap("createdb"), pg_restore: wrap("pg_restore") });
});

afterAll(async () => {
  await s3?.stop();
  pg?.stop();
  rmSync(bin?.dir ?? "", { recursive: true, force: true });
  rmSync(record, { force: true });
});

const target = () => ({ name: "ledger", engine: "postgres", host: pg.host, port: pg.port, database: "ledger", user: "ledger_reader", passwordEnv: "PG_PASSWORD_LEDGER" });

/** The stack's variables for the ledger target, without its secret. */
function stackEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...s3.env, PATH: bin.path, STAGE: "own-connection", BACKUP_TARGETS: JSON.stringify([target()]) };
}

function rows(database: string): string {
  return pg.psql("SELECT (SELECT count(*) FROM entries) || ' ' || (SELECT sum(amount) FROM entries) || ' ' || (SELECT string_agg(name, ',' ORDER BY id) FROM accounts)", database);
}

beforeAll(async () => {
  const backup = await runCli(["backup"], { ...stackEnv(), PG_PASSWORD_LEDGER: readerPassword });
  expect(backup.lines.find((l) => l.msg === "backup failed")).toBeUndefined();
  expect(backup.code).toBe(0);
});

beforeEach(() => rmSync(record, { force: true }));

it("with only the backup's settings, --create fails and names the options that fix it", async () => {
  const run = await runCli(["restore", "--database", "ledger_copy", "--create"], { ...stackEnv(), PG_PASSWORD_LEDGER: readerPassword });
  expect(run.code).toBe(1);
  expect(run.lines.at(-1)?.msg).toBe(
    "restore failed: cannot create database 'ledger_copy': the backup user 'ledger_reader' may not create databases: give a user that may, with --user and RESTORE_PG_PASSWORD, or create the database 'ledger_copy' first and leave out --create: createdb exited with status 1: createdb: error: database creation failed: ERROR:  permission denied to create database",
  );
  expect(pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'ledger_copy'")).toBe("0");
  expect(run.text).not.toContain(readerPassword);
});

it("with --user and RESTORE_PG_PASSWORD of a user that may create databases it restores every row, needing no backup secret", async () => {
  const env = { ...stackEnv(), RESTORE_PG_PASSWORD: restorerPassword };
  expect(env).not.toHaveProperty("PG_PASSWORD_LEDGER");
  const run = await runCli(["restore", "--database", "ledger_restored", "--create", "--no-owner", "--user", "ledger_restorer"], env);
  expect(run.lines.find((l) => l.level === "error")).toBeUndefined();
  expect(run.code).toBe(0);
  expect(rows("ledger_restored")).toBe(rows("ledger"));
  expect(rows("ledger")).toBe("1000 750750.00 cash,bank,payables");
  expect(pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'ledger_restored'")).toBe("ledger_restorer");
  expect(pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'entries'", "ledger_restored")).toBe("ledger_restorer");

  // The password reached the tools through libpq's environment only: not on argv, not in the log, and
  // not under its own name (RESTORE_PG_PASSWORD is kept from child processes).
  const calls = readFileSync(record, "utf8");
  expect(calls).toMatch(/createdb argv: --no-password --maintenance-db=postgres ledger_restored$/m);
  expect(calls).toMatch(/pg_restore argv: --dbname ledger_restored --exit-on-error --no-password --no-owner \S+\.dump$/m);
  for (const line of calls.split("\n").filter((l) => l.includes(" argv: "))) expect(line).not.toContain(restorerPassword);
  expect(calls).toContain(`env: PGPASSWORD=${restorerPassword}`);
  expect(calls).not.toMatch(/^env: RESTORE_PG_PASSWORD=/m);
  expect(run.text).not.toContain(restorerPassword);
});

it("a restoring user that may not take over the backup's owners is told to add --no-owner", async () => {
  const run = await runCli(["restore", "--database", "ledger_owned", "--create", "--user", "ledger_restorer"], { ...stackEnv(), RESTORE_PG_PASSWORD: restorerPassword });
  expect(run.code).toBe(1);
  expect(run.lines.at(-1)?.msg).toMatch(
    /^restore failed: pg_restore into 'ledger_owned' failed: user 'ledger_restorer' lacks a privilege in 'ledger_owned': give a user that owns it or may create in it, with --user and RESTORE_PG_PASSWORD, or add --no-owner so the restoring user owns what it restores: pg_restore exited with status 1: .*must be member of role/s,
  );
});

it("without any password for the restore's user the settings are refused before anything is downloaded", async () => {
  const run = await runCli(["restore", "--database", "never_made", "--create", "--user", "ledger_restorer"], { ...stackEnv(), PG_PASSWORD_LEDGER: readerPassword });
  expect(run.code).toBe(2);
  expect(run.lines).toHaveLength(1);
  expect(run.lines[0].msg).toBe("invalid settings: --user 'ledger_restorer' needs its password in RESTORE_PG_PASSWORD (PG_PASSWORD_LEDGER holds the backup user's, ledger_reader's)");
});
