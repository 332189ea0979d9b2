/**
 * The stack configuration: one schema, read by the program (index.ts), the offline synth and the tests.
 * Every value is checked at program start; an error names the key and says how to fix it.
 */

// The wire format's rules (the contract the runner reads by), so the stack refuses what the runner would.
import { ageRecipientPattern, defaultPort, isPort, isSslMode, mongoPointInTimeProblem, pgCompressionPattern, pgCompressionSyntax, rootCertProblem, sslModes, type PostgresTarget, type SslMode } from "../image/src/contract";

export const project = "db-backup";

/**
 * A PostgreSQL database to back up, as the runner's target (the contract) but for what the stack derives:
 * its password is the secret config value `<name>-password` (passwordEnv comes from the name), and Neon
 * is given by its endpoint ID (options come from it).
 */
/**
 * The size of a target's own task, with `isolation: per-target` only; the stage's cpu and memory when
 * unset (targetTaskSize).
 */
export interface TargetTaskSize {
  /** Fargate CPU units of the target's task. */
  cpu?: number;
  /** Fargate memory of the target's task in MiB. */
  memory?: number;
}

export interface PostgresTargetConfig extends Omit<PostgresTarget, "passwordEnv" | "options" | "sslmode">, TargetTaskSize {
  /** Neon's endpoint ID (e.g. ep-aged-morning-26453078), sent as libpq `options=endpoint=…` for SNI-less clients. */
  neonEndpoint?: string;
  sslmode?: SslMode;
}

/** A MongoDB deployment to back up; its connection string is the secret config value `<name>-uri`. */
export interface MongoTargetConfig extends TargetTaskSize {
  engine: "mongodb";
  name: string;
  database?: string;
  /** mongodump --oplog for a whole-deployment dump (the contract's MongoTarget.pointInTime). Default true. */
  pointInTime?: boolean;
}

export type TargetConfig = PostgresTargetConfig | MongoTargetConfig;

export type Architecture = "amd64" | "arm64";

/**
 * How a stage's targets are run: `per-stage`, one task for all of them (one task definition, role and
 * schedule); `per-target`, a task definition, roles and schedule per target, each holding only its own
 * target's secret and writing only its own prefix.
 */
export const isolationModes = ["per-stage", "per-target"] as const;
export type Isolation = (typeof isolationModes)[number];

export const objectLockModes = ["GOVERNANCE", "COMPLIANCE"] as const;
export type ObjectLockMode = (typeof objectLockModes)[number];

/** S3 Object Lock's default retention on the created bucket: every new object version is locked for `days`. */
export interface ObjectLockConfig {
  /** GOVERNANCE: only a principal granted s3:BypassGovernanceRetention can delete early; COMPLIANCE: no one, not even the account's root user. */
  mode: ObjectLockMode;
  days: number;
}

/** Everything that differs per stage, validated, with defaults applied. */
export interface StackConfig {
  stage: string;
  targets: TargetConfig[];
  /** EventBridge Scheduler expression: rate(…) or cron(…). */
  schedule: string;
  /** IANA time zone the cron expression is read in. Default UTC. */
  scheduleTimezone: string;
  /** Whether the schedule is enabled. Default true. */
  scheduleEnabled: boolean;
  /** Scheduler retries when a task cannot be started. Default 2. */
  retryAttempts: number;
  /** How long the scheduler keeps retrying, in seconds. Default 3600. */
  retryWindowSeconds: number;
  /** Days a backup is kept before S3 expires it. Default 30. */
  backupRetentionDays: number;
  /** Days an overwritten or deleted backup version is kept. Default 7. */
  noncurrentRetentionDays: number;
  /** Days the task's logs are kept; one of CloudWatch's allowed values. Default 30. */
  logRetentionDays: number;
  /** Fargate task CPU units. Default 512. */
  cpu: number;
  /** Fargate task memory in MiB. Default 1024. */
  memory: number;
  /** Fargate ephemeral storage in GiB: 20 (Fargate's default, nothing sent) or 21-200. Default 20. */
  ephemeralStorageGiB: number;
  /** CPU architecture of the image and the task. Default amd64. */
  architecture: Architecture;
  /** One task for the stage's targets, or one per target (cpu and memory per target then). Default per-stage. */
  isolation: Isolation;
  /** ECS Container Insights on the cluster. Default false. */
  containerInsights: boolean;
  /** An existing bucket to write to; when unset the stack creates one. */
  bucketName?: string;
  /** ARN of the KMS key an existing bucket (bucketName) encrypts with (SSE-KMS); unset for SSE-S3. */
  bucketKmsKeyArn?: string;
  /** Encrypt the created bucket with a KMS key of its own instead of SSE-S3. Default false. */
  kmsEncryption: boolean;
  /** E-mail address subscribed to the alert topic. Default none. */
  alertEmail?: string;
  /** Alarm when no backup succeeded for this many hours (2-168). Default 26. */
  staleAfterHours: number;
  /** VPC to run in; the default VPC when unset. */
  vpcId?: string;
  /** Subnets to run in; the default VPC's default subnets when unset. Required with vpcId. */
  subnetIds?: string[];
  /** Give the task a public IP (needed without NAT). Default true in the default VPC, false otherwise. */
  assignPublicIp: boolean;
  /** How many images the ECR repository keeps. Default 10. */
  imagesToKeep: number;
  /** A target still running after this many minutes is stopped and reported as failed. Default 360. */
  targetTimeoutMinutes: number;
  /**
   * age public keys (`age1…`) every dump is encrypted for in the task before it is uploaded; their
   * identities stay with their owners (and, for drills, in the secret drillAgeIdentity). Default none.
   */
  encryptionRecipients?: string[];
  /** Whether the restore-drill schedule is enabled; the verifier task exists either way. Default true. */
  drillEnabled: boolean;
  /** EventBridge Scheduler expression of the restore drills, read in scheduleTimezone. Default cron(0 6 * * ? *): daily. */
  drillSchedule: string;
  /** Fargate CPU units of the verifier task, which runs a PostgreSQL server and pg_restore. Default 1024. */
  drillCpu: number;
  /** Fargate memory of the verifier task in MiB. Default 4096. */
  drillMemory: number;
  /** Ephemeral storage of the verifier task in GiB (21-200): the downloaded backup and the restored database. Default 50. */
  drillEphemeralStorageGiB: number;
  /** Alarm when a target has had no successful drill for this many hours (2-168). Default 50. */
  drillStaleAfterHours: number;
  /** A drill fails when a table or collection lost more than this percentage of its rows since the previous drill (0-100). Default 10. */
  drillMaxRowLossPercent: number;
  /** Object Lock default retention on the created bucket (not with bucketName). Default none. */
  objectLock?: ObjectLockConfig;
  /**
   * An AWS region for a copy of the stage's backups: a replica bucket there, with the primary's
   * protections, kept by S3 Replication (not with bucketName; not the stack's own region). Default none.
   */
  replicaRegion?: string;
}

export class ConfigError extends Error {
  constructor(key: string, message: string) {
    super(`${project}:${key}: ${message}`);
    this.name = "ConfigError";
  }
}

/** Reads raw values; pulumi.Config in the program, a plain map in the synth and the tests. */
export interface ConfigSource {
  get(key: string): string | undefined;
}

/** CloudWatch Logs' allowed retention periods, in days. */
export const logRetentionValues = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/** Fargate's CPU units and the memory (MiB) each allows. */
export function fargateMemoryChoices(cpu: number): number[] {
  const range = (from: number, to: number, step: number) => Array.from({ length: (to - from) / step + 1 }, (_, i) => from + i * step);
  switch (cpu) {
    case 256: return [512, 1024, 2048];
    case 512: return range(1024, 4096, 1024);
    case 1024: return range(2048, 8192, 1024);
    case 2048: return range(4096, 16384, 1024);
    case 4096: return range(8192, 30720, 1024);
    case 8192: return range(16384, 61440, 4096);
    case 16384: return range(32768, 122880, 8192);
    default: return [];
  }
}

/**
 * Refuses a CPU and memory pair Fargate does not run ("Amazon ECS task definition parameters for
 * Fargate", Task size: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size),
 * naming the key to fix: the stage's, the verifier's or a target's.
 */
function checkFargateSize(cpu: number, memory: number, cpuKey: string, memoryKey: string): void {
  const allowed = fargateMemoryChoices(cpu);
  if (allowed.length === 0) throw new ConfigError(cpuKey, `${cpu} is not a Fargate CPU size: use 256, 512, 1024, 2048, 4096, 8192 or 16384`);
  if (!allowed.includes(memory)) throw new ConfigError(memoryKey, `${memory} MiB does not go with ${cpuKey} ${cpu} on Fargate: use one of ${allowed.join(", ")}`);
}

/**
 * IAM's longest role name, and what Pulumi's auto-naming appends to a resource's name: `-` and 7 random
 * characters. pulumi-aws names a role with `tfbridge.AutoName("name", 64, "-")`
 * (https://github.com/pulumi/pulumi-aws/blob/master/provider/resource_overrides.go, `aws_iam_role`); the
 * bridge's `AutoName` sets `Randlen: 7` and appends to the logical name plus the separator, and
 * `resource.NewUniqueName` refuses rather than shortens a name that would not fit: "name '%s' plus %d
 * random chars is longer than maximum length %d"
 * (https://github.com/pulumi/pulumi-terraform-bridge/blob/master/pkg/tfbridge/info/autonaming.go,
 * https://github.com/pulumi/pulumi/blob/master/sdk/go/common/resource/resource_id.go).
 */
const iamRoleNameLimit = 64;
const autoNameSuffix = 8;

/** The size of a target's own task (per-target isolation): its cpu and memory, the stage's where unset. */
export function targetTaskSize(config: Pick<StackConfig, "cpu" | "memory">, target: TargetConfig): { cpu: number; memory: number } {
  return { cpu: target.cpu ?? config.cpu, memory: target.memory ?? config.memory };
}

/**
 * With per-target isolation each target's task has its own size, checked as a Fargate pair (with the
 * stage's value for the half it does not set); a target named `drill` is refused, as its task family
 * would be the verifier's (`<project>-<stage>-drill`). With per-stage isolation a target's size would
 * be silently ignored, so it is refused. Each target's IAM roles are named after the stage and the target
 * (`db-backup-<stage>-<name>-execution` and `-scheduler`, the longest, of one length) plus the 8
 * characters Pulumi's auto-naming adds, and IAM takes at most 64 ("IAM and AWS STS quotas", role name;
 * CreateRole's RoleName), so a name that would not fit is refused here, with the length it may have,
 * rather than by the provider's check of that one role ("could not make instance of
 * 'aws:iam/role:Role'", above). The other names carrying the target's are no tighter: its schedule
 * (`…-schedule`, one shorter: pulumi-aws auto-names it up to 255, EventBridge Scheduler takes 64), its
 * role policies (IAM: 128 for a policy name) and alarms (auto-named up to 255); its task definition
 * family and SSM parameter are named explicitly, under longer limits. One check, on the longest, covers
 * them all.
 */
function checkTargetTasks(targets: TargetConfig[], isolation: Isolation, stage: Pick<StackConfig, "stage" | "cpu" | "memory">): void {
  targets.forEach((t, i) => {
    const key = `targets[${i}]`;
    if (isolation === "per-stage") {
      const sized = (["cpu", "memory"] as const).find((f) => t[f] !== undefined);
      if (sized) throw new ConfigError(`${key}.${sized}`, `sizes target ${t.name}'s own task, which only \`isolation: per-target\` gives it: set isolation to per-target, or size the stage's one task with \`${sized}\``);
      return;
    }
    if (t.name === "drill") throw new ConfigError(key, "name 'drill' is the verifier task's family suffix: with isolation per-target each target's task family is <project>-<stage>-<name>; rename the target");
    const longest = `${project}-${stage.stage}-${t.name}-execution`.length + autoNameSuffix;
    if (longest > iamRoleNameLimit) {
      throw new ConfigError(key, `name '${t.name}' makes its task's execution role name ${longest} characters long (${project}-${stage.stage}-${t.name}-execution and Pulumi's ${autoNameSuffix}-character suffix), over IAM's ${iamRoleNameLimit}: with isolation per-target use a name of at most ${t.name.length - (longest - iamRoleNameLimit)} characters in stage ${stage.stage}`);
    }
    const size = targetTaskSize(stage, t);
    checkFargateSize(size.cpu, size.memory, t.cpu === undefined ? "cpu" : `${key}.cpu`, `${key}.memory`);
  });
}

const rateExpression = /^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$/;
const cronExpression = /^cron\(\s*(\S+\s+){5}\S+\s*\)$/;

/** Checks an EventBridge Scheduler rate(…) or cron(…) expression; returns an error message or undefined. */
export function scheduleProblem(expression: string): string | undefined {
  const rate = rateExpression.exec(expression);
  if (rate) {
    const [, value, unit] = rate;
    if (Number(value) < 1) return `'${expression}' must have a value of at least 1`;
    if ((Number(value) === 1) !== !unit.endsWith("s")) return `'${expression}' must say ${Number(value) === 1 ? unit.replace(/s$/, "") : unit + "s"}`;
    return undefined;
  }
  if (cronExpression.test(expression)) {
    const fields = expression.slice(5, -1).trim().split(/\s+/);
    // Scheduler's cron has six fields; day-of-month and day-of-week cannot both be given: one must be '?'.
    if (fields[2] !== "?" && fields[4] !== "?") return `'${expression}' must use '?' in day-of-month or day-of-week (e.g. cron(0 3 * * ? *))`;
    return undefined;
  }
  return `'${expression}' is not a rate(...) or cron(...) expression (e.g. rate(1 hour), cron(0 3 * * ? *))`;
}

function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return zone.includes("/") || zone === "UTC";
  } catch {
    return false;
  }
}

/**
 * A KMS key ARN, as S3's API patterns it for SSE-KMS (SSEKMSEncryption.KMSKeyArn, Amazon S3 API Reference,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_SSEKMSEncryption.html): an alias ARN or a bare key
 * ID will not do, as the task role's grant must name the key itself.
 */
export const kmsKeyArnPattern = /^arn:aws[a-zA-Z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[a-zA-Z0-9-]+$/;

/** Narrower than the contract's namePattern: a name is also part of config keys and SSM parameter names. */
const targetNamePattern = /^[a-z][a-z0-9-]{0,30}$/;

/** The secret config key holding the age identity the verifier task decrypts drills with. */
export const drillIdentityKey = "drillAgeIdentity";

/** Whether the stack needs drillAgeIdentity: its backups are encrypted and its drills run. */
export function needsDrillIdentity(config: Pick<StackConfig, "encryptionRecipients" | "drillEnabled">): boolean {
  return config.encryptionRecipients !== undefined && config.drillEnabled;
}

/** The secret config key holding a target's password or connection string. */
export function secretKeyOf(target: TargetConfig): string {
  return target.engine === "postgres" ? `${target.name}-password` : `${target.name}-uri`;
}

function parseJson(source: ConfigSource, key: string): unknown {
  const raw = source.get(key);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function str(obj: Record<string, unknown>, field: string, key: string, optional = false): string | undefined {
  const value = obj[field];
  if (value === undefined || value === null || value === "") {
    if (optional) return undefined;
    throw new ConfigError(key, `'${field}' is missing`);
  }
  if (typeof value !== "string") throw new ConfigError(key, `'${field}' must be a string`);
  return value;
}

/** A target's own task size as given (whole numbers, checked as a Fargate pair once the stage's are known). */
function parseTargetSize(obj: Record<string, unknown>, key: string): TargetTaskSize {
  const size: TargetTaskSize = {};
  for (const field of ["cpu", "memory"] as const) {
    const raw = obj[field];
    if (raw === undefined) continue;
    // A number in YAML, a string when set with `pulumi config set --path targets[0].cpu 1024`.
    const value = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof value !== "number" || !Number.isInteger(value)) throw new ConfigError(`${key}.${field}`, `'${String(raw)}' must be a whole number (Fargate ${field === "cpu" ? "CPU units" : "MiB"})`);
    size[field] = value;
  }
  return size;
}

function parseTarget(raw: unknown, index: number): TargetConfig {
  const key = `targets[${index}]`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(key, "must be an object with engine and name");
  const obj = raw as Record<string, unknown>;
  return { ...parseTargetConnection(obj, key), ...parseTargetSize(obj, key) };
}

function parseTargetConnection(obj: Record<string, unknown>, key: string): TargetConfig {
  const name = str(obj, "name", key)!;
  if (!targetNamePattern.test(name)) {
    throw new ConfigError(key, `name '${name}' must start with a letter and hold only lowercase letters, digits and '-' (at most 31): it names the secret '${name}-password' and the backups' S3 prefix`);
  }
  const engine = str(obj, "engine", key);
  if (engine === "postgres") {
    const port = obj.port ?? defaultPort;
    if (!isPort(port)) throw new ConfigError(key, "'port' must be a whole number from 1 to 65535");
    const sslmode = str(obj, "sslmode", key, true);
    if (sslmode !== undefined && !isSslMode(sslmode)) throw new ConfigError(key, `'sslmode' must be one of ${sslModes.join(", ")}`);
    const neonEndpoint = str(obj, "neonEndpoint", key, true);
    if (neonEndpoint !== undefined && !/^ep-[a-z0-9-]+$/.test(neonEndpoint)) {
      throw new ConfigError(key, `'neonEndpoint' is Neon's endpoint ID, like ep-aged-morning-26453078 (the first label of the host), not '${neonEndpoint}'`);
    }
    const sslrootcert = str(obj, "sslrootcert", key, true);
    const rootCertIssue = sslrootcert === undefined ? undefined : rootCertProblem(sslrootcert, sslmode);
    if (rootCertIssue) throw new ConfigError(key, `'sslrootcert' ${rootCertIssue}`);
    const compression = str(obj, "compression", key, true);
    if (compression !== undefined && !pgCompressionPattern.test(compression)) {
      throw new ConfigError(key, `'compression' must be a pg_dump compression: ${pgCompressionSyntax}`);
    }
    return {
      engine,
      name,
      host: str(obj, "host", key)!,
      port,
      database: str(obj, "database", key)!,
      user: str(obj, "user", key)!,
      neonEndpoint,
      // Neon only accepts TLS; say so rather than rely on libpq's "prefer".
      sslmode: sslmode ?? (neonEndpoint ? "require" : undefined),
      sslrootcert,
      compression,
    };
  }
  if (engine === "mongodb") {
    const pointInTime = obj.pointInTime ?? undefined;
    if (pointInTime !== undefined && typeof pointInTime !== "boolean") throw new ConfigError(key, "'pointInTime' must be true or false");
    const target: MongoTargetConfig = { engine, name, database: str(obj, "database", key, true), pointInTime };
    const problem = mongoPointInTimeProblem(target);
    if (problem) throw new ConfigError(key, problem);
    return target;
  }
  throw new ConfigError(key, `engine '${engine}' is not supported: use "postgres" or "mongodb"`);
}

/** encryptionRecipients: a list of age public keys (or one key); an identity here is refused, as it is secret. */
function parseRecipients(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === "") return undefined;
  const list = typeof raw === "string" ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((r) => typeof r === "string")) {
    throw new ConfigError("encryptionRecipients", "must be a list of age public keys, e.g. [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]");
  }
  for (const r of list as string[]) {
    if (r.startsWith("AGE-SECRET-KEY-")) {
      throw new ConfigError("encryptionRecipients", "holds an age identity, which is secret: list its public key (`age-keygen -y <identity file>`), and give the drills their identity with `pulumi config set --secret drillAgeIdentity`");
    }
    if (!ageRecipientPattern.test(r)) throw new ConfigError("encryptionRecipients", `'${r}' is not an age public key (age1 followed by 58 characters, as age-keygen prints)`);
  }
  return [...new Set(list as string[])];
}

function integer(source: ConfigSource, key: string, fallback: number, min: number, max: number): number {
  const raw = source.get(key);
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(key, `'${raw}' must be a whole number from ${min} to ${max}`);
  return value;
}

function boolean(source: ConfigSource, key: string, fallback: boolean): boolean {
  const raw = source.get(key);
  if (raw === undefined || raw === "") return fallback;
  if (raw !== "true" && raw !== "false") throw new ConfigError(key, `'${raw}' must be true or false`);
  return raw === "true";
}

/**
 * The objectLock key: `{ mode: GOVERNANCE | COMPLIANCE, days: N }`, on the bucket the stack creates, for
 * no longer than the backups are kept. A version locked past its expiry is one the lifecycle cannot
 * remove: expiry only puts a delete marker on top of it ("Expiring objects", S3 User Guide), and the
 * noncurrent-version expiration that would remove it cannot while the lock lasts ("protected object
 * versions remain safe from being deleted or overwritten by a lifecycle configuration", "Managing delete
 * markers and object lifecycles", https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html).
 * A lock that ends after the expiry only guards a backup no restore lists any more.
 */
function parseObjectLock(source: ConfigSource, bucketName: string | undefined, backupRetentionDays: number, noncurrentRetentionDays: number): ObjectLockConfig | undefined {
  const raw = parseJson(source, "objectLock");
  if (raw === undefined || raw === "") return undefined;
  const example = "e.g. `objectLock: { mode: COMPLIANCE, days: 30 }` in Pulumi.<stage>.yaml";
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError("objectLock", `must be an object with mode and days, ${example}`);
  const { mode, days, ...rest } = raw as Record<string, unknown>;
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length) throw new ConfigError("objectLock", `has unknown field ${unknownKeys.map((k) => `'${k}'`).join(", ")}: only mode and days, ${example}`);
  if (!objectLockModes.includes(mode as ObjectLockMode)) {
    throw new ConfigError("objectLock", `'mode' must be GOVERNANCE (an IAM principal allowed s3:BypassGovernanceRetention can still delete) or COMPLIANCE (no one can, not even the root user, until the days are over), not '${String(mode)}'`);
  }
  // A number in YAML, a string when set with `pulumi config set --path objectLock.days 30`.
  const dayCount = typeof days === "string" && /^\d+$/.test(days) ? Number(days) : days;
  if (typeof dayCount !== "number" || !Number.isInteger(dayCount) || dayCount < 1) throw new ConfigError("objectLock", `'days' must be a whole number of days, at least 1, not '${String(days)}'`);
  if (bucketName !== undefined) {
    throw new ConfigError(
      "objectLock",
      `only locks the bucket this stack creates; bucket '${bucketName}' keeps its owner's settings: turn Object Lock on there ` +
        `(\`aws s3api put-object-lock-configuration --bucket ${bucketName} --object-lock-configuration '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"${mode}","Days":${dayCount}}}}'\`, versioning first), or unset bucketName`,
    );
  }
  if (dayCount > backupRetentionDays) {
    const removal = backupRetentionDays + noncurrentRetentionDays;
    const consequence =
      dayCount > removal
        ? `the lifecycle's removal of the hidden version on day ${removal} (noncurrentRetentionDays ${noncurrentRetentionDays} after expiry) comes while the lock still holds, and S3 refuses it`
        : `it stays locked and billed until day ${dayCount} though no restore lists it after day ${backupRetentionDays}`;
    throw new ConfigError(
      "objectLock",
      `locks each backup for ${dayCount} days but backupRetentionDays expires it after ${backupRetentionDays}: expiry only puts a delete marker on top of the locked version, and ${consequence}. ` +
        `Lock for at most ${backupRetentionDays} days, or raise backupRetentionDays to at least ${dayCount}`,
    );
  }
  return { mode: mode as ObjectLockMode, days: dayCount };
}

/** An AWS region's name: ap-northeast-1, us-gov-west-1, eu-central-2. */
export const regionPattern = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/**
 * replicaRegion: where the copy lives. Only for the bucket this stack creates (replication is a setting of
 * the source bucket, which an existing bucket's owner keeps), and never the stack's own region: the copy
 * is there to outlive the loss of that region, which a bucket beside the primary would not.
 */
function parseReplicaRegion(source: ConfigSource, bucketName: string | undefined, stackRegion: string | undefined): string | undefined {
  const replicaRegion = source.get("replicaRegion") || undefined;
  if (replicaRegion === undefined) return undefined;
  if (!regionPattern.test(replicaRegion)) throw new ConfigError("replicaRegion", `'${replicaRegion}' is not an AWS region name (e.g. ap-northeast-1, eu-central-1)`);
  if (bucketName !== undefined) {
    throw new ConfigError(
      "replicaRegion",
      `replicates only the bucket this stack creates; bucket '${bucketName}' keeps its owner's settings, replication included: ` +
        "add a replication rule for this stage's prefix there (S3 console, the bucket's Management tab, Replication rules), or unset bucketName",
    );
  }
  if (stackRegion !== undefined && replicaRegion === stackRegion) {
    throw new ConfigError("replicaRegion", `'${replicaRegion}' is this stack's own region (aws:region): a copy there is lost with the primary; choose another region, e.g. one on another continent or coast`);
  }
  return replicaRegion;
}

/**
 * Parses and checks the whole stack configuration; throws ConfigError naming the first bad key.
 * `stackRegion` is the stack's aws:region, which replicaRegion must differ from (unchecked when unknown).
 */
export function parseStackConfig(source: ConfigSource, stage: string, stackRegion?: string): StackConfig {
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(stage)) throw new ConfigError("(stack)", `stack name '${stage}' is used in resource names and S3 keys: use lowercase letters, digits and '-'`);

  const rawTargets = parseJson(source, "targets");
  if (!Array.isArray(rawTargets) || rawTargets.length === 0) {
    throw new ConfigError("targets", "must be a list of at least one database, e.g. [{ name: main, engine: postgres, host: …, database: …, user: … }]");
  }
  const targets = rawTargets.map(parseTarget);
  const names = targets.map((t) => t.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new ConfigError("targets", `two targets are named '${duplicate}'`);

  const schedule = source.get("schedule")?.trim();
  if (!schedule) throw new ConfigError("schedule", "is missing: set a rate(...) or cron(...) expression, e.g. `pulumi config set schedule 'cron(0 3 * * ? *)'`");
  const scheduleError = scheduleProblem(schedule);
  if (scheduleError) throw new ConfigError("schedule", scheduleError);

  const scheduleTimezone = source.get("scheduleTimezone") ?? "UTC";
  if (!isValidTimeZone(scheduleTimezone)) throw new ConfigError("scheduleTimezone", `'${scheduleTimezone}' is not an IANA time zone (e.g. Asia/Singapore, Europe/Berlin, UTC)`);

  const logRetentionDays = integer(source, "logRetentionDays", 30, 1, 3653);
  if (!logRetentionValues.includes(logRetentionDays)) throw new ConfigError("logRetentionDays", `${logRetentionDays} is not a CloudWatch retention: use one of ${logRetentionValues.join(", ")}`);

  const cpu = integer(source, "cpu", 512, 256, 16384);
  const memory = integer(source, "memory", 1024, 512, 122880);
  checkFargateSize(cpu, memory, "cpu", "memory");

  const architecture = source.get("architecture") ?? "amd64";
  if (architecture !== "amd64" && architecture !== "arm64") throw new ConfigError("architecture", `'${architecture}' must be amd64 or arm64`);

  const isolation = source.get("isolation") || "per-stage";
  if (!isolationModes.includes(isolation as Isolation)) {
    throw new ConfigError("isolation", `'${isolation}' must be per-stage (one task runs every target) or per-target (one task, with its own secret, role, size and schedule, per target)`);
  }
  checkTargetTasks(targets, isolation as Isolation, { stage, cpu, memory });

  const bucketName = source.get("bucketName") || undefined;
  if (bucketName !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucketName)) throw new ConfigError("bucketName", `'${bucketName}' is not an S3 bucket name`);

  const bucketKmsKeyArn = source.get("bucketKmsKeyArn") || undefined;
  if (bucketKmsKeyArn !== undefined) {
    if (bucketName === undefined) {
      throw new ConfigError("bucketKmsKeyArn", "names the KMS key of an existing bucket, so it needs bucketName; for the bucket this stack creates, set kmsEncryption: true instead");
    }
    if (!kmsKeyArnPattern.test(bucketKmsKeyArn)) {
      throw new ConfigError(
        "bucketKmsKeyArn",
        `'${bucketKmsKeyArn}' is not a KMS key ARN: give the key's full ARN, like arn:aws:kms:ap-southeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab ` +
          `(\`aws s3api get-bucket-encryption --bucket ${bucketName}\` shows the bucket's key; \`aws kms describe-key --key-id <alias or id> --query KeyMetadata.Arn\` turns an alias or ID into its ARN)`,
      );
    }
  }
  const kmsEncryption = boolean(source, "kmsEncryption", false);
  if (kmsEncryption && bucketName !== undefined) {
    throw new ConfigError("kmsEncryption", `only encrypts the bucket this stack creates; bucket '${bucketName}' keeps its own settings: if it uses SSE-KMS, set bucketKmsKeyArn to its key instead`);
  }

  const alertEmail = source.get("alertEmail") || undefined;
  if (alertEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alertEmail)) throw new ConfigError("alertEmail", `'${alertEmail}' is not an e-mail address`);

  const vpcId = source.get("vpcId") || undefined;
  const subnetIds = parseJson(source, "subnetIds");
  if (subnetIds !== undefined && (!Array.isArray(subnetIds) || subnetIds.length === 0 || !subnetIds.every((s) => typeof s === "string" && /^subnet-[0-9a-f]+$/.test(s)))) {
    throw new ConfigError("subnetIds", "must be a list of subnet IDs like subnet-0123abcd");
  }
  if ((vpcId === undefined) !== (subnetIds === undefined)) throw new ConfigError(vpcId ? "subnetIds" : "vpcId", "vpcId and subnetIds go together: set both, or neither for the default VPC");

  const backupRetentionDays = integer(source, "backupRetentionDays", 30, 1, 3650);

  const encryptionRecipients = parseRecipients(parseJson(source, "encryptionRecipients"));
  const noncurrentRetentionDays = integer(source, "noncurrentRetentionDays", 7, 1, 3650);

  const drillSchedule = source.get("drillSchedule")?.trim() || "cron(0 6 * * ? *)";
  const drillScheduleError = scheduleProblem(drillSchedule);
  if (drillScheduleError) throw new ConfigError("drillSchedule", drillScheduleError);
  const drillCpu = integer(source, "drillCpu", 1024, 256, 16384);
  const drillMemory = integer(source, "drillMemory", 4096, 512, 122880);
  checkFargateSize(drillCpu, drillMemory, "drillCpu", "drillMemory");
  return {
    stage,
    targets,
    schedule,
    scheduleTimezone,
    scheduleEnabled: boolean(source, "scheduleEnabled", true),
    retryAttempts: integer(source, "retryAttempts", 2, 0, 185),
    retryWindowSeconds: integer(source, "retryWindowSeconds", 3600, 60, 86400),
    backupRetentionDays,
    noncurrentRetentionDays,
    logRetentionDays,
    cpu,
    memory,
    ephemeralStorageGiB: integer(source, "ephemeralStorageGiB", 20, 20, 200),
    architecture,
    isolation: isolation as Isolation,
    containerInsights: boolean(source, "containerInsights", false),
    bucketName,
    bucketKmsKeyArn,
    kmsEncryption,
    alertEmail,
    // 168 hours is CloudWatch's longest alarm evaluation period, seven days (components/alerts.ts).
    staleAfterHours: integer(source, "staleAfterHours", 26, 2, 168),
    vpcId,
    subnetIds: subnetIds as string[] | undefined,
    assignPublicIp: boolean(source, "assignPublicIp", vpcId === undefined),
    imagesToKeep: integer(source, "imagesToKeep", 10, 1, 1000),
    targetTimeoutMinutes: integer(source, "targetTimeoutMinutes", 360, 5, 7 * 24 * 60),
    encryptionRecipients,
    drillEnabled: boolean(source, "drillEnabled", true),
    drillSchedule,
    drillCpu,
    drillMemory,
    // A restore needs room for the download and the restored database, so the verifier always asks for more than Fargate's 20.
    drillEphemeralStorageGiB: integer(source, "drillEphemeralStorageGiB", 50, 21, 200),
    drillStaleAfterHours: integer(source, "drillStaleAfterHours", 50, 2, 168),
    drillMaxRowLossPercent: integer(source, "drillMaxRowLossPercent", 10, 0, 100),
    objectLock: parseObjectLock(source, bucketName, backupRetentionDays, noncurrentRetentionDays),
    replicaRegion: parseReplicaRegion(source, bucketName, stackRegion),
  };
}

/** A source that remembers every key the schema asked it for, in order. */
export function recordingSource(source: ConfigSource): ConfigSource & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    get: (key) => {
      if (!asked.includes(key)) asked.push(key);
      return source.get(key);
    },
  };
}

/** A key of the schema: whether a stack must set it, and the value parseStackConfig gives it when unset. */
export interface SchemaKey {
  key: string;
  required: boolean;
  /** undefined: none (the feature is off, or derived, e.g. the default VPC). */
  default: unknown;
}

/** The smallest config the schema accepts, from which the keys and their defaults are read. */
const minimalConfig: Record<string, string> = {
  targets: JSON.stringify([{ name: "main", engine: "postgres", host: "db.example.com", database: "main", user: "backup" }]),
  schedule: "rate(1 hour)",
};

/**
 * Every key parseStackConfig reads, found by parsing the minimal config through a recording source (not
 * kept by hand beside the schema, so a key added there is here too), with the defaults it applied. A key
 * is required when leaving it out makes the schema refuse the config naming that key.
 */
export function schemaKeys(stage = "dev"): SchemaKey[] {
  const source = recordingSource({ get: (key) => minimalConfig[key] });
  const parsed = parseStackConfig(source, stage) as unknown as Record<string, unknown>;
  return source.asked.map((key) => {
    let required = false;
    try {
      parseStackConfig({ get: (k) => (k === key ? undefined : minimalConfig[k]) }, stage);
    } catch (err) {
      required = err instanceof ConfigError && err.message.startsWith(`${project}:${key}:`);
    }
    return { key, required, default: required ? undefined : parsed[key] };
  });
}

