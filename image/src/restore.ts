/** Finding backups in the bucket, checking them against their manifests, and restoring them. */

import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { Writable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Manifest } from "./backup";
import { decryptToFile } from "./encryption";
import { explainPgError, firstLine, mongoConfigFile, pgToolEnv } from "./engines";
import { manifestKey, parseManifestKey, type BackupRef } from "./keys";
import { describeExit, run, runChecked, succeeded } from "./proc";
import { percentOf, trackProgress } from "./progress";
import { getJson, getStream, listKeys, Meter } from "./s3";
import { restoreSecretEnv, SettingsError, type PostgresTarget, type Target } from "./settings";

export async function findBackups(client: S3Client, bucket: string, stage: string): Promise<BackupRef[]> {
  const keys = await listKeys(client, bucket, `${stage}/`);
  return keys.map(parseManifestKey).filter((r): r is BackupRef => r !== undefined);
}

export interface Downloaded {
  ref: BackupRef;
  manifest: Manifest;
  /** The backup as its restore tool reads it: decrypted when it was encrypted. */
  path: string;
  /** Removes the downloaded file and its private directory. */
  remove: () => Promise<void>;
}

/**
 * Downloads a backup into a fresh private directory, hashing it on the way, and refuses it unless its
 * size and SHA-256 are the manifest's. `stop` cuts the download short; the directory is removed.
 * Every `progressSeconds` a progress line gives the bytes so far of the manifest's total.
 */
export interface DownloadOptions {
  /** Where the private directory is made; the system's temporary directory by default. */
  dir?: string;
  /** Cuts the download short (SIGTERM); the directory is removed. */
  stop?: AbortSignal;
  /** Seconds between progress lines (BACKUP_PROGRESS_SECONDS); 60 by default. */
  progressSeconds?: number;
  /** AGE_IDENTITY_FILE: decrypts an encrypted backup on the way; required for one. */
  identityFile?: string;
  /** The environment age runs with (its PATH). */
  env?: NodeJS.ProcessEnv;
}

export async function downloadVerified(
  client: S3Client,
  bucket: string,
  ref: BackupRef,
  { dir = tmpdir(), stop, progressSeconds = 60, identityFile, env = process.env }: DownloadOptions = {},
): Promise<Downloaded> {
  if (ref.encrypted && identityFile === undefined) {
    throw new SettingsError(`${ref.key} is encrypted with age: set AGE_IDENTITY_FILE to the path of a file holding the identity (AGE-SECRET-KEY-1…) of one of its recipients`);
  }
  const manifest = await getJson<Manifest>(client, bucket, manifestKey(ref.key));
  const folder = await mkdtemp(join(dir, "db-backup-restore-"));
  const remove = () => rm(folder, { recursive: true, force: true });
  try {
    // The plaintext's name: the key's without .age, so the restore tools see what they expect.
    const path = join(folder, ref.key.split("/").pop()!.replace(/\.age$/, ""));
    const meter = new Meter();
    const endProgress = trackProgress({
      msg: "download progress",
      fields: { target: ref.name, engine: ref.engine, key: ref.key },
      intervalSeconds: progressSeconds,
      bytes: () => meter.bytes,
      extra: (bytes) => ({ totalBytes: manifest.bytes, percent: percentOf(bytes, manifest.bytes) }),
    });
    try {
      const source = await getStream(client, bucket, ref.key);
      // The hash is the stored object's (the ciphertext's, for an encrypted backup): what the manifest holds.
      if (!ref.encrypted) await pipeline(source, meter, createWriteStream(path, { mode: 0o600 }), { signal: stop });
      else {
        const [download, decryption] = await Promise.allSettled([pipeline(source, meter, { signal: stop }), decryptToFile(meter, path, identityFile!, env, stop)]);
        // age's refusal (a wrong identity) breaks the download too; its words are the ones that say why.
        if (decryption.status === "rejected") throw decryption.reason;
        if (download.status === "rejected") throw download.reason;
      }
    } finally {
      endProgress();
    }
    if (meter.bytes !== manifest.bytes || meter.sha256() !== manifest.sha256) {
      throw new Error(
        `s3://${bucket}/${ref.key} does not match its manifest: ${meter.bytes} bytes with SHA-256 ${meter.sha256()}, the manifest says ${manifest.bytes} bytes with ${manifest.sha256}`,
      );
    }
    return { ref, manifest, path, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** Reads the archive the way its restore tool would, without a database: pg_restore's table of contents, or the whole gzip stream. */
export async function checkArchive(d: Downloaded, deep: boolean, env: NodeJS.ProcessEnv, stop?: AbortSignal): Promise<string> {
  if (d.ref.engine === "mongodb") {
    let bytes = 0;
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => ((bytes += chunk.length), done()) });
    await pipeline(createReadStream(d.path), createGunzip(), sink, { signal: stop });
    return `gzip stream intact, ${bytes} bytes of archive`;
  }
  const list = await runChecked("pg_restore --list cannot read it", "pg_restore", ["--list", d.path], env, 10 * 60_000, stop);
  const entries = list.stdout.split("\n").filter((l) => /^\d+;/.test(l)).length;
  if (deep) await runChecked("pg_restore cannot read every block", "pg_restore", ["--file=/dev/null", d.path], env, 24 * 3600_000, stop);
  return `pg_restore reads ${entries} entries${deep ? " and every data block" : ""}`;
}

export interface RestoreOptions {
  /** The database to restore into; for MongoDB, unset with allDatabases. */
  into: string;
  /** MongoDB: restore every database of the backup under its own name (`restore --all-databases`). */
  allDatabases?: boolean;
  create: boolean;
  noOwner: boolean;
  jobs: number;
  /** Whether the connection's user is the backup's (no --user): errors then say so, since that user is usually read-only. */
  backupUser?: boolean;
}

/** What the person restoring should change when createdb or pg_restore fails, in restore's own options and variables. */
export function explainRestoreError(stderr: string, target: PostgresTarget, opts: RestoreOptions): string | undefined {
  const who = `${opts.backupUser ? "the backup user" : "user"} '${target.user}'`;
  const otherUser = `with --user and ${restoreSecretEnv.postgres}`;
  // createdb as a user that is neither superuser nor has CREATEDB ("CREATE DATABASE v15",
  // https://www.enterprisedb.com/docs/epas/15/epas_compat_sql/20_create_database; restoreOwnConnection.integration.test.ts)
  if (/permission denied to create database/i.test(stderr)) {
    return `${who} may not create databases: give a user that may, ${otherUser}, or create the database '${opts.into}' first and leave out --create`;
  }
  if (/database ".*" does not exist/i.test(stderr)) {
    return `database '${opts.into}' does not exist on ${target.host}:${target.port}: create it first, or give --create`;
  }
  // pg_restore sets each object's original owner unless --no-owner ("app-pgrestore", PostgreSQL 15,
  // https://postgrespro.com/docs/postgresql/15/app-pgrestore): "must be member of role …" for a user that
  // may not; "permission denied for schema public" or "must be owner of …" in a database it does not own.
  if (/permission denied|must be owner of|must be member of role/i.test(stderr)) {
    return `${who} lacks a privilege in '${opts.into}': give a user that owns it or may create in it, ${otherUser}${opts.noOwner ? "" : ", or add --no-owner so the restoring user owns what it restores"}`;
  }
  const connection = explainPgError(stderr, target);
  return connection && opts.backupUser ? `${connection}; or give restore a connection of its own (--host, --port, --user, ${restoreSecretEnv.postgres})` : connection;
}

/** Runs a PostgreSQL tool of the restore; its failure says what to change (explainRestoreError), then how the tool exited. */
async function runPgRestoreTool(failure: string, command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, target: PostgresTarget, opts: RestoreOptions, stop?: AbortSignal): Promise<void> {
  const res = await run(command, args, env, timeoutMs, stop);
  if (succeeded(res.exit)) return;
  const explanation = explainRestoreError(res.stderr, target, opts);
  throw new Error(`${failure}: ${explanation ? `${explanation}: ` : ""}${describeExit(command, res.exit)}: ${res.stderr}`);
}

/**
 * Restores a downloaded, verified backup into the database `into`, with the connection `target`
 * (restoreTarget: the backup's, with restore's own parts). `base` is the environment the tools inherit
 * (without secrets); `secrets` holds the one the connection names.
 * `stop` terminates the restore tool; what it restored so far stays in the database.
 */
export async function restoreInto(d: Downloaded, target: Target, opts: RestoreOptions, base: NodeJS.ProcessEnv, secrets: NodeJS.ProcessEnv, stop?: AbortSignal): Promise<void> {
  const week = 7 * 24 * 3600_000;
  if (target.engine === "postgres") {
    const env = pgToolEnv(target, base, secrets, await firstLine("pg_restore", ["--version"], base, stop), opts.into);
    if (opts.create) await runPgRestoreTool(`cannot create database '${opts.into}'`, "createdb", ["--no-password", "--maintenance-db=postgres", opts.into], env, 60_000, target, opts, stop);
    const args = ["--dbname", opts.into, "--exit-on-error", "--no-password", ...(opts.noOwner ? ["--no-owner"] : []), ...(opts.jobs > 1 ? [`--jobs=${opts.jobs}`] : []), d.path];
    await runPgRestoreTool(`pg_restore into '${opts.into}' failed`, "pg_restore", args, env, week, target, opts, stop);
    return;
  }
  const args = mongorestoreArgs(d, opts);
  const config = await mongoConfigFile(secrets[target.uriEnv] ?? "");
  try {
    const into = opts.allDatabases ? `every database of the backup (${target.uriEnv})` : `'${opts.into}'`;
    await runChecked(`mongorestore into ${into} failed`, "mongorestore", [...args, `--config=${config.path}`], base, week, stop);
  } finally {
    await config.remove();
  }
}

/**
 * mongorestore's arguments for a downloaded MongoDB backup, without the connection. A point-in-time
 * backup's oplog is replayed (`--oplogReplay`), which mongorestore does only for the whole archive:
 * it refuses to rename or pick namespaces while replaying ("cannot use --oplogReplay with includes
 * specified"; mongorestore, --oplogReplay: https://www.mongodb.com/docs/database-tools/mongorestore/).
 * So a backup of every database is restored whole, under its own names, or not at all.
 */
export function mongorestoreArgs(d: Pick<Downloaded, "manifest" | "path">, opts: Pick<RestoreOptions, "into" | "allDatabases">): string[] {
  const archive = [`--archive=${d.path}`, "--gzip"];
  const replay = d.manifest.pointInTime ? ["--oplogReplay"] : [];
  if (opts.allDatabases) return [...archive, ...replay];
  const source = d.manifest.database;
  if (!source) {
    throw new Error(
      `this MongoDB backup holds every database${d.manifest.pointInTime ? " at one point in time (its oplog is replayed, which mongorestore only does for the whole archive)" : ""}, ` +
        `so it is restored whole, each database under its own name: point the target's connection string at a deployment that is not the source and run restore with --all-databases instead of --database ` +
        `(by hand: mongorestore --archive=<file> --gzip${replay.map((r) => " " + r).join("")} --uri=<that deployment>)`,
    );
  }
  return [...archive, `--nsFrom=${source}.*`, `--nsTo=${opts.into}.*`, ...replay];
}
