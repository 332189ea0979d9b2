import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as dockerBuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { deadLetterAlarmEvaluation, failedDeliveryAlarmEvaluation, failureRuleIds, staleBackupAlarmEvaluation, taskFailureRules } from "./alerts";
import { secretKeyOf, type StackConfig } from "./config";
import {
  alertTopicPolicy,
  assumeRolePolicy,
  bucketPolicy,
  type BucketKeySetting,
  executionRolePolicy,
  schedulerRolePolicy,
  taskRolePolicy,
} from "./policies";
import { buildContainerDefinitions, scratchVolume } from "./taskDefinition";

export interface ScheduledBackupArgs {
  /** The validated stack configuration (components/config.ts); its defaults are applied there. */
  config: StackConfig;
  /** The secret value per target name: its PostgreSQL password or MongoDB connection string. */
  secrets: Record<string, pulumi.Input<string>>;
  /** Build context of the backup image. Default: the repository root (the Dockerfile is image/Dockerfile). */
  imageContext?: string;
}

/**
 * One stage's scheduled backup: the image in ECR, an ECS cluster and Fargate task definition, its
 * secrets in SSM Parameter Store, the log group, least-privilege roles, an EventBridge Scheduler
 * schedule with retries and a dead-letter queue, the backup bucket, and alerts for every failure.
 */
export class ScheduledBackup extends pulumi.ComponentResource {
  /** Name of the bucket the backups are written to. */
  public readonly bucketName: pulumi.Output<string>;
  /** Name of the ECS cluster the task runs on. */
  public readonly clusterName: pulumi.Output<string>;
  /** ARN of the current task definition revision. */
  public readonly taskDefinitionArn: pulumi.Output<string>;
  /** Name of the CloudWatch log group of the task. */
  public readonly logGroupName: pulumi.Output<string>;
  /** Name of the EventBridge Scheduler schedule. */
  public readonly scheduleName: pulumi.Output<string>;
  /** The image the task runs, pinned by digest. */
  public readonly imageRef: pulumi.Output<string>;
  /** ARN of the SNS topic that receives failure alerts. */
  public readonly alertTopicArn: pulumi.Output<string>;
  /** A ready `aws ecs run-task …` command that starts a backup now, with the schedule's network settings. */
  public readonly runTaskCommand: pulumi.Output<string>;

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
    if (cfg.bucketName) {
      bucketName = pulumi.output(cfg.bucketName);
      // Its Bucket Key setting is its owner's to change, so the grant allows either context (policies.ts).
      if (cfg.bucketKmsKeyArn) kmsKeyArn = pulumi.output(cfg.bucketKmsKeyArn);
    } else {
      const bucket = new aws.s3.Bucket(`${name}-backups`, { forceDestroy: false, tags }, { ...parent, protect: cfg.stage === "prod" });
      bucketName = bucket.bucket;
      if (cfg.kmsEncryption) {
        const key = new aws.kms.Key(`${name}-backups`, { description: `db-backup ${cfg.stage} backups`, enableKeyRotation: true, deletionWindowInDays: 30, tags }, parent);
        kmsKeyArn = key.arn;
      }
      bucketKey = kmsKeyArn ? "enabled" : "disabled";
      new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-backups`, {
        bucket: bucket.id,
        rules: [{
          applyServerSideEncryptionByDefault: kmsKeyArn ? { sseAlgorithm: "aws:kms", kmsMasterKeyId: kmsKeyArn } : { sseAlgorithm: "AES256" },
          bucketKeyEnabled: bucketKey === "enabled",
        }],
      }, parent);
      const versioning = new aws.s3.BucketVersioning(`${name}-backups`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, parent);
      if (cfg.objectLock) {
        // Enabled through PutObjectLockConfiguration on the versioned bucket, not the Bucket's
        // objectLockEnabled, which replaces an existing bucket (prod's is protected): S3 turns Object
        // Lock on for an existing versioned bucket this way ("Configuring S3 Object Lock", S3 User Guide).
        // The default retention is bucket-wide; the bucket holds only this stage's prefix.
        new aws.s3.BucketObjectLockConfiguration(`${name}-backups`, {
          bucket: bucket.id,
          objectLockEnabled: "Enabled",
          rule: { defaultRetention: { mode: cfg.objectLock.mode, days: cfg.objectLock.days } },
        }, { ...parent, dependsOn: [versioning] });
      }
      const publicAccess = new aws.s3.BucketPublicAccessBlock(`${name}-backups`, {
        bucket: bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      }, parent);
      new aws.s3.BucketOwnershipControls(`${name}-backups`, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, parent);
      new aws.s3.BucketPolicy(`${name}-backups`, { bucket: bucket.id, policy: pulumi.jsonStringify(bucket.arn.apply(bucketPolicy)) }, { ...parent, dependsOn: [publicAccess] });
      new aws.s3.BucketLifecycleConfiguration(`${name}-backups`, {
        bucket: bucket.id,
        rules: [
          { id: "expire-backups", status: "Enabled", filter: { prefix: `${cfg.stage}/` }, expiration: { days: cfg.backupRetentionDays } },
          { id: "expire-noncurrent-versions", status: "Enabled", filter: {}, noncurrentVersionExpiration: { noncurrentDays: cfg.noncurrentRetentionDays } },
          { id: "abort-incomplete-uploads", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } },
        ],
      }, parent);
    }
    this.bucketName = bucketName;
    const bucketArn = pulumi.interpolate`arn:${partition}:s3:::${bucketName}`;

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

    // Roles.
    const executionRole = new aws.iam.Role(`${name}-execution`, {
      description: `db-backup ${cfg.stage}: lets ECS pull the image, write logs and read the task's secrets`,
      assumeRolePolicy: trustedBy("ecs-tasks.amazonaws.com"),
      tags,
    }, parent);
    new aws.iam.RolePolicy(`${name}-execution`, {
      role: executionRole.id,
      policy: pulumi.jsonStringify(pulumi.all([repository.arn, logGroup.arn, pulumi.all(parameters.map((p) => p.arn))])
        .apply(([repositoryArn, logGroupArn, parameterArns]) => executionRolePolicy({ repositoryArn, logGroupArn, parameterArns }))),
    }, parent);
    const taskRole = new aws.iam.Role(`${name}-task`, {
      description: `db-backup ${cfg.stage}: lets the backup write new objects under ${cfg.stage}/ and nothing else`,
      assumeRolePolicy: trustedBy("ecs-tasks.amazonaws.com"),
      tags,
    }, parent);
    new aws.iam.RolePolicy(`${name}-task`, {
      role: taskRole.id,
      policy: pulumi.jsonStringify(pulumi.all([bucketArn, kmsKeyArn]).apply(([arn, key]) =>
        taskRolePolicy({ bucketArn: arn, stage: cfg.stage, kms: key ? { keyArn: key, bucketKey } : undefined }))),
    }, parent);

    // Task definition.
    const family = name;
    const taskDefinition = new aws.ecs.TaskDefinition(`${name}-task`, {
      family,
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: String(cfg.cpu),
      memory: String(cfg.memory),
      // Without the parameter Fargate gives 20 GiB; it accepts 21-200 ("Bind mount examples for Amazon ECS").
      ephemeralStorage: cfg.ephemeralStorageGiB > 20 ? { sizeInGib: cfg.ephemeralStorageGiB } : undefined,
      runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: cfg.architecture === "arm64" ? "ARM64" : "X86_64" },
      executionRoleArn: executionRole.arn,
      taskRoleArn: taskRole.arn,
      volumes: [{ name: scratchVolume }],
      containerDefinitions: pulumi.jsonStringify(pulumi.all([this.imageRef, bucketName, region, logGroup.name, secretArns])
        .apply(([imageRef, bucket, reg, group, arns]) => buildContainerDefinitions({ config: cfg, image: imageRef, bucket, region: reg, logGroup: group, secretArns: arns }))),
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

    // Schedule: EventBridge Scheduler, in the stage's time zone, with retries and a dead-letter queue.
    const deadLetters = new aws.sqs.Queue(`${name}-schedule-dlq`, { messageRetentionSeconds: 14 * 24 * 3600, sqsManagedSseEnabled: true, tags }, parent);
    const schedulerRole = new aws.iam.Role(`${name}-scheduler`, {
      description: `db-backup ${cfg.stage}: lets EventBridge Scheduler start the backup task`,
      assumeRolePolicy: trustedBy("scheduler.amazonaws.com"),
      tags,
    }, parent);
    new aws.iam.RolePolicy(`${name}-scheduler`, {
      role: schedulerRole.id,
      policy: pulumi.jsonStringify(pulumi.all([region, identity.accountId, partition, cluster.arn, executionRole.arn, taskRole.arn, deadLetters.arn])
        .apply(([reg, accountId, part, clusterArn, executionRoleArn, taskRoleArn, deadLetterQueueArn]) =>
          schedulerRolePolicy({ region: reg, accountId, partition: part, family, clusterArn, executionRoleArn, taskRoleArn, deadLetterQueueArn }))),
    }, parent);
    const schedule = new aws.scheduler.Schedule(`${name}-schedule`, {
      description: `db-backup ${cfg.stage}: ${cfg.schedule} (${cfg.scheduleTimezone})`,
      scheduleExpression: cfg.schedule,
      scheduleExpressionTimezone: cfg.scheduleTimezone,
      state: cfg.scheduleEnabled ? "ENABLED" : "DISABLED",
      flexibleTimeWindow: { mode: "OFF" },
      target: {
        arn: cluster.arn,
        roleArn: schedulerRole.arn,
        ecsParameters: {
          taskDefinitionArn: taskDefinition.arn,
          launchType: "FARGATE",
          platformVersion: "LATEST",
          taskCount: 1,
          enableEcsManagedTags: true,
          propagateTags: "TASK_DEFINITION",
          networkConfiguration: { subnets: subnetIds, securityGroups: [securityGroup.id], assignPublicIp: cfg.assignPublicIp },
        },
        retryPolicy: { maximumRetryAttempts: cfg.retryAttempts, maximumEventAgeInSeconds: cfg.retryWindowSeconds },
        deadLetterConfig: { arn: deadLetters.arn },
      },
    }, parent);

    // Alerts: a failed or unstartable task, a schedule that could not start it, and no success for too long.
    const alerts = new aws.sns.Topic(`${name}-alerts`, { tags }, parent);
    const rules = pulumi.all([cluster.arn, cluster.name, region, identity.accountId, partition, logGroup.name])
      .apply(([clusterArn, clusterName, reg, account, part, logGroupName]) => taskFailureRules({
        stage: cfg.stage,
        clusterArn,
        clusterName,
        taskDefinitionFamilyArnPrefix: `arn:${part}:ecs:${reg}:${account}:task-definition/${family}:`,
        region: reg,
        logGroupName,
      }));
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
      new aws.cloudwatch.MetricAlarm(`${name}-${id}-undelivered`, {
        alarmDescription: `db-backup ${cfg.stage}: EventBridge could not deliver a '${id}' alert to the alerts topic (a backup task failed; see the task's log)`,
        namespace: "AWS/Events",
        metricName: "FailedInvocations",
        dimensions: { RuleName: eventRule.name },
        ...failedDeliveryAlarmEvaluation(),
        alarmActions: [alerts.arn],
        tags,
      }, parent);
      return eventRule;
    });
    new aws.sns.TopicPolicy(`${name}-alerts`, {
      arn: alerts.arn,
      policy: pulumi.jsonStringify(pulumi.all([alerts.arn, pulumi.all(failureRules.map((r) => r.arn)), identity.accountId])
        .apply(([topic, ruleArns, account]) => alertTopicPolicy(topic, ruleArns, account))),
    }, parent);
    if (cfg.alertEmail) {
      new aws.sns.TopicSubscription(`${name}-alerts-email`, { topic: alerts.arn, protocol: "email", endpoint: cfg.alertEmail }, parent);
    }
    new aws.cloudwatch.MetricAlarm(`${name}-schedule-dlq`, {
      alarmDescription: `db-backup ${cfg.stage}: the scheduler could not start the backup task (see the dead-letter queue)`,
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: deadLetters.name },
      ...deadLetterAlarmEvaluation(),
      alarmActions: [alerts.arn],
      tags,
    }, parent);
    for (const t of cfg.targets) {
      new aws.cloudwatch.MetricAlarm(`${name}-${t.name}-stale`, {
        alarmDescription: `db-backup ${cfg.stage}: no successful backup of ${t.engine}/${t.name} for ${cfg.staleAfterHours} hours (INSUFFICIENT_DATA: the stage stopped reporting)`,
        namespace: "DbBackup",
        metricName: "BackupSuccess",
        dimensions: { Stage: cfg.stage, Target: t.name },
        ...staleBackupAlarmEvaluation(cfg.staleAfterHours),
        // A paused schedule makes no backups: its stale alarms say nothing until it runs again.
        actionsEnabled: cfg.scheduleEnabled,
        alarmActions: [alerts.arn],
        okActions: [alerts.arn],
        insufficientDataActions: [alerts.arn],
        tags,
      }, parent);
    }

    this.clusterName = cluster.name;
    this.taskDefinitionArn = taskDefinition.arn;
    this.logGroupName = logGroup.name;
    this.scheduleName = schedule.name;
    this.alertTopicArn = alerts.arn;
    this.runTaskCommand = pulumi.interpolate`aws ecs run-task --region ${region} --cluster ${cluster.name} --task-definition ${taskDefinition.arn} --launch-type FARGATE --count 1 --network-configuration 'awsvpcConfiguration={subnets=[${subnetIds.apply((ids) => ids.join(","))}],securityGroups=[${securityGroup.id}],assignPublicIp=${cfg.assignPublicIp ? "ENABLED" : "DISABLED"}}'`;

    this.registerOutputs({
      bucketName: this.bucketName,
      clusterName: this.clusterName,
      taskDefinitionArn: this.taskDefinitionArn,
      logGroupName: this.logGroupName,
      scheduleName: this.scheduleName,
      imageRef: this.imageRef,
      alertTopicArn: this.alertTopicArn,
      runTaskCommand: this.runTaskCommand,
    });
  }
}

