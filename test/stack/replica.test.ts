/**
 * The copy in another region, as the offline synth renders it (scripts/lib/mocks.ts gives a resource of
 * the replica's aws.Provider that provider's region and ARNs there): the replica bucket and its
 * protections, the replication rule, its role, and the lag alarm, in prod (which replicates) and in a
 * variant without KMS or Object Lock; none of it in dev or uat.
 */

import { replicationDimensions, replicationLagAlarmEvaluation } from "../../components/alerts";
import type { RecordedResource } from "../../scripts/lib/mocks";
import { readStackFile } from "../../scripts/lib/stackFiles";
import type { SynthResult } from "../../scripts/lib/synth";
import { parseStorage } from "../../image/src/settings";
import { allows, denies, s3KmsRequest } from "../support/iam";

async function synth(stack: string, config = readStackFile(stack)): Promise<SynthResult> {
  jest.resetModules();
  const { synthesize } = await import("../../scripts/lib/synth");
  return synthesize(stack, config);
}

const prodFile = readStackFile("prod");
const { "db-backup:objectLock": _lock, ...unlocked } = prodFile;
const variants: [string, Record<string, string>][] = [
  ["prod as committed (KMS, Object Lock)", prodFile],
  ["prod without KMS or Object Lock", { ...unlocked, "db-backup:kmsEncryption": "false" }],
];

describe.each(variants)("%s", (_, config) => {
  let graph: SynthResult;
  beforeAll(async () => {
    graph = await synth("prod", config);
  }, 120_000);
  const kms = config["db-backup:kmsEncryption"] === "true";
  const locked = config["db-backup:objectLock"] !== undefined;
  const replicaRegion = config["db-backup:replicaRegion"];
  const named = (type: string, name: string): RecordedResource => {
    const found = graph.resources.filter((r) => r.type === type && r.name === name);
    expect(found).toHaveLength(1);
    return found[0];
  };
  const configOf = (type: string, bucket: RecordedResource) => graph.resources.find((r) => r.type === type && r.inputs.bucket === bucket.outputs.id);
  const primary = () => named("aws:s3/bucket:Bucket", "db-backup-prod-backups");
  const replica = () => named("aws:s3/bucket:Bucket", "db-backup-prod-replica");

  it("creates the replica bucket, its key, its configuration and its alerts in the replica's region, the rest in the stack's", () => {
    expect(replicaRegion).toBe("ap-northeast-1");
    expect(replica().region).toBe(replicaRegion);
    expect(primary().region).toBe("ap-southeast-1");
    for (const r of graph.resources.filter((r) => /^db-backup-prod-replica($|-)/.test(r.name))) expect({ name: r.name, region: r.region }).toEqual({ name: r.name, region: replicaRegion });
  });

  it("keeps the replica as the primary: versioned, private, TLS only, owner-enforced, the same lifecycle and lock", async () => {
    for (const type of [
      "aws:s3/bucketVersioning:BucketVersioning",
      "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
      "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
      "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
      "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    ]) {
      const ofPrimary = configOf(type, primary());
      const ofReplica = configOf(type, replica());
      expect({ type, exists: ofReplica !== undefined }).toEqual({ type, exists: type.includes("ObjectLock") ? locked : true });
      if (ofPrimary) expect({ type, inputs: { ...ofReplica!.inputs, bucket: "" } }).toEqual({ type, inputs: { ...ofPrimary.inputs, bucket: "" } });
    }
    const policy = configOf("aws:s3/bucketPolicy:BucketPolicy", replica())!.inputs.policy as string;
    const object = `${replica().outputs.arn}/prod/postgres/app/x.dump`;
    expect(await denies(policy, { principal: "arn:aws:iam::123456789012:root", action: "s3:GetObject", resource: object, context: { "aws:SecureTransport": "false" } })).toBe(true);
    expect(await denies(policy, { principal: "arn:aws:iam::123456789012:root", action: "s3:GetObject", resource: object, context: { "aws:SecureTransport": "true" } })).toBe(false);
  });

  it(kms ? "encrypts the replica with a key of its own in the replica's region, with an S3 Bucket Key" : "encrypts the replica with SSE-S3, as the primary", () => {
    const rule = (configOf("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", replica())!.inputs.rules as any[])[0];
    if (!kms) {
      expect(rule.applyServerSideEncryptionByDefault).toEqual({ sseAlgorithm: "AES256" });
      return;
    }
    const key = graph.resources.find((r) => r.type === "aws:kms/key:Key" && r.outputs.arn === rule.applyServerSideEncryptionByDefault.kmsMasterKeyId)!;
    expect(key.name).toBe("db-backup-prod-replica");
    expect(key.inputs.enableKeyRotation).toBe(true);
    expect(String(key.outputs.arn).split(":")[3]).toBe(replicaRegion);
    expect(rule.bucketKeyEnabled).toBe(true);
  });

  it("replicates only the stage's prefix, V2 with a priority, deletes kept from the copy, metrics on, KMS objects opted in with the replica's key", () => {
    const replication = named("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "db-backup-prod-replication");
    expect(replication.region).toBe("ap-southeast-1");
    expect(replication.inputs.bucket).toBe(primary().outputs.id);
    const [rule, ...more] = replication.inputs.rules as any[];
    expect(more).toEqual([]);
    expect(rule).toMatchObject({ status: "Enabled", priority: 1, filter: { prefix: "prod/" }, deleteMarkerReplication: { status: "Disabled" } });
    expect(rule.destination).toMatchObject({ bucket: replica().outputs.arn, metrics: { status: "Enabled" } });
    // No Replication Time Control: metrics alone (alerts.ts says why).
    expect(rule.destination.replicationTime).toBeUndefined();
    const sseRule = (configOf("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", replica())!.inputs.rules as any[])[0];
    if (kms) {
      expect(rule.sourceSelectionCriteria).toEqual({ sseKmsEncryptedObjects: { status: "Enabled" } });
      expect(rule.destination.encryptionConfiguration).toEqual({ replicaKmsKeyId: sseRule.applyServerSideEncryptionByDefault.kmsMasterKeyId });
    } else {
      expect(rule.sourceSelectionCriteria).toBeUndefined();
      expect(rule.destination.encryptionConfiguration).toBeUndefined();
    }
    const role = graph.resources.find((r) => r.type === "aws:iam/role:Role" && r.outputs.arn === replication.inputs.role)!;
    expect(role.name).toBe("db-backup-prod-replication");
  });

  it("gives S3 a role that replicates this stage and nothing else, as the rule and the buckets ask", async () => {
    const role = named("aws:iam/role:Role", "db-backup-prod-replication");
    const trust = role.inputs.assumeRolePolicy as string;
    expect(await allows(trust, { principal: "s3.amazonaws.com", action: "sts:AssumeRole", resource: role.outputs.arn as string, context: { "aws:SourceAccount": "123456789012" } })).toBe(true);
    const policy = graph.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.inputs.role === role.outputs.id)!.inputs.policy as string;
    const key = "prod/postgres/app/2026-11-30T03-00-00Z.dump";
    expect(await allows(policy, { action: "s3:GetObjectVersionForReplication", resource: `${primary().outputs.arn}/${key}` })).toBe(true);
    expect(await allows(policy, { action: "s3:ReplicateObject", resource: `${replica().outputs.arn}/${key}` })).toBe(true);
    expect(await allows(policy, { action: "s3:ReplicateDelete", resource: `${replica().outputs.arn}/${key}` })).toBe(false);
    expect(await allows(policy, { action: "s3:GetObjectRetention", resource: `${primary().outputs.arn}/${key}` })).toBe(locked);
    if (kms) {
      const keyOf = (bucket: RecordedResource) => (configOf("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", bucket)!.inputs.rules as any[])[0].applyServerSideEncryptionByDefault.kmsMasterKeyId;
      const read = s3KmsRequest({ operation: "Decrypt", keyArn: keyOf(primary()), bucketArn: primary().outputs.arn as string, objectKey: key, bucketKey: true, region: "ap-southeast-1" });
      const write = s3KmsRequest({ operation: "Encrypt", keyArn: keyOf(replica()), bucketArn: replica().outputs.arn as string, objectKey: key, bucketKey: true, region: replicaRegion });
      expect(await allows(policy, read)).toBe(true);
      expect(await allows(policy, write)).toBe(true);
    }
  });

  it("lets the verifier read the replica's copy of its stage, and tells it where the copy is", async () => {
    const role = named("aws:iam/role:Role", "db-backup-prod-drill");
    const policy = graph.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.inputs.role === role.outputs.id)!.inputs.policy as string;
    expect(await allows(policy, { action: "s3:GetObject", resource: `${replica().outputs.arn}/prod/postgres/app/x.dump` })).toBe(true);
    expect(await allows(policy, { action: "s3:ListBucket", resource: replica().outputs.arn as string, context: { "s3:prefix": "prod/" } })).toBe(true);
    const backupRole = named("aws:iam/role:Role", "db-backup-prod-task");
    const backupPolicy = graph.resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.inputs.role === backupRole.outputs.id)!.inputs.policy as string;
    expect(await allows(backupPolicy, { action: "s3:PutObject", resource: `${replica().outputs.arn}/prod/postgres/app/x.dump` })).toBe(false);
    const drill = named("aws:ecs/taskDefinition:TaskDefinition", "db-backup-prod-drill");
    const env = Object.fromEntries((JSON.parse(drill.inputs.containerDefinitions as string)[0].environment as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ BACKUP_REPLICA_BUCKET: replica().outputs.bucket, BACKUP_REPLICA_REGION: replicaRegion });
    // The runner, given --replica, reads exactly that bucket in that region (the contract's two sides agree).
    expect(parseStorage(env, "replica").s3).toMatchObject({ bucket: replica().outputs.bucket, region: replicaRegion });
    expect(parseStorage(env).s3).toMatchObject({ bucket: primary().outputs.bucket, region: "ap-southeast-1" });
  });

  it("alarms when the copy falls behind, on the rule's metric in the replica's region, to a topic there the on-call address also gets", () => {
    const alarm = named("aws:cloudwatch/metricAlarm:MetricAlarm", "db-backup-prod-replication-lag");
    expect(alarm.region).toBe(replicaRegion);
    const rule = (named("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "db-backup-prod-replication").inputs.rules as any[])[0];
    expect(alarm.inputs).toMatchObject({
      namespace: "AWS/S3",
      metricName: "ReplicationLatency",
      dimensions: replicationDimensions(primary().outputs.bucket as string, replica().outputs.bucket as string, rule.id),
      ...replicationLagAlarmEvaluation(),
    });
    const topic = named("aws:sns/topic:Topic", "db-backup-prod-replica-alerts");
    expect(topic.region).toBe(replicaRegion);
    for (const actions of ["alarmActions", "okActions", "insufficientDataActions"]) expect(alarm.inputs[actions]).toEqual([topic.outputs.arn]);
    const email = named("aws:sns/topicSubscription:TopicSubscription", "db-backup-prod-replica-alerts-email");
    expect(email.inputs).toMatchObject({ topic: topic.outputs.arn, protocol: "email", endpoint: config["db-backup:alertEmail"] });
    // The dashboard graphs the same metric, in the replica's region.
    const body = JSON.parse(named("aws:cloudwatch/dashboard:Dashboard", "db-backup-prod-dashboard").inputs.dashboardBody as string);
    const graph_ = body.widgets.find((w: any) => w.type === "metric" && w.properties.metrics.some((m: unknown[]) => m[1] === "ReplicationLatency"));
    expect(graph_.properties.region).toBe(replicaRegion);
    const pairs = graph_.properties.metrics[0].slice(2, 8) as string[];
    expect(Object.fromEntries([0, 2, 4].map((k) => [pairs[k], pairs[k + 1]]))).toEqual(alarm.inputs.dimensions);
    const topicPolicy = JSON.parse(graph.resources.find((r) => r.type === "aws:sns/topicPolicy:TopicPolicy" && r.inputs.arn === topic.outputs.arn)!.inputs.policy as string);
    expect(topicPolicy.Statement.map((s: any) => s.Principal.Service)).toEqual(["cloudwatch.amazonaws.com"]);
  });
});

it.each(["dev", "uat"])("%s has no copy in another region: no replica, no replication, no replication role", async (stack) => {
  const graph = await synth(stack);
  expect(graph.resources.filter((r) => r.name.includes("replica") || r.name.includes("replication"))).toEqual([]);
  expect(graph.resources.every((r) => r.region === "ap-southeast-1")).toBe(true);
}, 120_000);
