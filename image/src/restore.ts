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
import { firstLine, mongoConfigFile, pgToolEnv } from "./engines";
import { manifestKey, parseManifestKey, type BackupRef } from "./keys";
import { runChecked } from "./proc";
import { percentOf, trackProgress } from "./progress";
import { getJson, getStream, listKeys, Meter } from "./s3";
import type { Target } from "./settings";

export async function findBackups(client: S3Client, bucket: string, stage: string): Promise<BackupRef[]> {
  const keys = await listKeys(client, bucket, `${stage}/`);
  return keys.map(parseManifestKey).filter((r): r is BackupRef => r !== undefined);
}

export interface Downloaded {
  ref: BackupRef;
  manifest: Manifest;
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
}

export async function downloadVerified(client: S3Client, bucket: string, ref: BackupRef, { dir = tmpdir(), stop, progressSeconds = 60 }: DownloadOptions = {}): Promise<Downloaded> {
  const manifest = await getJson<Manifest>(client, bucket, manifestKey(ref.key));
  const folder = await mkdtemp(join(dir, "db-backup-restore-"));
  const remove = () => rm(folder, { recursive: true, force: true });
  try {
    const path = join(folder, ref.key.split("/").pop()!);
    const meter = new Meter();
    const endProgress = trackProgress({
      msg: "download progress",
      fields: { target: ref.name, engine: ref.engine, key: ref.key },
      intervalSeconds: progressSeconds,
      bytes: () => meter.bytes,
      extra: (bytes) => ({ totalBytes: manifest.bytes, percent: percentOf(bytes, manifest.bytes) }),
    });
    try {
      await pipeline(await getStream(client, bucket, ref.key), meter, createWriteStream(path, { mode: 0o600 }), { signal: stop });
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
}

/**
 * Restores a downloaded, verified backup into the database `into`, using the target's connection
 * settings. `base` is the environment the tools inherit (without secrets); `secrets` holds the target's.
 * `stop` terminates the restore tool; what it restored so far stays in the database.
 */
export async function restoreInto(d: Downloaded, target: Target, opts: RestoreOptions, base: NodeJS.ProcessEnv, secrets: NodeJS.ProcessEnv, stop?: AbortSignal): Promise<void> {
  const week = 7 * 24 * 3600_000;
  if (target.engine === "postgres") {
    const env = pgToolEnv(target, base, secrets, await firstLine("pg_restore", ["--version"], base, stop), opts.into);
    if (opts.create) await runChecked(`cannot create database '${opts.into}'`, "createdb", ["--maintenance-db=postgres", opts.into], env, 60_000, stop);
    const args = ["--dbname", opts.into, "--exit-on-error", "--no-password", ...(opts.noOwner ? ["--no-owner"] : []), ...(opts.jobs > 1 ? [`--jobs=${opts.jobs}`] : []), d.path];
    await runChecked(`pg_restore into '${opts.into}' failed`, "pg_restore", args, env, week, stop);
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
