/**
 * Restore drills: the latest backup of each target downloaded, checked against its manifest, restored
 * for real into a throwaway server (each engine's RestoreForDrill), counted, and compared with the
 * previous successful drill of that target. Each drill leaves a record in the bucket
 * (`<stage>/drills/<target>/<timestamp>.json`) and a summary line whose embedded metrics
 * (DrillSuccess, RestoreSeconds, RestoredRows, BackupAgeHours) the alarms and the dashboard read.
 */

import { chmod, chown, mkdtemp, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Manifest } from "./backup";
import { drillKey, drillsPrefix, latestPerTarget, type BackupRef } from "./keys";
import { log, logDrillMetrics } from "./log";
import type { LocalUser } from "./proc";
import { downloadVerified, findBackups, type Downloaded } from "./restore";
import { describeS3Error, getJson, listKeys, putJson } from "./s3";
import type { DrillSettings, Engine } from "./settings";

/** What a drill's restore found in the throwaway server. */
export interface DrillRestore {
  /** Rows per table (`schema.table`) or documents per collection (`database.collection`). */
  counts: Record<string, number>;
  /** Bytes per schema (PostgreSQL) or per database (MongoDB), as the throwaway server reports them. */
  sizes: Record<string, number>;
  /** The throwaway server's version. */
  serverVersion: string | null;
  /**
   * Seconds from the server's start until the data was restored, without the counting and the
   * shutdown after it; when absent, the whole call is timed.
   */
  restoreSeconds?: number;
}

export interface DrillContext {
  /** A fresh private directory on the scratch volume; the server's files live under it and nothing is written elsewhere. */
  scratch: string;
  /** The environment the tools inherit (no secrets). */
  env: NodeJS.ProcessEnv;
  /** SIGTERM from ECS: the restore tool and the server are stopped, and the server's files removed. */
  stop: AbortSignal;
  /** Parallel restore jobs (pg_restore --jobs, mongorestore --numParallelCollections). */
  jobs: number;
}

/**
 * Restores a downloaded, verified backup into a throwaway server started under `ctx.scratch`, counts
 * what it holds, and stops the server and removes its files, whether the restore succeeded, failed or
 * was stopped.
 */
export type RestoreForDrill = (d: Downloaded, ctx: DrillContext) => Promise<DrillRestore>;

/** Linux's limit on a Unix socket's path (sun_path: 108 bytes with its NUL). */
const maxSocketPath = 107;

/** Refuses a throwaway server's socket path that does not fit in a Unix socket address, naming the fix. */
export function checkSocketPath(socket: string): void {
  if (Buffer.byteLength(socket) > maxSocketPath) {
    throw new Error(`the throwaway server's socket path ${socket} is longer than ${maxSocketPath} bytes: set TMPDIR to a shorter directory`);
  }
}

/**
 * Gives `paths` to the user a throwaway server runs as when the runner is root, and lets that user pass
 * through (not list) the drill's private scratch directory to reach them.
 */
export async function handToServerUser(user: LocalUser, scratch: string, paths: string[]): Promise<void> {
  for (const path of paths) await chown(path, user.uid, user.gid);
  await chmod(scratch, 0o711);
}

/** A drill's record, kept at drillKey(stage, target, drilledAt) whatever the outcome. */
export interface DrillRecord {
  formatVersion: 1;
  stage: string;
  target: string;
  engine: Engine;
  /** The backup drilled; null when the target had none. */
  backupKey: string | null;
  backupStartedAt: string | null;
  drilledAt: string;
  success: boolean;
  /** Why the drill failed, one sentence each; empty when it succeeded. */
  problems: string[];
  downloadSeconds: number | null;
  /** Download plus restore: the recovery time this backup gives (RTO). Null when it did not restore. */
  restoreSeconds: number | null;
  restoredRows: number | null;
  backupAgeHours: number | null;
  counts: Record<string, number>;
  sizes: Record<string, number>;
  serverVersion: string | null;
  /** The manifest's: whether the backup is one consistent point in time. */
  pointInTime: boolean | null;
}

/** What one drill found, before it becomes a record. */
export interface DrillOutcome {
  stage: string;
  target: string;
  engine: Engine;
  ref?: BackupRef;
  manifest?: Manifest;
  drilledAt: Date;
  downloadSeconds?: number;
  /** The restore alone (the engine's own measure, or the call's). */
  restoreOnlySeconds?: number;
  restore?: DrillRestore;
  problems: string[];
}

const round2 = (n: number) => Math.round(n * 100) / 100;

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** When the drilled backup started: its manifest's time, or its key's when the manifest was not read. */
function backupStartedAt(o: DrillOutcome): string | null {
  return o.manifest?.startedAt ?? o.ref?.time.toISOString() ?? null;
}

/** A drill's record: it succeeded when it restored and found nothing wrong. */
export function drillRecord(o: DrillOutcome): DrillRecord {
  const startedAt = backupStartedAt(o);
  const restored = o.restore !== undefined && o.downloadSeconds !== undefined && o.restoreOnlySeconds !== undefined;
  return {
    formatVersion: 1,
    stage: o.stage,
    target: o.target,
    engine: o.engine,
    backupKey: o.ref?.key ?? null,
    backupStartedAt: startedAt,
    drilledAt: o.drilledAt.toISOString(),
    success: restored && o.problems.length === 0,
    problems: o.problems,
    downloadSeconds: o.downloadSeconds === undefined ? null : round2(o.downloadSeconds),
    restoreSeconds: restored ? round2(o.downloadSeconds! + o.restoreOnlySeconds!) : null,
    restoredRows: o.restore ? sum(o.restore.counts) : null,
    backupAgeHours: startedAt === null ? null : round2((o.drilledAt.getTime() - new Date(startedAt).getTime()) / 3600_000),
    counts: o.restore?.counts ?? {},
    sizes: o.restore?.sizes ?? {},
    serverVersion: o.restore?.serverVersion ?? null,
    pointInTime: o.manifest?.pointInTime ?? null,
  };
}

/**
 * What vanished or shrank since the baseline (the previous successful drill): a table (collection)
 * the baseline had and this restore lacks, or one that lost more than `maxLossPercent` of its rows.
 * Growth and new tables are no problem.
 */
export function rowLossProblems(engine: Engine, baseline: Record<string, number>, counts: Record<string, number>, maxLossPercent: number): string[] {
  const kind = engine === "postgres" ? "table" : "collection";
  const problems: string[] = [];
  for (const [name, before] of Object.entries(baseline).sort(([a], [b]) => a.localeCompare(b))) {
    const now = counts[name];
    if (now === undefined) {
      problems.push(`${kind} ${name} is gone (the previous drill restored it with ${before} rows)`);
      continue;
    }
    const lostPercent = before > 0 ? ((before - now) / before) * 100 : 0;
    if (lostPercent > maxLossPercent) {
      problems.push(`${kind} ${name} lost ${round2(lostPercent)}% of its rows (${before} → ${now}), more than DRILL_MAX_ROW_LOSS_PERCENT=${maxLossPercent}`);
    }
  }
  return problems;
}

/**
 * Whether `record` is the baseline for a drill of a backup started at `backupStartedAt`: a successful
 * drill of that backup or an older one (a drill `--at` an older time is not compared with newer data).
 */
export function isBaseline(record: DrillRecord, backupStartedAt: string | null): boolean {
  if (!record.success || record.backupStartedAt === null) return false;
  return backupStartedAt === null || new Date(record.backupStartedAt).getTime() <= new Date(backupStartedAt).getTime();
}

/**
 * The newest drill record of a target (or of the stage, without one) that `accept`s, read newest first
 * (the keys' timestamps sort as text).
 */
export async function newestDrillRecord(
  client: S3Client,
  bucket: string,
  stage: string,
  target?: string,
  accept: (record: DrillRecord) => boolean = () => true,
): Promise<DrillRecord | undefined> {
  const keys = (await listKeys(client, bucket, drillsPrefix(stage, target))).filter((k) => k.endsWith(".json")).sort().reverse();
  for (const key of keys) {
    const record = await getJson<DrillRecord>(client, bucket, key);
    if (accept(record)) return record;
  }
  return undefined;
}

/** A target to drill: configured, or found in the bucket; `ref` is its backup, if it has one. */
export interface DrillTarget {
  engine: Engine;
  name: string;
  ref?: BackupRef;
}

/**
 * Which targets to drill: every configured one (one without a backup is a failed drill), or, where
 * none is configured, every target with a backup; `only` narrows it to one name.
 */
export function drillTargets(configured: { engine: Engine; name: string }[], latest: BackupRef[], only?: string): DrillTarget[] {
  const wanted = configured.length > 0 ? configured.map((t) => ({ engine: t.engine, name: t.name })) : latest.map((r) => ({ engine: r.engine, name: r.name }));
  return wanted
    .filter((t) => only === undefined || t.name === only)
    .map((t) => ({ ...t, ref: latest.find((r) => r.engine === t.engine && r.name === t.name) }));
}

export interface DrillRun {
  settings: DrillSettings;
  client: S3Client;
  /** Each engine's throwaway restore. */
  engines: Record<Engine, RestoreForDrill>;
  /** The environment the tools inherit (no secrets). */
  env: NodeJS.ProcessEnv;
  stop: AbortSignal;
  /** Only the backups at or before this time (`--at`). */
  at?: Date;
  /** Only this target (`--target`). */
  target?: string;
  /** Where each drill's private directory is made: the scratch volume (TMPDIR, or the system's temporary directory). */
  scratchRoot: string;
  /** The age identity file that decrypts encrypted backups (AGE_IDENTITY_FILE, or the verifier's AGE_IDENTITY). */
  identityFile?: string;
}

/** Restore jobs: the task's CPUs (the verifier task's 1 vCPU gives 1), at most 8. */
export function drillJobs(cpus = availableParallelism()): number {
  return Math.max(1, Math.min(cpus, 8));
}

const seconds = (since: number) => (Date.now() - since) / 1000;

/** Downloads, restores, counts and compares one target's backup; never throws. */
async function drillOne(t: DrillTarget, run: DrillRun): Promise<DrillOutcome> {
  const { settings, client, stop } = run;
  const outcome: DrillOutcome = { stage: settings.stage, target: t.name, engine: t.engine, ref: t.ref, drilledAt: new Date(), problems: [] };
  if (!t.ref) {
    const when = run.at ? ` at or before ${run.at.toISOString()}` : "";
    outcome.problems.push(`no backup of ${t.engine} target '${t.name}'${when} under s3://${settings.s3.bucket}/${settings.stage}/${t.engine}/${t.name}/`);
    return outcome;
  }
  if (stop.aborted) {
    outcome.problems.push(`stopped by ${String(stop.reason)} before it started`);
    return outcome;
  }
  log("info", "drill started", { target: t.name, engine: t.engine, key: t.ref.key });
  let scratch: string | undefined;
  try {
    scratch = await mkdtemp(join(run.scratchRoot, "db-backup-drill-"));
    const downloadStarted = Date.now();
    const d = await downloadVerified(client, settings.s3.bucket, t.ref, { dir: scratch, stop, progressSeconds: settings.progressSeconds, identityFile: run.identityFile, env: run.env });
    outcome.manifest = d.manifest;
    outcome.downloadSeconds = seconds(downloadStarted);
    try {
      const restoreStarted = Date.now();
      const restore = await run.engines[t.engine](d, { scratch, env: run.env, stop, jobs: drillJobs() });
      outcome.restoreOnlySeconds = restore.restoreSeconds ?? seconds(restoreStarted);
      outcome.restore = restore;
    } finally {
      await d.remove();
    }
    const startedAt = backupStartedAt(outcome);
    const baseline = await newestDrillRecord(client, settings.s3.bucket, settings.stage, t.name, (r) => isBaseline(r, startedAt));
    if (baseline) outcome.problems.push(...rowLossProblems(t.engine, baseline.counts, outcome.restore.counts, settings.maxRowLossPercent));
  } catch (err) {
    outcome.problems.push(stop.aborted ? `stopped by ${String(stop.reason)} before it finished` : (err as Error).message);
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
  return outcome;
}

/**
 * Drills each target in turn (one throwaway server at a time), writes each drill's record and logs
 * its summary line. A record that cannot be written fails the drill: the next one would have nothing
 * to compare with.
 */
export async function runDrills(run: DrillRun): Promise<DrillRecord[]> {
  const { settings, client } = run;
  const latest = latestPerTarget(await findBackups(client, settings.s3.bucket, settings.stage), run.at);
  const targets = drillTargets(settings.targets, latest, run.target);
  if (targets.length === 0) {
    log("error", "no backup found to drill", { stage: settings.stage, bucket: settings.s3.bucket, target: run.target ?? null });
    return [];
  }
  log("info", "drill run started", { stage: settings.stage, bucket: settings.s3.bucket, targets: targets.map((t) => `${t.engine}/${t.name}`) });
  const records: DrillRecord[] = [];
  for (const t of targets) {
    const record = drillRecord(await drillOne(t, run));
    const key = drillKey(settings.stage, t.name, new Date(record.drilledAt));
    try {
      await putJson(client, settings.s3.bucket, key, record);
    } catch (err) {
      record.success = false;
      record.problems.push(`the drill's record was not written: ${describeS3Error(err, settings.s3.bucket, key, "write")}`);
    }
    records.push(record);
    logDrillMetrics(
      record.success ? "summary: drill passed" : "summary: drill FAILED",
      {
        stage: settings.stage,
        target: t.name,
        engine: t.engine,
        success: record.success,
        restoreSeconds: record.restoreSeconds ?? undefined,
        restoredRows: record.restoredRows ?? undefined,
        backupAgeHours: record.backupAgeHours ?? undefined,
      },
      { key: record.backupKey, record: key, downloadSeconds: record.downloadSeconds, ...(record.success ? {} : { problems: record.problems }) },
    );
  }
  const failed = records.filter((r) => !r.success).length;
  const stoppedBy = run.stop.aborted ? { stoppedBy: String(run.stop.reason) } : {};
  log(failed ? "error" : "info", "drill run finished", { stage: settings.stage, succeeded: records.length - failed, failed, ...stoppedBy });
  return records;
}
