/**
 * Every committed stack file rendered through index.ts with Pulumi's runtime mocks (the offline synth),
 * and the graph checked for meaning: secrets, image pinning, logs, IAM, schedule, bucket and alerts.
 */

import type { RecordedResource } from "../../scripts/lib/mocks";
import { committedStacks, readStackFile } from "../../scripts/lib/stackFiles";
import type { SynthResult } from "../../scripts/lib/synth";
import { allows, denies, s3KmsRequest } from "../support/iam";
import { dashboardUrl } from "../../components/dashboard";
import { anomalyAlarm, backupRuns, backupSizes, every, queueDepthSamples, simulateAlarm } from "./models/cloudwatch";
import { dashboardProblems, shownMetrics } from "./models/dashboard";
import { patternMatches, stopKinds, stoppedTaskEvent, transformString } from "./models/eventbridge";

const stacks = committedStacks();
const targetNames = (stack: string): string[] => (JSON.parse(readStackFile(stack)["db-backup:targets"]) as { name: string }[]).map((t) => t.name).sort();
interface FileTarget { name: string; engine: "postgres" | "mongodb"; cpu?: number; memory?: number }
/**
 * A stack's backup tasks as its file asks for them: the stage's one (resource names `db-backup-<stack>-…`)
 * or, with isolation per-target, one per target (`db-backup-<stack>-<target>-…`), each with its targets.
 */
function backupTasksOf(stack: string): { suffix: string; targets: FileTarget[] }[] {
  const file = readStackFile(stack);
  const targets = JSON.parse(file["db-backup:targets"]) as FileTarget[];
  return file["db-backup:isolation"] === "per-target" ? targets.map((t) => ({ suffix: `-${t.name}`, targets: [t] })) : [{ suffix: "", targets }];
}

async function synth(stack: string, config?: Record<string, string>): Promise<SynthResult> {
  jest.resetModules();
  const { synthesize } = await import("../../scripts/lib/synth");
  return synthesize(stack, config);
}

it("the committed stacks are dev, prod and uat", () => {
  expect(stacks).toEqual(["dev", "prod", "uat"]);
});

describe.each(stacks)("stack %s", (stack) => {
  let graph: SynthResult;
  /** The resources of a type in the stack's own region (the replica's, in replicaRegion, are test/stack/replica.test.ts's). */
  const all = (type: string) => graph.resources.filter((r) => r.type === type && r.region === "ap-southeast-1");
  /** The one resource of a type, or the one named `db-backup-<stack><suffix>` (the backup's and the drill's have names of their own). */
  const one = (type: string, suffix?: string): RecordedResource => {
    const found = all(type).filter((r) => suffix === undefined || r.name === `db-backup-${stack}${suffix}`);
    expect(found).toHaveLength(1);
    return found[0];
  };
  const byArn = (arn: unknown) => graph.resources.find((r) => r.outputs.arn === arn);
  const policyOf = (roleName: string) => JSON.parse(all("aws:iam/rolePolicy:RolePolicy").find((p) => p.inputs.role === one("aws:iam/role:Role", roleName).outputs.id)!.inputs.policy as string);
  /**
   * The created bucket's default encryption: whether it is SSE-KMS, and the KMS request S3 makes under it
   * for an object of the stage (the key and the Bucket Key setting the bucket's own configuration names).
   */
  const bucketEncryption = () => {
    const bucket = one("aws:s3/bucket:Bucket");
    const rule = (all("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").find((r) => r.inputs.bucket === bucket.outputs.id)!.inputs.rules as any[])[0];
    const sse = rule.applyServerSideEncryptionByDefault;
    const s3Asks = (over: Partial<Parameters<typeof s3KmsRequest>[0]> = {}) => s3KmsRequest({
      operation: "GenerateDataKey",
      keyArn: sse.kmsMasterKeyId,
      bucketArn: bucket.outputs.arn as string,
      objectKey: `${stack}/postgres/app/2026-11-30T03-00-00Z.dump`,
      bucketKey: rule.bucketKeyEnabled === true,
      region: "ap-southeast-1",
      ...over,
    });
    return { kms: sse.sseAlgorithm === "aws:kms", s3Asks };
  };
  const grantsKms = (policy: { Statement: { Action: unknown }[] }) => policy.Statement.some((st) => String(st.Action).includes("kms:"));
  const container = (suffix = "-task") => JSON.parse(one("aws:ecs/taskDefinition:TaskDefinition", suffix).inputs.containerDefinitions as string)[0];
  /** The stack file's age recipients, when its backups are encrypted. */
  const encryptionRecipients = (): string[] | undefined => {
    const raw = readStackFile(stack)["db-backup:encryptionRecipients"];
    return raw === undefined ? undefined : JSON.parse(raw);
  };
  /** The drills' age identity parameter, which an encrypted stage has. */
  const identityParameter = () => all("aws:ssm/parameter:Parameter").find((p) => p.inputs.name === `/db-backup/${stack}/drillAgeIdentity`);
  /** The targets' secrets: a password or connection string each. */
  const targetParameters = () => all("aws:ssm/parameter:Parameter").filter((p) => p !== identityParameter());
  /** The parameter of a target's secret. */
  const parameterOf = (t: FileTarget) => one("aws:ssm/parameter:Parameter", `-${t.name}-${t.engine === "postgres" ? "password" : "uri"}`);
  const units = backupTasksOf(stack);
  /** A key the backup of this target writes. */
  const keyOf = (t: FileTarget) => `${stack}/${t.engine}/${t.name}/2024-10-27T10-30-00Z.${t.engine === "postgres" ? "dump" : "archive.gz"}`;

  beforeAll(async () => {
    graph = await synth(stack);
  }, 60000);

  it("renders the whole graph", () => {
    const types = new Set(graph.resources.map((r) => r.type));
    for (const type of [
      "db-backup:index:ScheduledBackup",
      "aws:ecr/repository:Repository",
      "aws:ecr/lifecyclePolicy:LifecyclePolicy",
      "docker-build:index:Image",
      "aws:ecs/cluster:Cluster",
      "aws:cloudwatch/logGroup:LogGroup",
      "aws:ssm/parameter:Parameter",
      "aws:ecs/taskDefinition:TaskDefinition",
      "aws:iam/role:Role",
      "aws:iam/rolePolicy:RolePolicy",
      "aws:ec2/securityGroup:SecurityGroup",
      "aws:sqs/queue:Queue",
      "aws:scheduler/schedule:Schedule",
      "aws:s3/bucket:Bucket",
      "aws:sns/topic:Topic",
      "aws:cloudwatch/eventRule:EventRule",
      "aws:cloudwatch/eventTarget:EventTarget",
      "aws:cloudwatch/metricAlarm:MetricAlarm",
      "aws:cloudwatch/dashboard:Dashboard",
    ]) {
      expect(types).toContain(type);
    }
    expect(Object.keys(graph.outputs).sort()).toEqual(["alertTopicArn", "bucketName", "clusterName", "dashboardUrl", "drillRunTaskCommand", "drillScheduleName", "drillTaskDefinitionArn", "imageRef", "logGroupName", "runTaskCommand", "scheduleName", "targetTasks", "taskDefinitionArn"].filter((k) => k in graph.outputs || !["scheduleName", "taskDefinitionArn"].includes(k)));
    for (const r of graph.resources) expect(r.name).toMatch(new RegExp(`^db-backup-${stack}`));
  });

  it.each(units)("keeps every secret out of the task's environment and hands over by SSM ARN only its targets' (db-backup-%s)", ({ suffix, targets: own }) => {
    const c = container(`${suffix}-task`);
    const env = c.environment as { name: string; value: string }[];
    const recipients = encryptionRecipients();
    expect(env.map((e) => e.name).sort()).toEqual(["AWS_REGION", ...(recipients ? ["BACKUP_AGE_RECIPIENTS"] : []), "BACKUP_TARGETS", "BACKUP_TARGET_TIMEOUT_SECONDS", "BACKUP_TIMEZONE", "S3_BUCKET", "STAGE"]);
    if (recipients) expect(env.find((e) => e.name === "BACKUP_AGE_RECIPIENTS")!.value).toBe(recipients.join("\n"));
    expect(JSON.stringify(env)).not.toMatch(/SYNTH-SECRET|AGE-SECRET-KEY|password"?:|mongodb(\+srv)?:\/\//i);
    expect(c.secrets.map((s: { valueFrom: string }) => s.valueFrom).sort()).toEqual(own.map((t) => parameterOf(t).outputs.arn).sort());
    for (const secret of c.secrets) {
      const parameter = byArn(secret.valueFrom)!;
      expect(parameter.type).toBe("aws:ssm/parameter:Parameter");
      expect(parameter.inputs).toMatchObject({ type: "SecureString", value: expect.stringMatching(/^SYNTH-SECRET\(db-backup:[a-z0-9-]+-(password|uri)\)$/) });
    }
    const targets = JSON.parse(env.find((e) => e.name === "BACKUP_TARGETS")!.value);
    expect(targets.map((t: { name: string }) => t.name)).toEqual(own.map((t) => t.name));
    for (const t of targets) expect(c.secrets.map((s: { name: string }) => s.name)).toContain(t.passwordEnv ?? t.uriEnv);
  });

  it.each(units)("pins the image by digest, runs as non-root on a read-only root filesystem, and logs to its log group (db-backup-%s)", ({ suffix, targets: own }) => {
    // One container: the failure alert reads the exit code of containers[0] (components/alerts.ts).
    expect(JSON.parse(one("aws:ecs/taskDefinition:TaskDefinition", `${suffix}-task`).inputs.containerDefinitions as string)).toHaveLength(1);
    const c = container(`${suffix}-task`);
    const image = one("docker-build:index:Image");
    const repository = one("aws:ecr/repository:Repository");
    expect(c.image).toBe(`${repository.outputs.repositoryUrl}@${image.outputs.digest}`);
    expect(c.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(graph.outputs.imageRef).toBe(c.image);
    expect(image.inputs).toMatchObject({ push: true, platforms: ["linux/amd64"] });
    expect(repository.inputs).toMatchObject({ imageScanningConfiguration: { scanOnPush: true } });
    const lifecycle = JSON.parse(one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs.policy as string);
    expect(lifecycle.rules[0].selection).toMatchObject({ countType: "imageCountMoreThan", countNumber: 10 });
    expect(c).toMatchObject({ user: "10001:10001", readonlyRootFilesystem: true, essential: true });
    const logGroup = one("aws:cloudwatch/logGroup:LogGroup");
    expect(logGroup.inputs.retentionInDays).toBeGreaterThan(0);
    expect(c.logConfiguration).toEqual({ logDriver: "awslogs", options: { "awslogs-group": logGroup.outputs.name, "awslogs-region": "ap-southeast-1", "awslogs-stream-prefix": stack, mode: "blocking" } });
    const td = one("aws:ecs/taskDefinition:TaskDefinition", `${suffix}-task`);
    expect(td.inputs).toMatchObject({ requiresCompatibilities: ["FARGATE"], networkMode: "awsvpc", family: `db-backup-${stack}${suffix}` });
    expect(byArn(td.inputs.executionRoleArn)?.name).toBe(`db-backup-${stack}${suffix}-execution`);
    expect(byArn(td.inputs.taskRoleArn)?.name).toBe(`db-backup-${stack}${suffix}-task`);
    // A per-target task has its target's size, the stage's where the target sets none.
    const file = readStackFile(stack);
    const size: Partial<FileTarget> = own.length === 1 && suffix ? own[0] : {};
    expect({ cpu: td.inputs.cpu, memory: td.inputs.memory }).toEqual({ cpu: String(size.cpu ?? file["db-backup:cpu"] ?? 512), memory: String(size.memory ?? file["db-backup:memory"] ?? 1024) });
    // Fargate gives 20 GiB without the parameter and takes 21-200 with it: a stack's 21 must be sent.
    const disk = Number(readStackFile(stack)["db-backup:ephemeralStorageGiB"] ?? 20);
    expect(td.inputs.ephemeralStorage).toEqual(disk > 20 ? { sizeInGib: disk } : undefined);
    // Images are rebuilt from the repository on every deploy; only prod's repository refuses to go with its images.
    expect(repository.inputs.forceDelete).toBe(stack !== "prod");
  });

  it.each(units)("lets the task role write only new objects under its own stage's prefix, and only its own targets' (db-backup-%s)", async ({ suffix, targets: own }) => {
    const policy = policyOf(`${suffix}-task`);
    const bucket = `arn:aws:s3:::${graph.outputs.bucketName}`;
    for (const t of backupTasksOf(stack).flatMap((u) => u.targets)) {
      const mine = own.some((o) => o.name === t.name);
      expect({ target: t.name, put: await allows(policy, { action: "s3:PutObject", resource: `${bucket}/${keyOf(t)}` }) }).toEqual({ target: t.name, put: mine });
      expect({ target: t.name, abort: await allows(policy, { action: "s3:AbortMultipartUpload", resource: `${bucket}/${keyOf(t)}` }) }).toEqual({ target: t.name, abort: mine });
    }
    for (const other of ["dev", "uat", "prod"].filter((s) => s !== stack)) {
      expect(await allows(policy, { action: "s3:PutObject", resource: `${bucket}/${other}/postgres/app/x.dump` })).toBe(false);
    }
    expect(await allows(policy, { action: "s3:PutObject", resource: `${bucket}/${stack}x/a` })).toBe(false);
    expect(await allows(policy, { action: "s3:PutObject", resource: `arn:aws:s3:::another-bucket/${stack}/x` })).toBe(false);
    // Each action asked on the resource S3 authorizes it on (the simulator refuses an object action on a bucket).
    for (const action of ["s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]) {
      expect(await allows(policy, { action, resource: `${bucket}/${stack}/postgres/app/x.dump` })).toBe(false);
    }
    for (const action of ["s3:ListBucket", "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"]) {
      expect(await allows(policy, { action, resource: bucket })).toBe(false);
    }
  });

  it.each(units)("lets the task role use the bucket's KMS key exactly as S3 asks for it, given the bucket's own encryption settings (db-backup-%s)", async ({ suffix, targets: own }) => {
    const policy = policyOf(`${suffix}-task`);
    const { kms, s3Asks } = bucketEncryption();
    const request = (over: Parameters<typeof s3Asks>[0] = {}) => s3Asks({ objectKey: keyOf(own[0]), ...over });
    if (!kms) {
      expect(grantsKms(policy)).toBe(false);
      return;
    }
    // The KMS request S3 makes for the runner's CreateMultipartUpload, with the bucket's Bucket Key setting.
    expect(await allows(policy, request())).toBe(true);
    expect(await allows(policy, request({ operation: "Decrypt" }))).toBe(true);
    expect(await allows(policy, request({ bucketArn: "arn:aws:s3:::another-bucket" }))).toBe(false);
    expect(await allows(policy, request({ region: "us-east-1" }))).toBe(false);
  });

  it.each(units)("lets the execution role pull its image, write its logs and read exactly its own secrets (db-backup-%s)", async ({ suffix, targets: own }) => {
    const policy = policyOf(`${suffix}-execution`);
    const repository = one("aws:ecr/repository:Repository").outputs.arn as string;
    const logGroup = one("aws:cloudwatch/logGroup:LogGroup").outputs.arn as string;
    expect(await allows(policy, { action: "ecr:BatchGetImage", resource: repository })).toBe(true);
    expect(await allows(policy, { action: "ecr:BatchGetImage", resource: repository.replace(/[^/]+$/, "other") })).toBe(false);
    expect(await allows(policy, { action: "ecr:PutImage", resource: repository })).toBe(false);
    expect(await allows(policy, { action: "logs:PutLogEvents", resource: `${logGroup}:log-stream:${stack}/backup/abc` })).toBe(true);
    expect(await allows(policy, { action: "logs:DeleteLogGroup", resource: logGroup })).toBe(false);
    const ownArns = own.map((t) => parameterOf(t).outputs.arn);
    expect(targetParameters()).toHaveLength(backupTasksOf(stack).flatMap((u) => u.targets).length);
    for (const p of targetParameters()) {
      expect({ parameter: p.inputs.name, read: await allows(policy, { action: "ssm:GetParameters", resource: p.outputs.arn as string }) }).toEqual({ parameter: p.inputs.name, read: ownArns.includes(p.outputs.arn) });
    }
    const identity = identityParameter();
    if (identity) expect(await allows(policy, { action: "ssm:GetParameters", resource: identity.outputs.arn as string })).toBe(false);
    expect(await allows(policy, { action: "ssm:GetParameters", resource: `arn:aws:ssm:ap-southeast-1:123456789012:parameter/db-backup/other/app-password` })).toBe(false);
    expect(await allows(policy, { action: "ssm:PutParameter", resource: all("aws:ssm/parameter:Parameter")[0].outputs.arn as string })).toBe(false);
  });

  it.each(units)("lets the scheduler run only this task family on this cluster and pass only its two roles to ECS (db-backup-%s)", async ({ suffix }) => {
    const policy = policyOf(`${suffix}-scheduler`);
    const cluster = one("aws:ecs/cluster:Cluster").outputs.arn as string;
    const td = one("aws:ecs/taskDefinition:TaskDefinition", `${suffix}-task`).outputs.arn as string;
    expect(await allows(policy, { action: "ecs:RunTask", resource: td, context: { "ecs:cluster": cluster } })).toBe(true);
    expect(await allows(policy, { action: "ecs:RunTask", resource: td.replace(/:1$/, ":7"), context: { "ecs:cluster": cluster } })).toBe(true);
    expect(await allows(policy, { action: "ecs:RunTask", resource: td, context: { "ecs:cluster": cluster.replace(/[^/]+$/, "other") } })).toBe(false);
    expect(await allows(policy, { action: "ecs:RunTask", resource: td.replace(`db-backup-${stack}${suffix}:`, "other-family:"), context: { "ecs:cluster": cluster } })).toBe(false);
    // Another backup task of the stage (per-target) and the verifier: neither started nor given their roles.
    for (const other of [...units.filter((u) => u.suffix !== suffix).map((u) => u.suffix), "-drill"]) {
      const otherTd = one("aws:ecs/taskDefinition:TaskDefinition", other === "-drill" ? other : `${other}-task`).outputs.arn as string;
      expect(await allows(policy, { action: "ecs:RunTask", resource: otherTd, context: { "ecs:cluster": cluster } })).toBe(false);
      for (const role of other === "-drill" ? ["-drill", "-drill-execution"] : [`${other}-task`, `${other}-execution`]) {
        expect(await allows(policy, { action: "iam:PassRole", resource: one("aws:iam/role:Role", role).outputs.arn as string, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } })).toBe(false);
      }
    }
    const roles = [`${suffix}-execution`, `${suffix}-task`].map((n) => one("aws:iam/role:Role", n).outputs.arn as string);
    for (const role of roles) {
      expect(await allows(policy, { action: "iam:PassRole", resource: role, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } })).toBe(true);
      expect(await allows(policy, { action: "iam:PassRole", resource: role, context: { "iam:PassedToService": "lambda.amazonaws.com" } })).toBe(false);
    }
    const scheduler = one("aws:iam/role:Role", `${suffix}-scheduler`).outputs.arn as string;
    expect(await allows(policy, { action: "iam:PassRole", resource: scheduler, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } })).toBe(false);
    expect(await allows(policy, { action: "sqs:SendMessage", resource: one("aws:sqs/queue:Queue").outputs.arn as string })).toBe(true);
    const trust = JSON.parse(one("aws:iam/role:Role", `${suffix}-scheduler`).inputs.assumeRolePolicy as string);
    expect(trust.Statement[0]).toMatchObject({ Principal: { Service: "scheduler.amazonaws.com" }, Condition: { StringEquals: { "aws:SourceAccount": "123456789012" } } });
    expect(trust.Statement[0].Resource).toBeUndefined();
    // Each role as STS evaluates AssumeRole: its own service, on behalf of this account only.
    for (const [role, service] of [["-scheduler", "scheduler.amazonaws.com"], ["-task", "ecs-tasks.amazonaws.com"], ["-execution", "ecs-tasks.amazonaws.com"]]) {
      const r = one("aws:iam/role:Role", `${suffix}${role}`);
      const assume = (principal: string, sourceAccount: string) =>
        allows(r.inputs.assumeRolePolicy as string, { principal, action: "sts:AssumeRole", resource: r.outputs.arn as string, context: { "aws:SourceAccount": sourceAccount } });
      expect(await assume(service, "123456789012")).toBe(true);
      expect(await assume(service, "999999999999")).toBe(false);
      expect(await assume(service === "scheduler.amazonaws.com" ? "ecs-tasks.amazonaws.com" : "scheduler.amazonaws.com", "123456789012")).toBe(false);
    }
  });

  it.each(units)("schedules this task definition in the stage's time zone, with retries and a dead-letter queue (db-backup-%s)", ({ suffix }) => {
    const schedule = one("aws:scheduler/schedule:Schedule", `${suffix}-schedule`);
    const target = schedule.inputs.target as Record<string, any>;
    expect(schedule.inputs.scheduleExpression).toBe(readStackFile(stack)["db-backup:schedule"]);
    expect(schedule.inputs.scheduleExpressionTimezone).toBe("Asia/Singapore");
    expect(schedule.inputs.state).toBe("ENABLED");
    expect(target.arn).toBe(one("aws:ecs/cluster:Cluster").outputs.arn);
    expect(target.ecsParameters.taskDefinitionArn).toBe(one("aws:ecs/taskDefinition:TaskDefinition", `${suffix}-task`).outputs.arn);
    expect(target.ecsParameters).toMatchObject({ launchType: "FARGATE", taskCount: 1, networkConfiguration: { assignPublicIp: true } });
    expect(target.ecsParameters.networkConfiguration.securityGroups).toEqual([one("aws:ec2/securityGroup:SecurityGroup").outputs.id]);
    expect(target.retryPolicy.maximumRetryAttempts).toBeGreaterThan(0);
    expect(target.deadLetterConfig.arn).toBe(one("aws:sqs/queue:Queue").outputs.arn);
    expect(byArn(target.roleArn)?.name).toBe(`db-backup-${stack}${suffix}-scheduler`);
    const sg = one("aws:ec2/securityGroup:SecurityGroup");
    expect(sg.inputs.ingress).toEqual([]);
  });

  it("creates a private, encrypted, versioned bucket that refuses plain HTTP and expires what it must", async () => {
    const bucket = one("aws:s3/bucket:Bucket");
    const id = bucket.outputs.id;
    const onBucket = (type: string) => all(type).filter((r) => r.inputs.bucket === id);
    expect(graph.outputs.bucketName).toBe(bucket.outputs.bucket);
    expect(onBucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0].inputs).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
    expect(onBucket("aws:s3/bucketVersioning:BucketVersioning")[0].inputs).toMatchObject({ versioningConfiguration: { status: "Enabled" } });
    expect(onBucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls")[0].inputs).toMatchObject({ rule: { objectOwnership: "BucketOwnerEnforced" } });
    const sse = (onBucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[0].inputs.rules as any[])[0].applyServerSideEncryptionByDefault;
    if (stack === "prod") expect(sse).toEqual({ sseAlgorithm: "aws:kms", kmsMasterKeyId: one("aws:kms/key:Key").outputs.arn });
    else expect(sse).toEqual({ sseAlgorithm: "AES256" });
    const policy = onBucket("aws:s3/bucketPolicy:BucketPolicy")[0].inputs.policy as string;
    const arn = bucket.outputs.arn as string;
    const principal = one("aws:iam/role:Role", `${units[0].suffix}-task`).outputs.arn as string;
    expect(await denies(policy, { principal, action: "s3:GetObject", resource: `${arn}/x`, context: { "aws:SecureTransport": "false" } })).toBe(true);
    expect(await denies(policy, { principal, action: "s3:ListBucket", resource: arn, context: { "aws:SecureTransport": "false" } })).toBe(true);
    expect(await denies(policy, { principal, action: "s3:GetObject", resource: `${arn}/x`, context: { "aws:SecureTransport": "true" } })).toBe(false);
    const rules = onBucket("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[0].inputs.rules as any[];
    const expected = { dev: [7, 1], uat: [30, 7], prod: [365, 30] }[stack as "dev" | "uat" | "prod"];
    expect(rules.find((r) => r.expiration)).toMatchObject({ status: "Enabled", filter: { prefix: `${stack}/` }, expiration: { days: expected[0] } });
    expect(rules.find((r) => r.noncurrentVersionExpiration).noncurrentVersionExpiration).toEqual({ noncurrentDays: expected[1] });
    expect(rules.find((r) => r.abortIncompleteMultipartUpload).abortIncompleteMultipartUpload).toEqual({ daysAfterInitiation: 1 });
  });

  it("locks prod's bucket with a default retention, enabled without replacing the bucket; dev and uat stay unlocked", () => {
    const bucket = one("aws:s3/bucket:Bucket");
    const locks = all("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration");
    // The Bucket's own objectLockEnabled would replace an existing (for prod: protected) bucket.
    expect(bucket.inputs.objectLockEnabled).toBeUndefined();
    if (stack !== "prod") return expect(locks).toEqual([]);
    expect(locks).toHaveLength(1);
    expect(locks[0].inputs).toMatchObject({ bucket: bucket.outputs.id, objectLockEnabled: "Enabled", rule: { defaultRetention: { mode: "COMPLIANCE", days: 30 } } });
  });

  it.each(units)("gives the task role no way to set, shorten or bypass an Object Lock retention (db-backup-%s)", async ({ suffix, targets: own }) => {
    const policy = policyOf(`${suffix}-task`);
    const object = `arn:aws:s3:::${graph.outputs.bucketName}/${keyOf(own[0])}`;
    for (const action of ["s3:BypassGovernanceRetention", "s3:PutObjectRetention", "s3:PutObjectLegalHold"]) {
      expect(await allows(policy, { action, resource: object })).toBe(false);
    }
    expect(await allows(policy, { action: "s3:PutBucketObjectLockConfiguration", resource: `arn:aws:s3:::${graph.outputs.bucketName}` })).toBe(false);
  });

  it("alerts once, in a text that reads well and parses, for every way a backup or a restore drill task stops badly", async () => {
    const topic = one("aws:sns/topic:Topic").outputs.arn as string;
    const cluster = one("aws:ecs/cluster:Cluster").outputs.arn as string;
    const tds = units.map((u) => one("aws:ecs/taskDefinition:TaskDefinition", `${u.suffix}-task`).outputs.arn as string);
    const targets = all("aws:cloudwatch/eventTarget:EventTarget");
    const rules = targets.map((t) => {
      expect(t.inputs.arn).toBe(topic);
      const rule = all("aws:cloudwatch/eventRule:EventRule").find((r) => r.outputs.name === t.inputs.rule)!;
      return { rule, pattern: JSON.parse(rule.inputs.eventPattern as string), transformer: t.inputs.inputTransformer as { inputPaths: Record<string, string>; inputTemplate: string } };
    });
    const topicPolicy = one("aws:sns/topicPolicy:TopicPolicy").inputs.policy as string;
    for (const { rule } of rules) {
      expect(await allows(topicPolicy, { principal: "events.amazonaws.com", action: "sns:Publish", resource: topic, context: { "aws:SourceArn": rule.outputs.arn as string } })).toBe(true);
    }
    expect(await allows(topicPolicy, { principal: "events.amazonaws.com", action: "sns:Publish", resource: topic, context: { "aws:SourceArn": "arn:aws:events:ap-southeast-1:123456789012:rule/other" } })).toBe(false);
    // ECS sends the same task state change events for both families; each family's rules name it.
    const drillTd = one("aws:ecs/taskDefinition:TaskDefinition", "-drill").outputs.arn as string;
    expect(drillTd).toBe(graph.outputs.drillTaskDefinitionArn);
    for (const [taskDefinitionArn, task] of [...tds.map((td) => [td, "backup task"]), [drillTd, "restore drill task"]]) {
      for (const kind of stopKinds) {
        const event = stoppedTaskEvent({ clusterArn: cluster, taskDefinitionArn, kind });
        const fired = rules.filter((r) => patternMatches(r.pattern, event));
        expect(fired).toHaveLength(kind === "succeeded" ? 0 : 1);
        for (const { transformer } of fired) {
          const { output, missing } = transformString(transformer.inputPaths, transformer.inputTemplate, event);
          expect(missing).toEqual([]);
          const text = JSON.parse(output);
          expect(text).toMatch(new RegExp(`^db-backup ${stack}: ${task} arn:aws:ecs:\\S+ failed`));
          expect(text).toContain(`aws ecs describe-tasks --region ap-southeast-1 --cluster ${graph.outputs.clusterName} --tasks ${(event.detail as any).taskArn}`);
        }
      }
    }
    expect(targets).toHaveLength(4);
    // A publish the topic refuses shows only in the rule's FailedInvocations: each rule has an alarm on it,
    // which publishes as CloudWatch (its own statement of the topic policy).
    for (const { rule } of rules) {
      const undelivered = all("aws:cloudwatch/metricAlarm:MetricAlarm").filter((a) => (a.inputs.dimensions as any)?.RuleName === rule.outputs.name);
      expect(undelivered.map((a) => a.inputs)).toEqual([
        expect.objectContaining({ namespace: "AWS/Events", metricName: "FailedInvocations", statistic: "Sum", threshold: 0, comparisonOperator: "GreaterThanThreshold", alarmActions: [topic] }),
      ]);
    }
    expect(await allows(topicPolicy, { principal: "cloudwatch.amazonaws.com", action: "sns:Publish", resource: topic, context: { "aws:SourceAccount": "123456789012" } })).toBe(true);
    // Each service only under its own statement: EventBridge is not let in by the alarms' account condition.
    expect(await allows(topicPolicy, { principal: "events.amazonaws.com", action: "sns:Publish", resource: topic, context: { "aws:SourceAccount": "123456789012" } })).toBe(false);
    expect(await allows(topicPolicy, { principal: "cloudwatch.amazonaws.com", action: "sns:Publish", resource: topic, context: { "aws:SourceAccount": "999999999999" } })).toBe(false);
    // Another family's task on the same cluster alerts no one.
    const other = stoppedTaskEvent({ clusterArn: cluster, taskDefinitionArn: tds[0].replace(`db-backup-${stack}${units[0].suffix}:`, "other:"), kind: "target-failed" });
    expect(rules.filter((r) => patternMatches(r.pattern, other))).toEqual([]);
    const email = all("aws:sns/topicSubscription:TopicSubscription");
    if (stack === "prod") expect(email.map((s) => s.inputs)).toEqual([expect.objectContaining({ protocol: "email", endpoint: "oncall@example.com", topic })]);
    else expect(email).toEqual([]);
  });

  it("keeps the dead-letter alarm in ALARM while a failed start waits in the queue, after SQS stops reporting it", () => {
    const topic = one("aws:sns/topic:Topic").outputs.arn;
    const alarm = one("aws:cloudwatch/metricAlarm:MetricAlarm", "-schedule-dlq");
    expect(alarm.inputs).toMatchObject({ namespace: "AWS/SQS", metricName: "ApproximateNumberOfMessagesVisible", dimensions: { QueueName: one("aws:sqs/queue:Queue").outputs.name }, alarmActions: [topic] });
    const minutes = 2 * 24 * 60;
    const samples = queueDepthSamples([{ minute: 30, visible: 1 }], minutes);
    const { notifications, states } = simulateAlarm(alarm.inputs as any, { actionsEnabled: true, alarm: true, ok: false, insufficientData: false }, samples, minutes, 3);
    expect(notifications).toEqual([{ minute: 30, state: "ALARM" }]);
    expect(states[minutes - 1]).toBe("ALARM");
  });

  it("has one stale-backup alarm per target on the runner's metric, silent on a fresh deploy, paging when backups stop succeeding or stop reporting", () => {
    const topic = one("aws:sns/topic:Topic").outputs.arn;
    const stale = all("aws:cloudwatch/metricAlarm:MetricAlarm").filter((a) => a.name.endsWith("-stale"));
    expect(stale.map((a) => (a.inputs.dimensions as any).Target).sort()).toEqual(["app", "events"]);
    const hours = Number(readStackFile(stack)["db-backup:staleAfterHours"]);
    for (const a of stale) {
      expect(a.inputs).toMatchObject({ namespace: "DbBackup", metricName: "BackupSuccess", dimensions: { Stage: stack }, actionsEnabled: true, alarmActions: [topic], okActions: [topic], insufficientDataActions: [topic] });
      const actions = { actionsEnabled: a.inputs.actionsEnabled as boolean, alarm: true, ok: true, insufficientData: true };
      const window = hours * 60;
      const minutes = 10 * window;
      const runs = every(Math.max(60, Math.floor(window / 4)), 15, minutes);
      const fresh = simulateAlarm(a.inputs as any, actions, backupRuns(runs), minutes, 3).notifications;
      expect(fresh.filter((n) => n.state !== "OK")).toEqual([]);
      const lastSuccess = runs.filter((m) => m < 3 * window).pop()!;
      const failing = simulateAlarm(a.inputs as any, actions, backupRuns(runs.filter((m) => m <= lastSuccess), runs.filter((m) => m > lastSuccess)), minutes, 3).notifications;
      expect(failing.filter((n) => n.state !== "OK")).toEqual([{ minute: lastSuccess + window, state: "ALARM" }]);
      const silent = simulateAlarm(a.inputs as any, actions, backupRuns(runs.filter((m) => m <= lastSuccess)), minutes, 3).notifications;
      expect(silent.filter((n) => n.state !== "OK").map((n) => n.state)).toEqual(["INSUFFICIENT_DATA"]);
    }
  });

  it("defines the verifier task: the same image and hardening, `drill`, its own size, roles and log streams, and no target's secret", () => {
    const td = one("aws:ecs/taskDefinition:TaskDefinition", "-drill");
    const file = readStackFile(stack);
    const setting = (key: string, fallback: number) => Number(file[`db-backup:${key}`] ?? fallback);
    expect(td.inputs).toMatchObject({
      family: `db-backup-${stack}-drill`,
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: String(setting("drillCpu", 1024)),
      memory: String(setting("drillMemory", 4096)),
      // The restored database lives on the scratch volume, a bind mount on the task's ephemeral storage.
      ephemeralStorage: { sizeInGib: setting("drillEphemeralStorageGiB", 50) },
      volumes: [{ name: "tmp" }],
    });
    expect(graph.outputs.drillTaskDefinitionArn).toBe(td.outputs.arn);
    const containers = JSON.parse(td.inputs.containerDefinitions as string);
    expect(containers).toHaveLength(1);
    const [c] = containers;
    const backup = container(`${units[0].suffix}-task`);
    expect(c).toMatchObject({ command: ["drill"], image: backup.image, user: "10001:10001", readonlyRootFilesystem: true, essential: true, linuxParameters: { initProcessEnabled: true } });
    expect(c.mountPoints).toEqual([{ sourceVolume: "tmp", containerPath: "/tmp", readOnly: false }]);
    const identity = identityParameter();
    expect(identity !== undefined).toBe(encryptionRecipients() !== undefined);
    // Only an encrypted stage's drill has a secret: the age identity, from its own parameter.
    expect(c.secrets).toEqual(identity ? [{ name: "AGE_IDENTITY", valueFrom: identity.outputs.arn }] : []);
    if (identity) expect(identity.inputs).toMatchObject({ type: "SecureString", value: "SYNTH-SECRET(db-backup:drillAgeIdentity)" });
    const env = Object.fromEntries((c.environment as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    const backupEnv = Object.fromEntries((backup.environment as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    // Every target of the stage, whichever isolation the backups have: the verifier is one task per stage.
    expect(JSON.parse(env.BACKUP_TARGETS).map((t: { name: string }) => t.name).sort()).toEqual(targetNames(stack));
    // Only the verifier is told where the copy in another region is (replicaRegion): the backup never reads it.
    const replicaEnv = Object.fromEntries(Object.entries(env).filter(([name]) => name.startsWith("BACKUP_REPLICA_")));
    expect(Object.keys(replicaEnv)).toEqual(file["db-backup:replicaRegion"] ? ["BACKUP_REPLICA_BUCKET", "BACKUP_REPLICA_REGION"] : []);
    expect({ ...env, BACKUP_TARGETS: undefined }).toEqual({ ...backupEnv, ...replicaEnv, BACKUP_TARGETS: undefined, DRILL_MAX_ROW_LOSS_PERCENT: String(setting("drillMaxRowLossPercent", 10)) });
    expect(JSON.stringify({ ...c, secrets: [] })).not.toMatch(/SYNTH-SECRET|valueFrom/);
    expect(c.logConfiguration).toEqual({ ...backup.logConfiguration, options: { ...backup.logConfiguration.options, "awslogs-stream-prefix": `${stack}-drill` } });
    expect(byArn(td.inputs.executionRoleArn)?.name).toBe(`db-backup-${stack}-drill-execution`);
    expect(byArn(td.inputs.taskRoleArn)?.name).toBe(`db-backup-${stack}-drill`);
  });

  it("gives the verifier an execution role that pulls the image and writes logs, and reads no target's secret (only an encrypted stage's age identity)", async () => {
    const policy = policyOf("-drill-execution");
    const repository = one("aws:ecr/repository:Repository").outputs.arn as string;
    const logGroup = one("aws:cloudwatch/logGroup:LogGroup").outputs.arn as string;
    expect(await allows(policy, { action: "ecr:BatchGetImage", resource: repository })).toBe(true);
    expect(await allows(policy, { action: "logs:PutLogEvents", resource: `${logGroup}:log-stream:${stack}-drill/drill/abc` })).toBe(true);
    for (const p of targetParameters()) expect(await allows(policy, { action: "ssm:GetParameters", resource: p.outputs.arn as string })).toBe(false);
    const identity = identityParameter();
    if (identity) expect(await allows(policy, { action: "ssm:GetParameters", resource: identity.outputs.arn as string })).toBe(true);
  });

  it("lets the verifier list and read only its own stage and write only drill records", async () => {
    const policy = policyOf("-drill");
    const bucket = `arn:aws:s3:::${graph.outputs.bucketName}`;
    const list = (prefix: string) => allows(policy, { action: "s3:ListBucket", resource: bucket, context: { "s3:prefix": prefix } });
    expect(await list(`${stack}/`)).toBe(true);
    expect(await list(`${stack}/drills/app/`)).toBe(true);
    expect(await allows(policy, { action: "s3:ListBucket", resource: bucket })).toBe(false);
    expect(await allows(policy, { action: "s3:GetObject", resource: `${bucket}/${stack}/postgres/app/x.dump` })).toBe(true);
    expect(await allows(policy, { action: "s3:PutObject", resource: `${bucket}/${stack}/drills/app/2026-11-30T06-00-00Z.json` })).toBe(true);
    expect(await allows(policy, { action: "s3:PutObject", resource: `${bucket}/${stack}/postgres/app/x.dump` })).toBe(false);
    for (const other of ["dev", "uat", "prod"].filter((s) => s !== stack)) {
      expect(await list(`${other}/`)).toBe(false);
      expect(await allows(policy, { action: "s3:GetObject", resource: `${bucket}/${other}/postgres/app/x.dump` })).toBe(false);
    }
    for (const action of ["s3:DeleteObject", "s3:DeleteObjectVersion"]) {
      expect(await allows(policy, { action, resource: `${bucket}/${stack}/drills/app/x.json` })).toBe(false);
      expect(await allows(policy, { action, resource: `${bucket}/${stack}/postgres/app/x.dump` })).toBe(false);
    }
    // No backup task may write a drill record.
    for (const { suffix } of units) expect(await allows(policyOf(`${suffix}-task`), { action: "s3:PutObject", resource: `${bucket}/${stack}/drills/app/2026-11-30T06-00-00Z.json` })).toBe(false);
    const { kms, s3Asks } = bucketEncryption();
    if (!kms) {
      expect(grantsKms(policy)).toBe(false);
      return;
    }
    // Reading a backup and writing a record, as S3 asks KMS for them with the bucket's Bucket Key setting.
    expect(await allows(policy, s3Asks({ operation: "Decrypt" }))).toBe(true);
    expect(await allows(policy, s3Asks({ objectKey: `${stack}/drills/app/x.json` }))).toBe(true);
    expect(await allows(policy, s3Asks({ operation: "Decrypt", bucketArn: "arn:aws:s3:::another-bucket" }))).toBe(false);
  });

  it("schedules the restore drill on its own schedule, role and dead-letter queue, in the stage's time zone and network", async () => {
    const schedule = one("aws:scheduler/schedule:Schedule", "-drill-schedule");
    const backupSchedule = one("aws:scheduler/schedule:Schedule", `${units[0].suffix}-schedule`);
    const target = schedule.inputs.target as Record<string, any>;
    const file = readStackFile(stack);
    expect(schedule.inputs.scheduleExpression).toBe(file["db-backup:drillSchedule"] ?? "cron(0 6 * * ? *)");
    expect(schedule.inputs.scheduleExpressionTimezone).toBe(backupSchedule.inputs.scheduleExpressionTimezone);
    expect(schedule.inputs.state).toBe(file["db-backup:drillEnabled"] === "false" ? "DISABLED" : "ENABLED");
    expect(graph.outputs.drillScheduleName).toBe(schedule.outputs.name);
    expect(target.ecsParameters.taskDefinitionArn).toBe(one("aws:ecs/taskDefinition:TaskDefinition", "-drill").outputs.arn);
    const backupTarget = backupSchedule.inputs.target as Record<string, any>;
    expect({ ...target, roleArn: undefined, ecsParameters: { ...target.ecsParameters, taskDefinitionArn: undefined } })
      .toEqual({ ...backupTarget, roleArn: undefined, ecsParameters: { ...backupTarget.ecsParameters, taskDefinitionArn: undefined } });
    expect(byArn(target.roleArn)?.name).toBe(`db-backup-${stack}-drill-scheduler`);

    // Each scheduler role starts its own family only and passes its own family's roles only.
    const cluster = one("aws:ecs/cluster:Cluster").outputs.arn as string;
    const u = units[0].suffix;
    const families: Record<string, [string, string, string]> = { [`${u}-scheduler`]: [`${u}-task`, `${u}-execution`, `${u}-task`], "-drill-scheduler": ["-drill", "-drill-execution", "-drill"] };
    for (const [scheduler, [td, execution, task]] of Object.entries(families)) {
      const policy = policyOf(scheduler);
      const otherScheduler = scheduler === `${u}-scheduler` ? "-drill-scheduler" : `${u}-scheduler`;
      const [otherTd, otherExecution, otherTask] = families[otherScheduler];
      const run = (suffix: string) => allows(policy, { action: "ecs:RunTask", resource: one("aws:ecs/taskDefinition:TaskDefinition", suffix).outputs.arn as string, context: { "ecs:cluster": cluster } });
      const pass = (suffix: string) => allows(policy, { action: "iam:PassRole", resource: one("aws:iam/role:Role", suffix).outputs.arn as string, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } });
      expect([await run(td), await pass(execution), await pass(task)]).toEqual([true, true, true]);
      expect([await run(otherTd), await pass(otherExecution), await pass(otherTask)]).toEqual([false, false, false]);
      expect(await allows(policy, { action: "sqs:SendMessage", resource: one("aws:sqs/queue:Queue").outputs.arn as string })).toBe(true);
    }
    for (const role of ["-drill", "-drill-execution", "-drill-scheduler"]) {
      const r = one("aws:iam/role:Role", role);
      const service = role === "-drill-scheduler" ? "scheduler.amazonaws.com" : "ecs-tasks.amazonaws.com";
      expect(await allows(r.inputs.assumeRolePolicy as string, { principal: service, action: "sts:AssumeRole", resource: r.outputs.arn as string, context: { "aws:SourceAccount": "123456789012" } })).toBe(true);
      expect(await allows(r.inputs.assumeRolePolicy as string, { principal: service, action: "sts:AssumeRole", resource: r.outputs.arn as string, context: { "aws:SourceAccount": "999999999999" } })).toBe(false);
    }
  });

  it("prints a run-task command for a restore drill now, with the schedule's network settings", () => {
    const cmd = graph.outputs.drillRunTaskCommand as string;
    const backupTd = one("aws:ecs/taskDefinition:TaskDefinition", `${units[0].suffix}-task`).outputs.arn;
    expect(cmd).toBe((graph.outputs.runTaskCommand as string).split("\n")[0].replace(`--task-definition ${backupTd} `, `--task-definition ${graph.outputs.drillTaskDefinitionArn} `));
    expect(cmd).toContain(`--task-definition ${one("aws:ecs/taskDefinition:TaskDefinition", "-drill").outputs.arn} `);
  });

  it("sends every alarm of the stage to the alerts topic", () => {
    const topic = one("aws:sns/topic:Topic").outputs.arn;
    const alarms = all("aws:cloudwatch/metricAlarm:MetricAlarm");
    expect(alarms.length).toBeGreaterThan(0);
    for (const a of alarms) expect(a.inputs.alarmActions).toEqual([topic]);
  });

  it("has a stale-drill alarm per target on the drills' metric, silent on a fresh deploy, paging when drills stop passing", () => {
    const topic = one("aws:sns/topic:Topic").outputs.arn;
    const drill = all("aws:cloudwatch/metricAlarm:MetricAlarm").filter((a) => a.name.endsWith("-stale-drill"));
    expect(drill.map((a) => (a.inputs.dimensions as any).Target).sort()).toEqual(targetNames(stack));
    const hours = Number(readStackFile(stack)["db-backup:drillStaleAfterHours"] ?? 50);
    for (const a of drill) {
      expect(a.inputs).toMatchObject({ namespace: "DbBackup", metricName: "DrillSuccess", dimensions: { Stage: stack }, actionsEnabled: true, okActions: [topic], insufficientDataActions: [topic] });
      const actions = { actionsEnabled: true, alarm: true, ok: true, insufficientData: true };
      const minutes = 20 * 24 * 60;
      const drills = every(24 * 60, 6 * 60, minutes);
      expect(simulateAlarm(a.inputs as any, actions, backupRuns(drills), minutes, 3).notifications).toEqual([{ minute: drills[0], state: "OK" }]);
      const lastPass = drills[4];
      const failing = simulateAlarm(a.inputs as any, actions, backupRuns(drills.filter((m) => m <= lastPass), drills.filter((m) => m > lastPass)), minutes, 3).notifications;
      expect(failing.filter((n) => n.state !== "OK")).toEqual([{ minute: lastPass + hours * 60, state: "ALARM" }]);
    }
  });

  it("has a size-anomaly alarm per target on the runner's BackupBytes, paging on a backup far below its band", () => {
    const topic = one("aws:sns/topic:Topic").outputs.arn;
    const size = all("aws:cloudwatch/metricAlarm:MetricAlarm").filter((a) => a.name.endsWith("-small-backup"));
    expect(size.map((a) => (a.inputs.metricQueries as any[]).find((q) => q.metric).metric.dimensions.Target).sort()).toEqual(targetNames(stack));
    for (const a of size) {
      const metric = (a.inputs.metricQueries as any[]).find((q) => q.metric).metric;
      expect(metric).toMatchObject({ namespace: "DbBackup", metricName: "BackupBytes", dimensions: { Stage: stack } });
      expect(a.inputs).toMatchObject({ comparisonOperator: "LessThanLowerThreshold", okActions: [topic] });
      expect(a.inputs.insufficientDataActions).toBeUndefined();
      // The anomaly model's band is AWS's; a trained band of 0.9 GiB under ordinary 1 GiB dumps stands for it.
      const hours = every(60, 10, 5 * 24 * 60);
      const sizes = hours.map((minute) => ({ minute, bytes: minute === hours[50] ? 1e8 : 2 ** 30 }));
      const { rule, samples } = anomalyAlarm(a.inputs as any, backupSizes(sizes), () => 0.9 * 2 ** 30);
      const { notifications } = simulateAlarm(rule, { actionsEnabled: true, alarm: true, ok: true, insufficientData: false }, samples, 5 * 24 * 60, 3);
      expect(notifications.filter((n) => n.state === "ALARM")).toEqual([{ minute: hours[50], state: "ALARM" }]);
    }
  });

  it("has a dashboard named after the stack that shows the stage's targets, its dead-letter queue and every alarm", () => {
    const dashboard = one("aws:cloudwatch/dashboard:Dashboard");
    expect(dashboard.inputs.dashboardName).toBe(`db-backup-${stack}`);
    const body = JSON.parse(dashboard.inputs.dashboardBody as string);
    expect(dashboardProblems(body)).toEqual([]);
    const shown = shownMetrics(body);
    expect([...new Set(shown.filter((m) => m.namespace === "DbBackup").map((m) => m.dimensions.Target))].sort()).toEqual(targetNames(stack));
    expect(shown.filter((m) => m.namespace === "DbBackup").every((m) => m.dimensions.Stage === stack)).toBe(true);
    expect(shown.find((m) => m.namespace === "AWS/SQS")!.dimensions.QueueName).toBe(one("aws:sqs/queue:Queue").outputs.name);
    // Every graph in the stack's region, but the copy's lag, which S3 publishes in the replica's (test/stack/replica.test.ts).
    for (const w of body.widgets.filter((w: any) => w.type === "metric" && !w.properties.title.startsWith("Copy in "))) expect(w.properties.region).toBe("ap-southeast-1");
    const alarmArns = body.widgets.filter((w: any) => w.type === "alarm").flatMap((w: any) => w.properties.alarms);
    // Every alarm, the replica's lag alarm in replicaRegion included.
    expect(alarmArns.sort()).toEqual(graph.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => a.outputs.arn).sort());
    expect(graph.outputs.dashboardUrl).toBe(dashboardUrl("ap-southeast-1", `db-backup-${stack}`));
  });

  it("prints a run-task command per backup task (one line each) with the schedule's network settings", () => {
    const lines = (graph.outputs.runTaskCommand as string).split("\n");
    expect(lines).toHaveLength(units.length);
    const perTarget = graph.outputs.targetTasks as Record<string, { taskDefinitionArn: string; scheduleName: string; runTaskCommand: string }>;
    units.forEach(({ suffix, targets: own }, i) => {
      const cmd = lines[i];
      const schedule = one("aws:scheduler/schedule:Schedule", `${suffix}-schedule`);
      const net = (schedule.inputs.target as any).ecsParameters.networkConfiguration;
      const td = one("aws:ecs/taskDefinition:TaskDefinition", `${suffix}-task`).outputs.arn;
      expect(cmd).toContain(`--cluster ${graph.outputs.clusterName}`);
      expect(cmd).toContain(`--task-definition ${td} `);
      expect(cmd).toContain(`subnets=[${net.subnets.join(",")}],securityGroups=[${net.securityGroups[0]}],assignPublicIp=ENABLED`);
      // Per-target: each target's task, schedule and command by name; per-stage: the stage's in the outputs of old.
      if (suffix) expect(perTarget[own[0].name]).toEqual({ taskDefinitionArn: td, scheduleName: schedule.outputs.name, runTaskCommand: cmd });
      else expect({ taskDefinitionArn: graph.outputs.taskDefinitionArn, scheduleName: graph.outputs.scheduleName, perTarget }).toEqual({ taskDefinitionArn: td, scheduleName: schedule.outputs.name, perTarget: {} });
    });
  });
});

describe("stage differences", () => {
  it("differ where the stack files say: schedule, retention, size, insights", async () => {
    const pick = async (stack: string) => {
      const g = await synth(stack);
      const r = (type: string) => g.resources.find((x) => x.type === type && !x.name.includes("-drill"))!;
      return {
        schedule: r("aws:scheduler/schedule:Schedule").inputs.scheduleExpression,
        logs: r("aws:cloudwatch/logGroup:LogGroup").inputs.retentionInDays,
        cpu: r("aws:ecs/taskDefinition:TaskDefinition").inputs.cpu,
        insights: (r("aws:ecs/cluster:Cluster").inputs.settings as any[])[0].value,
      };
    };
    expect(await pick("dev")).toEqual({ schedule: "cron(0 9-18 ? * MON-FRI *)", logs: 7, cpu: "256", insights: "disabled" });
    expect(await pick("uat")).toEqual({ schedule: "rate(6 hours)", logs: 30, cpu: "512", insights: "disabled" });
    expect(await pick("prod")).toEqual({ schedule: "rate(1 hour)", logs: 365, cpu: "1024", insights: "enabled" });
  }, 60000);
});

describe("variants of a stack file", () => {
  const dev = readStackFile("dev");
  const policyOf = (graph: SynthResult, roleName: string) => {
    const role = graph.resources.find((r) => r.type === "aws:iam/role:Role" && r.name.endsWith(roleName))!;
    return JSON.parse(graph.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.inputs.role === role.outputs.id)!.inputs.policy as string);
  };

  it("an existing SSE-KMS bucket: its key is granted for either encryption context S3 may send, this bucket and this stage only", async () => {
    const keyArn = "arn:aws:kms:ap-southeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const graph = await synth("dev", { ...dev, "db-backup:bucketName": "acme-db-backups", "db-backup:bucketKmsKeyArn": keyArn });
    expect(graph.resources.filter((r) => r.type.startsWith("aws:s3/") || r.type === "aws:kms/key:Key")).toEqual([]);
    const policy = policyOf(graph, "-task");
    const ask = (bucketKey: boolean, objectKey = "dev/postgres/app/x.dump", bucketArn = "arn:aws:s3:::acme-db-backups") =>
      s3KmsRequest({ operation: "GenerateDataKey", keyArn, bucketArn, objectKey, bucketKey, region: "ap-southeast-1" });
    expect(await allows(policy, ask(true))).toBe(true);
    expect(await allows(policy, ask(false))).toBe(true);
    expect(await allows(policy, ask(false, "prod/postgres/app/x.dump"))).toBe(false);
    expect(await allows(policy, ask(true, "dev/x", "arn:aws:s3:::other-bucket"))).toBe(false);
  }, 60000);

  it("an existing bucket without bucketKmsKeyArn grants no KMS key", async () => {
    const graph = await synth("dev", { ...dev, "db-backup:bucketName": "acme-db-backups" });
    const policy = policyOf(graph, "-task");
    expect(policy.Statement.map((st: { Sid: string }) => st.Sid)).toEqual(["WriteOwnStageBackups"]);
  }, 60000);

  it("a paused schedule also silences the stale-backup alarms", async () => {
    const graph = await synth("dev", { ...dev, "db-backup:scheduleEnabled": "false" });
    expect(graph.resources.find((r) => r.type === "aws:scheduler/schedule:Schedule" && r.name === "db-backup-dev-schedule")!.inputs.state).toBe("DISABLED");
    const stale = graph.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm" && r.name.endsWith("-stale"));
    expect(stale).toHaveLength(2);
    for (const a of stale) {
      expect(a.inputs.actionsEnabled).toBe(false);
      const samples = backupRuns([], every(60, 15, 10 * 24 * 60));
      expect(simulateAlarm(a.inputs as any, { actionsEnabled: a.inputs.actionsEnabled as boolean, alarm: true, ok: true, insufficientData: true }, samples, 10 * 24 * 60, 3).notifications).toEqual([]);
    }
  }, 60000);
});

describe("the restore drill's settings", () => {
  const dev = readStackFile("dev");
  it("drillEnabled false pauses only the drill schedule; the verifier task stays, sized by its own keys", async () => {
    const graph = await synth("dev", { ...dev, "db-backup:drillEnabled": "false", "db-backup:drillSchedule": "rate(12 hours)", "db-backup:drillCpu": "2048", "db-backup:drillMemory": "8192", "db-backup:drillEphemeralStorageGiB": "120", "db-backup:drillMaxRowLossPercent": "0" });
    const named = (type: string, name: string) => graph.resources.find((r) => r.type === type && r.name === name)!;
    expect(named("aws:scheduler/schedule:Schedule", "db-backup-dev-drill-schedule").inputs).toMatchObject({ state: "DISABLED", scheduleExpression: "rate(12 hours)" });
    expect(named("aws:scheduler/schedule:Schedule", "db-backup-dev-schedule").inputs.state).toBe("ENABLED");
    const td = named("aws:ecs/taskDefinition:TaskDefinition", "db-backup-dev-drill");
    expect(td.inputs).toMatchObject({ cpu: "2048", memory: "8192", ephemeralStorage: { sizeInGib: 120 } });
    expect(JSON.parse(td.inputs.containerDefinitions as string)[0].environment).toContainEqual({ name: "DRILL_MAX_ROW_LOSS_PERCENT", value: "0" });
    // The backup task keeps its own size.
    const backup = named("aws:ecs/taskDefinition:TaskDefinition", "db-backup-dev-task").inputs;
    expect([backup.cpu, backup.memory, backup.ephemeralStorage]).toEqual(["256", "512", undefined]);
  }, 60000);
});

describe("drills switched off", () => {
  it("silence the stale-drill alarms and nothing else", async () => {
    const graph = await synth("dev", { ...readStackFile("dev"), "db-backup:drillEnabled": "false" });
    const alarms = graph.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm");
    const drill = alarms.filter((a) => a.name.endsWith("-stale-drill"));
    expect(drill).toHaveLength(2);
    for (const a of drill) {
      expect(a.inputs.actionsEnabled).toBe(false);
      const samples = backupRuns([], every(24 * 60, 6 * 60, 10 * 24 * 60));
      expect(simulateAlarm(a.inputs as any, { actionsEnabled: false, alarm: true, ok: true, insufficientData: true }, samples, 10 * 24 * 60, 3).notifications).toEqual([]);
    }
    for (const a of alarms.filter((x) => !x.name.endsWith("-stale-drill"))) expect(a.inputs.actionsEnabled).not.toBe(false);
  }, 60000);
});

describe("configuration errors", () => {
  const dev = readStackFile("dev");

  /** Loads index.ts under the mocks with exactly this config, as `pulumi up` would run it (no synth placeholders). */
  async function runProgram(config: Record<string, string>, secretKeys: string[] = []): Promise<unknown> {
    jest.resetModules();
    const pulumi = await import("@pulumi/pulumi");
    const { AwsMocks } = await import("../../scripts/lib/mocks");
    pulumi.runtime.setAllConfig(config, secretKeys);
    await pulumi.runtime.setMocks(new AwsMocks("ap-southeast-1"), "db-backup", "dev", false);
    return import("../../index");
  }

  it("refuses `every hour` as a schedule, naming the key", async () => {
    await expect(synth("dev", { ...dev, "db-backup:schedule": "every hour" })).rejects.toThrow(
      "db-backup:schedule: 'every hour' is not a rate(...) or cron(...) expression",
    );
  });

  it("refuses a secret kept in plain text in a stack file", async () => {
    await expect(synth("dev", { ...dev, "db-backup:app-password": "hunter2" })).rejects.toThrow(/db-backup:app-password: is in plain text in Pulumi.dev.yaml/);
  });

  it("the program fails on a missing secret with Pulumi's message and the `pulumi config set --secret` command", async () => {
    await expect(runProgram({ ...dev, "db-backup:events-uri": "mongodb://x" }, ["db-backup:events-uri"])).rejects.toThrow(
      /Missing required configuration variable 'db-backup:app-password'[\s\S]*pulumi config set --secret db-backup:app-password <value>/,
    );
  });

  it("an encrypted stage whose drills run needs the drills' identity, named with the command that sets it; without drills it does not", async () => {
    const uat = readStackFile("uat");
    const secrets = { "db-backup:app-password": "pw", "db-backup:events-uri": "mongodb://x" };
    await expect(runProgram({ ...uat, ...secrets }, Object.keys(secrets))).rejects.toThrow(
      /Missing required configuration variable 'db-backup:drillAgeIdentity'[\s\S]*pulumi config set --secret db-backup:drillAgeIdentity <value>/,
    );
    // Without drills nothing in AWS holds an identity: no parameter, and the verifier's container has no secret.
    const graph = await synth("uat", { ...uat, "db-backup:drillEnabled": "false" });
    expect(graph.resources.filter((r) => r.type === "aws:ssm/parameter:Parameter").map((r) => r.inputs.name).sort()).toEqual(["/db-backup/uat/app-password", "/db-backup/uat/events-uri"]);
    const drill = graph.resources.find((r) => r.name === "db-backup-uat-drill" && r.type === "aws:ecs/taskDefinition:TaskDefinition")!;
    expect(JSON.parse(drill.inputs.containerDefinitions as string)[0].secrets).toEqual([]);
  }, 60000);

  it("the program fails on a bad value with the schema's message", async () => {
    await expect(runProgram({ ...dev, "db-backup:schedule": "every hour" })).rejects.toThrow("db-backup:schedule: 'every hour' is not a rate(...) or cron(...) expression");
  });

  it("the program and the synth refuse a replicaRegion that is the stack's own aws:region", async () => {
    const same = { ...dev, "db-backup:replicaRegion": dev["aws:region"] };
    const message = `db-backup:replicaRegion: '${dev["aws:region"]}' is this stack's own region (aws:region)`;
    await expect(runProgram(same)).rejects.toThrow(message);
    await expect(synth("dev", same)).rejects.toThrow(message);
  });
});
