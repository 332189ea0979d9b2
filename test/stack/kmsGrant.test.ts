/**
 * The task role's KMS grant, asked the question KMS really gets: the GenerateDataKey/Decrypt request S3
 * sends on the task role's behalf when the runner starts a multipart upload into an SSE-KMS bucket
 * (test/support/iam.ts, s3KmsRequest: the encryption context is the object's ARN, or the bucket's ARN
 * with an S3 Bucket Key; S3 User Guide, "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys",
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html#bucket-key-changes).
 */

import { s3EncryptionContexts, taskRolePolicy, type BucketKeySetting, type PolicyDocument } from "../../components/policies";
import { allows, s3KmsRequest } from "../support/iam";

const region = "ap-southeast-1";
const keyArn = `arn:aws:kms:${region}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const bucketArn = "arn:aws:s3:::db-backup-prod-backups-1a2b3c4";
const objectKey = "prod/postgres/app/2026-11-30T03-00-00Z.dump";
const policy = (bucketKey: BucketKeySetting) => taskRolePolicy({ bucketArn, stage: "prod", kms: { keyArn, bucketKey } });
const s3Asks = (over: Partial<Parameters<typeof s3KmsRequest>[0]> = {}) =>
  s3KmsRequest({ operation: "GenerateDataKey", keyArn, bucketArn, objectKey, bucketKey: true, region, ...over });

it("the grant before this fix (object ARN context only) refuses what S3 sends with a Bucket Key: CreateMultipartUpload was denied", async () => {
  const before: PolicyDocument = {
    Version: "2012-10-17",
    Statement: [{
      Sid: "EncryptWithBucketKey",
      Effect: "Allow",
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: keyArn,
      Condition: { StringLike: { "kms:EncryptionContext:aws:s3:arn": `${bucketArn}/prod/*` } },
    }],
  };
  expect(await allows(before, s3Asks({ bucketKey: true }))).toBe(false);
  expect(await allows(before, s3Asks({ bucketKey: false }))).toBe(true);
});

describe.each([
  ["enabled", [true]],
  ["disabled", [false]],
  ["unknown", [true, false]],
] as [BucketKeySetting, boolean[]][])("a bucket whose Bucket Key is %s", (setting, s3Sends) => {
  it.each(s3Sends)("allows both KMS calls S3 makes for an upload under the stage's prefix (Bucket Key in use: %s)", async (bucketKey) => {
    for (const operation of ["GenerateDataKey", "Decrypt"] as const) {
      expect(await allows(policy(setting), s3Asks({ operation, bucketKey }))).toBe(true);
    }
  });

  it("refuses another bucket, another key, another stage's objects, another region's S3 and any call not made through S3", async () => {
    const p = policy(setting);
    for (const bucketKey of s3Sends) {
      expect(await allows(p, s3Asks({ bucketKey, bucketArn: "arn:aws:s3:::someone-elses-bucket" }))).toBe(false);
      expect(await allows(p, s3Asks({ bucketKey, keyArn: keyArn.replace(/key\/.*/, "key/ffffffff-0000-0000-0000-000000000000") }))).toBe(false);
      expect(await allows(p, s3Asks({ bucketKey, region: "us-east-1" }))).toBe(false);
      const direct = s3Asks({ bucketKey });
      delete direct.context!["kms:ViaService"];
      expect(await allows(p, direct)).toBe(false);
      expect(await allows(p, { ...s3Asks({ bucketKey }), action: "kms:Encrypt" })).toBe(false);
    }
    if (!s3Sends.includes(true)) expect(await allows(p, s3Asks({ bucketKey: true }))).toBe(false);
    // Without a Bucket Key the object's ARN is the context: only this stage's prefix.
    if (s3Sends.includes(false)) {
      expect(await allows(p, s3Asks({ bucketKey: false, objectKey: "dev/postgres/app/x.dump" }))).toBe(false);
      expect(await allows(p, s3Asks({ bucketKey: false, objectKey: "prodx/a" }))).toBe(false);
    } else {
      expect(await allows(p, s3Asks({ bucketKey: false }))).toBe(false);
    }
  });
});

it("names the contexts S3 sends for each setting", () => {
  expect(s3EncryptionContexts(bucketArn, [`${bucketArn}/prod/*`], "enabled")).toEqual([bucketArn]);
  expect(s3EncryptionContexts(bucketArn, [`${bucketArn}/prod/*`], "disabled")).toEqual([`${bucketArn}/prod/*`]);
  expect(s3EncryptionContexts(bucketArn, [`${bucketArn}/prod/*`], "unknown")).toEqual([bucketArn, `${bucketArn}/prod/*`]);
});

it("grants nothing on KMS for an SSE-S3 bucket", async () => {
  const p = taskRolePolicy({ bucketArn, stage: "prod" });
  expect(p.Statement.map((s) => s.Sid)).toEqual(["WriteOwnStageBackups"]);
  expect(await allows(p, s3Asks())).toBe(false);
});
