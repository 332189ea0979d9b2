/**
 * The wire format between the stack and the runner, which meet only in the container's environment: the
 * variables the stack sets, the shape of a target inside BACKUP_TARGETS, and the rules a value obeys.
 * The stack (components/) writes it and the runner (settings.ts) reads it; both import this module and
 * nothing else of each other, so a field renamed here, or on one side only, fails the type check.
 * Each side words its own errors around these rules, naming its own key (db-backup:targets[0] in the
 * stack's config, BACKUP_TARGETS[0].port in the runner's environment).
 */

/** The variables the stack sets on the container; the secrets come beside them (secretEnvName). */
export interface StackEnvironment {
  /** First part of every backup's key (dev, uat, prod). */
  STAGE: string;
  /** The bucket backups are written to. */
  S3_BUCKET: string;
  AWS_REGION: string;
  /** `JSON.stringify(Target[])`. */
  BACKUP_TARGETS: string;
  /** IANA zone of the local time written beside the UTC time in manifests. */
  BACKUP_TIMEZONE: string;
  /** A target still running after this many seconds is stopped and reported as failed. */
  BACKUP_TARGET_TIMEOUT_SECONDS: string;
  /**
   * age public keys (`age1…`), one per line: each dump is encrypted for them in the task before it is
   * uploaded. Public, not secret; absent when the stage does not encrypt.
   */
  BACKUP_AGE_RECIPIENTS?: string;
  /** The copy of the stage's backups in another region (replicaRegion), which `--replica` reads; absent without one. */
  BACKUP_REPLICA_BUCKET?: string;
  /** That copy's region: S3 and its KMS key answer there. */
  BACKUP_REPLICA_REGION?: string;
}

/**
 * The verifier task's variables: the stack's, without any target's secret (a drill restores into a
 * server of its own and never connects to the source), and the drill's threshold.
 */
export interface DrillEnvironment extends StackEnvironment {
  /** A drill fails when a table or collection lost more than this percentage of its rows since the previous drill. */
  DRILL_MAX_ROW_LOSS_PERCENT: string;
}

/**
 * The runner's metrics, as CloudWatch extracts them from its summary lines (embedded metric format):
 * the namespace, the dimensions every metric is published under, and the metric names. The stack's
 * alarms and dashboard read them from here, so a metric the runner renames or stops writing fails
 * the type check or a test on the stack's side instead of leaving an alarm watching nothing.
 */
export const metricNamespace = "DbBackup";
export const metricDimensions = ["Stage", "Target"] as const;
/** One backup of one target: 1 stored / 0 failed; the stored dump's size; the time it took. */
export const backupMetrics = { success: "BackupSuccess", bytes: "BackupBytes", durationSeconds: "BackupDurationSeconds" } as const;
/**
 * One restore drill of one target: 1 passed / 0 failed; download + restore seconds (the RTO); the rows
 * (documents) restored; how old the drilled backup was.
 */
export const drillMetrics = { success: "DrillSuccess", restoreSeconds: "RestoreSeconds", restoredRows: "RestoredRows", backupAgeHours: "BackupAgeHours" } as const;

export type Engine = "postgres" | "mongodb";

/** libpq's sslmode values. */
export const sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof sslModes)[number];

export interface PostgresTarget {
  engine: "postgres";
  /** Names the backups in S3 (`<stage>/postgres/<name>/…`) and in logs; the runner defaults it to `database`. */
  name: string;
  host: string;
  /** The runner defaults it to 5432. */
  port: number;
  database: string;
  user: string;
  /** The environment variable that holds the password (never the password itself). */
  passwordEnv: string;
  /** libpq `options`, decoded, e.g. `endpoint=ep-aged-morning-26453078` for Neon. */
  options?: string;
  /** One of sslModes; libpq's own default (prefer) when unset. */
  sslmode?: string;
  /**
   * libpq sslrootcert: the CA certificate file the server's certificate is verified against, or
   * "system" (libpq 16+). With verify-ca or verify-full and none named, the runner chooses (pgRootCert).
   */
  sslrootcert?: string;
  /** pg_dump --compress value; chosen from pg_dump's version when unset. */
  compression?: string;
}

export interface MongoTarget {
  engine: "mongodb";
  /** The runner defaults it to `database`, or "mongodb". */
  name: string;
  /** The environment variable that holds the connection string. */
  uriEnv: string;
  /** Dump only this database; every database the user can read when unset. */
  database?: string;
  /**
   * Whether a whole-deployment dump (no `database`) is one point in time: `mongodump --oplog`, restored
   * with `mongorestore --oplogReplay`. Default true; false backs up a standalone server, a sharded
   * cluster's mongos, or a user without the `backup` role, at the price of consistency.
   */
  pointInTime?: boolean;
}

export type Target = PostgresTarget | MongoTarget;

/**
 * Whether a MongoDB target is dumped with `--oplog`: by default, where it applies. mongodump copies
 * the oplog only in a dump of the whole deployment ("--oplog mode only supported on full dumps"), so
 * never with `database` (mongodump, --oplog: https://www.mongodb.com/docs/database-tools/mongodump/).
 */
export function mongoPointInTime(target: Pick<MongoTarget, "database" | "pointInTime">): boolean {
  return target.database === undefined && target.pointInTime !== false;
}

/** What is wrong with a MongoDB target's pointInTime, if anything: true with `database`, which --oplog cannot do. */
export function mongoPointInTimeProblem(target: Pick<MongoTarget, "database" | "pointInTime">): string | undefined {
  return target.pointInTime === true && target.database !== undefined
    ? `pointInTime needs a dump of the whole deployment (mongodump --oplog cannot dump one database): remove "database" to back up every database at one point in time, or remove pointInTime`
    : undefined;
}

/** The variable that carries a target's secret into the container (from `secrets`, never `environment`). */
export function secretEnvName(target: { engine: Engine; name: string }): string {
  const suffix = target.name.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  return target.engine === "postgres" ? `PG_PASSWORD_${suffix}` : `MONGO_URI_${suffix}`;
}

/**
 * An age X25519 recipient: "age1" and 58 characters of Bech32's alphabet (age-encryption.org/v1, "The
 * X25519 recipient type"). Identities (AGE-SECRET-KEY-1…) are secret and never go here.
 */
export const ageRecipientPattern = /^age1[02-9ac-hj-np-z]{58}$/;

/**
 * The variable the verifier task's age identity arrives in, from `secrets` (an SSM SecureString only its
 * execution role may read), never `environment`; the runner hands it to age in a private file.
 */
export const ageIdentitySecretEnv = "AGE_IDENTITY";

/** A target's name and the stage: both become part of S3 keys. */
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const defaultPort = 5432;

export function isPort(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

export function isSslMode(value: string): value is SslMode {
  return (sslModes as readonly string[]).includes(value);
}

/** What pg_dump --compress takes: a level, none, or method[:level]; `pgCompressionSyntax` says it in words. */
export const pgCompressionPattern = /^(none|\d|(gzip|lz4|zstd)(:\d{1,2})?)$/;
export const pgCompressionSyntax = "0-9, none, gzip[:N], lz4[:N] or zstd[:N]";

/**
 * What is wrong with a target's sslrootcert, if anything: it is an absolute path (the runner's working
 * directory is no place to look for a CA), or "system", which libpq accepts only with sslmode
 * verify-full ("any weaker setting will result in an error": libpq, sslrootcert).
 */
export function rootCertProblem(value: string, sslmode: string | undefined): string | undefined {
  if (value === "system") {
    return sslmode !== undefined && sslmode !== "verify-full"
      ? `'system' needs sslmode 'verify-full' (libpq refuses the system CA bundle with '${sslmode}'): set sslmode to verify-full`
      : undefined;
  }
  return value.startsWith("/") ? undefined : `'${value}' must be the absolute path of the CA certificate that signed the server's certificate, or "system"`;
}
