/**
 * The runner's whole interface is its environment. This module turns an environment into validated
 * settings, without touching anything else, so every rule here is tested directly. What the stack sets
 * (the variables, the targets' shape and rules) is the contract's (contract.ts); the blog's variables
 * and the local conveniences are the runner's own.
 */

import { tmpdir } from "node:os";
import {
  ageIdentitySecretEnv,
  ageRecipientPattern,
  defaultPort,
  envNamePattern,
  isPort,
  isSslMode,
  mongoPointInTimeProblem,
  namePattern,
  pgCompressionPattern,
  pgCompressionSyntax,
  rootCertProblem,
  sslModes,
  type MongoTarget,
  type PostgresTarget,
  type StackEnvironment,
  type DrillEnvironment,
  type Target,
} from "./contract";

export type { Engine, MongoTarget, PostgresTarget, Target } from "./contract";

export interface S3Settings {
  bucket: string;
  endpoint?: string;
  forcePathStyle: boolean;
  region?: string;
  partSizeBytes: number;
  /** Static keys from the environment given to the runner; the SDK's default chain when unset. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface RunnerSettings {
  stage: string;
  s3: S3Settings;
  targets: Target[];
  /** How many targets are dumped at once; all of them by default. */
  concurrency: number;
  /** A target still running after this long is stopped and reported as failed. */
  targetTimeoutSeconds: number;
  /** IANA zone for the local time written beside the UTC time in manifests (the blog used UTC+8). */
  timeZone?: string;
  /** How often a running target logs a progress line (BACKUP_PROGRESS_SECONDS, default 60). */
  progressSeconds: number;
  /** age public keys each dump is encrypted for before it leaves the runner (BACKUP_AGE_RECIPIENTS); none: stored as dumped. */
  ageRecipients: string[];
}

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettingsError";
  }
}

type Env = Record<string, string | undefined>;
/**
 * Whether a target's secret variable must be set: a backup needs it; a restore may bring its own
 * (RESTORE_PG_PASSWORD, RESTORE_MONGO_URI) and checks that one of the two is there (restoreTarget).
 */
export type Secrets = "required" | "optional";
/** A variable the stack sets: `"STAGE" satisfies FromStack` fails the type check if the contract renames it. */
type FromStack = keyof StackEnvironment;
/** A BACKUP_TARGETS entry as parsed JSON: only the contract's field names can be read from it. */
type Fields<T> = { [K in keyof T]?: unknown };

function nonEmpty(env: Env, key: string): string | undefined {
  const value = env[key]?.trim();
  return value ? value : undefined;
}

function required(env: Env, key: string, why: string): string {
  const value = nonEmpty(env, key);
  if (!value) throw new SettingsError(`${key} is not set: ${why}`);
  return value;
}

function positiveInt(env: Env, key: string, fallback: number): number {
  const raw = nonEmpty(env, key);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw new SettingsError(`${key}='${raw}' is not a positive whole number`);
  }
  return Number(raw);
}

/** Splits `host`, `host:port`, `[v6]` or `[v6]:port`. */
export function parseHostPort(value: string, key: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+))(?::(\d+))?$/.exec(value.trim());
  if (!match) throw new SettingsError(`${key}='${value}' is not a host or host:port`);
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65535) throw new SettingsError(`${key}='${value}' has a port outside 1-65535`);
  return { host: match[1] ?? match[2], port };
}

/** The blog passes Neon's endpoint URL-encoded (`endpoint%3Dep-…`); libpq wants it decoded. */
export function decodeOptions(value: string, key: string): string {
  try {
    return decodeURIComponent(value.trim());
  } catch {
    throw new SettingsError(`${key}='${value}' is not valid URL encoding (expected e.g. endpoint%3Dep-aged-morning-26453078)`);
  }
}

function compressionSetting(value: string | undefined, key: string): string | undefined {
  if (value !== undefined && !pgCompressionPattern.test(value)) {
    throw new SettingsError(`${key}='${value}' is not a pg_dump compression: use ${pgCompressionSyntax}`);
  }
  return value;
}

function sslModeSetting(value: string | undefined, key: string): string | undefined {
  if (value !== undefined && !isSslMode(value)) throw new SettingsError(`${key}='${value}' is not a libpq sslmode: use one of ${sslModes.join(", ")}`);
  return value;
}

/** The blog's variables: one PostgreSQL database. */
function legacyPostgres(env: Env, secrets: Secrets): PostgresTarget | undefined {
  if (!nonEmpty(env, "PG_DB_HOST") && !nonEmpty(env, "PG_DB_NAME")) return undefined;
  const why = "it is needed with PG_DB_HOST/PG_DB_NAME to back up PostgreSQL";
  const { host, port } = parseHostPort(required(env, "PG_DB_HOST", why), "PG_DB_HOST");
  const database = required(env, "PG_DB_NAME", why);
  const user = required(env, "PG_DB_USER", why);
  if (secrets === "required") required(env, "PG_DB_PASSWORD", why);
  const options = nonEmpty(env, "NEON_DB_ENDPOINT_OPTION");
  return {
    engine: "postgres",
    name: database,
    host,
    port,
    database,
    user,
    passwordEnv: "PG_DB_PASSWORD",
    options: options === undefined ? undefined : decodeOptions(options, "NEON_DB_ENDPOINT_OPTION"),
    sslmode: sslModeSetting(nonEmpty(env, "PG_SSLMODE"), "PG_SSLMODE"),
  };
}

/** The blog's variables: one MongoDB deployment. */
function legacyMongo(env: Env): MongoTarget | undefined {
  if (!nonEmpty(env, "MONGO_CONNECTION_STRING")) {
    if (nonEmpty(env, "MONGO_DB_NAME")) {
      throw new SettingsError("MONGO_CONNECTION_STRING is not set: MONGO_DB_NAME names a database, but there is no connection string to reach it");
    }
    return undefined;
  }
  const database = nonEmpty(env, "MONGO_DB_NAME");
  const raw = nonEmpty(env, "MONGO_POINT_IN_TIME");
  if (raw !== undefined && raw !== "true" && raw !== "false") throw new SettingsError(`MONGO_POINT_IN_TIME='${raw}' must be true or false`);
  return checkedMongo({ engine: "mongodb", name: database ?? "mongodb", uriEnv: "MONGO_CONNECTION_STRING", database, pointInTime: raw === undefined ? undefined : raw === "true" }, "MONGO_POINT_IN_TIME");
}

function checkedMongo(target: MongoTarget, key: string): MongoTarget {
  const problem = mongoPointInTimeProblem(target);
  if (problem) throw new SettingsError(`${key}: ${problem}`);
  return target;
}

function field<T>(obj: Fields<T>, key: keyof T & string, where: string, optional = false): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null || value === "") {
    if (optional) return undefined;
    throw new SettingsError(`${where}.${key} is missing`);
  }
  if (typeof value !== "string") throw new SettingsError(`${where}.${key} must be a string`);
  return value;
}

function envRef<T>(obj: Fields<T>, key: keyof T & string, where: string, env: Env, secrets: Secrets): string {
  const name = field(obj, key, where)!;
  if (!envNamePattern.test(name)) {
    throw new SettingsError(`${where}.${key}='${name}' is not an environment variable name: it names the variable that holds the secret, not the secret`);
  }
  if (secrets === "required" && !env[name]?.trim()) throw new SettingsError(`${name} is not set: ${where}.${key} says it holds the secret`);
  return name;
}

/** One entry of BACKUP_TARGETS, checked by the contract's rules. */
export function parseTarget(raw: unknown, index: number, env: Env, secrets: Secrets = "required"): Target {
  const where = `BACKUP_TARGETS[${index}]`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new SettingsError(`${where} must be an object`);
  const engine = field(raw as Fields<Target>, "engine", where);
  if (engine === "postgres") {
    const obj = raw as Fields<PostgresTarget>;
    const database = field(obj, "database", where)!;
    const port = obj.port ?? defaultPort;
    if (!isPort(port)) throw new SettingsError(`${where}.port must be a whole number from 1 to 65535`);
    const sslmode = sslModeSetting(field(obj, "sslmode", where, true), `${where}.sslmode`);
    const sslrootcert = field(obj, "sslrootcert", where, true);
    const rootCertIssue = sslrootcert === undefined ? undefined : rootCertProblem(sslrootcert, sslmode);
    if (rootCertIssue) throw new SettingsError(`${where}.sslrootcert=${rootCertIssue}`);
    return {
      engine,
      name: field(obj, "name", where, true) ?? database,
      host: field(obj, "host", where)!,
      port,
      database,
      user: field(obj, "user", where)!,
      passwordEnv: envRef(obj, "passwordEnv", where, env, secrets),
      options: field(obj, "options", where, true),
      sslmode,
      sslrootcert,
      compression: compressionSetting(field(obj, "compression", where, true), `${where}.compression`),
    };
  }
  if (engine === "mongodb") {
    const obj = raw as Fields<MongoTarget>;
    const database = field(obj, "database", where, true);
    const pointInTime = obj.pointInTime ?? undefined;
    if (pointInTime !== undefined && typeof pointInTime !== "boolean") throw new SettingsError(`${where}.pointInTime must be true or false`);
    return checkedMongo({
      engine,
      name: field(obj, "name", where, true) ?? database ?? "mongodb",
      uriEnv: envRef(obj, "uriEnv", where, env, secrets),
      database,
      pointInTime,
    }, `${where}.pointInTime`);
  }
  throw new SettingsError(`${where}.engine='${String(engine)}' is not supported: use "postgres" or "mongodb"`);
}

function jsonTargets(env: Env, secrets: Secrets): Target[] {
  const raw = nonEmpty(env, "BACKUP_TARGETS" satisfies FromStack);
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new SettingsError(`BACKUP_TARGETS is not valid JSON (${(err as Error).message}): it must be a JSON list of targets`);
  }
  if (!Array.isArray(parsed)) throw new SettingsError("BACKUP_TARGETS must be a JSON list of targets");
  return parsed.map((entry, i) => parseTarget(entry, i, env, secrets));
}

/** Every target the environment configures: the blog's variables, then BACKUP_TARGETS. */
export function parseTargets(env: Env, secrets: Secrets = "required"): Target[] {
  const targets = configuredTargets(env, secrets);
  if (targets.length === 0) {
    throw new SettingsError(
      "no database to back up: set PG_DB_HOST, PG_DB_NAME, PG_DB_USER and PG_DB_PASSWORD (PostgreSQL), MONGO_CONNECTION_STRING (MongoDB), or BACKUP_TARGETS (a JSON list)",
    );
  }
  return targets;
}

/** The targets the environment configures, checked as parseTargets checks them; none is not an error here. */
export function configuredTargets(env: Env, secrets: Secrets): Target[] {
  const targets = [legacyPostgres(env, secrets), legacyMongo(env), ...jsonTargets(env, secrets)].filter((t): t is Target => t !== undefined);
  const seen = new Set<string>();
  for (const t of targets) {
    if (!namePattern.test(t.name)) {
      throw new SettingsError(`target name '${t.name}' cannot be part of an S3 key: use letters, digits, '.', '_' and '-' (at most 63)`);
    }
    const id = `${t.engine}/${t.name}`;
    if (seen.has(id)) throw new SettingsError(`two ${t.engine} targets are named '${t.name}': their backups would overwrite each other`);
    seen.add(id);
  }
  return targets;
}

function staticCredentials(env: Env): S3Settings["credentials"] {
  const accessKeyId = nonEmpty(env, "AWS_ACCESS_KEY_ID");
  const secretAccessKey = nonEmpty(env, "AWS_SECRET_ACCESS_KEY");
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, sessionToken: nonEmpty(env, "AWS_SESSION_TOKEN") };
}

/** Whether a command reads the stage's bucket, or its copy in another region (`--replica`). */
export type Source = "bucket" | "replica";

/**
 * The bucket a command reads: S3_BUCKET in AWS_REGION, or with `--replica` the copy in another region,
 * BACKUP_REPLICA_BUCKET in BACKUP_REPLICA_REGION, which the stack sets on the verifier task when the
 * stage has replicaRegion.
 */
function sourceBucket(env: Env, source: Source): { bucket: string; name: string; region?: string } {
  if (source === "bucket") {
    const bucket = required(env, "S3_BUCKET" satisfies FromStack, "it is the bucket the backups are written to");
    return { bucket, name: "S3_BUCKET", region: nonEmpty(env, "AWS_REGION" satisfies FromStack) ?? nonEmpty(env, "AWS_DEFAULT_REGION") };
  }
  const names = ["BACKUP_REPLICA_BUCKET", "BACKUP_REPLICA_REGION"] as const satisfies readonly FromStack[];
  const missing = names.filter((name) => nonEmpty(env, name) === undefined);
  if (missing.length > 0) {
    throw new SettingsError(
      `--replica reads the copy in another region, which ${names.join(" and ")} name (the verifier task has them when the stack sets replicaRegion; ` +
        `\`pulumi stack output\` and the drill task definition show them): ${missing.join(" and ")} ${missing.length === 1 ? "is" : "are"} not set. Set both, or leave out --replica to read S3_BUCKET`,
    );
  }
  const region = nonEmpty(env, names[1])!;
  if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(region)) throw new SettingsError(`BACKUP_REPLICA_REGION='${region}' is not an AWS region name (e.g. ap-northeast-1)`);
  return { bucket: nonEmpty(env, names[0])!, name: names[0], region };
}

/** Where backups go and how to reach it: enough for backup, restore and verify; `replica` for the copy in another region. */
export function parseStorage(env: Env, source: Source = "bucket"): { stage: string; s3: S3Settings } {
  const stage = required(env, "STAGE" satisfies FromStack, "it is the first part of every backup's key (e.g. dev, uat, prod)");
  if (!namePattern.test(stage)) throw new SettingsError(`STAGE='${stage}' cannot be part of an S3 key: use letters, digits, '.', '_' and '-'`);
  const { bucket, name, region } = sourceBucket(env, source);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new SettingsError(`${name}='${bucket}' is not a bucket name (3-63 lowercase letters, digits, '.' and '-'; no s3:// prefix)`);
  }
  const forcePathStyle = (nonEmpty(env, "S3_FORCE_PATH_STYLE") ?? "false").toLowerCase();
  if (!["true", "false", "1", "0"].includes(forcePathStyle)) {
    throw new SettingsError(`S3_FORCE_PATH_STYLE='${env.S3_FORCE_PATH_STYLE}' must be true or false`);
  }
  const partSizeMiB = positiveInt(env, "S3_PART_SIZE_MB", 16);
  if (partSizeMiB < 5) throw new SettingsError(`S3_PART_SIZE_MB='${partSizeMiB}' is below S3's 5 MiB minimum part size`);
  return {
    stage,
    s3: {
      bucket,
      endpoint: nonEmpty(env, "AWS_ENDPOINT_URL_S3") ?? nonEmpty(env, "AWS_ENDPOINT_URL"),
      forcePathStyle: forcePathStyle === "true" || forcePathStyle === "1",
      region,
      partSizeBytes: partSizeMiB * 1024 * 1024,
      credentials: staticCredentials(env),
    },
  };
}

/** BACKUP_PROGRESS_SECONDS: how often a running backup, or a restore's or verify's download, logs its progress. */
export function parseProgressSeconds(env: Env): number {
  const seconds = positiveInt(env, "BACKUP_PROGRESS_SECONDS", 60);
  // Node's timers take at most 2^31-1 ms and fire every millisecond for anything longer.
  if (seconds > 86_400) throw new SettingsError(`BACKUP_PROGRESS_SECONDS='${seconds}' is more than a day (86400 seconds)`);
  return seconds;
}

/** BACKUP_AGE_RECIPIENTS: age public keys, one per line (commas and spaces separate them too). */
export function parseAgeRecipients(env: Env): string[] {
  const raw = nonEmpty(env, "BACKUP_AGE_RECIPIENTS" satisfies FromStack);
  if (raw === undefined) return [];
  const recipients = raw.split(/[\s,]+/).filter(Boolean);
  for (const r of recipients) {
    if (r.startsWith("AGE-SECRET-KEY-")) {
      throw new SettingsError("BACKUP_AGE_RECIPIENTS holds an age identity (AGE-SECRET-KEY-1…), which is secret: give its public key instead (`age-keygen -y <identity file>` prints it) and keep the identity off the task");
    }
    if (!ageRecipientPattern.test(r)) throw new SettingsError(`BACKUP_AGE_RECIPIENTS: '${r}' is not an age public key (age1 followed by 58 characters, as age-keygen prints)`);
  }
  return [...new Set(recipients)];
}

/**
 * AGE_IDENTITY_FILE: the file holding the age identity that decrypts encrypted backups (restore, verify,
 * drill). A path, never the identity itself: a value in the environment or on argv is seen by too many.
 */
export function parseIdentityFile(env: Env): string | undefined {
  const path = nonEmpty(env, "AGE_IDENTITY_FILE");
  if (path?.startsWith("AGE-SECRET-KEY-")) {
    throw new SettingsError("AGE_IDENTITY_FILE holds an identity itself: it must be the path of a file holding it (mode 0600), so the identity is not in the environment");
  }
  return path;
}

/**
 * Where the runner makes its private files (a download, an identity file, a drill's server): TMPDIR as the
 * command's environment gives it, the system's temporary directory otherwise; in the task, the scratch volume.
 */
export function scratchDir(env: Env): string {
  return env.TMPDIR?.trim() || tmpdir();
}

export function parseSettings(env: Env): RunnerSettings {
  const storage = parseStorage(env);
  const targets = parseTargets(env);
  const globalCompression = compressionSetting(nonEmpty(env, "PG_DUMP_COMPRESSION"), "PG_DUMP_COMPRESSION");
  for (const t of targets) {
    if (t.engine === "postgres" && t.compression === undefined) t.compression = globalCompression;
  }
  const timeZone = nonEmpty(env, "BACKUP_TIMEZONE" satisfies FromStack);
  if (timeZone !== undefined) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone });
    } catch {
      throw new SettingsError(`BACKUP_TIMEZONE='${timeZone}' is not an IANA time zone (e.g. Asia/Singapore)`);
    }
  }
  return {
    ...storage,
    targets,
    concurrency: positiveInt(env, "BACKUP_CONCURRENCY", targets.length),
    targetTimeoutSeconds: positiveInt(env, "BACKUP_TARGET_TIMEOUT_SECONDS" satisfies FromStack, 6 * 3600),
    timeZone,
    progressSeconds: parseProgressSeconds(env),
    ageRecipients: parseAgeRecipients(env),
  };
}

/** The environment variable that holds a target's secret: its password or connection string. */
export function secretEnvOf(target: Target): string {
  return target.engine === "postgres" ? target.passwordEnv : target.uriEnv;
}

/** The variables that hold restore's own secrets, for the restoring user or deployment (restoreTarget). */
export const restoreSecretEnv = { postgres: "RESTORE_PG_PASSWORD", mongodb: "RESTORE_MONGO_URI" } as const;

/** Every variable that holds a secret: each target's, and restore's own whether or not this command reads them. */
function secretNames(targets: Target[]): string[] {
  return [...targets.map(secretEnvOf), ...Object.values(restoreSecretEnv), ageIdentitySecretEnv];
}

/** The secret values the runner may read, so the logger can redact them. */
export function secretValues(targets: Target[], env: Env): string[] {
  return secretNames(targets)
    .map((name) => env[name])
    .filter((v): v is string => !!v);
}

/** The environment minus every variable that holds a secret: what child processes inherit. */
export function withoutSecrets(env: Env, targets: Target[]): Env {
  const copy = { ...env };
  for (const name of secretNames(targets)) delete copy[name];
  return copy;
}

/** Restore's own connection, from its options; each part left out is the target's. */
export interface RestoreConnection {
  host?: string;
  port?: string;
  user?: string;
  sslmode?: string;
}

/**
 * The connection a restore uses: the target's as the backup configures it, each part replaced by
 * restore's own where given. The backup's user is usually read-only, so restoring often needs another
 * user, and then another password: RESTORE_PG_PASSWORD (never an option, since argv is visible), or
 * RESTORE_MONGO_URI for MongoDB. A host other than the target's drops the target's libpq options
 * (Neon's endpoint ID) and sslrootcert, which belong to the target's server.
 */
export function restoreTarget(target: Target, own: RestoreConnection, env: Env): Target {
  if (target.engine === "mongodb") {
    const given = Object.entries(own).filter(([, v]) => v !== undefined);
    if (given.length) {
      throw new SettingsError(`--${given[0][0]} is for PostgreSQL: a MongoDB restore takes its whole connection from ${restoreSecretEnv.mongodb} (or the target's ${target.uriEnv})`);
    }
    const uriEnv = nonEmpty(env, restoreSecretEnv.mongodb) ? restoreSecretEnv.mongodb : target.uriEnv;
    if (!nonEmpty(env, uriEnv)) {
      throw new SettingsError(`${restoreSecretEnv.mongodb} is not set, nor the target's ${target.uriEnv}: give the connection string to restore with in ${restoreSecretEnv.mongodb}`);
    }
    return { ...target, uriEnv };
  }
  const host = own.host?.trim() || target.host;
  const port = own.port === undefined ? target.port : Number(own.port);
  if (!isPort(port)) throw new SettingsError(`--port '${own.port}' is not a port: use a whole number from 1 to 65535`);
  const user = own.user?.trim() || target.user;
  const sslmode = own.sslmode === undefined ? target.sslmode : sslModeSetting(own.sslmode, "--sslmode");
  const passwordEnv = nonEmpty(env, restoreSecretEnv.postgres) ? restoreSecretEnv.postgres : target.passwordEnv;
  if (passwordEnv === target.passwordEnv && user !== target.user) {
    throw new SettingsError(`--user '${user}' needs its password in ${restoreSecretEnv.postgres} (${target.passwordEnv} holds the backup user's, ${target.user}'s)`);
  }
  if (!nonEmpty(env, passwordEnv)) {
    throw new SettingsError(`${restoreSecretEnv.postgres} is not set, nor the target's ${target.passwordEnv}: give the password of user '${user}' in ${restoreSecretEnv.postgres}`);
  }
  const sameServer = host === target.host;
  const sslrootcert = sameServer ? target.sslrootcert : undefined;
  const rootCertIssue = sslrootcert === undefined ? undefined : rootCertProblem(sslrootcert, sslmode);
  if (rootCertIssue) throw new SettingsError(`--sslmode '${sslmode}' does not go with the target's sslrootcert=${rootCertIssue}`);
  return { ...target, host, port, user, passwordEnv, sslmode, sslrootcert, options: sameServer ? target.options : undefined };
}

/** What a restore drill reads: where the backups are, which targets should have one, and the threshold. */
export interface DrillSettings {
  stage: string;
  s3: S3Settings;
  /** The configured targets, whose secrets need not be set: each must have a backup to drill. */
  targets: Target[];
  /** DRILL_MAX_ROW_LOSS_PERCENT: the share of a table's rows it may lose between two drills (default 10). */
  maxRowLossPercent: number;
  progressSeconds: number;
}

export function parseDrillSettings(env: Env, source: Source = "bucket"): DrillSettings {
  const key = "DRILL_MAX_ROW_LOSS_PERCENT" satisfies keyof DrillEnvironment;
  const raw = nonEmpty(env, key) ?? "10";
  const maxRowLossPercent = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || maxRowLossPercent > 100) {
    throw new SettingsError(`${key}='${raw}' is not a percentage from 0 to 100: a drill fails when a table lost more than this share of its rows since the previous drill (e.g. 10)`);
  }
  return { ...parseStorage(env, source), targets: configuredTargets(env, "optional"), maxRowLossPercent, progressSeconds: parseProgressSeconds(env) };
}
