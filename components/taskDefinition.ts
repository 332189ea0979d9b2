/**
 * The container definition and the runner's BACKUP_TARGETS, as pure functions: the resource only
 * wires ARNs into them (see pulumi-awsx's buildTaskDefinitionArgs for the same split).
 */

import { ageIdentitySecretEnv, secretEnvName, type DrillEnvironment, type StackEnvironment, type Target } from "../image/src/contract";
import { targetTaskSize, type StackConfig, type TargetConfig } from "./config";

/**
 * The runner's target list: connection settings, and the names (not values) of the variables holding
 * secrets. Every field is written out (undefined ones vanish in JSON) so that the contract's shape checks
 * each of them; a spread would escape that check.
 */
export function runnerTargets(targets: TargetConfig[]): Target[] {
  return targets.map((t): Target =>
    t.engine === "postgres"
      ? {
          engine: t.engine,
          name: t.name,
          host: t.host,
          port: t.port,
          database: t.database,
          user: t.user,
          passwordEnv: secretEnvName(t),
          options: t.neonEndpoint ? `endpoint=${t.neonEndpoint}` : undefined,
          sslmode: t.sslmode,
          sslrootcert: t.sslrootcert,
          compression: t.compression,
        }
      : { engine: t.engine, name: t.name, uriEnv: secretEnvName(t), database: t.database, pointInTime: t.pointInTime },
  );
}

export const containerName = "backup";
/** The verifier task's one container, and the runner command it runs (image/src/cli.ts). */
export const drillContainerName = "drill";
/** The runner's user in the image (Dockerfile: USER 10001). */
export const runnerUser = "10001:10001";
export const scratchVolume = "tmp";
/**
 * Where the scratch volume is mounted: the one writable path of the task. The image declares a VOLUME at
 * exactly this path with the runner's user as owner (image/Dockerfile; test/image checks they agree).
 */
export const scratchPath = "/tmp";

/** What both task definitions' containers are built from. */
export interface RunnerInputs {
  config: StackConfig;
  image: string;
  bucket: string;
  region: string;
  logGroup: string;
  /** The copy in another region (replicaRegion), which `--replica` reads; absent without one. */
  replica?: { bucket: string; region: string };
}

export interface ContainerInputs extends RunnerInputs {
  /** SSM parameter ARN per target name. */
  secretArns: Record<string, string>;
}

export interface KeyValue {
  name: string;
  value: string;
}

/** The variables both tasks share: where the stage's backups are and which targets it has. */
function stackEnvironment(i: RunnerInputs): StackEnvironment {
  return {
    STAGE: i.config.stage,
    S3_BUCKET: i.bucket,
    AWS_REGION: i.region,
    BACKUP_TARGETS: JSON.stringify(runnerTargets(i.config.targets)),
    BACKUP_TIMEZONE: i.config.scheduleTimezone,
    BACKUP_TARGET_TIMEOUT_SECONDS: String(i.config.targetTimeoutMinutes * 60),
    ...(i.config.encryptionRecipients ? { BACKUP_AGE_RECIPIENTS: i.config.encryptionRecipients.join("\n") } : {}),
    ...(i.replica ? { BACKUP_REPLICA_BUCKET: i.replica.bucket, BACKUP_REPLICA_REGION: i.replica.region } : {}),
  };
}

interface RunnerContainer {
  name: string;
  /** The runner command; the image's CMD (backup) when absent. */
  command?: string[];
  environment: StackEnvironment;
  secrets: { name: string; valueFrom: string }[];
  /** awslogs-stream-prefix: streams are named `<prefix>/<container>/<task id>`. */
  streamPrefix: string;
}

/** The hardening and logging both tasks' containers have; only what they run and what they are given differ. */
function runnerContainer(i: RunnerInputs, c: RunnerContainer): Record<string, unknown> {
  return {
    name: c.name,
    image: i.image,
    essential: true,
    ...(c.command ? { command: c.command } : {}),
    user: runnerUser,
    readonlyRootFilesystem: true,
    // The only writable place: mongodump's private config file lives here, dumps never do; a drill's
    // throwaway server keeps its files here.
    mountPoints: [{ sourceVolume: scratchVolume, containerPath: scratchPath, readOnly: false }],
    // Node as PID 1 would ignore the SIGTERM with which ECS stops a task (a PID 1 gets no default signal
    // actions): an init process runs as PID 1 instead and forwards it to the runner, which then stops
    // its dumps, aborts their uploads and reports each target before stopTimeout ends in SIGKILL.
    linuxParameters: { initProcessEnabled: true },
    environment: Object.entries(c.environment).map(([name, value]): KeyValue => ({ name, value })),
    secrets: c.secrets,
    logConfiguration: {
      logDriver: "awslogs",
      // Blocking, whatever the account's default: since June 2025 ECS defaults to non-blocking, which
      // drops lines when its buffer is full, and the summary lines are the only source of the metrics
      // the stale-backup alarms watch. The runner writes a few lines a minute.
      options: { "awslogs-group": i.logGroup, "awslogs-region": i.region, "awslogs-stream-prefix": c.streamPrefix, mode: "blocking" },
    },
    stopTimeout: 120,
  };
}

/** The one container of the backup task. */
export function buildContainerDefinitions(i: ContainerInputs): Record<string, unknown>[] {
  return [
    runnerContainer(i, {
      name: containerName,
      environment: stackEnvironment(i),
      secrets: i.config.targets.map((t) => ({ name: secretEnvName(t), valueFrom: i.secretArns[t.name] })),
      streamPrefix: i.config.stage,
    }),
  ];
}

export interface DrillContainerInputs extends RunnerInputs {
  /** SSM parameter ARN of the age identity, for a stage whose backups are encrypted. */
  identityArn?: string;
}

/**
 * The one container of the verifier task: the same image and hardening, `drill` instead of `backup`, the
 * stack's variables and the drill's threshold, and no target's secret: a drill restores into a throwaway
 * server of its own and never connects to a source database. Its one possible secret is the age identity
 * that decrypts an encrypted stage's backups. Its log streams have their own prefix
 * (`<stage>-drill/drill/<task id>`) in the same log group.
 */
export function buildDrillContainerDefinitions(i: DrillContainerInputs): Record<string, unknown>[] {
  const environment: DrillEnvironment = { ...stackEnvironment(i), DRILL_MAX_ROW_LOSS_PERCENT: String(i.config.drillMaxRowLossPercent) };
  const secrets = i.identityArn ? [{ name: ageIdentitySecretEnv, valueFrom: i.identityArn }] : [];
  return [runnerContainer(i, { name: drillContainerName, command: ["drill"], environment, secrets, streamPrefix: `${i.config.stage}-drill` })];
}

/**
 * One backup task of a stage: its own task definition, roles and schedule. With isolation per-stage the
 * stage has one, running every target; with per-target one per target, which sees only that target (its
 * secret, its BACKUP_TARGETS entry, its prefix) and has that target's size.
 */
export interface BackupUnit {
  /** The one target of a per-target task; absent for the stage's task. */
  target?: TargetConfig;
  /** The stage's configuration as this task sees it: only its targets, and its own cpu and memory. */
  config: StackConfig;
}

export function backupUnits(config: StackConfig): BackupUnit[] {
  if (config.isolation === "per-stage") return [{ config }];
  return config.targets.map((target) => ({ target, config: { ...config, targets: [target], ...targetTaskSize(config, target) } }));
}

/** A task's size and platform: what differs between the backup and the verifier task besides the container. */
export interface TaskSize {
  cpu: number;
  memory: number;
  ephemeralStorageGiB: number;
  architecture: StackConfig["architecture"];
}

/**
 * The Fargate settings both task definitions share, for one size. The scratch volume is a bind mount
 * without a host path: on Fargate it lives on the task's ephemeral storage, 20 GiB unless
 * `ephemeralStorage` asks for 21-200 ("Use bind mounts with Amazon ECS", considerations,
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html; "Bind mount examples for
 * Amazon ECS", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mount-examples.html), so
 * the size given is the room a drill's restored database has.
 */
export function fargateTaskShape(size: TaskSize) {
  return {
    requiresCompatibilities: ["FARGATE"],
    networkMode: "awsvpc",
    cpu: String(size.cpu),
    memory: String(size.memory),
    ephemeralStorage: size.ephemeralStorageGiB > 20 ? { sizeInGib: size.ephemeralStorageGiB } : undefined,
    runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: size.architecture === "arm64" ? "ARM64" : "X86_64" },
    volumes: [{ name: scratchVolume }],
  };
}

export interface RunTaskInputs {
  region: string;
  cluster: string;
  taskDefinitionArn: string;
  subnets: string[];
  securityGroup: string;
  assignPublicIp: boolean;
}

/** A ready `aws ecs run-task …` command that starts a task now, in the network its schedule uses. */
export function runTaskCommand(i: RunTaskInputs): string {
  return (
    `aws ecs run-task --region ${i.region} --cluster ${i.cluster} --task-definition ${i.taskDefinitionArn} --launch-type FARGATE --count 1 ` +
    `--network-configuration 'awsvpcConfiguration={subnets=[${i.subnets.join(",")}],securityGroups=[${i.securityGroup}],assignPublicIp=${i.assignPublicIp ? "ENABLED" : "DISABLED"}}'`
  );
}
