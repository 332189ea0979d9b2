/**
 * The container definition and the runner's BACKUP_TARGETS, as pure functions: the resource only
 * wires ARNs into them (see pulumi-awsx's buildTaskDefinitionArgs for the same split).
 */

import { secretEnvName, type StackEnvironment, type Target } from "../image/src/contract";
import type { StackConfig, TargetConfig } from "./config";

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
/** The runner's user in the image (Dockerfile: USER 10001). */
export const runnerUser = "10001:10001";
export const scratchVolume = "tmp";
/**
 * Where the scratch volume is mounted: the one writable path of the task. The image declares a VOLUME at
 * exactly this path with the runner's user as owner (image/Dockerfile; test/image checks they agree).
 */
export const scratchPath = "/tmp";

export interface ContainerInputs {
  config: StackConfig;
  image: string;
  bucket: string;
  region: string;
  logGroup: string;
  /** SSM parameter ARN per target name. */
  secretArns: Record<string, string>;
}

export interface KeyValue {
  name: string;
  value: string;
}

/** The one container of the backup task. */
export function buildContainerDefinitions(i: ContainerInputs): Record<string, unknown>[] {
  const environment: StackEnvironment = {
    STAGE: i.config.stage,
    S3_BUCKET: i.bucket,
    AWS_REGION: i.region,
    BACKUP_TARGETS: JSON.stringify(runnerTargets(i.config.targets)),
    BACKUP_TIMEZONE: i.config.scheduleTimezone,
    BACKUP_TARGET_TIMEOUT_SECONDS: String(i.config.targetTimeoutMinutes * 60),
  };
  return [
    {
      name: containerName,
      image: i.image,
      essential: true,
      user: runnerUser,
      readonlyRootFilesystem: true,
      // The only writable place: mongodump's private config file lives here, dumps never do.
      mountPoints: [{ sourceVolume: scratchVolume, containerPath: scratchPath, readOnly: false }],
      // Node as PID 1 would ignore the SIGTERM with which ECS stops a task (a PID 1 gets no default signal
      // actions): an init process runs as PID 1 instead and forwards it to the runner, which then stops
      // its dumps, aborts their uploads and reports each target before stopTimeout ends in SIGKILL.
      linuxParameters: { initProcessEnabled: true },
      environment: Object.entries(environment).map(([name, value]): KeyValue => ({ name, value })),
      secrets: i.config.targets.map((t) => ({ name: secretEnvName(t), valueFrom: i.secretArns[t.name] })),
      logConfiguration: {
        logDriver: "awslogs",
        // Blocking, whatever the account's default: since June 2025 ECS defaults to non-blocking, which
        // drops lines when its buffer is full, and the summary lines are the only source of the metrics
        // the stale-backup alarms watch. The runner writes a few lines a minute.
        options: { "awslogs-group": i.logGroup, "awslogs-region": i.region, "awslogs-stream-prefix": i.config.stage, mode: "blocking" },
      },
      stopTimeout: 120,
    },
  ];
}
