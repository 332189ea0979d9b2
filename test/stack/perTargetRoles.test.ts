/**
 * The roles of one target's backup task (isolation per-target), asked the questions S3, KMS, ECS and
 * EventBridge Scheduler really get, answered by the IAM simulator (test/support/iam.ts): each task role
 * writes only `<stage>/<engine>/<name>/*` of its own target, uses the bucket's key only for its own
 * objects when S3 sends the object's ARN as encryption context (no Bucket Key), each execution role
 * reads only its own target's parameter, and each scheduler role starts only its own family and passes
 * only its own roles. test/stack/stack.test.ts asks the same of the synthesized uat stack.
 */

import { executionRolePolicy, schedulerRolePolicy, taskRolePolicy, type BucketKeySetting } from "../../components/policies";
import { allows, s3KmsRequest, type Request } from "../support/iam";

const region = "ap-southeast-1";
const account = "123456789012";
const keyArn = `arn:aws:kms:${region}:${account}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const bucketArn = "arn:aws:s3:::db-backup-uat-backups-1a2b3c4";
const app = { engine: "postgres" as const, name: "app" };
const events = { engine: "mongodb" as const, name: "events" };
const keys = {
  app: ["uat/postgres/app/2026-11-30T03-00-00Z.dump", "uat/postgres/app/2026-11-30T03-00-00Z.dump.manifest.json"],
  events: ["uat/mongodb/events/2026-11-30T03-00-00Z.archive.gz", "uat/mongodb/events/2026-11-30T03-00-00Z.archive.gz.manifest.json"],
};
const put = (key: string, action = "s3:PutObject"): Request => ({ action, resource: `${bucketArn}/${key}` });

describe("a per-target task role", () => {
  const appRole = taskRolePolicy({ bucketArn, stage: "uat", targets: [app] });

  it("writes its own target's backups and manifests, and aborts its own uploads", async () => {
    for (const key of keys.app) {
      expect(await allows(appRole, put(key))).toBe(true);
      expect(await allows(appRole, put(key, "s3:AbortMultipartUpload"))).toBe(true);
    }
  });

  it("cannot write another target's prefix, a target whose name starts with its own, another engine's, or another stage's", async () => {
    for (const key of [...keys.events, "uat/postgres/appx/x.dump", "uat/postgres/ap/x.dump", "uat/mongodb/app/x.archive.gz", "uat/postgres/x.dump", "prod/postgres/app/x.dump", "uat/drills/app/x.json"]) {
      expect({ key, allowed: await allows(appRole, put(key)) }).toEqual({ key, allowed: false });
    }
  });

  it("is one of a pair: the other target's role writes only the other target's prefix", async () => {
    const eventsRole = taskRolePolicy({ bucketArn, stage: "uat", targets: [events] });
    for (const key of keys.events) expect(await allows(eventsRole, put(key))).toBe(true);
    for (const key of keys.app) expect(await allows(eventsRole, put(key))).toBe(false);
  });

  it("is narrower than the stage's role, which writes every target's prefix", async () => {
    const stageRole = taskRolePolicy({ bucketArn, stage: "uat" });
    for (const key of [...keys.app, ...keys.events]) expect(await allows(stageRole, put(key))).toBe(true);
  });

  describe.each([["disabled", false], ["unknown", false], ["enabled", true]] as [BucketKeySetting, boolean][])("with SSE-KMS, Bucket Key %s", (bucketKey, s3SendsBucketArn) => {
    const role = taskRolePolicy({ bucketArn, stage: "uat", targets: [app], kms: { keyArn, bucketKey } });
    const s3Asks = (objectKey: string) => s3KmsRequest({ operation: "GenerateDataKey", keyArn, bucketArn, objectKey, bucketKey: s3SendsBucketArn, region });

    it("uses the key for its own target's objects", async () => {
      expect(await allows(role, s3Asks(keys.app[0]))).toBe(true);
    });

    it(s3SendsBucketArn
      ? "cannot be narrowed by the key with a Bucket Key (S3 sends the bucket's ARN for every object): its S3 statement keeps it to its prefix"
      : "refuses the key for another target's objects: the object's ARN in the encryption context is narrowed to its prefix", async () => {
      expect(await allows(role, s3Asks(keys.events[0]))).toBe(s3SendsBucketArn);
    });
  });
});

describe("a per-target execution role", () => {
  const parameter = (name: string) => `arn:aws:ssm:${region}:${account}:parameter/db-backup/uat/${name}`;
  const role = executionRolePolicy({ repositoryArn: `arn:aws:ecr:${region}:${account}:repository/r`, logGroupArn: `arn:aws:logs:${region}:${account}:log-group:g`, parameterArns: [parameter("app-password")] });

  it("reads its own target's parameter and no other target's", async () => {
    expect(await allows(role, { action: "ssm:GetParameters", resource: parameter("app-password") })).toBe(true);
    for (const other of ["events-uri", "drillAgeIdentity", "app-password-old"]) expect(await allows(role, { action: "ssm:GetParameters", resource: parameter(other) })).toBe(false);
  });
});

describe("per-target scheduler roles", () => {
  const family = (name: string) => `db-backup-uat-${name}`;
  const roleArn = (name: string) => `arn:aws:iam::${account}:role/${name}`;
  const clusterArn = `arn:aws:ecs:${region}:${account}:cluster/db-backup-uat-cluster`;
  const scheduler = (target: string) => schedulerRolePolicy({
    region, accountId: account, partition: "aws", family: family(target), clusterArn,
    executionRoleArn: roleArn(`${family(target)}-execution`), taskRoleArn: roleArn(`${family(target)}-task`), deadLetterQueueArn: `arn:aws:sqs:${region}:${account}:dlq`,
  });
  const runTask = (f: string): Request => ({ action: "ecs:RunTask", resource: `arn:aws:ecs:${region}:${account}:task-definition/${f}:3`, context: { "ecs:cluster": clusterArn } });
  const pass = (role: string): Request => ({ action: "iam:PassRole", resource: roleArn(role), context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } });

  it.each([["app", "events"], ["events", "app"]])("%s's starts only its own family and passes only its own roles, not %s's or the verifier's", async (own, other) => {
    const policy = scheduler(own);
    expect([await allows(policy, runTask(family(own))), await allows(policy, pass(`${family(own)}-execution`)), await allows(policy, pass(`${family(own)}-task`))]).toEqual([true, true, true]);
    for (const f of [family(other), "db-backup-uat-drill", "db-backup-uat"]) expect({ f, run: await allows(policy, runTask(f)) }).toEqual({ f, run: false });
    for (const r of [`${family(other)}-execution`, `${family(other)}-task`, "db-backup-uat-drill", "db-backup-uat-drill-execution"]) expect({ r, pass: await allows(policy, pass(r)) }).toEqual({ r, pass: false });
  });
});
