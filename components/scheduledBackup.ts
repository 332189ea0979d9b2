import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as dockerBuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { backupMetrics, drillMetrics, metricNamespace } from "../image/src/contract";
import {
  backupSizeAlarmEvaluation,
  deadLetterAlarmEvaluation,
  failedDeliveryAlarmEvaluation,
  failureRuleIds,
  replicationDimensions,
  replicationFailureNotification,
  replicationLagAlarmEvaluation,
  replicationLatencyMetric,
  staleBackupAlarmEvaluation,
  taskFailureRules,
} from "./alerts";
import { lockedDownBucket, type LockedDownBucket } from "./bucket";
import { drillIdentityKey, needsDrillIdentity, secretKeyOf, type StackConfig, type TargetConfig } from "./config";
import {
  alertTopicPolicy,
  assumeRolePolicy,
  type BucketKeySetting,
  executionRolePolicy,
  type PolicyDocument,
  type ReplicaInputs,
  replicationRolePolicy,
  schedulerRolePolicy,
  taskRolePolicy,
  type VerifierRoleInputs,
  verifierRolePolicy,
} from "./policies";
import { dashboardBody, dashboardUrl } from "./dashboard";
import { backupUnits, buildContainerDefinitions, buildDrillContainerDefinitions, fargateTaskShape, runTaskCommand, type BackupUnit } from "./taskDefinition";

/** One scheduled task family: the backup's (the stage's, or one target's) or the restore drill's. */
interface ScheduledTask {
  /** What the task is, in descriptions. */
  what: string;
  expression: string;
  enabled: boolean;
  /** The task definition family, also the prefix of its schedule's and scheduler role's resource names. */
  family: string;
  taskDefinition: aws.ecs.TaskDefinition;
  executionRole: aws.iam.Role;
  taskRole: aws.iam.Role;
}

export interface ScheduledBackupArgs {
  /** The validated stack configuration (components/config.ts); its defaults are applied there. */
  config: StackConfig;
  /** The secret value per target name: its PostgreSQL password or MongoDB connection string. */
  secrets: Record<string, pulumi.Input<string>>;
  /** The age identity the verifier decrypts drills with (secret config drillAgeIdentity); needed when the stage encrypts and drills. */
  drillAgeIdentity?: pulumi.Input<string>;
  /** Build context of the backup image. Default: the repository root (the Dockerfile is image/Dockerfile). */
  imageContext?: string;
}

/**
 * One stage's scheduled backup: the image in ECR, an ECS cluster and Fargate task definition, its
 * secrets in SSM Parameter Store, the log group, least-privilege roles, an EventBridge Scheduler
 * schedule with retries and a dead-letter queue, the backup bucket, and alerts for every failure (with
 * `isolation: per-target`, the task definition, its roles and its schedule once per target); and
 * beside it the verifier: a task definition of the same image that restores the latest backups for real
 * (`drill`), with its own roles and schedule.
 */
export class ScheduledBackup extends pulumi.ComponentResource {
  /** Name of the bucket the backups are written to. */
  public readonly bucketName: pulumi.Output<string>;
  /** Name of the ECS cluster the task runs on. */
  public readonly clusterName: pulumi.Output<string>;
  /** ARN of the current backup task definition revision; with per-target isolation, undefined (see targetTasks). */
  public readonly taskDefinitionArn: pulumi.Output<string | undefined>;
  /** Name of the CloudWatch log group of the task. */
  public readonly logGroupName: pulumi.Output<string>;
  /** Name of the backup's EventBridge Scheduler schedule; with per-target isolation, undefined (see targetTasks). */
  public readonly scheduleName: pulumi.Output<string | undefined>;
  /** The image the task runs, pinned by digest. */
  public readonly imageRef: pulumi.Output<string>;
  /** ARN of the SNS topic that receives failure alerts. */
  public readonly alertTopicArn: pulumi.Output<string>;
  /**
   * A ready `aws ecs run-task …` command that starts a backup of the stage now, with the schedule's
   * network settings; with per-target isolation one such command per line, one per target's task.
   */
  public readonly runTaskCommand: pulumi.Output<string>;
  /** With per-target isolation, per target name: its task definition ARN, schedule name and run-task command. Empty per-stage. */
  public readonly targetTasks: pulumi.Output<Record<string, { taskDefinitionArn: string; scheduleName: string; runTaskCommand: string }>>;
  /** ARN of the current revision of the verifier's (restore drill) task definition. */
  public readonly drillTaskDefinitionArn: pulumi.Output<string>;
  /** Name of the EventBridge Scheduler schedule of the restore drills. */
  public readonly drillScheduleName: pulumi.Output<string>;
  /** A ready `aws ecs run-task …` command that starts a restore drill now, with the schedule's network settings. */
  public readonly drillRunTaskCommand: pulumi.Output<string>;
  /** The stage's CloudWatch dashboard in the console. */
  public readonly dashboardUrl: pulumi.Output<string>;

  constructor(name: string, args: ScheduledBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-backup:index:ScheduledBackup", name, {}, opts);
    const cfg = args.config;
    const parent = { parent: this };
    const tags = { "db-backup:stage": cfg.stage };

    const identity = aws.getCallerIdentityOutput({}, parent);
    const region = aws.getRegionOutput({}, parent).region;
    const partition = aws.getPartitionOutput({}, parent).partition;
    const trustedBy = (service: string) => pulumi.jsonStringify(identity.accountId.apply((account) => assumeRolePolicy(service, account)));

    // Image: built from image/, pushed to this stage's repository, referenced by digest.
    const repository = new aws.ecr.Repository(`${name}-image`, {
      imageScanningConfiguration: { scanOnPush: true },
      // Destroying a stage takes its images along (they are rebuilt from image/ on every deploy); ECR
      // refuses to delete a repository that holds images otherwise. prod keeps that refusal.
      forceDelete: cfg.stage !== "prod",
      imageTagMutability: "MUTABLE",
      encryptionConfigurations: [{ encryptionType: "AES256" }],
      tags,
    }, parent);
    new aws.ecr.LifecyclePolicy(`${name}-image`, {
      repository: repository.name,
      policy: pulumi.jsonStringify({
        rules: [{
          rulePriority: 1,
          description: `keep the last ${cfg.imagesToKeep} images`,
          selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: cfg.imagesToKeep },
          action: { type: "expire" },
        }],
      }),
    }, parent);
    const registryAuth = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, parent);
    const context = args.imageContext ?? path.join(__dirname, "..");
    const image = new dockerBuild.Image(`${name}-image`, {
      context: { location: context },
      dockerfile: { location: path.join(context, "image", "Dockerfile") },
      platforms: [cfg.architecture === "arm64" ? "linux/arm64" : "linux/amd64"],
      push: true,
      buildOnPreview: false,
      tags: [pulumi.interpolate`${repository.repositoryUrl}:${cfg.stage}`],
      registries: [{ address: repository.repositoryUrl, username: registryAuth.userName, password: pulumi.secret(registryAuth.password) }],
    }, parent);
    this.imageRef = pulumi.interpolate`${repository.repositoryUrl}@${image.digest}`;

    // Bucket: created and locked down, or an existing one named in config.
    let bucketName: pulumi.Output<string>;
    let kmsKeyArn: pulumi.Output<string> | undefined;
    let bucketKey: BucketKeySetting = "unknown";
    let primary: LockedDownBucket | undefined;
    if (cfg.bucketName) {
      bucketName = pulumi.output(cfg.bucketName);
      // Its Bucket Key setting is its owner's to change, so the grant allows either context (policies.ts).
      if (cfg.bucketKmsKeyArn) kmsKeyArn = pulumi.output(cfg.bucketKmsKeyArn);
    } else {
      primary = lockedDownBucket(`${name}-backups`, cfg, `db-backup ${cfg.stage} backups`, parent);
      bucketName = primary.bucket.bucket;
      kmsKeyArn = primary.kmsKeyArn;
      bucketKey = kmsKeyArn ? "enabled" : "disabled";
    }
    this.bucketName = bucketName;
    const bucketArn = pulumi.interpolate`arn:${partition}:s3:::${bucketName}`;

    // The copy in another region (replicaRegion): a replica bucket kept like the primary, S3 Replication
    // of this stage's prefix with a role of its own, and an alarm when the copy falls behind.
    let replica:
      | { bucketName: pulumi.Output<string>; region: string; inputs: pulumi.Output<ReplicaInputs>; lagAlarm: aws.cloudwatch.MetricAlarm; lagDimensions: pulumi.Output<Record<string, string>> }
      | undefined;
    if (primary && cfg.replicaRegion) {
      const replicaRegion = cfg.replicaRegion;
      const provider = new aws.Provider(`${name}-replica`, { region: replicaRegion }, parent);
      const inReplicaRegion = { parent: this, provider };
      const copy = lockedDownBucket(`${name}-replica`, cfg, `db-backup ${cfg.stage} backups, replica in ${replicaRegion}`, inReplicaRegion);
      const replicaInputs = pulumi.all([copy.bucket.arn, copy.kmsKeyArn]).apply(([arn, key]): ReplicaInputs => ({ bucketArn: arn, kms: key ? { keyArn: key, bucketKey: "enabled" } : undefined }));
      const replicationRole = new aws.iam.Role(`${name}-replication`, {
        description: `db-backup ${cfg.stage}: lets S3 copy ${cfg.stage}/ to the replica in ${replicaRegion}, and nothing else`,
        assumeRolePolicy: trustedBy("s3.amazonaws.com"),
        tags,
      }, parent);
      const replicationPolicy = new aws.iam.RolePolicy(`${name}-replication`, {
        role: replicationRole.id,
        policy: pulumi.jsonStringify(pulumi.all([primary.bucket.arn, primary.kmsKeyArn, replicaInputs]).apply(([sourceArn, sourceKey, replicaOf]) => replicationRolePolicy({
          sourceBucketArn: sourceArn,
          stage: cfg.stage,
          sourceKms: sourceKey ? { keyArn: sourceKey, bucketKey: "enabled" } : undefined,
          replica: replicaOf,
          objectLock: cfg.objectLock !== undefined,
        }))),
      }, parent);
      // One rule for the stage's prefix, V2 (a Filter), so delete markers are replicated only when asked
      // and they are not: a delete on the primary, by an intruder or by mistake, never reaches the copy
      // ("Replicating delete markers between buckets", S3 User Guide,
      // https://docs.aws.amazon.com/AmazonS3/latest/userguide/delete-marker-replication.html). The
      // lifecycle expires the copy's objects on its own. SSE-KMS objects are replicated only when the rule
      // opts in (sseKmsEncryptedObjects) and names the replica's key ("Replicating encrypted objects").
      // Replication metrics without Replication Time Control: the lag alarm needs the metrics, not the
      // SLA (alerts.ts replicationLagAlarmEvaluation).
      const ruleId = `${cfg.stage}-to-${replicaRegion}`;
      new aws.s3.BucketReplicationConfig(`${name}-replication`, {
        bucket: primary.bucket.id,
        role: replicationRole.arn,
        rules: [{
          id: ruleId,
          status: "Enabled",
          priority: 1,
          filter: { prefix: `${cfg.stage}/` },
          deleteMarkerReplication: { status: "Disabled" },
          sourceSelectionCriteria: primary.kmsKeyArn ? { sseKmsEncryptedObjects: { status: "Enabled" } } : undefined,
          destination: {
            bucket: copy.bucket.arn,
            storageClass: "STANDARD",
            encryptionConfiguration: copy.kmsKeyArn ? { replicaKmsKeyId: copy.kmsKeyArn } : undefined,
            metrics: { status: "Enabled" },
          },
        }],
      }, { ...parent, dependsOn: [...primary.ready, ...copy.ready, replicationPolicy] });
      // S3 publishes the rule's metrics in the replica's region, and an alarm notifies a topic of its own
      // region: the replica's alerts go to a topic there, with the same e-mail subscription.
      const replicaAlerts = new aws.sns.Topic(`${name}-replica-alerts`, { tags }, inReplicaRegion);
      new aws.sns.TopicPolicy(`${name}-replica-alerts`, {
        arn: replicaAlerts.arn,
        policy: pulumi.jsonStringify(pulumi.all([replicaAlerts.arn, identity.accountId]).apply(([topic, account]) => alertTopicPolicy(topic, [], account))),
      }, inReplicaRegion);
      if (cfg.alertEmail) {
        new aws.sns.TopicSubscription(`${name}-replica-alerts-email`, { topic: replicaAlerts.arn, protocol: "email", endpoint: cfg.alertEmail }, inReplicaRegion);
      }
      const lagDimensions = pulumi.all([primary.bucket.bucket, copy.bucket.bucket]).apply(([source, destination]) => replicationDimensions(source, destination, ruleId));
      const lagAlarm = new aws.cloudwatch.MetricAlarm(`${name}-replication-lag`, {
        alarmDescription: `db-backup ${cfg.stage}: the copy in ${replicaRegion} is more than an hour behind the backups (INSUFFICIENT_DATA: the replica stopped reporting; see README "A copy in another region")`,
        namespace: replicationLatencyMetric.namespace,
        metricName: replicationLatencyMetric.metricName,
        dimensions: lagDimensions,
        ...replicationLagAlarmEvaluation(),
        alarmActions: [replicaAlerts.arn],
        okActions: [replicaAlerts.arn],
        insufficientDataActions: [replicaAlerts.arn],
        tags,
      }, inReplicaRegion);
      replica = { bucketName: copy.bucket.bucket, region: replicaRegion, inputs: replicaInputs, lagAlarm, lagDimensions };
    }

    // Cluster and logs.
    const cluster = new aws.ecs.Cluster(`${name}-cluster`, {
      settings: [{ name: "containerInsights", value: cfg.containerInsights ? "enabled" : "disabled" }],
      tags,
    }, parent);
    const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, { retentionInDays: cfg.logRetentionDays, tags }, parent);

    // Secrets: one SecureString parameter per target, read by the execution role at task start.
    const parameters = cfg.targets.map((t) => new aws.ssm.Parameter(`${name}-${secretKeyOf(t)}`, {
      name: `/db-backup/${cfg.stage}/${secretKeyOf(t)}`,
      description: `db-backup ${cfg.stage}: ${t.engine === "postgres" ? "password" : "connection string"} of target ${t.name}`,
      type: "SecureString",
      value: pulumi.secret(args.secrets[t.name]),
      tags,
    }, parent));
    const secretArns = pulumi.all(parameters.map((p) => p.arn)).apply((arns) => Object.fromEntries(cfg.targets.map((t, i) => [t.name, arns[i]])));
    // The drills' age identity: a parameter of its own that only the verifier's execution role reads.
    if (needsDrillIdentity(cfg) && args.drillAgeIdentity === undefined) {
      throw new Error(`${drillIdentityKey} is missing: encrypted backups are drilled with it (pulumi config set --secret ${drillIdentityKey} "$(grep AGE-SECRET-KEY <identity file>)"), or set drillEnabled false`);
    }
    const drillIdentity = cfg.encryptionRecipients && args.drillAgeIdentity !== undefined
      ? new aws.ssm.Parameter(`${name}-${drillIdentityKey}`, {
          name: `/db-backup/${cfg.stage}/${drillIdentityKey}`,
          description: `db-backup ${cfg.stage}: the age identity the restore drills decrypt backups with`,
          type: "SecureString",
          value: pulumi.secret(args.drillAgeIdentity),
          tags,
        }, parent)
      : undefined;

    // Roles: the backup's and the verifier's, each with an execution role of its own (the verifier's reads no secret).
    const executionRole = (id: string, description: string, parameterArns: pulumi.Input<string>[]) => {
      const role = new aws.iam.Role(id, {
        description,
        assumeRolePolicy: trustedBy("ecs-tasks.amazonaws.com"),
        tags,
      }, parent);
      new aws.iam.RolePolicy(id, {
        role: role.id,
        policy: pulumi.jsonStringify(pulumi.all([repository.arn, logGroup.arn, pulumi.all(parameterArns)])
          .apply(([repositoryArn, logGroupArn, arns]) => executionRolePolicy({ repositoryArn, logGroupArn, parameterArns: arns }))),
      }, parent);
      return role;
    };
    /** A task role: the policy builder given the bucket, its key, and the targets (per-target backup) or the replica (verifier) it reaches. */
    const s3Role = (id: string, description: string, policy: (i: VerifierRoleInputs) => PolicyDocument, reach: { targets?: TargetConfig[]; replica?: pulumi.Output<ReplicaInputs> } = {}) => {
      const role = new aws.iam.Role(id, { description, assumeRolePolicy: trustedBy("ecs-tasks.amazonaws.com"), tags }, parent);
      new aws.iam.RolePolicy(id, {
        role: role.id,
        policy: pulumi.jsonStringify(pulumi.all([bucketArn, kmsKeyArn, reach.replica]).apply(([arn, key, replicaOf]) =>
          policy({
            bucketArn: arn,
            stage: cfg.stage,
            kms: key ? { keyArn: key, bucketKey } : undefined,
            targets: reach.targets?.map((t) => ({ engine: t.engine, name: t.name })),
            replica: replicaOf,
          }))),
      }, parent);
      return role;
    };
    const drillExecutionRole = executionRole(
      `${name}-drill-execution`,
      `db-backup ${cfg.stage}: lets ECS pull the image and write the restore drill's logs${drillIdentity ? " and read its age identity" : " (no secrets)"}`,
      drillIdentity ? [drillIdentity.arn] : [],
    );
    const drillRole = s3Role(`${name}-drill`, `db-backup ${cfg.stage}: lets the restore drill list and read ${cfg.stage}/ and write under ${cfg.stage}/drills/${replica ? ", in the bucket and its replica" : ""}, nothing else`, verifierRolePolicy, { replica: replica?.inputs });

    // The backup tasks, one path for both isolation modes: the stage's one task (per-stage), or one per
    // target (per-target), each with its own execution role (its targets' parameters only), task role
    // (its targets' prefixes only), size and task definition family.
    const backupTask = (unit: BackupUnit) => {
      const t = unit.target;
      const id = t ? `${name}-${t.name}` : name;
      const executionRoleOfTask = executionRole(
        `${id}-execution`,
        `db-backup ${cfg.stage}: lets ECS pull the image, write logs and read ${t ? `the secret of target ${t.name}` : "the task's secrets"}`,
        unit.config.targets.map((u) => parameters[cfg.targets.indexOf(u)].arn),
      );
      const taskRoleOfTask = t
        ? s3Role(`${id}-task`, `db-backup ${cfg.stage}: lets the backup of ${t.name} write new objects under ${cfg.stage}/${t.engine}/${t.name}/ and nothing else`, taskRolePolicy, { targets: [t] })
        : s3Role(`${id}-task`, `db-backup ${cfg.stage}: lets the backup write new objects under ${cfg.stage}/<engine>/ and nothing else`, taskRolePolicy);
      const taskDefinition = new aws.ecs.TaskDefinition(`${id}-task`, {
        family: id,
        ...fargateTaskShape(unit.config),
        executionRoleArn: executionRoleOfTask.arn,
        taskRoleArn: taskRoleOfTask.arn,
        containerDefinitions: pulumi.jsonStringify(pulumi.all([this.imageRef, bucketName, region, logGroup.name, secretArns])
          .apply(([imageRef, bucket, reg, group, arns]) => buildContainerDefinitions({ config: unit.config, image: imageRef, bucket, region: reg, logGroup: group, secretArns: arns }))),
        tags,
      }, parent);
      return { target: t, family: id, taskDefinition, executionRole: executionRoleOfTask, taskRole: taskRoleOfTask };
    };
    const backups = backupUnits(cfg).map(backupTask);

    // The verifier (the restore drill): one task per stage, sized for a restore.
    const drillFamily = `${name}-drill`;
    const drillTaskDefinition = new aws.ecs.TaskDefinition(`${name}-drill`, {
      family: drillFamily,
      ...fargateTaskShape({ cpu: cfg.drillCpu, memory: cfg.drillMemory, ephemeralStorageGiB: cfg.drillEphemeralStorageGiB, architecture: cfg.architecture }),
      executionRoleArn: drillExecutionRole.arn,
      taskRoleArn: drillRole.arn,
      containerDefinitions: pulumi.jsonStringify(pulumi.all([this.imageRef, bucketName, region, logGroup.name, drillIdentity?.arn, replica?.bucketName])
        .apply(([imageRef, bucket, reg, group, identityArn, replicaBucket]) => buildDrillContainerDefinitions({
          config: cfg, image: imageRef, bucket, region: reg, logGroup: group, identityArn,
          replica: replicaBucket && replica ? { bucket: replicaBucket, region: replica.region } : undefined,
        }))),
      tags,
    }, parent);

    // Network: egress only; the default VPC with a public IP unless subnets are given.
    const vpcId = cfg.vpcId ? pulumi.output(cfg.vpcId) : aws.ec2.getVpcOutput({ default: true }, parent).id;
    const subnetIds = cfg.subnetIds
      ? pulumi.output(cfg.subnetIds)
      : aws.ec2.getSubnetsOutput({ filters: [{ name: "vpc-id", values: [vpcId] }, { name: "default-for-az", values: ["true"] }] }, parent).ids;
    const securityGroup = new aws.ec2.SecurityGroup(`${name}-task`, {
      description: `db-backup ${cfg.stage}: no inbound; outbound to databases and S3`,
      vpcId,
      ingress: [],
      egress: [{ description: "databases and AWS APIs", protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
      tags,
    }, parent);

    // Schedules: EventBridge Scheduler, in the stage's time zone, with retries and one dead-letter queue.
    // Each schedule has a role of its own that may start only its family and pass only that family's roles.
    const deadLetters = new aws.sqs.Queue(`${name}-schedule-dlq`, { messageRetentionSeconds: 14 * 24 * 3600, sqsManagedSseEnabled: true, tags }, parent);
    const network = { subnets: subnetIds, securityGroups: [securityGroup.id], assignPublicIp: cfg.assignPublicIp };
    const scheduleTask = (t: ScheduledTask) => {
      const schedulerRole = new aws.iam.Role(`${t.family}-scheduler`, {
        description: `db-backup ${cfg.stage}: lets EventBridge Scheduler start the ${t.what}`,
        assumeRolePolicy: trustedBy("scheduler.amazonaws.com"),
        tags,
      }, parent);
      new aws.iam.RolePolicy(`${t.family}-scheduler`, {
        role: schedulerRole.id,
        policy: pulumi.jsonStringify(pulumi.all([region, identity.accountId, partition, cluster.arn, t.executionRole.arn, t.taskRole.arn, deadLetters.arn])
          .apply(([reg, accountId, part, clusterArn, executionRoleArn, taskRoleArn, deadLetterQueueArn]) =>
            schedulerRolePolicy({ region: reg, accountId, partition: part, family: t.family, clusterArn, executionRoleArn, taskRoleArn, deadLetterQueueArn }))),
      }, parent);
      return new aws.scheduler.Schedule(`${t.family}-schedule`, {
        description: `db-backup ${cfg.stage}: ${t.what}, ${t.expression} (${cfg.scheduleTimezone})`,
        scheduleExpression: t.expression,
        scheduleExpressionTimezone: cfg.scheduleTimezone,
        state: t.enabled ? "ENABLED" : "DISABLED",
        flexibleTimeWindow: { mode: "OFF" },
        target: {
          arn: cluster.arn,
          roleArn: schedulerRole.arn,
          ecsParameters: {
            taskDefinitionArn: t.taskDefinition.arn,
            launchType: "FARGATE",
            platformVersion: "LATEST",
            taskCount: 1,
            enableEcsManagedTags: true,
            propagateTags: "TASK_DEFINITION",
            networkConfiguration: network,
          },
          retryPolicy: { maximumRetryAttempts: cfg.retryAttempts, maximumEventAgeInSeconds: cfg.retryWindowSeconds },
          deadLetterConfig: { arn: deadLetters.arn },
        },
      }, parent);
    };
    // Each backup task has its own schedule (and scheduler role), all on the stage's expression.
    const schedules = backups.map((b) => scheduleTask({
      ...b, what: b.target ? `backup task of ${b.target.name}` : "backup task", expression: cfg.schedule, enabled: cfg.scheduleEnabled,
    }));
    const drillSchedule = scheduleTask({
      what: "restore drill task", expression: cfg.drillSchedule, enabled: cfg.drillEnabled,
      family: drillFamily, taskDefinition: drillTaskDefinition, executionRole: drillExecutionRole, taskRole: drillRole,
    });

    // Alerts: a failed or unstartable task, a schedule that could not start it, and no success for too long.
    const alerts = new aws.sns.Topic(`${name}-alerts`, { tags }, parent);
    const rules = pulumi.all([cluster.arn, cluster.name, region, identity.accountId, partition, logGroup.name])
      .apply(([clusterArn, clusterName, reg, account, part, logGroupName]) => taskFailureRules({
        stage: cfg.stage,
        clusterArn,
        clusterName,
        taskDefinitionFamilyArnPrefixes: {
          backup: backups.map((b) => `arn:${part}:ecs:${reg}:${account}:task-definition/${b.family}:`),
          drill: [`arn:${part}:ecs:${reg}:${account}:task-definition/${drillFamily}:`],
        },
        region: reg,
        logGroupName,
      }));
    // Every alarm of the stage, for the dashboard's alarm widget.
    const alarms: aws.cloudwatch.MetricAlarm[] = replica ? [replica.lagAlarm] : [];
    // The rules' kinds are fixed (alerts.ts); only their contents wait on ARNs.
    const failureRules = failureRuleIds.map((id) => {
      const rule = rules.apply((all) => all.find((r) => r.id === id)!);
      const eventRule = new aws.cloudwatch.EventRule(`${name}-${id}`, {
        description: rule.description,
        eventPattern: pulumi.jsonStringify(rule.pattern),
        tags,
      }, parent);
      new aws.cloudwatch.EventTarget(`${name}-${id}`, {
        rule: eventRule.name,
        arn: alerts.arn,
        inputTransformer: { inputPaths: rule.inputPaths, inputTemplate: rule.inputTemplate },
      }, parent);
      alarms.push(new aws.cloudwatch.MetricAlarm(`${name}-${id}-undelivered`, {
        alarmDescription: `db-backup ${cfg.stage}: EventBridge could not deliver a '${id}' alert to the alerts topic (a ${id.startsWith("drill") ? "restore drill" : "backup"} task failed; see the task's log)`,
        namespace: "AWS/Events",
        metricName: "FailedInvocations",
        dimensions: { RuleName: eventRule.name },
        ...failedDeliveryAlarmEvaluation(),
        alarmActions: [alerts.arn],
        tags,
      }, parent));
      return eventRule;
    });
    // With a replica, the source bucket notifies the topic of each object S3 failed to copy (alerts.ts).
    const replicated = replica ? primary : undefined;
    const alertsPolicy = new aws.sns.TopicPolicy(`${name}-alerts`, {
      arn: alerts.arn,
      policy: pulumi.jsonStringify(pulumi.all([alerts.arn, pulumi.all(failureRules.map((r) => r.arn)), identity.accountId, replicated?.bucket.arn])
        .apply(([topic, ruleArns, account, sourceArn]) => alertTopicPolicy(topic, ruleArns, account, sourceArn ? [sourceArn] : []))),
    }, parent);
    if (replicated) {
      // After the topic policy: S3 publishes a test message to the topic when the notification is set.
      new aws.s3.BucketNotification(`${name}-replication-failed`, {
        bucket: replicated.bucket.id,
        topics: [alerts.arn.apply(replicationFailureNotification)],
      }, { ...parent, dependsOn: [alertsPolicy] });
    }
    if (cfg.alertEmail) {
      new aws.sns.TopicSubscription(`${name}-alerts-email`, { topic: alerts.arn, protocol: "email", endpoint: cfg.alertEmail }, parent);
    }
    alarms.push(new aws.cloudwatch.MetricAlarm(`${name}-schedule-dlq`, {
      alarmDescription: `db-backup ${cfg.stage}: the scheduler could not start the backup or the restore drill task (see the dead-letter queue)`,
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: deadLetters.name },
      ...deadLetterAlarmEvaluation(),
      alarmActions: [alerts.arn],
      tags,
    }, parent));
    // A target's stale alarm: no success of `metricName` for `hours` (alerts.ts); silent while actions are off.
    const staleAlarm = (t: TargetConfig, suffix: string, what: string, metricName: string, hours: number, actionsEnabled: boolean) =>
      new aws.cloudwatch.MetricAlarm(`${name}-${t.name}-${suffix}`, {
        alarmDescription: `db-backup ${cfg.stage}: ${what} of ${t.engine}/${t.name} for ${hours} hours (INSUFFICIENT_DATA: they stopped reporting)`,
        namespace: metricNamespace,
        metricName,
        dimensions: { Stage: cfg.stage, Target: t.name },
        ...staleBackupAlarmEvaluation(hours),
        actionsEnabled,
        alarmActions: [alerts.arn],
        okActions: [alerts.arn],
        insufficientDataActions: [alerts.arn],
        tags,
      }, parent);
    for (const t of cfg.targets) {
      // A paused schedule makes no backups: its stale alarms say nothing until it runs again.
      alarms.push(staleAlarm(t, "stale", "no successful backup", backupMetrics.success, cfg.staleAfterHours, cfg.scheduleEnabled));
    }

    // Restore drills and backup sizes: two more alarms per target, to the same topic; then the dashboard.
    for (const t of cfg.targets) {
      // Drills switched off run no drills: their alarms say nothing until they run again.
      alarms.push(staleAlarm(t, "stale-drill", "no passed restore drill", drillMetrics.success, cfg.drillStaleAfterHours, cfg.drillEnabled));
      alarms.push(new aws.cloudwatch.MetricAlarm(`${name}-${t.name}-small-backup`, {
        alarmDescription: `db-backup ${cfg.stage}: the latest backup of ${t.engine}/${t.name} is far smaller than usual (below its anomaly detection band): look for dropped tables or a dump of the wrong database`,
        ...backupSizeAlarmEvaluation(metricNamespace, backupMetrics.bytes, { Stage: cfg.stage, Target: t.name }),
        alarmActions: [alerts.arn],
        okActions: [alerts.arn],
        tags,
      }, parent));
    }
    const dashboard = new aws.cloudwatch.Dashboard(`${name}-dashboard`, {
      dashboardName: name,
      dashboardBody: pulumi.jsonStringify(pulumi.all([region, pulumi.all(alarms.map((a) => a.arn)), deadLetters.name, logGroup.name, replica?.lagDimensions])
        .apply(([reg, alarmArns, deadLetterQueueName, logGroupName, lagDimensions]) => dashboardBody({
          stage: cfg.stage,
          region: reg,
          targets: cfg.targets.map((t) => ({ name: t.name, engine: t.engine })),
          alarmArns,
          deadLetterQueueName,
          logGroupName,
          replication: replica && lagDimensions ? { region: replica.region, dimensions: lagDimensions, maxLagSeconds: replicationLagAlarmEvaluation().threshold } : undefined,
        }))),
    }, parent);
    this.dashboardUrl = pulumi.all([region, dashboard.dashboardName]).apply(([reg, dashboardName]) => dashboardUrl(reg, dashboardName));

    this.clusterName = cluster.name;
    const perStage = cfg.isolation === "per-stage";
    this.taskDefinitionArn = perStage ? backups[0].taskDefinition.arn : pulumi.output(undefined);
    this.logGroupName = logGroup.name;
    this.scheduleName = perStage ? schedules[0].name : pulumi.output(undefined);
    this.alertTopicArn = alerts.arn;
    const runNow = (td: aws.ecs.TaskDefinition) => pulumi.all([region, cluster.name, td.arn, subnetIds, securityGroup.id])
      .apply(([reg, clusterName, taskDefinitionArn, subnets, group]) => runTaskCommand({ region: reg, cluster: clusterName, taskDefinitionArn, subnets, securityGroup: group, assignPublicIp: cfg.assignPublicIp }));
    const commands = backups.map((b) => runNow(b.taskDefinition));
    this.runTaskCommand = pulumi.all(commands).apply((lines) => lines.join("\n"));
    this.targetTasks = perStage
      ? pulumi.output<Record<string, { taskDefinitionArn: string; scheduleName: string; runTaskCommand: string }>>({})
      : pulumi.all(backups.map((b, i) => pulumi.all([b.taskDefinition.arn, schedules[i].name, commands[i]])))
          .apply((all) => Object.fromEntries(all.map(([taskDefinitionArn, scheduleName, runTaskCommand], i) => [backups[i].target!.name, { taskDefinitionArn, scheduleName, runTaskCommand }])));
    this.drillTaskDefinitionArn = drillTaskDefinition.arn;
    this.drillScheduleName = drillSchedule.name;
    this.drillRunTaskCommand = runNow(drillTaskDefinition);

    this.registerOutputs({
      bucketName: this.bucketName,
      clusterName: this.clusterName,
      taskDefinitionArn: this.taskDefinitionArn,
      logGroupName: this.logGroupName,
      scheduleName: this.scheduleName,
      imageRef: this.imageRef,
      alertTopicArn: this.alertTopicArn,
      runTaskCommand: this.runTaskCommand,
      targetTasks: this.targetTasks,
      drillTaskDefinitionArn: this.drillTaskDefinitionArn,
      drillScheduleName: this.drillScheduleName,
      drillRunTaskCommand: this.drillRunTaskCommand,
      dashboardUrl: this.dashboardUrl,
    });
  }
}

