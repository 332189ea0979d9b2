/**
 * The PostgreSQL drill: a throwaway server of the image's major version, started by the runner under
 * the drill's scratch directory (trust authentication, a Unix socket in that directory, no TCP), the
 * backup restored into it with pg_restore, every table's rows counted, and the server stopped and its
 * files removed, also when the restore fails or the drill is stopped.
 */

import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { checkSocketPath, handToServerUser, type DrillRestore, type RestoreForDrill } from "./drill";
import { firstLine, pgMajor } from "./engines";
import { runChecked } from "./proc";
import { asServerUser, initdbLocaleArgs, postgresBinDir, postgresSearchHere, postgresUser } from "./postgresServer";

/** The throwaway cluster's superuser and database: names of its own, nothing of the source's. */
const superuser = "drill";
const database = "drill";

/**
 * The server's settings. No TCP at all (listen_addresses empty), the socket in the drill's directory.
 * Dynamic shared memory in memory-mapped files in the data directory (mmap) rather than in /dev/shm:
 * Fargate does not take `sharedMemorySize`, so /dev/shm is whatever the runtime gives and cannot be
 * made larger or writable, and files there would live outside the scratch volume
 * (docs/aws-behaviors.md, "Containers on Fargate"). Durability is not wanted from a copy that is
 * deleted minutes later, so fsync and full-page writes are off, which makes the restore faster.
 */
export function drillServerConfig(socketDir: string): string {
  const quoted = (value: string) => `'${value.replace(/'/g, "''")}'`;
  return [
    "listen_addresses = ''",
    `unix_socket_directories = ${quoted(socketDir)}`,
    "dynamic_shared_memory_type = mmap",
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    "max_wal_size = '4GB'",
    "log_min_messages = warning",
    "",
  ].join("\n");
}

/**
 * pg_restore's arguments. `--no-owner --no-acl`: the source's roles are not in the dump (pg_dump
 * writes no roles) and do not exist in the throwaway server, so ALTER ... OWNER TO and GRANT to them
 * would fail under --exit-on-error; the drill proves the data and schema restore, not the source's
 * roles. `--exit-on-error`: any failed statement fails the drill (pg_restore otherwise goes on and
 * only counts errors). `--jobs`: parallel data and index restore from the custom-format file.
 */
export function drillPgRestoreArgs(file: string, jobs: number): string[] {
  return ["--exit-on-error", "--no-owner", "--no-acl", `--jobs=${jobs}`, `--dbname=${database}`, file];
}

/**
 * Why a backup cannot be drilled with this server, before trying: a dump from a newer pg_dump than the
 * server's major may hold what the older server and pg_restore do not read (pg_dump 18 writes archive
 * format 1.16, which pg_restore 16 refuses, and SET commands 15 does not know).
 */
export function versionProblem(dumpTool: string | null, serverMajor: number | undefined): string | undefined {
  const dumpMajor = pgMajor(dumpTool);
  if (dumpMajor === undefined || serverMajor === undefined || dumpMajor <= serverMajor) return undefined;
  return (
    `the backup was written by pg_dump ${dumpMajor} (${dumpTool}) and the drill's PostgreSQL server is ${serverMajor}: ` +
    `a drill needs a server and pg_restore at least as new as the pg_dump (the image's are the same major as its pg_dump; ` +
    `elsewhere install postgresql-${dumpMajor} or set PG_BIN_DIR to its bin directory)`
  );
}

/** pg_restore's refusal of a newer archive, said so plainly; undefined for any other failure. */
export function explainPgRestoreError(stderr: string, dumpTool: string | null): string | undefined {
  const format = /unsupported version \(([\d.]+)\) in file header/.exec(stderr);
  if (!format) return undefined;
  return `this pg_restore cannot read archive format ${format[1]}, written by a newer pg_dump (${dumpTool ?? "version unknown"}): drill with a PostgreSQL at least as new as the pg_dump (PG_BIN_DIR)`;
}

/** `sql` through psql into the throwaway server, its one value parsed as JSON. */
async function queryJson<T>(psql: string, sql: string, env: NodeJS.ProcessEnv, stop: AbortSignal): Promise<T> {
  const res = await runChecked("counting the restored data failed", psql, ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], env, 24 * 3600_000, stop);
  return JSON.parse(res.stdout.trim()) as T;
}

/** User tables and materialized views' schemas: everything but the catalogs and TOAST. */
const userSchemas = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/**
 * Exact rows per table (`schema.table`, quoted where PostgreSQL would quote it): count(*) of each
 * ordinary table and partition (a partitioned parent holds no rows of its own), in one statement
 * through query_to_xml. Not pg_class.reltuples: an estimate, 0 or -1 right after a restore.
 */
export const countRowsSql = `SELECT coalesce(json_object_agg(name, n), '{}') FROM (
  SELECT format('%I.%I', n.nspname, c.relname) AS name,
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND ${userSchemas}
) t`;

/** Bytes per schema: tables and materialized views with their indexes and TOAST. */
export const schemaSizesSql = `SELECT coalesce(json_object_agg(nspname, bytes), '{}') FROM (
  SELECT n.nspname, sum(pg_total_relation_size(c.oid))::bigint AS bytes
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'm') AND ${userSchemas}
  GROUP BY n.nspname
) t`;

export const restorePostgresForDrill: RestoreForDrill = async (d, ctx) => {
  const bin = postgresBinDir(postgresSearchHere(ctx.env));
  // The clients that go with the server; pg_restore on PATH may be another major.
  const tool = (name: string) => (existsSync(join(bin, name)) ? join(bin, name) : name);
  const serverMajor = pgMajor(await firstLine(join(bin, "postgres"), ["--version"], ctx.env, ctx.stop));
  const tooNew = versionProblem(d.manifest.tool, serverMajor);
  if (tooNew) throw new Error(tooNew);

  const dir = join(ctx.scratch, "postgres");
  const data = join(dir, "data");
  checkSocketPath(join(dir, ".s.PGSQL.5432"));
  await mkdir(dir, { mode: 0o700 });
  const root = process.getuid?.() === 0;
  // initdb and postgres refuse root: they run as postgres, who owns the cluster's directory.
  if (root) await handToServerUser(postgresUser(), ctx.scratch, [dir]);
  // The tools' environment: the throwaway server only, whatever PG* variables the caller had.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(ctx.env).filter(([k]) => !k.startsWith("PG")));
  Object.assign(env, { PGHOST: dir, PGPORT: "5432", PGUSER: superuser, PGDATABASE: database, PGAPPNAME: "db-backup-drill" });
  /** Runs one of the server's programs as the server's user; `stoppable: false` for the shutdown, which a stop waits for. */
  const server = (program: string, args: string[], failure: string, stoppable = true) => {
    const [command, argv] = asServerUser(join(bin, program), args, root);
    return runChecked(failure, command, argv, env, 120_000, stoppable ? ctx.stop : undefined);
  };
  const log = join(dir, "server.log");
  try {
    await server("initdb", ["-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", ...initdbLocaleArgs(process.platform), "--no-sync"], "initdb of the throwaway server failed");
    await appendFile(join(data, "postgresql.conf"), drillServerConfig(dir));
    const started = Date.now();
    try {
      await server("pg_ctl", ["-D", data, "-l", log, "-w", "-t", "100", "start"], "the throwaway PostgreSQL server did not start");
    } catch (err) {
      const tail = existsSync(log) ? (await readFile(log, "utf8")).trim().split("\n").slice(-5).join(" | ") : "";
      throw new Error(`${(err as Error).message}${tail ? `; its log: ${tail}` : ""}`);
    }
    await runChecked("creating the drill's database failed", tool("psql"), ["-X", "-q", "-d", "postgres", "-c", `CREATE DATABASE ${database}`], env, 60_000, ctx.stop);
    try {
      await runChecked("pg_restore into the throwaway server failed", tool("pg_restore"), drillPgRestoreArgs(d.path, ctx.jobs), env, 7 * 24 * 3600_000, ctx.stop);
    } catch (err) {
      const explained = explainPgRestoreError((err as Error).message, d.manifest.tool);
      throw explained ? new Error(explained) : err;
    }
    const restoreSeconds = (Date.now() - started) / 1000;
    const result: DrillRestore = {
      counts: await queryJson<Record<string, number>>(tool("psql"), countRowsSql, env, ctx.stop),
      sizes: await queryJson<Record<string, number>>(tool("psql"), schemaSizesSql, env, ctx.stop),
      serverVersion: await queryJson<string>(tool("psql"), "SELECT to_json(current_setting('server_version'))", env, ctx.stop),
      restoreSeconds,
    };
    return result;
  } finally {
    await stopServer(data, server);
    await rm(dir, { recursive: true, force: true });
  }
};

/**
 * Stops the server, if it runs: a fast shutdown (sessions ended, one checkpoint, cheap with fsync off),
 * then an immediate one if that did not finish. Not cut short by the drill's stop signal: this is
 * what the stop is waiting for.
 */
async function stopServer(data: string, server: (program: string, args: string[], failure: string, stoppable: boolean) => Promise<unknown>): Promise<void> {
  if (!existsSync(join(data, "postmaster.pid"))) return;
  try {
    await server("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "30", "stop"], "fast shutdown failed", false);
  } catch {
    await server("pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], "immediate shutdown failed", false).catch(() => undefined);
  }
}
