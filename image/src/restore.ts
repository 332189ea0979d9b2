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
import { firstLine, mongoConfigFile, pgToolEnv } from "./engines";
import { manifestKey, parseManifestKey, type BackupRef } from "./keys";
import { runChecked } from "./proc";
import { percentOf, trackProgress } from "./progress";
import { getJson, getStream, listKeys, Meter } from "./s3";
import { SettingsError, type Target } from "./settings";

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
  into: string;
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
  const config = await mongoConfigFile(secrets[target.uriEnv] ?? "");
  try {
    const source = d.manifest.database;
    if (!source) throw new Error("this MongoDB backup holds every database; restore it with mongorestore --archive --gzip --nsInclude …");
    const args = ["--archive=" + d.path, "--gzip", `--config=${config.path}`, `--nsFrom=${source}.*`, `--nsTo=${opts.into}.*`];
    await runChecked(`mongorestore into '${opts.into}' failed`, "mongorestore", args, base, week, stop);
  } finally {
    await config.remove();
  }
}
