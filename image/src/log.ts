/**
 * One JSON object per line on stdout (CloudWatch Logs parses each as an event), with every known
 * secret and every credential embedded in a URI replaced before the line is written.
 */

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

/** Sends log lines elsewhere (tests capture them); returns a function that restores the previous sink. */
export function setLogSink(next: (line: string) => void): () => void {
  const previous = sink;
  sink = next;
  return () => {
    sink = previous;
  };
}

export function log(level: Level, msg: string, fields: Fields = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
  sink(redact(line));
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
 * A log line in CloudWatch embedded metric format: CloudWatch turns it into the metrics
 * DbBackup/BackupSuccess, BackupBytes and BackupDurationSeconds per stage and target.
 */
export function logMetrics(msg: string, m: TargetMetrics, fields: Fields = {}): void {
  log(m.success ? "info" : "error", msg, {
    ...fields,
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: "DbBackup",
          Dimensions: [["Stage", "Target"]],
          Metrics: [
            { Name: "BackupSuccess", Unit: "Count" },
            { Name: "BackupBytes", Unit: "Bytes" },
            { Name: "BackupDurationSeconds", Unit: "Seconds" },
          ],
        },
      ],
    },
    Stage: m.stage,
    Target: m.target,
    engine: m.engine,
    target: m.target,
    BackupSuccess: m.success ? 1 : 0,
    BackupBytes: m.bytes,
    BackupDurationSeconds: m.durationSeconds,
  });
}
