/** Each rule of the policy pack both ways, then every rule over every committed stack's synth graph. */

import * as rules from "../../policy/rules";
import type { ResourceLike } from "../../policy/rules";
import { committedStacks, readStackFile } from "../../scripts/lib/stackFiles";
import type { SynthResult } from "../../scripts/lib/synth";

const td = (environment: { name: string; value: string }[], image = `123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/r@sha256:${"a".repeat(64)}`): ResourceLike => ({
  type: "aws:ecs/taskDefinition:TaskDefinition",
  name: "td",
  props: { containerDefinitions: JSON.stringify([{ name: "backup", image, environment }]) },
});

const policy = (statements: object[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });

/** A task definition whose containers have these settings; the rule must look at every one, not only the first. */
const hardened = (containers: object[]): ResourceLike => ({
  type: "aws:ecs/taskDefinition:TaskDefinition",
  name: "td",
  props: { containerDefinitions: JSON.stringify(containers.map((c, i) => ({ name: `c${i}`, ...c }))) },
});

describe.each([
  ["no-secrets-in-task-environment", rules.noSecretsInTaskEnvironment, td([{ name: "STAGE", value: "dev" }, { name: "BACKUP_TARGETS", value: '[{"passwordEnv":"PG_PASSWORD_APP"}]' }]), [
    td([{ name: "PG_DB_PASSWORD", value: "hunter2" }]),
    td([{ name: "DATABASE", value: "postgresql://u:hunter2@db/app" }]),
    td([{ name: "X", value: "SYNTH-SECRET(db-backup:app-password)" }]),
    td([{ name: "MONGO_CONNECTION_STRING", value: "mongodb+srv://cluster0/" }]),
  ]],
  ["images-pinned-by-digest", rules.imagesPinnedByDigest, td([]), [td([], "repo:latest"), td([], "repo@sha256:abc")]],
  ["task-containers-hardened", rules.taskContainersHardened, hardened([{ user: "10001:10001", readonlyRootFilesystem: true }, { user: "10001", readonlyRootFilesystem: true }]), [
    hardened([{ user: "10001:10001", readonlyRootFilesystem: true }, { user: "10001:10001", readonlyRootFilesystem: false }]),
    hardened([{ user: "10001:10001", readonlyRootFilesystem: true }, { readonlyRootFilesystem: true }]),
    hardened([{ user: "0:0", readonlyRootFilesystem: true }]),
    hardened([{ user: "root", readonlyRootFilesystem: true }]),
    hardened([{ user: "10001:10001" }]),
  ]],
  ["log-groups-have-retention", rules.logGroupsHaveRetention, { type: "aws:cloudwatch/logGroup:LogGroup", name: "lg", props: { retentionInDays: 30 } }, [
    { type: "aws:cloudwatch/logGroup:LogGroup", name: "lg", props: {} },
    { type: "aws:cloudwatch/logGroup:LogGroup", name: "lg", props: { retentionInDays: 0 } },
  ]],
  ["bucket-public-access-blocked", rules.publicAccessBlocked, { type: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name: "pab", props: { blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true } }, [
    { type: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name: "pab", props: { blockPublicAcls: true, blockPublicPolicy: false, ignorePublicAcls: true, restrictPublicBuckets: true } },
  ]],
  ["bucket-encrypted", rules.bucketEncrypted, { type: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name: "sse", props: { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" } }] } }, [
    { type: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name: "sse", props: { rules: [] } },
  ]],
  ["bucket-refuses-plain-http", rules.bucketRefusesPlainHttp, { type: "aws:s3/bucketPolicy:BucketPolicy", name: "bp", props: { policy: policy([{ Effect: "Deny", Principal: "*", Action: "s3:*", Resource: ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], Condition: { Bool: { "aws:SecureTransport": "false" } } }]) } }, [
    { type: "aws:s3/bucketPolicy:BucketPolicy", name: "bp", props: { policy: policy([{ Effect: "Deny", Principal: "*", Action: "s3:*", Resource: ["arn:aws:s3:::b/*"], Condition: { Bool: { "aws:SecureTransport": "false" } } }]) } },
    { type: "aws:s3/bucketPolicy:BucketPolicy", name: "bp", props: { policy: policy([{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: ["arn:aws:s3:::b/*"] }]) } },
  ]],
  ["schedules-retry-with-dead-letters", rules.schedulesRetryWithDeadLetters, { type: "aws:scheduler/schedule:Schedule", name: "s", props: { target: { retryPolicy: { maximumRetryAttempts: 2 }, deadLetterConfig: { arn: "arn:aws:sqs:r:1:q" } } } }, [
    { type: "aws:scheduler/schedule:Schedule", name: "s", props: { target: { retryPolicy: { maximumRetryAttempts: 0 }, deadLetterConfig: { arn: "arn:aws:sqs:r:1:q" } } } },
    { type: "aws:scheduler/schedule:Schedule", name: "s", props: { target: { retryPolicy: { maximumRetryAttempts: 2 } } } },
  ]],
  ["no-wildcard-iam-actions", rules.noWildcardIamActions, { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: ["s3:PutObject"], Resource: "arn:aws:s3:::b/dev/*" }, { Effect: "Deny", Action: "s3:*", Resource: "*" }, { Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" }]) } }, [
    { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: "s3:*", Resource: "arn:aws:s3:::b/*" }]) } },
    { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: "s3:Get*", Resource: "arn:aws:s3:::b/*" }]) } },
    { type: "aws:iam/policy:Policy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: "*", Resource: "*" }]) } },
    { type: "aws:iam/role:Role", name: "r", props: { inlinePolicies: [{ name: "x", policy: policy([{ Effect: "Allow", Action: "iam:*", Resource: "*" }]) }] } },
    { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: "secretsmanager:*", Resource: "*" }]) } },
    { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", NotAction: "iam:*", Resource: "*" }]) } },
  ]],
  ["no-backup-deletion", rules.noBackupDeletion, { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: ["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"], Resource: "arn:aws:s3:::b/dev/*" }, { Effect: "Deny", Action: "s3:DeleteObject", Resource: "*" }]) } }, [
    { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: ["s3:GetObject", "s3:DeleteObject"], Resource: "arn:aws:s3:::b/dev/*" }]) } },
    { type: "aws:iam/rolePolicy:RolePolicy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: "s3:DeleteObjectVersion", Resource: "arn:aws:s3:::b/*" }]) } },
    { type: "aws:iam/policy:Policy", name: "p", props: { policy: policy([{ Effect: "Allow", Action: "s3:PutLifecycleConfiguration", Resource: "arn:aws:s3:::b" }]) } },
  ]],
])("%s", (_name, rule, passing, failing) => {
  it("passes a compliant resource", () => {
    expect(rule.check(passing as ResourceLike)).toEqual([]);
  });
  it.each((failing as ResourceLike[]).map((f, i) => [i, f]))("refuses bad resource %i", (_i, bad) => {
    expect(rule.check(bad as ResourceLike).length).toBeGreaterThan(0);
  });
});

describe("every-bucket-locked-down", () => {
  const bucket: ResourceLike = { type: "aws:s3/bucket:Bucket", name: "b", props: {} };
  const configs = ["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "aws:s3/bucketPolicy:BucketPolicy"].map(
    (type): ResourceLike => ({ type, name: "b", props: {} }),
  );
  const bucketOf = (r: ResourceLike) => (r.name === "b" ? bucket : undefined);
  it("passes a bucket with all three", () => {
    expect(rules.everyBucketLockedDown.check([bucket, ...configs], bucketOf)).toEqual([]);
  });
  it("names what a bucket lacks", () => {
    expect(rules.everyBucketLockedDown.check([bucket, configs[0]], bucketOf)).toEqual(["bucket 'b' has no default encryption", "bucket 'b' has no bucket policy"]);
    expect(rules.everyBucketLockedDown.check([bucket], () => undefined)).toHaveLength(3);
  });
});

describe("every-alarm-alerts", () => {
  const topic: ResourceLike = { type: "aws:sns/topic:Topic", name: "alerts", props: { arn: "arn:aws:sns:ap-southeast-1:123456789012:alerts" } };
  const alarm = (alarmActions?: string[]): ResourceLike => ({ type: "aws:cloudwatch/metricAlarm:MetricAlarm", name: "a", props: { alarmActions } });
  it("passes an alarm that notifies the stack's topic", () => {
    expect(rules.everyAlarmAlerts.check([topic, alarm([topic.props.arn])], () => undefined)).toEqual([]);
  });
  it("refuses an alarm with no action, or with only another stack's topic", () => {
    expect(rules.everyAlarmAlerts.check([topic, alarm()], () => undefined)).toHaveLength(1);
    expect(rules.everyAlarmAlerts.check([topic, alarm(["arn:aws:sns:ap-southeast-1:123456789012:elsewhere"])], () => undefined)).toEqual([
      "alarm 'a' sends its ALARM state to no topic of this stack: add the alerts topic's ARN to alarmActions",
    ]);
  });
});

describe("prod-buckets-locked", () => {
  const bucket = (stage: string): ResourceLike => ({ type: "aws:s3/bucket:Bucket", name: `b-${stage}`, props: { tags: { "db-backup:stage": stage } } });
  const lock = (on: string, props: Record<string, unknown> = { objectLockEnabled: "Enabled", rule: { defaultRetention: { mode: "COMPLIANCE", days: 30 } } }): ResourceLike => ({
    type: "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    name: on,
    props,
  });
  const check = (resources: ResourceLike[]) => rules.prodBucketsLocked.check(resources, (c) => resources.find((r) => r.type === "aws:s3/bucket:Bucket" && r.name === c.name));

  it("passes a prod bucket with a default retention, and leaves other stages alone", () => {
    expect(check([bucket("prod"), lock("b-prod")])).toEqual([]);
    expect(check([bucket("prod"), lock("b-prod", { rule: { defaultRetention: { mode: "GOVERNANCE", years: 1 } } })])).toEqual([]);
    expect(check([bucket("dev"), bucket("uat")])).toEqual([]);
  });

  it("refuses a prod bucket without a lock, or with one that gives new objects no retention", () => {
    expect(check([bucket("prod"), lock("b-dev"), bucket("dev")])).toEqual(["prod bucket 'b-prod' has no Object Lock: set objectLock (mode and days) in Pulumi.prod.yaml"]);
    expect(check([bucket("prod"), lock("b-prod", { objectLockEnabled: "Enabled" })])).toEqual(["prod bucket 'b-prod': its Object Lock configuration 'b-prod' sets no default retention mode"]);
    expect(check([bucket("prod"), lock("b-prod", { rule: { defaultRetention: { mode: "COMPLIANCE" } } })])).toEqual(["prod bucket 'b-prod': its Object Lock configuration 'b-prod' sets no default retention period"]);
  });

  it("refuses prod's own synth graph once objectLock is taken out of Pulumi.prod.yaml", async () => {
    const { ["db-backup:objectLock"]: _lock, ...unlocked } = readStackFile("prod");
    jest.resetModules();
    const graph = await (await import("../../scripts/lib/synth")).synthesize("prod", unlocked);
    const resources: ResourceLike[] = graph.resources.map((r) => ({ type: r.type, name: r.name, props: r.inputs }));
    const bucketOf = (config: ResourceLike) => resources[graph.resources.findIndex((r) => r.type === "aws:s3/bucket:Bucket" && r.outputs.id === config.props.bucket)];
    // The copy in another region is a prod bucket too, and is held to the same lock.
    expect(rules.prodBucketsLocked.check(resources, bucketOf)).toEqual(["db-backup-prod-backups", "db-backup-prod-replica"].map((b) => `prod bucket '${b}' has no Object Lock: set objectLock (mode and days) in Pulumi.prod.yaml`));
  }, 60000);
});

describe("prod-buckets-replicated", () => {
  const bucket = (name: string, stage: string, region = "ap-southeast-1"): ResourceLike => ({ type: "aws:s3/bucket:Bucket", name, props: { tags: { "db-backup:stage": stage }, arn: `arn:aws:s3:::${name}`, region } });
  const replication = (from: string, to: string, status = "Enabled"): ResourceLike => ({
    type: "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
    name: from,
    props: { bucket: from, rules: [{ id: "r", status, filter: { prefix: "prod/" }, destination: { bucket: `arn:aws:s3:::${to}` } }] },
  });
  const check = (resources: ResourceLike[]) => rules.prodBucketsReplicated.check(resources, (c) => resources.find((r) => r.type === "aws:s3/bucket:Bucket" && r.name === c.props.bucket));

  it("passes a prod bucket replicated to a bucket of the stack in another region (the copy needs no copy), and leaves other stages alone", () => {
    expect(check([bucket("p", "prod"), bucket("copy", "prod", "ap-northeast-1"), replication("p", "copy")])).toEqual([]);
    expect(check([bucket("d", "dev"), bucket("u", "uat")])).toEqual([]);
  });

  it("refuses a prod bucket not replicated, replicated by a disabled rule, to a bucket the stack lacks, or within its own region", () => {
    const missing = ["prod bucket 'p' is not replicated to another region: set replicaRegion in Pulumi.prod.yaml"];
    expect(check([bucket("p", "prod")])).toEqual(missing);
    expect(check([bucket("p", "prod"), bucket("copy", "prod", "ap-northeast-1"), replication("p", "copy", "Disabled")])).toEqual([...missing, "prod bucket 'copy' is not replicated to another region: set replicaRegion in Pulumi.prod.yaml"]);
    expect(check([bucket("p", "prod"), replication("p", "elsewhere")])).toEqual(missing);
    expect(check([bucket("p", "prod"), bucket("copy", "prod"), replication("p", "copy")])).toEqual(["prod bucket 'p' is replicated only within its own region (ap-southeast-1): set replicaRegion to another region"]);
  });

  it("refuses prod's own synth graph once replicaRegion is taken out of Pulumi.prod.yaml", async () => {
    const { ["db-backup:replicaRegion"]: _replica, ...single } = readStackFile("prod");
    jest.resetModules();
    const graph = await (await import("../../scripts/lib/synth")).synthesize("prod", single);
    const resources: ResourceLike[] = graph.resources.map((r) => ({ type: r.type, name: r.name, props: { ...r.inputs, ...r.outputs } }));
    const bucketOf = (config: ResourceLike) => resources[graph.resources.findIndex((r) => r.type === "aws:s3/bucket:Bucket" && r.outputs.id === config.props.bucket)];
    expect(rules.prodBucketsReplicated.check(resources, bucketOf)).toEqual(["prod bucket 'db-backup-prod-backups' is not replicated to another region: set replicaRegion in Pulumi.prod.yaml"]);
  }, 60000);
});

const stacks = committedStacks();

describe.each(stacks)("the synth graph of stack %s", (stack) => {
  let graph: SynthResult;
  beforeAll(async () => {
    jest.resetModules();
    graph = await (await import("../../scripts/lib/synth")).synthesize(stack);
  }, 60000);

  it("passes every rule of the policy pack", () => {
    const resources: ResourceLike[] = graph.resources.map((r) => ({ type: r.type, name: r.name, props: r.inputs }));
    const violations = resources.flatMap((r) => rules.resourceRules.flatMap((rule) => rule.check(r).map((v) => `${rule.name}: ${v}`)));
    // A stack rule sees each resource's outputs ("PolicyResource.props: The outputs of the resource"),
    // which hold its inputs too. A bucket configuration's `bucket` is the bucket's ID, as the mocks returned it.
    const stated: ResourceLike[] = graph.resources.map((r) => ({ type: r.type, name: r.name, props: { ...r.inputs, ...r.outputs } }));
    const bucketOf = (config: ResourceLike) => stated[graph.resources.findIndex((r) => r.type === "aws:s3/bucket:Bucket" && r.outputs.id === config.props.bucket)];
    const stackViolations = rules.stackRules.flatMap((rule) => rule.check(stated, bucketOf));
    expect([...violations, ...stackViolations]).toEqual([]);
    // The rules looked at what they guard: the graph has each kind of resource they check.
    for (const type of ["aws:ecs/taskDefinition:TaskDefinition", "aws:cloudwatch/logGroup:LogGroup", "aws:s3/bucketPolicy:BucketPolicy", "aws:scheduler/schedule:Schedule", "aws:iam/rolePolicy:RolePolicy", "aws:cloudwatch/metricAlarm:MetricAlarm"]) {
      expect(resources.some((r) => r.type === type)).toBe(true);
    }
  });

  it("checks every task definition, schedule and role policy (one backup set per target with isolation per-target): a flaw in any is refused", () => {
    const of = (type: string) => graph.resources.filter((r) => r.type === type).map((r) => r.name).sort();
    const file = readStackFile(stack);
    const backups = file["db-backup:isolation"] === "per-target" ? (JSON.parse(file["db-backup:targets"]) as { name: string }[]).map((t) => `-${t.name}`) : [""];
    const named = (suffixes: string[]) => suffixes.map((n) => `db-backup-${stack}${n}`).sort();
    expect(of("aws:ecs/taskDefinition:TaskDefinition")).toEqual(named(["-drill", ...backups.map((b) => `${b}-task`)]));
    expect(of("aws:scheduler/schedule:Schedule")).toEqual(named(["-drill-schedule", ...backups.map((b) => `${b}-schedule`)]));
    const replicated = file["db-backup:replicaRegion"] !== undefined;
    expect(of("aws:iam/rolePolicy:RolePolicy")).toEqual(named(["-drill", "-drill-execution", "-drill-scheduler", ...(replicated ? ["-replication"] : []), ...backups.flatMap((b) => ["-execution", "-scheduler", "-task"].map((n) => `${b}${n}`))]));
    for (const td of graph.resources.filter((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition")) {
      const [container] = JSON.parse(td.inputs.containerDefinitions as string);
      const flawed = (change: object): ResourceLike => ({ type: td.type, name: td.name, props: { ...td.inputs, containerDefinitions: JSON.stringify([{ ...container, ...change }]) } });
      expect(rules.taskContainersHardened.check(flawed({}))).toHaveLength(0);
      expect(rules.taskContainersHardened.check(flawed({ readonlyRootFilesystem: false }))).toHaveLength(1);
      expect(rules.taskContainersHardened.check(flawed({ user: undefined }))).toHaveLength(1);
      expect(rules.noSecretsInTaskEnvironment.check(flawed({ environment: [...container.environment, { name: "PG_PASSWORD_APP", value: "hunter2" }] }))).toHaveLength(1);
      expect(rules.imagesPinnedByDigest.check(flawed({ image: "repo:latest" }))).toHaveLength(1);
    }
    for (const role of graph.resources.filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy")) {
      const policy = JSON.parse(role.inputs.policy as string);
      const widened = { ...policy, Statement: [...policy.Statement, { Sid: "X", Effect: "Allow", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::b/*" }] };
      expect(rules.noBackupDeletion.check({ type: role.type, name: role.name, props: { policy: JSON.stringify(widened) } })).toHaveLength(1);
    }
  });
});
