/** One backup pass: every target dumped straight into S3, each independent of the others. */

import { spawn } from "node:child_process";
import type { S3Client } from "@aws-sdk/client-s3";
import { explainDumpError, planDump, type DumpPlan } from "./engines";
import { ageCommand, startEncryptor } from "./encryption";
import { backupKey, localTime, manifestKey } from "./keys";
import { log, logMetrics } from "./log";
import { describeExit, exitOf, StderrTail, succeeded, terminate, type Exit } from "./proc";
import { trackProgress } from "./progress";
import { describeS3Error, gatedUpload, Meter, putJson } from "./s3";
import type { RunnerSettings, Target } from "./settings";
import type { UploadProgress } from "./upload";

/** Written last, next to the backup: its presence is what says the backup is complete. */
export interface Manifest {
  formatVersion: 1;
  stage: string;
  target: string;
  engine: Target["engine"];
  database: string | null;
  key: string;
  bytes: number;
  sha256: string;
  tool: string | null;
  serverVersion: string | null;
  compression: string | null;
  /**
   * Set when the stored object is the dump encrypted with age for these public keys (its key ends in
   * .age); `bytes` and `sha256` are then the ciphertext's, what S3 holds. Absent: stored as dumped.
   */
  encryption?: { tool: "age"; recipients: string[] };
  /**
   * Whether the backup is one consistent point in time (pg_dump's snapshot; mongodump --oplog, restored
   * with --oplogReplay). Absent in manifests written before it was recorded.
   */
  pointInTime?: boolean;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  startedAtLocal?: string;
}

export interface TargetResult {
  target: Target;
  ok: boolean;
  key?: string;
  bytes: number;
  durationSeconds: number;
  error?: string;
}

function seconds(from: Date, to: Date): number {
  return Math.round((to.getTime() - from.getTime()) / 10) / 100;
}

/** Why a dump did not reach S3; at most one is set. */
interface DumpFailure {
  /** The dump tool, or age encrypting its output, failed. */
  dump?: { command: string; exit: Exit; stderr: string };
  upload?: unknown;
  timedOut?: boolean;
  /** The run was stopped (SIGTERM, SIGINT) while the tool still ran: the signal's name. */
  stoppedBy?: string;
}

/**
 * Streams the tool's stdout through a SHA-256 into a multipart upload that is only let finish once
 * the tool has exited 0. Any failure, the tool's or the upload's, leaves nothing at the key; so does
 * `stop` aborting while the tool runs: the tool is terminated and the parts on their way cancelled.
 * A stop that comes once the tool has exited 0 lets the upload finish: the dump is whole.
 * While it runs, a progress line is logged every BACKUP_PROGRESS_SECONDS.
 */
async function dumpToS3(
  plan: DumpPlan,
  target: Target,
  getClient: () => S3Client,
  settings: RunnerSettings,
  key: string,
  stop: AbortSignal,
): Promise<{ meter: Meter; dumpSeconds: number; failure?: DumpFailure }> {
  const meter = new Meter();
  const sent: UploadProgress = { partsSent: 0 };
  const endProgress = trackProgress({
    msg: "backup progress",
    fields: { target: target.name, engine: target.engine },
    intervalSeconds: settings.progressSeconds,
    bytes: () => meter.bytes,
    extra: () => ({ partsSent: sent.partsSent }),
  });
  try {
    return await streamDump(plan, getClient, settings, key, stop, meter, sent);
  } finally {
    endProgress();
  }
}

/** dumpToS3's work, counting into the meter and part count its progress lines read. */
async function streamDump(
  plan: DumpPlan,
  getClient: () => S3Client,
  settings: RunnerSettings,
  key: string,
  stop: AbortSignal,
  meter: Meter,
  sent: UploadProgress,
): Promise<{ meter: Meter; dumpSeconds: number; failure?: DumpFailure }> {
  const started = Date.now();
  const [file, ...argv] = [...plan.launcher, plan.command, ...plan.args];
  const child = spawn(file, argv, { env: plan.env, stdio: ["ignore", "pipe", "pipe"] });
  const stderr = new StderrTail();
  child.stderr?.on("data", (d: Buffer) => stderr.push(d));
  // With recipients, age reads the dump and its ciphertext is what is hashed and uploaded.
  const encryptor = settings.ageRecipients.length > 0 && child.stdout ? startEncryptor(child.stdout, settings.ageRecipients, plan.env) : undefined;
  // Its only errors are the ones destroy() gives it below; when no upload took it, nothing else listens.
  meter.on("error", () => undefined);
  (encryptor?.output ?? child.stdout)?.pipe(meter, { end: false });

  let uploadError: unknown;
  let exited = false;
  /** Set when the upload failed while the tool still ran, so the tool's end is our doing, not its fault. */
  let stoppedForUpload = false;
  let stoppedBy: string | undefined;
  const cancelParts = new AbortController();
  const onStop = () => {
    if (exited) return;
    stoppedBy = String(stop.reason);
    cancelParts.abort();
    terminate(child);
  };
  // An encryptor that fails leaves the tool writing into a pipe nobody reads: the tool is stopped too.
  encryptor?.process.once("exit", (code) => {
    if (code !== 0 && !exited) terminate(child);
  });
  // The client (and the SDK under it) only now: its loading overlaps the tool's start. A client that
  // cannot be made fails the upload like any S3 error, so the tool is stopped instead of left blocked.
  const upload = (async () => gatedUpload(getClient(), settings.s3, key, meter, plan.contentType, cancelParts.signal, sent))().catch((err: unknown) => {
    uploadError = err;
    if (exited) return;
    stoppedForUpload = true;
    child.kill("SIGTERM"); // nothing is taking the dump any more
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    terminate(child, 10_000);
  }, settings.targetTimeoutSeconds * 1000);
  if (stop.aborted) onStop();
  else stop.addEventListener("abort", onStop, { once: true });

  const exit = await exitOf(child);
  // age ends once the tool's output has: it has seen all of it, or the tool failed and it is not used.
  const encryptorExit = await encryptor?.exited;
  exited = true;
  stop.removeEventListener("abort", onStop);
  const dumpSeconds = (Date.now() - started) / 1000;
  clearTimeout(timer);
  const encrypted = encryptorExit === undefined || succeeded(encryptorExit);
  const dumpOk = succeeded(exit) && encrypted && !timedOut && stoppedBy === undefined;
  if (dumpOk && uploadError === undefined) meter.end();
  else meter.destroy(new Error(stoppedBy ? `stopped by ${stoppedBy}` : describeExit(plan.command, exit)));
  await upload;

  if (stoppedBy) return { meter, dumpSeconds, failure: { stoppedBy } };
  if (timedOut) return { meter, dumpSeconds, failure: { timedOut } };
  if (stoppedForUpload) return { meter, dumpSeconds, failure: { upload: uploadError } };
  // age failing stops the tool (above), so its failure is the one to report.
  if (!encrypted) return { meter, dumpSeconds, failure: { dump: { command: ageCommand, exit: encryptorExit!, stderr: encryptor!.stderr.toString() } } };
  if (!succeeded(exit)) return { meter, dumpSeconds, failure: { dump: { command: plan.command, exit, stderr: stderr.toString() } } };
  if (uploadError !== undefined) return { meter, dumpSeconds, failure: { upload: uploadError } };
  return { meter, dumpSeconds };
}

/** A signal that is never aborted: for callers that have no way to stop a run. */
const neverStopped = new AbortController().signal;

/**
 * Dumps one target into S3 and writes its manifest. When `stop` is aborted (cli.ts: SIGTERM or
 * SIGINT) before the dump has ended, the tool is terminated, the upload aborted, and the target
 * reported as stopped; a target not yet started is not started.
 */
export async function backupTarget(
  target: Target,
  settings: RunnerSettings,
  getClient: () => S3Client,
  base: NodeJS.ProcessEnv,
  secrets: NodeJS.ProcessEnv,
  stop: AbortSignal = neverStopped,
): Promise<TargetResult> {
  const started = new Date();
  const key = backupKey(settings.stage, target.engine, target.name, started, settings.ageRecipients.length > 0);
  const fail = (error: string): TargetResult => {
    const result = { target, ok: false, bytes: 0, durationSeconds: seconds(started, new Date()), error };
    log("error", "backup failed", { target: target.name, engine: target.engine, error });
    return result;
  };
  const stopped = (): TargetResult => {
    const signal = String(stop.reason);
    log("error", "backup stopped by a signal", { target: target.name, engine: target.engine, signal, key });
    return { target, ok: false, bytes: 0, durationSeconds: seconds(started, new Date()), error: `stopped by ${signal} before it was stored` };
  };
  if (stop.aborted) return stopped();
  log("info", "backup started", { target: target.name, engine: target.engine, key });

  let plan: DumpPlan;
  try {
    plan = await planDump(target, base, secrets, stop);
  } catch (err) {
    // A connection check or version query cut short by the stop fails too; the stop is what to report.
    return stop.aborted ? stopped() : fail((err as Error).message);
  }
  try {
    if (stop.aborted) return stopped();
    const { meter, dumpSeconds, failure } = await dumpToS3(plan, target, getClient, settings, key, stop);
    if (failure?.stoppedBy) return stopped();
    if (failure?.timedOut) return fail(`${plan.command} did not finish within BACKUP_TARGET_TIMEOUT_SECONDS=${settings.targetTimeoutSeconds}`);
    if (failure?.dump) {
      const { command, exit, stderr } = failure.dump;
      const explained = command === plan.command ? explainDumpError(target, stderr) : undefined;
      return fail([explained, describeExit(command, exit), stderr && `stderr: ${stderr}`].filter(Boolean).join("; "));
    }
    if (failure?.upload !== undefined) return fail(describeS3Error(failure.upload, settings.s3.bucket, key, "write"));

    const finished = new Date();
    const manifest: Manifest = {
      formatVersion: 1,
      stage: settings.stage,
      target: target.name,
      engine: target.engine,
      database: target.database ?? null,
      key,
      bytes: meter.bytes,
      sha256: meter.sha256(),
      tool: plan.toolVersion,
      serverVersion: plan.serverVersion,
      compression: plan.compression,
      ...(settings.ageRecipients.length > 0 ? { encryption: { tool: "age" as const, recipients: settings.ageRecipients } } : {}),
      pointInTime: plan.pointInTime,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationSeconds: seconds(started, finished),
      ...(settings.timeZone ? { startedAtLocal: localTime(started, settings.timeZone) } : {}),
    };
    try {
      await putJson(getClient(), settings.s3.bucket, manifestKey(key), manifest);
    } catch (err) {
      return fail(`the dump was stored but its manifest was not, so it does not count as a backup: ${describeS3Error(err, settings.s3.bucket, manifestKey(key), "write")}`);
    }
    // dumpSeconds against durationSeconds shows how much of the upload the dump did not hide.
    log("info", "backup stored", { target: target.name, engine: target.engine, key, bytes: meter.bytes, sha256: manifest.sha256, dumpSeconds, durationSeconds: manifest.durationSeconds });
    return { target, ok: true, key, bytes: meter.bytes, durationSeconds: manifest.durationSeconds };
  } finally {
    await plan.cleanup();
  }
}

/** Runs `work` over `items` with at most `limit` at once, keeping the order of results. */
export async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  });
  await Promise.all(lanes);
  return results;
}

/**
 * Backs up every target, each independent of the others, and logs a summary line (with metrics) per
 * target. `getClient` is called once a dump tool is running, not before (sdk.ts). After `stop` is
 * aborted, the targets not yet stored fail as stopped, and their summary lines are written as for
 * any failed target, so the metrics record the run.
 */
export async function runBackups(
  settings: RunnerSettings,
  getClient: () => S3Client,
  base: NodeJS.ProcessEnv,
  secrets: NodeJS.ProcessEnv,
  stop: AbortSignal = neverStopped,
): Promise<TargetResult[]> {
  log("info", "backup run started", { stage: settings.stage, bucket: settings.s3.bucket, targets: settings.targets.map((t) => `${t.engine}/${t.name}`) });
  const results = await mapLimited(settings.targets, settings.concurrency, (t) => backupTarget(t, settings, getClient, base, secrets, stop));
  for (const r of results) {
    logMetrics(r.ok ? "summary: backup complete" : "summary: backup FAILED", {
      stage: settings.stage,
      target: r.target.name,
      engine: r.target.engine,
      success: r.ok,
      bytes: r.bytes,
      durationSeconds: r.durationSeconds,
    }, r.ok ? { key: r.key } : { error: r.error });
  }
  const failed = results.filter((r) => !r.ok).length;
  const stoppedBy = stop.aborted ? { stoppedBy: String(stop.reason) } : {};
  log(failed ? "error" : "info", "backup run finished", { stage: settings.stage, succeeded: results.length - failed, failed, ...stoppedBy });
  return results;
}
