/**
 * The pure half of `npm run test:aws` (scripts/e2e.ts): the stack's name and config, what the run needs
 * before it may start, the tasks it starts and the network settings of their run-task commands, the
 * backups and drill records a run must leave, the metrics it waits for, and which stacks and resources a
 * killed run left behind. Nothing here talks to AWS or Pulumi.
 */

import { project } from "../../components/config";
import { containerName, drillContainerName } from "../../components/taskDefinition";
import { backupMetrics, drillMetrics, metricDimensions, metricNamespace, type Engine } from "../../image/src/contract";
import { drillsPrefix } from "../../image/src/keys";

/**
 * `e2e-<start time, base-36 seconds>-<4 hex>`: random enough for two runs at once, and the start time
 * lets a later run tell a killed run's stack (old) from one still running (young) without asking anyone.
 * At most 20 characters, as parseStackConfig requires (it names resources and S3 keys).
 */
export const e2eStackPattern = /^e2e-([0-9a-z]{6,8})-([0-9a-f]{4})$/;

export function e2eStackName(startedAt: Date, randomHex: string): string {
  if (!/^[0-9a-f]{4}$/.test(randomHex)) throw new Error(`'${randomHex}' is not 4 hex digits`);
  return `e2e-${Math.floor(startedAt.getTime() / 1000).toString(36)}-${randomHex}`;
}

/** When the run that created this stack started; undefined for a name this script did not make. */
export function e2eStackStartedAt(name: string): Date | undefined {
  const match = e2eStackPattern.exec(name);
  return match ? new Date(parseInt(match[1], 36) * 1000) : undefined;
}

/**
 * The e2e stacks old enough to be a killed run's: a run takes well under this, so a younger stack may
 * belong to a run still going (another terminal, another CI job) and is left alone.
 */
export function leftoverStacks(names: string[], now: Date, minAgeMs: number): string[] {
  return names.filter((name) => {
    const started = e2eStackStartedAt(name);
    return started !== undefined && now.getTime() - started.getTime() >= minAgeMs;
  });
}

/** A killed run's stack file in the project directory (`Pulumi.<stack>.yaml`), by the same rule. */
export function leftoverStackFiles(files: string[], now: Date, minAgeMs: number): string[] {
  return files.filter((f) => {
    const stack = /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1];
    return stack !== undefined && leftoverStacks([stack], now, minAgeMs).length === 1;
  });
}

export const stageTagKey = "db-backup:stage";

export interface TaggedResource {
  ResourceARN?: string;
  Tags?: { Key?: string; Value?: string }[];
}

/** Resources tagged by an e2e stack other than `currentStage`: what a killed run may have left. */
export function taggedLeftovers(resources: TaggedResource[], currentStage?: string): { arn: string; stage: string }[] {
  const found: { arn: string; stage: string }[] = [];
  for (const r of resources) {
    const stage = r.Tags?.find((t) => t.Key === stageTagKey)?.Value;
    if (r.ResourceARN && stage && /^e2e-/.test(stage) && stage !== currentStage) found.push({ arn: r.ResourceARN, stage });
  }
  return found.sort((a, b) => a.stage.localeCompare(b.stage) || a.arn.localeCompare(b.arn));
}

/** The database(s) the ephemeral stack backs up, from E2E_* variables. */
export interface E2eTargets {
  region: string;
  postgres: { host: string; port: number; database: string; user: string; neonEndpoint?: string; sslmode?: string };
  /** Set when E2E_MONGODB_URI is: a MongoDB target as well. */
  mongodb?: { database?: string };
}

/** How long the test waits for a task (the backup, the restore drill) to stop. */
export const taskWaitSeconds = 30 * 60;

export const postgresTargetName = "pg";
export const mongoTargetName = "mongo";

/** One thing the run needs and does not have, and how to get it. */
export interface Need {
  what: string;
  how: string;
}

const envNeeds: { name: string; how: string }[] = [
  { name: "E2E_PG_HOST", how: "the PostgreSQL host Fargate reaches over the internet (e.g. ep-aged-morning-26453078.ap-southeast-1.aws.neon.tech)" },
  { name: "E2E_PG_DATABASE", how: "the database to back up" },
  { name: "E2E_PG_USER", how: "a user that may read it" },
  { name: "E2E_PG_PASSWORD", how: "that user's password (kept as a Pulumi secret and an SSM SecureString, never printed)" },
];

/** Reads the E2E_* variables; every missing or bad one is a Need. */
export function readE2eEnv(env: NodeJS.ProcessEnv): { targets?: E2eTargets; needs: Need[] } {
  const get = (name: string) => env[name]?.trim() || undefined;
  const needs: Need[] = envNeeds.filter((v) => !get(v.name)).map((v) => ({ what: v.name, how: v.how }));
  const region = get("AWS_REGION") ?? get("AWS_DEFAULT_REGION");
  if (!region) needs.push({ what: "AWS_REGION", how: "the region to deploy the stack in (e.g. ap-southeast-1)" });
  const rawPort = get("E2E_PG_PORT") ?? "5432";
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port < 1 || port > 65535) needs.push({ what: "E2E_PG_PORT", how: `'${rawPort}' is not a port (1-65535; default 5432)` });
  const neonEndpoint = get("E2E_NEON_ENDPOINT");
  if (neonEndpoint !== undefined && !/^ep-[a-z0-9-]+$/.test(neonEndpoint)) {
    needs.push({ what: "E2E_NEON_ENDPOINT", how: `'${neonEndpoint}' is not a Neon endpoint ID (like ep-aged-morning-26453078), or leave it unset` });
  }
  if (needs.length > 0) return { needs };
  return {
    needs,
    targets: {
      region: region!,
      postgres: { host: get("E2E_PG_HOST")!, port, database: get("E2E_PG_DATABASE")!, user: get("E2E_PG_USER")!, neonEndpoint, sslmode: get("E2E_PG_SSLMODE") },
      mongodb: get("E2E_MONGODB_URI") ? { database: get("E2E_MONGODB_DATABASE") } : undefined,
    },
  };
}

/** The variables that hold secrets: read once, then removed from the environment children inherit. */
export const secretEnvNames = ["E2E_PG_PASSWORD", "E2E_MONGODB_URI"] as const;

/**
 * The ephemeral stack's config, as `pulumi config set` takes it (`ns:key` → string; targets as JSON,
 * which components/config.ts parses like the YAML list of a stack file). Nothing runs on a schedule
 * (the test starts the task itself), and everything it keeps expires after a day.
 */
export function e2eStackConfig(t: E2eTargets): { plain: Record<string, string>; secrets: { key: string; env: (typeof secretEnvNames)[number] }[] } {
  const targets: Record<string, unknown>[] = [
    {
      name: postgresTargetName,
      engine: "postgres",
      host: t.postgres.host,
      port: t.postgres.port,
      database: t.postgres.database,
      user: t.postgres.user,
      ...(t.postgres.neonEndpoint ? { neonEndpoint: t.postgres.neonEndpoint } : {}),
      ...(t.postgres.sslmode ? { sslmode: t.postgres.sslmode } : {}),
    },
  ];
  const secrets: { key: string; env: (typeof secretEnvNames)[number] }[] = [{ key: `${project}:${postgresTargetName}-password`, env: "E2E_PG_PASSWORD" }];
  if (t.mongodb) {
    targets.push({ name: mongoTargetName, engine: "mongodb", ...(t.mongodb.database ? { database: t.mongodb.database } : {}) });
    secrets.push({ key: `${project}:${mongoTargetName}-uri`, env: "E2E_MONGODB_URI" });
  }
  const ns = (key: string) => `${project}:${key}`;
  return {
    plain: {
      "aws:region": t.region,
      [ns("targets")]: JSON.stringify(targets),
      [ns("schedule")]: "rate(1 day)",
      [ns("scheduleEnabled")]: "false",
      [ns("drillEnabled")]: "false",
      [ns("retryAttempts")]: "0",
      [ns("backupRetentionDays")]: "1",
      [ns("noncurrentRetentionDays")]: "1",
      [ns("logRetentionDays")]: "1",
      [ns("cpu")]: "256",
      [ns("memory")]: "512",
      [ns("imagesToKeep")]: "1",
      // Well within taskWaitSeconds: a hung dump is stopped and reported by the runner, not by the wait.
      [ns("targetTimeoutMinutes")]: "15",
    },
    secrets,
  };
}

export interface RunTaskSettings {
  region: string;
  cluster: string;
  taskDefinition: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: "ENABLED" | "DISABLED";
}

/** Splits a shell command line the way `sh` would for the plain words and single quotes it contains. */
function shellWords(command: string): string[] {
  const words: string[] = [];
  const pattern = /'([^']*)'|(\S+)/g;
  for (const m of command.matchAll(pattern)) words.push(m[1] ?? m[2]);
  return words;
}

/**
 * The settings in the stack's `runTaskCommand` output (`aws ecs run-task --region … --cluster …
 * --task-definition … --network-configuration 'awsvpcConfiguration={subnets=[…],securityGroups=[…],
 * assignPublicIp=…}'`): the stack exports no structured form, and this is what the schedule uses too.
 */
export function parseRunTaskCommand(command: string): RunTaskSettings {
  const words = shellWords(command);
  const flag = (name: string): string => {
    const i = words.indexOf(`--${name}`);
    if (i < 0 || i + 1 >= words.length) throw new Error(`runTaskCommand has no --${name}: ${command}`);
    return words[i + 1];
  };
  const network = /^awsvpcConfiguration=\{subnets=\[([^\]]*)\],securityGroups=\[([^\]]*)\],assignPublicIp=(ENABLED|DISABLED)\}$/.exec(flag("network-configuration"));
  if (!network) throw new Error(`runTaskCommand's --network-configuration is not awsvpcConfiguration={subnets=[…],securityGroups=[…],assignPublicIp=…}: ${command}`);
  const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
  const settings: RunTaskSettings = {
    region: flag("region"),
    cluster: flag("cluster"),
    taskDefinition: flag("task-definition"),
    subnets: list(network[1]),
    securityGroups: list(network[2]),
    assignPublicIp: network[3] as "ENABLED" | "DISABLED",
  };
  if (settings.subnets.length === 0) throw new Error(`runTaskCommand names no subnet: ${command}`);
  if (settings.securityGroups.length === 0) throw new Error(`runTaskCommand names no security group: ${command}`);
  return settings;
}

/**
 * The complete backups under `<stage>/<engine>/<name>/`: a data object whose `<key>.manifest.json` is
 * there too (the runner writes the manifest last, so a manifest means the backup is complete).
 */
export function completeBackups(keys: string[], stage: string, engine: "postgres" | "mongodb", name: string): string[] {
  const prefix = `${stage}/${engine}/${name}/`;
  const present = new Set(keys);
  const suffix = engine === "postgres" ? ".dump" : ".archive.gz";
  return keys.filter((k) => k.startsWith(prefix) && k.endsWith(suffix) && present.has(`${k}.manifest.json`)).sort();
}

/** The targets the run's backup must store and its drill must restore, as e2eStackConfig configures them. */
export function e2eTargetNames(t: E2eTargets): { engine: Engine; name: string }[] {
  return [{ engine: "postgres", name: postgresTargetName }, ...(t.mongodb ? [{ engine: "mongodb" as const, name: mongoTargetName }] : [])];
}

/** One task the run starts from a stack output, and what tells whether it passed. */
export interface E2eTask {
  /** For messages: "backup", "restore drill". */
  what: string;
  /** The stack output that holds its `aws ecs run-task` command. */
  output: "runTaskCommand" | "drillRunTaskCommand";
  /** The container whose exit code decides (components/taskDefinition.ts). */
  container: string;
  /** Its awslogs-stream-prefix: streams are `<prefix>/<container>/<task id>`. */
  streamPrefix: string;
  /** The metric its summary line writes per target, 1 when that target passed. */
  metric: SuccessMetric;
  /** The alarm that watches that metric, which a missing datapoint would set off. */
  alarm: string;
}

/**
 * The tasks a run starts, in order: the backup, then one restore drill of what it stored, each from the
 * stack's own run-task command (the e2e stack schedules neither). The verifier is the task whose role
 * only reads the bucket and whose PostgreSQL server runs inside it on Fargate: nothing but this run
 * starts it on AWS before a stage's first scheduled drill.
 */
export function e2eTasks(stage: string): { backup: E2eTask; drill: E2eTask } {
  return {
    backup: { what: "backup", output: "runTaskCommand", container: containerName, streamPrefix: stage, metric: backupMetrics.success, alarm: "stale-backup" },
    drill: { what: "restore drill", output: "drillRunTaskCommand", container: drillContainerName, streamPrefix: `${stage}-drill`, metric: drillMetrics.success, alarm: "stale-drill" },
  };
}

/** How a task the run started ended, as ECS describes it once STOPPED. */
export interface TaskOutcome {
  taskArn: string;
  /** The deciding container's exit code; undefined when it never ran (image pull, secrets, capacity). */
  exitCode?: number;
  containerReason?: string;
  stopCode?: string;
  stoppedReason?: string;
}

/**
 * `aws logs tail …` for the task's own log stream, `<awslogs-stream-prefix>/<container>/<task id>`
 * ("Amazon ECS container logs for EC2 and Fargate launch types",
 * https://docs.aws.amazon.com/prescriptive-guidance/latest/implementing-logging-monitoring-cloudwatch/ec2-fargate-logs.html).
 */
export function taskLogsCommand(task: E2eTask, taskArn: string, logGroup: string, region: string): string {
  return `aws logs tail ${logGroup} --region ${region} --log-stream-names ${task.streamPrefix}/${task.container}/${taskArn.split("/").pop()}`;
}

/** Why a stopped task failed the run (any exit code but 0, or none), with where its log is; undefined when it passed. */
export function taskFailure(task: E2eTask, outcome: TaskOutcome, logs: string): string | undefined {
  if (outcome.exitCode === 0) return undefined;
  const ecs = [outcome.stopCode, outcome.stoppedReason, outcome.containerReason].filter(Boolean).join("; ");
  return `the ${task.what} task's ${task.container} container ended with exit code ${outcome.exitCode ?? "(none: the container never ran)"}${ecs ? ` (${ecs})` : ""}\nlogs: ${logs}`;
}

/** The newest drill record of a target (`<stage>/drills/<target>/<timestamp>.json`, image/src/keys.ts drillKey), if any. */
export function latestDrillRecordKey(keys: string[], stage: string, target: string): string | undefined {
  const prefix = drillsPrefix(stage, target);
  return keys.filter((k) => k.startsWith(prefix) && k.endsWith(".json")).sort().pop();
}

/**
 * Why a drill record does not prove that this run's backup was restored (image/src/drill.ts DrillRecord);
 * empty when it does: the drill passed, drilled `backupKey`, and counted rows (documents) in at least
 * one table (collection), so a server really ran and held the data.
 */
export function drillRecordProblems(record: unknown, key: string, backupKey: string): string[] {
  if (typeof record !== "object" || record === null) return [`${key} is not a drill record (a JSON object)`];
  const r = record as { success?: unknown; problems?: unknown; counts?: unknown; backupKey?: unknown };
  const problems: string[] = [];
  if (r.success !== true) {
    const why = Array.isArray(r.problems) && r.problems.length > 0 ? r.problems.join("; ") : "no problems recorded";
    problems.push(`${key} says the drill failed (success: ${JSON.stringify(r.success)}): ${why}`);
  }
  if (r.backupKey !== backupKey) problems.push(`${key} drilled ${JSON.stringify(r.backupKey)}, not this run's backup ${backupKey}`);
  const counts = typeof r.counts === "object" && r.counts !== null ? Object.entries(r.counts as Record<string, unknown>) : [];
  if (counts.length === 0) {
    problems.push(`${key} counted no table or collection (counts: ${JSON.stringify(r.counts)}): the restored database was empty, so the drill proves nothing; give E2E_PG_DATABASE at least one table`);
  } else if (!counts.every(([, n]) => typeof n === "number" && Number.isInteger(n) && n >= 0)) {
    problems.push(`${key} has counts that are not row counts: ${JSON.stringify(r.counts)}`);
  }
  return problems;
}

/** Why a success metric did not arrive: what CloudWatch lacks, the alarm it would set off, where the log is. */
export function missingMetric(task: E2eTask, query: MetricQuery, sum: number | undefined, waitedSeconds: number, logs: string): string | undefined {
  if (sum !== undefined && sum >= 1) return undefined;
  const dimensions = query.Dimensions.map((d) => `${d.Name}=${d.Value}`).join(", ");
  const what =
    sum === undefined
      ? `no datapoint within ${waitedSeconds / 60} min: CloudWatch did not extract the ${task.what}'s embedded metric, so the ${task.alarm} alarm would fire`
      : `Sum ${sum}, not >= 1: the ${task.what}'s summary line reported a failure`;
  return `${query.Namespace}/${query.MetricName} for ${dimensions}: ${what}\nlogs: ${logs}`;
}

/** S3's DeleteObjects takes at most 1,000 keys per request. */
export function deletionBatches<T>(entries: T[], size = 1000): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < entries.length; i += size) batches.push(entries.slice(i, i + size));
  return batches;
}

/**
 * One output of every resource of a type in a stack's exported state (`pulumi stack export`): the
 * bucket and the image repository of a stack whose run ended before its outputs were written.
 */
export function stateOutputs(deployment: unknown, type: string, field: string): string[] {
  const resources = (deployment as { deployment?: { resources?: { type?: string; outputs?: Record<string, unknown> }[] } } | undefined)?.deployment?.resources ?? [];
  return resources
    .filter((r) => r.type === type && typeof r.outputs?.[field] === "string")
    .map((r) => r.outputs![field] as string);
}

/** `pg_restore (PostgreSQL) 18.1 (Debian …)` → 18. */
export function postgresMajor(versionOutput: string): number | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)/.exec(versionOutput);
  return match ? Number(match[1]) : undefined;
}

/** The PostgreSQL client major the image installs: `ARG PG_MAJOR=<n>` in image/Dockerfile. */
export function dockerfilePgMajor(dockerfile: string): number | undefined {
  const match = /^ARG PG_MAJOR=(\d+)\s*$/m.exec(dockerfile);
  return match ? Number(match[1]) : undefined;
}

/** What to print when the run cannot start: every need, and how to provide it. */
export function describeNeeds(needs: Need[]): string {
  const width = Math.max(...needs.map((n) => n.what.length));
  return [
    "npm run test:aws deploys a throwaway stack to a real AWS account, runs one backup on Fargate, verifies it, restores it in the verifier task's drill and destroys the stack.",
    "It cannot run here; it needs:",
    ...needs.map((n) => `  ${n.what.padEnd(width)}  ${n.how}`),
    "Optional: E2E_PG_PORT (5432), E2E_PG_SSLMODE, E2E_NEON_ENDPOINT, E2E_MONGODB_URI (adds a MongoDB target) and E2E_MONGODB_DATABASE.",
    "See README, \"Proving it on AWS\".",
  ].join("\n");
}

export interface MetricQuery {
  Namespace: string;
  MetricName: string;
  Dimensions: { Name: string; Value: string }[];
}

/** The metrics the run waits for: a target's backup and a target's restore drill, each 1 when it passed. */
export type SuccessMetric = typeof backupMetrics.success | typeof drillMetrics.success;

/**
 * A target's success metric as the runner's summary line makes it through CloudWatch's embedded metric
 * format (the names and dimensions from the contract the stack's stale alarms read too): a datapoint
 * here is what proves the extraction on AWS.
 */
export function successMetric(metricName: SuccessMetric, stage: string, target: string): MetricQuery {
  const values: Record<(typeof metricDimensions)[number], string> = { Stage: stage, Target: target };
  return { Namespace: metricNamespace, MetricName: metricName, Dimensions: metricDimensions.map((Name) => ({ Name, Value: values[Name] })) };
}

/** The repository and digest of an ECR image reference `<registry>/<repository>@sha256:<hex>`. */
export function parseImageRef(ref: string): { registry: string; repository: string; digest: string } {
  const match = /^([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(ref);
  if (!match) throw new Error(`'${ref}' is not an image reference pinned by digest (<registry>/<repository>@sha256:…)`);
  return { registry: match[1], repository: match[2], digest: match[3] };
}
