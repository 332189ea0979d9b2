/**
 * The verifier's (restore drill's) task role and the backup's, asked the questions S3 and KMS really get,
 * answered by the IAM simulator (test/support/iam.ts): the drill may list and read only its own stage and
 * write only drill records; the backup may write only backups, never a drill record, and still reads nothing.
 *
 * A listing is authorized as s3:ListBucket on the bucket, with the request's `prefix` parameter as the
 * s3:prefix condition key ("Actions, resources, and condition keys for Amazon S3", s3:prefix; the IAM User
 * Guide's home-directory example, which must allow `""` explicitly for a listing of the bucket's root:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_s3_home-directory-console.html).
 */

import { taskRolePolicy, verifierRolePolicy, type BucketKeySetting } from "../../components/policies";
import { drillKey } from "../../image/src/keys";
import { allows, s3KmsRequest, type Request } from "../support/iam";

const region = "ap-southeast-1";
const keyArn = `arn:aws:kms:${region}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const bucketArn = "arn:aws:s3:::db-backup-prod-backups-1a2b3c4";
const verifier = verifierRolePolicy({ bucketArn, stage: "prod" });
const backup = taskRolePolicy({ bucketArn, stage: "prod" });
const object = (action: string, key: string, bucket = bucketArn): Request => ({ action, resource: `${bucket}/${key}` });
const list = (prefix: string | undefined, bucket = bucketArn): Request => ({ action: "s3:ListBucket", resource: bucket, context: prefix === undefined ? {} : { "s3:prefix": prefix } });
const backupKeys = ["prod/postgres/app/2026-11-30T03-00-00Z.dump", "prod/postgres/app/2026-11-30T03-00-00Z.dump.manifest.json", "prod/mongodb/events/2026-11-30T03-00-00Z.archive.gz"];
const drillRecord = drillKey("prod", "app", new Date("2026-11-30T06:00:00Z"));

describe("the verifier", () => {
  it("lists its own stage, under any prefix of it, as the runner and the drill list", async () => {
    for (const prefix of ["prod/", "prod/postgres/app/", "prod/drills/app/"]) expect(await allows(verifier, list(prefix))).toBe(true);
  });

  it("lists nothing else: no prefix, the bucket's root, another stage, a stage whose name starts with its own, another bucket", async () => {
    for (const prefix of [undefined, "", "dev/", "prodx/", "pro", "prod"]) expect(await allows(verifier, list(prefix))).toBe(false);
    expect(await allows(verifier, list("prod/", "arn:aws:s3:::another-bucket"))).toBe(false);
  });

  it("reads its stage's backups, manifests and earlier drill records, and nothing outside its stage", async () => {
    for (const key of [...backupKeys, drillRecord]) expect(await allows(verifier, object("s3:GetObject", key))).toBe(true);
    for (const key of ["dev/postgres/app/x.dump", "prodx/a", "x"]) expect(await allows(verifier, object("s3:GetObject", key))).toBe(false);
    expect(await allows(verifier, object("s3:GetObject", backupKeys[0], "arn:aws:s3:::another-bucket"))).toBe(false);
  });

  it("writes only drill records of its stage: never a backup, a manifest, or another stage's record", async () => {
    expect(await allows(verifier, object("s3:PutObject", drillRecord))).toBe(true);
    for (const key of [...backupKeys, "prod/x", "dev/drills/app/2026-11-30T06-00-00Z.json", "prodx/drills/a"]) expect(await allows(verifier, object("s3:PutObject", key))).toBe(false);
  });

  it("deletes nothing and changes nothing about the bucket", async () => {
    for (const key of [...backupKeys, drillRecord]) {
      for (const action of ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:PutObjectRetention"]) expect(await allows(verifier, object(action, key))).toBe(false);
    }
    for (const action of ["s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "s3:ListBucketVersions"]) expect(await allows(verifier, { action, resource: bucketArn })).toBe(false);
  });
});

describe("the backup task, beside the verifier", () => {
  it("writes backups under each engine's prefix of its stage", async () => {
    for (const key of backupKeys) {
      expect(await allows(backup, object("s3:PutObject", key))).toBe(true);
      expect(await allows(backup, object("s3:AbortMultipartUpload", key))).toBe(true);
    }
  });

  it("cannot forge a drill record, nor write anywhere else under its stage", async () => {
    for (const key of [drillRecord, "prod/x", "prod/other/a"]) expect(await allows(backup, object("s3:PutObject", key))).toBe(false);
  });

  it("still reads, lists and deletes nothing", async () => {
    for (const key of [...backupKeys, drillRecord]) {
      for (const action of ["s3:GetObject", "s3:DeleteObject"]) expect(await allows(backup, object(action, key))).toBe(false);
    }
    expect(await allows(backup, list("prod/"))).toBe(false);
  });
});

describe.each([
  ["enabled", [true]],
  ["disabled", [false]],
  ["unknown", [true, false]],
] as [BucketKeySetting, boolean[]][])("the verifier's KMS grant, Bucket Key %s", (setting, s3Sends) => {
  const policy = verifierRolePolicy({ bucketArn, stage: "prod", kms: { keyArn, bucketKey: setting } });
  const s3Asks = (over: Partial<Parameters<typeof s3KmsRequest>[0]>) => s3KmsRequest({ operation: "Decrypt", keyArn, bucketArn, objectKey: backupKeys[0], bucketKey: true, region, ...over });

  it.each(s3Sends)("lets S3 decrypt its stage's backups and encrypt a drill record (Bucket Key in use: %s)", async (bucketKey) => {
    expect(await allows(policy, s3Asks({ bucketKey }))).toBe(true);
    expect(await allows(policy, s3Asks({ bucketKey, operation: "GenerateDataKey", objectKey: drillRecord }))).toBe(true);
  });

  it("refuses another bucket, another region's S3 and any call not made through S3", async () => {
    for (const bucketKey of s3Sends) {
      expect(await allows(policy, s3Asks({ bucketKey, bucketArn: "arn:aws:s3:::someone-elses-bucket" }))).toBe(false);
      expect(await allows(policy, s3Asks({ bucketKey, region: "us-east-1" }))).toBe(false);
      const direct = s3Asks({ bucketKey });
      delete direct.context!["kms:ViaService"];
      expect(await allows(policy, direct)).toBe(false);
    }
    if (s3Sends.includes(false)) expect(await allows(policy, s3Asks({ bucketKey: false, objectKey: "dev/postgres/app/x.dump" }))).toBe(false);
  });
});

it("grants nothing on KMS for an SSE-S3 bucket", async () => {
  expect(verifier.Statement.map((s) => s.Sid)).toEqual(["ListOwnStage", "ReadOwnStage", "WriteDrillRecords"]);
  expect(await allows(verifier, s3KmsRequest({ operation: "Decrypt", keyArn, bucketArn, objectKey: backupKeys[0], bucketKey: true, region }))).toBe(false);
});
