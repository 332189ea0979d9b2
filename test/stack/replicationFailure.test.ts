/**
 * An object S3 fails to copy to the replica (a refusal of the role or a KMS key) is FAILED, not pending,
 * so the lag alarm may never see it. The source bucket's S3 Event Notification of
 * `s3:Replication:OperationFailedReplication` alerts the stage's topic instead (alerts.ts
 * replicationFailureNotification). Checked against S3's documented notification rules
 * (models/s3Notifications.ts) on prod's synthesized graph: S3 takes the configuration, a failed copy of
 * a backup reaches the topic and its e-mail once, with the object and the reason, and nothing else does.
 */

import { replicationFailureEvent } from "../../components/alerts";
import type { RecordedResource } from "../../scripts/lib/mocks";
import { readStackFile } from "../../scripts/lib/stackFiles";
import type { SynthResult } from "../../scripts/lib/synth";
import { account } from "../support/iam";
import { configurationProblem, objectCreatedRecord, recipients, replicationFailureRecord, type Bucket, type ReplicationRule, type Topic, type TopicConfiguration } from "./models/s3Notifications";

async function synth(stack: string): Promise<SynthResult> {
  jest.resetModules();
  const { synthesize } = await import("../../scripts/lib/synth");
  return synthesize(stack);
}

describe("prod (a replica in ap-northeast-1)", () => {
  let graph: SynthResult;
  beforeAll(async () => {
    graph = await synth("prod");
  }, 120_000);
  const named = (type: string, name: string): RecordedResource => {
    const found = graph.resources.filter((r) => r.type === type && r.name === name);
    expect(found).toHaveLength(1);
    return found[0];
  };
  const topicOf = (name: string): Topic => {
    const topic = named("aws:sns/topic:Topic", name);
    const policy = graph.resources.find((r) => r.type === "aws:sns/topicPolicy:TopicPolicy" && r.inputs.arn === topic.outputs.arn)!;
    return { arn: topic.outputs.arn as string, policy: policy.inputs.policy as string };
  };
  const source = (): Bucket => {
    const b = named("aws:s3/bucket:Bucket", "db-backup-prod-backups");
    return { name: b.outputs.bucket as string, arn: b.outputs.arn as string, region: b.region!, owner: account };
  };
  const notification = () => named("aws:s3/bucketNotification:BucketNotification", "db-backup-prod-replication-failed");
  const rule = () => (named("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "db-backup-prod-replication").inputs.rules as ReplicationRule[])[0];
  const failure = (failureReason: string, key = "prod/postgres/app/2026-11-30T03-00-00Z.dump") =>
    replicationFailureRecord({ bucket: source(), rule: rule(), key, versionId: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", failureReason, at: "2026-11-30T03:04:32.527Z" })!;

  it("notifies the stage's topic of failed replications, and of nothing else, from the source bucket: no EventBridge", async () => {
    const n = notification();
    expect(n.inputs.bucket).toBe(named("aws:s3/bucket:Bucket", "db-backup-prod-backups").outputs.id);
    expect(n.region).toBe("ap-southeast-1");
    expect(n.inputs.eventbridge ?? false).toBe(false);
    expect(n.inputs.queues ?? []).toEqual([]);
    expect(n.inputs.lambdaFunctions ?? []).toEqual([]);
    const topics = n.inputs.topics as TopicConfiguration[];
    expect(topics).toEqual([expect.objectContaining({ topicArn: topicOf("db-backup-prod-alerts").arn, events: [replicationFailureEvent] })]);
  });

  it("is a configuration S3 takes: the topic is in the bucket's region and lets S3 publish for this bucket (its test message gets through)", async () => {
    const topics = notification().inputs.topics as TopicConfiguration[];
    expect(await configurationProblem(source(), topics, [topicOf("db-backup-prod-alerts")])).toBeUndefined();
    // The replica region's topic, where the lag alarm reports, would be refused: a notification's topic is the bucket's region's.
    const replicaTopic = topicOf("db-backup-prod-replica-alerts");
    expect(await configurationProblem(source(), [{ ...topics[0], topicArn: replicaTopic.arn }], [replicaTopic])).toMatch(/not in the bucket's region/);
    // The topic lets S3 publish for this bucket and account only.
    const other: Bucket = { ...source(), name: "someone-elses", arn: "arn:aws:s3:::someone-elses" };
    expect(await configurationProblem(other, topics, [topicOf("db-backup-prod-alerts")])).toMatch(/does not let S3 publish/);
    expect(await configurationProblem({ ...source(), owner: "999999999999" }, topics, [topicOf("db-backup-prod-alerts")])).toMatch(/does not let S3 publish/);
  });

  it.each(["DstKmsKeyInvalidState", "AssumeRoleNotPermitted", "DstBucketObjectLockConfigMissing", "SrcGetObjectNotPermitted"])(
    "alerts once, naming the object and the reason, when a backup fails to replicate with %s",
    (reason) => {
      // The rule's replication metrics are what makes S3 report failures at all.
      expect(rule().destination.metrics).toEqual({ status: "Enabled" });
      const record = failure(reason);
      const topics = notification().inputs.topics as TopicConfiguration[];
      expect(recipients(topics, record)).toEqual([topicOf("db-backup-prod-alerts").arn]);
      const message = JSON.parse(JSON.stringify({ Records: [record] }));
      expect(message.Records[0]).toMatchObject({ s3: { object: { key: "prod/postgres/app/2026-11-30T03-00-00Z.dump" } }, replicationEventData: { failureReason: reason } });
      // The topic's e-mail subscription is the on-call address.
      const email = named("aws:sns/topicSubscription:TopicSubscription", "db-backup-prod-alerts-email");
      expect(email.inputs).toMatchObject({ topic: topicOf("db-backup-prod-alerts").arn, protocol: "email", endpoint: readStackFile("prod")["db-backup:alertEmail"] });
    },
  );

  it("stays quiet for what S3 reports of ordinary work: an upload", () => {
    const topics = notification().inputs.topics as TopicConfiguration[];
    expect(recipients(topics, objectCreatedRecord(source(), "prod/postgres/app/x.dump"))).toEqual([]);
  });

  it("would get no failure event from a rule without replication metrics", () => {
    const r = rule();
    expect(replicationFailureRecord({ bucket: source(), rule: { ...r, destination: { ...r.destination, metrics: { status: "Disabled" } } }, key: "k", versionId: "v", failureReason: "DstKmsKeyInvalidState", at: "" })).toBeUndefined();
  });
});

it.each(["dev", "uat"])("%s, without a replica, has no bucket notification and no S3 statement in its topic policy", async (stack) => {
  const graph = await synth(stack);
  expect(graph.resources.filter((r) => r.type === "aws:s3/bucketNotification:BucketNotification")).toEqual([]);
  const policy = JSON.parse(graph.resources.find((r) => r.type === "aws:sns/topicPolicy:TopicPolicy")!.inputs.policy as string);
  expect(policy.Statement.map((s: any) => s.Principal.Service)).not.toContain("s3.amazonaws.com");
}, 120_000);
