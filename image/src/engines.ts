/**
 * What differs between PostgreSQL and MongoDB: the dump command, how secrets reach it, the versions
 * recorded in the manifest, and how a tool's stderr is turned into an error that says what to fix.
 */

import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { onPath, run, succeeded } from "./proc";
import { mongoPointInTime } from "./contract";
import type { MongoTarget, PostgresTarget, Target } from "./settings";

type Env = NodeJS.ProcessEnv;

/** A dump command ready to spawn; `cleanup` removes any private file made for it. */
export interface DumpPlan {
  /** The dump tool, as errors name it. */
  command: string;
  args: string[];
  /** Put before `command` on the spawned argv (stdbuf for pg_dump, below); empty to run it as it is. */
  launcher: string[];
  env: Env;
  contentType: string;
  toolVersion: string | null;
  serverVersion: string | null;
  compression: string | null;
  /** Whether the dump is one point in time: pg_dump reads one snapshot; mongodump only with --oplog. */
  pointInTime: boolean;
  cleanup: () => Promise<void>;
}

/** libpq's own variables: nothing about the connection, least of all the password, goes on argv. */
export function pgEnv(target: PostgresTarget, base: Env, secrets: Env, database = target.database): Env {
  const env: Env = {
    ...base,
    PGHOST: target.host,
    PGPORT: String(target.port),
    PGDATABASE: database,
    PGUSER: target.user,
    PGPASSWORD: secrets[target.passwordEnv],
    PGAPPNAME: "db-backup",
    PGCONNECT_TIMEOUT: base.PGCONNECT_TIMEOUT ?? "20",
  };
  if (target.options) env.PGOPTIONS = target.options;
  if (target.sslmode) env.PGSSLMODE = target.sslmode;
  if (target.sslrootcert) env.PGSSLROOTCERT = target.sslrootcert;
  return env;
}

/** What names a root certificate for the runner: said wherever one is missing. */
const nameRootCert = `name the CA certificate file with "sslrootcert" on the target in BACKUP_TARGETS (or set PGSSLROOTCERT)`;

/** The sslmode values that verify the server's certificate against a root certificate. */
const verifyingModes = new Set(["verify-ca", "verify-full"]);

/**
 * The PGSSLROOTCERT a verifying sslmode needs where nothing names one; undefined leaves libpq's own.
 *
 * Without a root certificate libpq reads ~/.postgresql/root.crt, and the image's user has no home, so
 * verify-ca and verify-full fail on every connection. libpq 16 and later take `sslrootcert=system`,
 * the SSL library's trusted roots (the image's CA bundle), and refuse it with any mode weaker than
 * verify-full (libpq, "Parameter Key Words", sslrootcert). So: a root certificate already named (the
 * target's, PGSSLROOTCERT, a root.crt in the home directory) is kept; verify-full with libpq 16+
 * gets "system"; anything else fails here, before connecting, with the setting that fixes it.
 *
 * @param env the tool's environment from pgEnv (PGSSLMODE, PGSSLROOTCERT)
 * @param major the tool's major version (pgMajor); undefined when it cannot be read: the tool's own
 *   failure is then the one to report
 */
export function pgRootCert(env: Env, major: number | undefined, homeRootCert: boolean): string | undefined {
  const mode = env.PGSSLMODE;
  if (!mode || !verifyingModes.has(mode) || env.PGSSLROOTCERT || homeRootCert || major === undefined) return undefined;
  if (mode === "verify-ca") {
    throw new Error(`sslmode=verify-ca needs the CA that signed the server's certificate, and none is named: ${nameRootCert}; or use verify-full, which the system CA bundle serves`);
  }
  if (major < 16) {
    throw new Error(
      `sslmode=verify-full needs a root certificate, and none is named: ${nameRootCert}, or use pg_dump 16 or later, whose libpq takes sslrootcert=system (the system CA bundle); this pg_dump is ${major}`,
    );
  }
  return "system";
}

/** Whether libpq would find ~/.postgresql/root.crt: under $HOME, or the passwd entry's home libpq 17 and older look in. */
export function homeRootCertExists(base: Env): boolean {
  const homes = [base.HOME];
  try {
    homes.push(userInfo().homedir);
  } catch {
    // no passwd entry: the image's numeric user
  }
  return homes.some((home) => !!home && existsSync(join(home, ".postgresql", "root.crt")));
}

/** pgEnv with the root certificate a verifying sslmode needs (pgRootCert), for a tool whose `--version` printed `versionLine`. */
export function pgToolEnv(target: PostgresTarget, base: Env, secrets: Env, versionLine: string | null, database = target.database): Env {
  const env = pgEnv(target, base, secrets, database);
  const rootCert = pgRootCert(env, pgMajor(versionLine), homeRootCertExists(base));
  if (rootCert) env.PGSSLROOTCERT = rootCert;
  return env;
}

/** The major version in `pg_dump (PostgreSQL) 16.4 (Debian …)`; undefined when it cannot be read. */
export function pgMajor(versionLine: string | null): number | undefined {
  const match = versionLine ? /\)\s*(\d+)(?:\.\d+)?/.exec(versionLine) ?? /(\d+)\.\d+/.exec(versionLine) : null;
  return match ? Number(match[1]) : undefined;
}

/**
 * pg_dump's default (gzip level 6) spends most of a dump's time compressing. zstd level 1 (pg_dump 16+)
 * is as fast as no compression and smaller than the default; before 16, gzip level 1 halves the time
 * for a few percent more bytes. A version we cannot read gets the form every pg_dump accepts.
 */
export function defaultPgCompression(major: number | undefined): string {
  return major !== undefined && major >= 16 ? "zstd:1" : "1";
}

export function pgDumpArgs(compression: string): string[] {
  return ["--format=custom", `--compress=${compression}`, "--no-password"];
}

/**
 * pg_dump writes its archive through C stdio (to `stdout` when given no --file), whose buffer on a
 * pipe is 4 KiB: a 121 MiB dump is 31,000 writes, each one waking the runner for 4 KiB. Under
 * coreutils' `stdbuf -o 64K` (the same stdio with a larger buffer) it is 2,000, and the runner's
 * wakeups fall from 15,000 to 3,700 (strace -c; README, "Performance"). 64 KiB is what Node reads at
 * once and fits in the stdout socket's buffer, so a write rarely waits; 128 KiB to 1 MiB measured no
 * faster. Without stdbuf (macOS), or when pg_dump itself was not found, it runs as it is.
 */
export const pgDumpOutputBuffer = "64K";

export function pgDumpLauncher(env: Env, pgDumpFound: boolean): string[] {
  const stdbuf = pgDumpFound ? onPath("stdbuf", env) : undefined;
  return stdbuf ? [stdbuf, "-o", pgDumpOutputBuffer] : [];
}

/** The first line of a command's output (`pg_dump --version`), or null when it fails. */
export async function firstLine(command: string, args: string[], env: Env, stop?: AbortSignal): Promise<string | null> {
  const res = await run(command, args, env, 30_000, stop);
  return succeeded(res.exit) ? (res.stdout.trim().split("\n")[0] ?? null) : null;
}

/** Connects once before dumping: a wrong password or an unreachable host fails here, before any upload. */
async function pgServerVersion(env: Env, stop?: AbortSignal): Promise<{ version: string | null; error?: string }> {
  const res = await run("psql", ["-X", "-A", "-t", "-q", "-c", "SHOW server_version"], env, 60_000, stop);
  if (res.exit.spawnError?.code === "ENOENT") return { version: null }; // no psql: the dump itself will tell
  if (!succeeded(res.exit)) return { version: null, error: res.stderr || `psql exited with status ${res.exit.code}` };
  return { version: res.stdout.trim() || null };
}

export function explainPgError(stderr: string, target: PostgresTarget): string | undefined {
  const where = `${target.host}:${target.port}`;
  if (/password authentication failed/i.test(stderr)) return `wrong password for user '${target.user}' on ${where} (check ${target.passwordEnv})`;
  if (/no password supplied|fe_sendauth/i.test(stderr)) return `the server asked for a password and ${target.passwordEnv} gave none`;
  if (/endpoint ID is not specified|Endpoint ID/i.test(stderr)) {
    return "Neon needs the endpoint ID: set NEON_DB_ENDPOINT_OPTION=endpoint%3D<endpoint-id> (or \"options\" in BACKUP_TARGETS)";
  }
  if (/root certificate file .* does not exist|could not get home directory to locate root certificate|could not read root certificate/i.test(stderr)) {
    return `libpq cannot find the root certificate to verify the server with: ${nameRootCert}`;
  }
  if (/certificate verify failed/i.test(stderr)) return "the server's certificate is not signed by the root certificate in use (sslrootcert, PGSSLROOTCERT or the system CA bundle)";
  if (/could not translate host name/i.test(stderr)) return `host '${target.host}' could not be resolved (check the host name)`;
  if (/connection refused|could not connect|timeout expired|timed out|no route to host|network is unreachable/i.test(stderr)) {
    return `PostgreSQL at ${where} is unreachable (is it running, and does the network allow it?)`;
  }
  if (/database ".*" does not exist/i.test(stderr)) return `database '${target.database}' does not exist on ${where}`;
  if (/server version mismatch/i.test(stderr)) return "pg_dump is older than the server: use a PostgreSQL client at least as new as the server";
  if (/permission denied/i.test(stderr)) return `user '${target.user}' lacks a privilege the dump needs`;
  return undefined;
}

async function planPostgres(target: PostgresTarget, base: Env, secrets: Env, stop?: AbortSignal): Promise<DumpPlan> {
  // The version first: it decides the root certificate the connection check needs too.
  const toolVersion = await firstLine("pg_dump", ["--version"], base, stop);
  const env = pgToolEnv(target, base, secrets, toolVersion);
  const server = await pgServerVersion(env, stop);
  if (server.error !== undefined) {
    throw new Error(`${explainPgError(server.error, target) ?? "cannot connect to PostgreSQL"}: ${server.error}`);
  }
  const major = pgMajor(toolVersion);
  const compression = target.compression ?? defaultPgCompression(major);
  if (!/^\d$/.test(compression) && major !== undefined && major < 16) {
    throw new Error(`pg_dump ${major} only takes a number 0-9 as compression, not '${compression}' (PG_DUMP_COMPRESSION)`);
  }
  return {
    command: "pg_dump",
    args: pgDumpArgs(compression),
    launcher: pgDumpLauncher(env, toolVersion !== null),
    env,
    contentType: "application/octet-stream",
    toolVersion,
    serverVersion: server.version,
    compression,
    pointInTime: true,
    cleanup: async () => {},
  };
}

/**
 * mongodump reads the connection string from a private YAML file (`--config`), so it is never on argv
 * where `ps` or /proc would show it. The file lives in a fresh 0700 directory and is removed afterwards.
 */
export async function mongoConfigFile(uri: string): Promise<{ path: string; dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "db-backup-"));
  const path = join(dir, "mongo.yaml");
  await writeFile(path, `uri: ${JSON.stringify(uri)}\n`, { mode: 0o600 });
  return { path, dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * `--oplog` makes a whole-deployment dump one point in time: the oplog entries written while the
 * collections were read go into the archive, and `mongorestore --oplogReplay` applies them (mongodump,
 * --oplog: https://www.mongodb.com/docs/database-tools/mongodump/). It is refused with --db.
 */
export function mongodumpArgs(configPath: string, database?: string, pointInTime = false): string[] {
  return ["--archive", "--gzip", `--config=${configPath}`, ...(database ? [`--db=${database}`] : []), ...(pointInTime ? ["--oplog"] : [])];
}

/** The variable through which mongosh gets the connection string: its argv holds only the script. */
export const mongoshUriEnv = "DB_BACKUP_MONGO_URI";

/**
 * mongosh without a connection of its own (`--nodb`) and without ~/.mongoshrc.js (`--norc`), running
 * `script`, which connects with `connect(process.env.DB_BACKUP_MONGO_URI)` and prints one JSON line.
 */
export function mongoshArgs(script: string): string[] {
  return ["--nodb", "--norc", "--quiet", "--eval", script];
}

/**
 * What the dump needs to know of the deployment: its version, whether it is a replica set (`hello`
 * names the set; a mongos answers msg "isdbgrid"), and, when asked, whether the user may read the
 * oplog: one read of local.oplog.rs, the collection mongodump --oplog copies.
 */
const deploymentScript = `
const conn = connect(process.env.${mongoshUriEnv});
let reply;
try { reply = conn.adminCommand({ hello: 1 }); } catch (e) { reply = conn.adminCommand({ isMaster: 1 }); }
const out = { version: conn.version(), setName: reply.setName ?? null, msg: reply.msg ?? null };
if (process.env.DB_BACKUP_CHECK_OPLOG === "1" && reply.setName) {
  try { conn.getSiblingDB("local").getCollection("oplog.rs").findOne({}, { ts: 1 }); out.oplogError = null; }
  catch (e) { out.oplogError = (e.codeName ? e.codeName + ": " : "") + e.message; }
}
print(JSON.stringify(out));
`;

export interface MongoDeployment {
  version: string | null;
  /** The replica set's name; null on a standalone server or a mongos. */
  setName: string | null;
  /** hello's msg: "isdbgrid" on a mongos. */
  msg: string | null;
  /** Why the oplog could not be read; null when it could; absent when it was not tried. */
  oplogError?: string | null;
}

/** The setting that turns --oplog off for this target, as the error that needs it names it. */
export function pointInTimeSetting(target: MongoTarget): string {
  return target.uriEnv === "MONGO_CONNECTION_STRING" ? "MONGO_POINT_IN_TIME=false" : `"pointInTime": false on target '${target.name}'`;
}

/**
 * Why a point-in-time dump of this deployment cannot be made, in words that say what to do; undefined
 * when it can. Only a replica set keeps an oplog for mongodump to copy, and mongodump cannot take it
 * through a mongos; the user needs to read local.oplog.rs, which MongoDB's built-in `backup` role
 * grants ("Built-In Roles", backup: https://www.mongodb.com/docs/manual/reference/built-in-roles/;
 * Atlas: read on the local database, "Oplog Access": https://www.mongodb.com/docs/atlas/reference/atlas-oplog/).
 */
export function pointInTimeProblem(d: MongoDeployment, target: MongoTarget): string | undefined {
  const optOut = `set ${pointInTimeSetting(target)} to back it up without the oplog (then not one point in time)`;
  if (d.msg === "isdbgrid") return `${target.uriEnv} leads to a mongos (a sharded cluster), through which mongodump cannot copy the oplog that makes a dump one point in time: ${optOut}`;
  if (!d.setName) return `${target.uriEnv} leads to a standalone server, not a replica set, and only a replica set keeps the oplog that makes a dump one point in time (mongodump --oplog): ${optOut}, or run it as a replica set (one member will do)`;
  if (d.oplogError) return `${oplogRoleAdvice(target)}: ${d.oplogError}`;
  return undefined;
}

function oplogRoleAdvice(target: MongoTarget): string {
  return (
    `the user in ${target.uriEnv} may not read the oplog (local.oplog.rs), which a point-in-time dump copies (mongodump --oplog): ` +
    `grant it MongoDB's built-in "backup" role (db.getSiblingDB("admin").grantRolesToUser("<user>", [{ role: "backup", db: "admin" }]); ` +
    `on Atlas, "read" on the "local" database), or set ${pointInTimeSetting(target)} to back up without it`
  );
}

type Probe = { deployment: MongoDeployment } | { missing: true } | { error: string };

/**
 * Asks the deployment what the dump needs to know (deploymentScript) through mongosh, with the
 * connection string in its environment, never on argv. Without mongosh (a laptop with only the
 * database tools) the dump goes ahead, and mongodump's own errors are explained instead.
 */
export async function probeMongo(uri: string, base: Env, home: string, checkOplog: boolean, stop?: AbortSignal): Promise<Probe> {
  // HOME: mongosh keeps its logs and config under ~/.mongodb, and the image's user has no home.
  const env = { ...base, HOME: home, [mongoshUriEnv]: uri, DB_BACKUP_CHECK_OPLOG: checkOplog ? "1" : "0" };
  const res = await run("mongosh", mongoshArgs(deploymentScript), env, 60_000, stop);
  if (res.exit.spawnError?.code === "ENOENT") return { missing: true };
  if (!succeeded(res.exit)) return { error: res.stderr || res.stdout.trim() || `mongosh exited with status ${res.exit.code}` };
  const last = res.stdout.trim().split("\n").pop() ?? "";
  try {
    const d = JSON.parse(last) as MongoDeployment;
    return { deployment: { version: d.version ?? null, setName: d.setName ?? null, msg: d.msg ?? null, ...(d.oplogError !== undefined ? { oplogError: d.oplogError } : {}) } };
  } catch {
    return { error: `mongosh printed no JSON: ${last.slice(0, 200)}` };
  }
}

export function explainMongoError(stderr: string, target: MongoTarget): string | undefined {
  // mongodump --oplog's own failures, where no mongosh checked first: a standalone server has no
  // local.oplog.rs, so it looks for a master/slave oplog and finds none; a user without the role is refused.
  if (/error getting recent oplog entry: .*no documents/i.test(stderr)) {
    return `${target.uriEnv} leads to a server without an oplog (not a replica set), so the dump cannot be one point in time: set ${pointInTimeSetting(target)} to back it up without it`;
  }
  if (/oplog[^\n]*(unauthorized|not authorized)/i.test(stderr)) return oplogRoleAdvice(target);
  if (/authentication failed|auth error|bad auth/i.test(stderr)) return `MongoDB refused the credentials in ${target.uriEnv}`;
  if (/server selection error|no reachable servers|connection refused|i\/o timeout|no such host|ECONNREFUSED|ENOTFOUND|MongoServerSelectionError/i.test(stderr)) {
    return `MongoDB is unreachable with the connection string in ${target.uriEnv}`;
  }
  if (/error parsing (uri|command line options)|invalid uri|MongoParseError/i.test(stderr)) return `${target.uriEnv} is not a valid MongoDB connection string`;
  return undefined;
}

async function planMongo(target: MongoTarget, base: Env, secrets: Env, stop?: AbortSignal): Promise<DumpPlan> {
  const uri = secrets[target.uriEnv] ?? "";
  const pointInTime = mongoPointInTime(target);
  const config = await mongoConfigFile(uri);
  try {
    const toolVersion = await firstLine("mongodump", ["--version"], base, stop);
    const probe = await probeMongo(uri, base, config.dir, pointInTime, stop);
    if ("error" in probe) throw new Error(`${explainMongoError(probe.error, target) ?? "cannot connect to MongoDB"}: ${probe.error}`);
    const deployment = "deployment" in probe ? probe.deployment : undefined;
    const problem = deployment && pointInTime ? pointInTimeProblem(deployment, target) : undefined;
    if (problem) throw new Error(problem);
    return {
      command: "mongodump",
      args: mongodumpArgs(config.path, target.database, pointInTime),
      launcher: [], // a Go program: its output does not go through C stdio, so stdbuf would change nothing
      env: base,
      contentType: "application/gzip",
      toolVersion,
      serverVersion: deployment?.version ?? null,
      compression: "gzip",
      pointInTime,
      cleanup: config.remove,
    };
  } catch (err) {
    await config.remove();
    throw err;
  }
}

/** Everything a dump needs before it starts; `stop` cuts its short commands (versions, the connection check) short. */
export function planDump(target: Target, base: Env, secrets: Env, stop?: AbortSignal): Promise<DumpPlan> {
  return target.engine === "postgres" ? planPostgres(target, base, secrets, stop) : planMongo(target, base, secrets, stop);
}

export function explainDumpError(target: Target, stderr: string): string | undefined {
  return target.engine === "postgres" ? explainPgError(stderr, target) : explainMongoError(stderr, target);
}
