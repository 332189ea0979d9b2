/**
 * One JSON object per line on stdout (CloudWatch Logs parses each as an event), with every known
 * secret and every credential embedded in a URI replaced before the line is written. On a terminal
 * (useTerminal) the same records are written as readable lines instead, above a live display of the
 * progress of what is running; redacted the same way.
 */

import { backupMetrics, drillMetrics, metricDimensions, metricNamespace } from "./contract";
import { LiveDisplay } from "./terminal";

const secrets = new Set<string>();

/** Registers a value that must never appear in a log line or error message. */
export function addSecret(value: string | undefined): void {
  // Very short values would redact ordinary words; nobody uses a 3-character password in production.
  if (value && value.length >= 4) secrets.add(value);
}

const uriCredentials = /([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;
const passwordAssignment = /(password\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi;

/** Removes registered secrets, user:password@ URI credentials and password=… assignments. */
export function redact(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join("***");
  }
  return out.replace(uriCredentials, "$1$2:***@").replace(passwordAssignment, "$1***");
}

export type Level = "debug" | "info" | "warn" | "error";

export type Fields = Record<string, unknown>;

let sink: (line: string) => void = (line) => process.stdout.write(line + "\n");
/** Set by useTerminal: records go to it as readable lines, progress to its live lines. */
let terminal: LiveDisplay | undefined;

/** Sends log lines elsewhere (tests capture them); returns a function that restores the previous sink. */
export function setLogSink(next: (line: string) => void): () => void {
  const previous = sink;
  sink = next;
  return () => {
    sink = previous;
  };
}

/**
 * Writes readable lines and a live progress display to `stream` (a terminal) instead of JSON lines;
 * returns a function that goes back to JSON.
 */
export function useTerminal(stream: NodeJS.WriteStream): () => void {
  const previous = terminal;
  terminal = new LiveDisplay((text) => stream.write(text), () => stream.columns);
  return () => {
    terminal = previous;
  };
}

/** Whether progress goes to a live display (a terminal), which wants it often, rather than to the log. */
export function hasLiveDisplay(): boolean {
  return terminal !== undefined;
}

export function log(level: Level, msg: string, fields: Fields = {}): void {
  const record = { time: new Date().toISOString(), level, msg, ...fields };
  if (terminal) terminal.print(readableLine(record));
  // Each string before it is quoted too: JSON escapes a secret's quote or backslash, and the escaped
  // form no longer matches the secret.
  else sink(redact(JSON.stringify(record, (_key, value: unknown) => (typeof value === "string" ? redact(value) : value))));
}

/**
 * Progress of a running transfer: on a terminal, the live line `id` is redrawn with it; elsewhere it
 * is an info line of its own in the log.
 */
export function logProgress(id: string, msg: string, fields: Fields): void {
  if (terminal) terminal.set(id, progressStatus(fields));
  else log("info", msg, fields);
}

/** The transfer `id` has ended: its live line goes (nothing to do in the JSON log). */
export function endProgress(id: string): void {
  terminal?.delete(id);
}

/** Fields the readable form leaves out: the line's own columns, and the metric format's copies of them. */
const notShown = new Set(["time", "level", "msg", "target", "_aws", "Stage", "Target"]);

/** Control characters (a tool's stderr may hold escape sequences) as JSON writes them, so a value cannot move the cursor. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** 1536 → "1.5KiB": what a person reads, where the JSON keeps the exact count. */
export function humanBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes}B` : `${value.toFixed(1)}${units[unit]}`;
}

function readableValue(key: string, value: unknown): string {
  if (typeof value === "number" && /bytes$/i.test(key)) return humanBytes(value);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) value = value.join(",");
  const text = redact(typeof value === "string" ? value : JSON.stringify(value));
  // Quoted (JSON's escapes) when it holds a space, a quote or a control character, so each k=v stays one token.
  return /^[^\s"=\u0000-\u001f\u007f-\u009f]+$/.test(text) ? text : JSON.stringify(text);
}

/**
 * A log record as a person reads it on a terminal:
 * `12:03:04 info  app  backup started  key=dev/postgres/app/…`. The time is local (`timeZone` for
 * tests); `bytes` fields are in binary units; the metric format's bookkeeping is left out. Redacted as
 * the JSON form is.
 */
export function readableLine(record: Record<string, unknown>, timeZone?: string): string {
  const time = new Date(String(record.time));
  const clock = Number.isNaN(time.getTime())
    ? "--:--:--"
    : new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone }).format(time);
  const fields = Object.entries(record)
    .filter(([key, value]) => !notShown.has(key) && value !== undefined && value !== null)
    .map(([key, value]) => `${key}=${readableValue(key, value)}`);
  const target = typeof record.target === "string" ? `${record.target}  ` : "";
  const level = String(record.level ?? "").padEnd(5);
  return redact(printable(`${clock} ${level} ${target}${record.msg ?? ""}${fields.length ? "  " + fields.join(" ") : ""}`));
}

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return (hms[0] ? hms : hms.slice(1)).map((n, i) => (i ? String(n).padStart(2, "0") : String(n))).join(":");
}

/**
 * A progress record as one live line: `app  postgres  1.2GiB  23.4 MiB/s (now 25.1)  75 parts sent  12:34`,
 * or for a download `app  download  45.0%  1.2GiB of 2.6GiB  30.0 MiB/s (now 28.3)  0:40`.
 */
export function progressStatus(fields: Fields): string {
  const n = (key: string) => (typeof fields[key] === "number" ? (fields[key] as number) : 0);
  const rate = `${n("mibPerSecond").toFixed(1)} MiB/s (now ${n("intervalMibPerSecond").toFixed(1)})`;
  const parts =
    typeof fields.totalBytes === "number"
      ? ["download", `${n("percent").toFixed(1)}%`, `${humanBytes(n("bytes"))} of ${humanBytes(fields.totalBytes)}`, rate]
      : [String(fields.engine ?? "backup"), humanBytes(n("bytes")), rate, `${n("partsSent")} part${n("partsSent") === 1 ? "" : "s"} sent`];
  return redact(printable([String(fields.target ?? ""), ...parts, clock(n("elapsedSeconds"))].join("  ")));
}

/** One value of an embedded-metric line: its name, CloudWatch unit and value. */
interface Metric {
  name: string;
  unit: "Count" | "Bytes" | "Seconds" | "None";
  value: number;
}

/**
 * A log line in CloudWatch embedded metric format: CloudWatch turns each of `metrics` into the metric
 * DbBackup/<name> per stage and target, which the alarms and the dashboard read. A metric without a
 * value (a failed drill has no RTO) is left out of the line rather than sent as 0.
 */
function logMetricLine(msg: string, success: boolean, stage: string, target: string, engine: string, metrics: (Metric | undefined)[], fields: Fields): void {
  const present = metrics.filter((m): m is Metric => m !== undefined);
  log(success ? "info" : "error", msg, {
    ...fields,
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [{ Namespace: metricNamespace, Dimensions: [[...metricDimensions]], Metrics: present.map((m) => ({ Name: m.name, Unit: m.unit })) }],
    },
    Stage: stage,
    Target: target,
    engine,
    target,
    ...Object.fromEntries(present.map((m) => [m.name, m.value])),
  });
}

export interface TargetMetrics {
  stage: string;
  target: string;
  engine: string;
  success: boolean;
  bytes: number;
  durationSeconds: number;
}

/**
 * A backup's summary line: DbBackup/BackupSuccess, BackupBytes and BackupDurationSeconds per stage and
 * target (contract.ts). A failed backup declares no BackupBytes metric: it stored nothing, and a 0 among
 * the sizes would both trip the size-anomaly alarm (components/alerts.ts) and teach its model that 0 is an
 * ordinary size. The line still carries the field, for the reader. Only the members a directive names
 * become metrics ("Specification: Embedded metric format", CloudWatch User Guide).
 */
export function logMetrics(msg: string, m: TargetMetrics, fields: Fields = {}): void {
  logMetricLine(msg, m.success, m.stage, m.target, m.engine, [
    { name: backupMetrics.success, unit: "Count", value: m.success ? 1 : 0 },
    m.success ? { name: backupMetrics.bytes, unit: "Bytes", value: m.bytes } : undefined,
    { name: backupMetrics.durationSeconds, unit: "Seconds", value: m.durationSeconds },
  ], m.success ? fields : { ...fields, [backupMetrics.bytes]: m.bytes });
}

export interface DrillMetrics {
  stage: string;
  target: string;
  engine: string;
  success: boolean;
  /** Download plus restore: the recovery time a restore of this backup takes (RTO). Only for a drill that restored. */
  restoreSeconds?: number;
  /** Rows (documents) in the restored copy. Only for a drill that restored. */
  restoredRows?: number;
  /** How old the drilled backup was; absent when there was no backup to drill. */
  backupAgeHours?: number;
}

/** A drill's summary line: DbBackup/DrillSuccess, RestoreSeconds, RestoredRows and BackupAgeHours per stage and target. */
export function logDrillMetrics(msg: string, m: DrillMetrics, fields: Fields = {}): void {
  const optional = (name: string, unit: Metric["unit"], value: number | undefined): Metric | undefined => (value === undefined ? undefined : { name, unit, value });
  logMetricLine(msg, m.success, m.stage, m.target, m.engine, [
    { name: drillMetrics.success, unit: "Count", value: m.success ? 1 : 0 },
    optional(drillMetrics.restoreSeconds, "Seconds", m.restoreSeconds),
    optional(drillMetrics.restoredRows, "Count", m.restoredRows),
    optional(drillMetrics.backupAgeHours, "None", m.backupAgeHours),
  ], fields);
}
