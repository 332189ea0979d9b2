/**
 * `--replica` against the local S3: a second bucket stands in for the copy in another region, filled
 * here as S3 Replication would fill it (every object under the stage's prefix, copied as it is). The
 * primary's backups are then deleted, so only a command that reads the replica can pass. MongoDB cannot
 * exist here: the backup is made by a stand-in mongodump that writes a gzip archive (mongodb.test.ts has
 * the one that checks how it is called).
 */

import { CopyObjectCommand, CreateBucketCommand, DeleteObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { rmSync } from "node:fs";
import { verifierRolePolicy } from "../../components/policies";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { fakeBin, runCli, storedKeys } from "../support/runner";
import { policyAuthorizer } from "../support/s3Access";

const replicaBucket = "db-backup-replica";
let s3: LocalS3;
let bin: { dir: string; path: string };
let env: NodeJS.ProcessEnv;
let client: S3Client;
const primaryBucket = "db-backup-local";
/**
 * Two signing keys answered as S3 would for the verifier task's role (components/policies.ts): with the
 * replica in its policy (a stage with replicaRegion), and without. Requests signed with s3rver's own key
 * (the setup's, standing in for S3 Replication) pass.
 */
const verifierKeys = {
  withReplica: { key: "VERIFIERREPLICA", policy: verifierRolePolicy({ bucketArn: `arn:aws:s3:::${primaryBucket}`, stage: "prod", replica: { bucketArn: `arn:aws:s3:::${replicaBucket}` } }) },
  withoutReplica: { key: "VERIFIERPRIMARY", policy: verifierRolePolicy({ bucketArn: `arn:aws:s3:::${primaryBucket}`, stage: "prod" }) },
};
const authorizer = policyAuthorizer(Object.fromEntries(Object.values(verifierKeys).map((k) => [k.key, k.policy])));

beforeAll(async () => {
  s3 = await startLocalS3(primaryBucket, { authorize: authorizer.authorize, accessKeys: Object.fromEntries(Object.values(verifierKeys).map((k) => [k.key, "secret"])) });
  bin = fakeBin({
    mongodump: `#!/bin/bash
if [ "$1" = "--version" ]; then echo "mongodump version: 100.9.0 (stand-in)"; exit 0; fi
printf 'stand-in archive\\n' | gzip -c
`,
  });
  env = { ...process.env, ...s3.env, PATH: bin.path, STAGE: "prod", MONGO_CONNECTION_STRING: "mongodb://backup:pw@db.example.com/", MONGO_DB_NAME: "billie" };
  client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  await client.send(new CreateBucketCommand({ Bucket: replicaBucket }));

  expect((await runCli(["backup"], env)).code).toBe(0);
  const keys = await storedKeys(env, "prod/");
  expect(keys.length).toBe(2);
  for (const key of keys) {
    await client.send(new CopyObjectCommand({ Bucket: replicaBucket, Key: key, CopySource: `${s3.bucket}/${key}` }));
    await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
  }
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  rmSync(bin.dir, { recursive: true, force: true });
});

const replicaEnv = () => ({ ...env, BACKUP_REPLICA_BUCKET: replicaBucket, BACKUP_REPLICA_REGION: "ap-northeast-1" });

it("verify finds nothing in the emptied bucket, and verifies the backup in the replica with --replica", async () => {
  const primary = await runCli(["verify"], replicaEnv());
  expect(primary.code).toBe(1);
  expect(primary.lines.find((l) => l.msg === "no backup found")).toMatchObject({ bucket: s3.bucket });

  const replica = await runCli(["verify", "--replica"], replicaEnv());
  expect(replica.code).toBe(0);
  expect(replica.lines.find((l) => l.msg === "verified")?.detail).toMatch(/gzip stream intact/);
});

it("the verifier task's role reads the replica with --replica, and only with the replica in its policy", async () => {
  const as = (k: { key: string }) => ({ ...replicaEnv(), AWS_ACCESS_KEY_ID: k.key, AWS_SECRET_ACCESS_KEY: "secret" });
  const before = authorizer.decisions.length;
  const allowed = await runCli(["verify", "--replica"], as(verifierKeys.withReplica));
  expect(allowed.code).toBe(0);
  const asked = authorizer.decisions.slice(before);
  expect(asked.length).toBeGreaterThan(0);
  expect(asked.every((d) => d.allowed && d.resource.startsWith(`arn:aws:s3:::${replicaBucket}`))).toBe(true);

  const refused = await runCli(["verify", "--replica"], as(verifierKeys.withoutReplica));
  expect(refused.code).not.toBe(0);
  expect(refused.text).toMatch(/AccessDenied|Access Denied/);
});

it("--replica without the replica's variables is a settings error naming both, and what sets them", async () => {
  for (const missing of [{}, { BACKUP_REPLICA_BUCKET: replicaBucket }]) {
    const run = await runCli(["verify", "--replica"], { ...env, ...missing });
    expect(run.code).toBe(2);
    expect(run.text).toMatch(/--replica reads the copy in another region, which BACKUP_REPLICA_BUCKET and BACKUP_REPLICA_REGION name \(the verifier task has them when the stack sets replicaRegion/);
    expect(run.text).toContain(Object.keys(missing).length === 0 ? "BACKUP_REPLICA_BUCKET and BACKUP_REPLICA_REGION are not set" : "BACKUP_REPLICA_REGION is not set");
  }
  expect((await runCli(["verify", "--replica"], { ...replicaEnv(), BACKUP_REPLICA_REGION: "tokyo" })).text).toContain("BACKUP_REPLICA_REGION='tokyo' is not an AWS region name");
});

it("restore and drill take --replica too, and refuse it the same way without the variables", async () => {
  for (const argv of [["restore", "--replica", "--database", "x"], ["drill", "--replica"]]) {
    const run = await runCli(argv, env);
    expect({ argv, code: run.code }).toEqual({ argv, code: 2 });
    expect(run.text).toContain("--replica reads the copy in another region");
  }
});
