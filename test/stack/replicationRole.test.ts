/**
 * The replication role (S3 Replication's, for the copy in another region) and the verifier's reach into
 * the replica, asked the questions S3 and KMS really get, answered by the IAM simulator
 * (test/support/iam.ts). S3 replicates with the role's permissions as "Setting up permissions for live
 * replication" lists them (S3 User Guide,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html): it reads
 * the source versions (GetObjectVersionForReplication, GetObjectVersionAcl, GetObjectVersionTagging), and
 * writes the replica with ReplicateObject and ReplicateTags (ReplicateDelete only to carry delete markers).
 * For SSE-KMS objects it decrypts with the source key through S3 in the source's region and encrypts with
 * the replica's key through S3 in the replica's region ("Replicating encrypted objects",
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html).
 */

import { assumeRolePolicy, replicationRolePolicy, verifierRolePolicy } from "../../components/policies";
import { drillKey } from "../../image/src/keys";
import { account, allows, s3KmsRequest, type Request } from "../support/iam";

const region = "ap-southeast-1";
const replicaRegion = "ap-northeast-1";
const sourceKey = `arn:aws:kms:${region}:${account}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const replicaKey = `arn:aws:kms:${replicaRegion}:${account}:key/9876fedc-12ab-34cd-56ef-1234567890ab`;
const source = "arn:aws:s3:::db-backup-prod-backups-1a2b3c4";
const replica = "arn:aws:s3:::db-backup-prod-replica-5d6e7f8";
const stageKeys = ["prod/postgres/app/2026-11-30T03-00-00Z.dump", "prod/postgres/app/2026-11-30T03-00-00Z.dump.manifest.json", "prod/drills/app/2026-11-30T06-00-00Z.json"];
const otherKeys = ["dev/postgres/app/x.dump", "prodx/a", "x"];
const object = (action: string, bucket: string, key: string): Request => ({ action, resource: `${bucket}/${key}` });

const inputs = (kms: boolean, objectLock: boolean) => ({
  sourceBucketArn: source,
  stage: "prod",
  sourceKms: kms ? { keyArn: sourceKey, bucketKey: "enabled" as const } : undefined,
  replica: { bucketArn: replica, kms: kms ? { keyArn: replicaKey, bucketKey: "enabled" as const } : undefined },
  objectLock,
});
const plain = replicationRolePolicy(inputs(false, false));
const locked = replicationRolePolicy(inputs(true, true));

describe("the replication role", () => {
  it("is assumed by S3 only on behalf of this account", async () => {
    const trust = assumeRolePolicy("s3.amazonaws.com", account);
    const role = `arn:aws:iam::${account}:role/db-backup-prod-replication`;
    expect(await allows(trust, { principal: "s3.amazonaws.com", action: "sts:AssumeRole", resource: role, context: { "aws:SourceAccount": account } })).toBe(true);
    expect(await allows(trust, { principal: "s3.amazonaws.com", action: "sts:AssumeRole", resource: role, context: { "aws:SourceAccount": "999999999999" } })).toBe(false);
    expect(await allows(trust, { principal: "ecs-tasks.amazonaws.com", action: "sts:AssumeRole", resource: role, context: { "aws:SourceAccount": account } })).toBe(false);
  });

  it.each([["SSE-S3", plain], ["SSE-KMS with Object Lock", locked]])("replicates this stage's versions, with their ACLs and tags (%s)", async (_, policy) => {
    for (const action of ["s3:GetReplicationConfiguration", "s3:ListBucket"]) expect(await allows(policy, { action, resource: source })).toBe(true);
    for (const key of stageKeys) {
      for (const action of ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]) expect(await allows(policy, object(action, source, key))).toBe(true);
      for (const action of ["s3:ReplicateObject", "s3:ReplicateTags"]) expect(await allows(policy, object(action, replica, key))).toBe(true);
    }
  });

  it("reads no other prefix of the source, and writes no other prefix of the replica", async () => {
    for (const policy of [plain, locked]) {
      for (const key of otherKeys) {
        expect(await allows(policy, object("s3:GetObjectVersionForReplication", source, key))).toBe(false);
        expect(await allows(policy, object("s3:ReplicateObject", replica, key))).toBe(false);
      }
    }
  });

  it("cannot read an object as a client would, delete, carry a delete, or write anywhere but the replica", async () => {
    for (const policy of [plain, locked]) {
      for (const key of stageKeys) {
        for (const action of ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"]) {
          expect(await allows(policy, object(action, source, key))).toBe(false);
          expect(await allows(policy, object(action, replica, key))).toBe(false);
        }
        expect(await allows(policy, object("s3:ReplicateDelete", replica, key))).toBe(false);
        // Not back into the source, nor into another bucket.
        expect(await allows(policy, object("s3:ReplicateObject", source, key))).toBe(false);
        expect(await allows(policy, object("s3:ReplicateObject", "arn:aws:s3:::someone-elses-bucket", key))).toBe(false);
      }
      for (const action of ["s3:PutReplicationConfiguration", "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"]) expect(await allows(policy, { action, resource: source })).toBe(false);
      expect(await allows(policy, { action: "s3:ListBucket", resource: replica })).toBe(false);
    }
  });

  it("reads each version's retention and legal hold only when the bucket locks them (S3 copies them to the replica)", async () => {
    for (const action of ["s3:GetObjectRetention", "s3:GetObjectLegalHold"]) {
      expect(await allows(locked, object(action, source, stageKeys[0]))).toBe(true);
      expect(await allows(locked, object(action, source, otherKeys[0]))).toBe(false);
      expect(await allows(plain, object(action, source, stageKeys[0]))).toBe(false);
    }
  });

  describe("with SSE-KMS (S3 Bucket Keys on both buckets)", () => {
    const decrypt = (over: Partial<Parameters<typeof s3KmsRequest>[0]> = {}) =>
      s3KmsRequest({ operation: "Decrypt", keyArn: sourceKey, bucketArn: source, objectKey: stageKeys[0], bucketKey: true, region, ...over });
    const encrypt = (over: Partial<Parameters<typeof s3KmsRequest>[0]> = {}) =>
      s3KmsRequest({ operation: "Encrypt", keyArn: replicaKey, bucketArn: replica, objectKey: stageKeys[0], bucketKey: true, region: replicaRegion, ...over });

    it("decrypts with the source key through S3 in the source's region, encrypts with the replica's key through S3 in the replica's", async () => {
      expect(await allows(locked, decrypt())).toBe(true);
      expect(await allows(locked, encrypt())).toBe(true);
    });

    it("uses neither key any other way: other region, other bucket, other operation, not through S3", async () => {
      expect(await allows(locked, decrypt({ region: replicaRegion }))).toBe(false);
      expect(await allows(locked, encrypt({ region }))).toBe(false);
      expect(await allows(locked, decrypt({ bucketArn: "arn:aws:s3:::someone-elses-bucket" }))).toBe(false);
      expect(await allows(locked, encrypt({ bucketArn: source, keyArn: replicaKey }))).toBe(false);
      expect(await allows(locked, decrypt({ keyArn: replicaKey, bucketArn: replica, region: replicaRegion }))).toBe(false);
      expect(await allows(locked, encrypt({ keyArn: sourceKey, bucketArn: source, region }))).toBe(false);
      expect(await allows(locked, decrypt({ operation: "GenerateDataKey" }))).toBe(false);
      const direct = decrypt();
      delete direct.context!["kms:ViaService"];
      expect(await allows(locked, direct)).toBe(false);
    });

    it("has no KMS grant at all with SSE-S3", async () => {
      expect(plain.Statement.map((s) => s.Sid)).toEqual(["ReadReplicationConfiguration", "ReadStageVersions", "ReplicateStage"]);
      expect(await allows(plain, decrypt())).toBe(false);
    });
  });
});

describe("the verifier, with a replica", () => {
  const verifier = verifierRolePolicy({ bucketArn: source, stage: "prod", kms: { keyArn: sourceKey, bucketKey: "enabled" }, replica: { bucketArn: replica, kms: { keyArn: replicaKey, bucketKey: "enabled" } } });
  const record = drillKey("prod", "app", new Date("2026-11-30T06:00:00Z"));

  it("lists and reads the replica's copy of its stage, and leaves its drill record there", async () => {
    expect(await allows(verifier, { action: "s3:ListBucket", resource: replica, context: { "s3:prefix": "prod/" } })).toBe(true);
    for (const key of stageKeys) expect(await allows(verifier, object("s3:GetObject", replica, key))).toBe(true);
    expect(await allows(verifier, object("s3:PutObject", replica, record))).toBe(true);
  });

  it("sees nothing else of the replica, writes no backup there and deletes nothing", async () => {
    for (const prefix of [undefined, "", "dev/", "prodx/"]) {
      expect(await allows(verifier, { action: "s3:ListBucket", resource: replica, context: prefix === undefined ? {} : { "s3:prefix": prefix } })).toBe(false);
    }
    for (const key of otherKeys) expect(await allows(verifier, object("s3:GetObject", replica, key))).toBe(false);
    for (const key of stageKeys.slice(0, 2)) expect(await allows(verifier, object("s3:PutObject", replica, key))).toBe(false);
    for (const key of stageKeys) expect(await allows(verifier, object("s3:DeleteObject", replica, key))).toBe(false);
  });

  it("decrypts the replica through S3 in the replica's region only", async () => {
    const read = (over: Partial<Parameters<typeof s3KmsRequest>[0]> = {}) =>
      s3KmsRequest({ operation: "Decrypt", keyArn: replicaKey, bucketArn: replica, objectKey: stageKeys[0], bucketKey: true, region: replicaRegion, ...over });
    expect(await allows(verifier, read())).toBe(true);
    expect(await allows(verifier, read({ operation: "GenerateDataKey", objectKey: record }))).toBe(true);
    expect(await allows(verifier, read({ region }))).toBe(false);
    expect(await allows(verifier, read({ bucketArn: source }))).toBe(false);
  });

  it("has the replica's grants only when there is a replica", () => {
    expect(verifierRolePolicy({ bucketArn: source, stage: "prod" }).Statement.map((s) => s.Sid)).toEqual(["ListOwnStage", "ReadOwnStage", "WriteDrillRecords"]);
    expect(verifier.Statement.map((s) => s.Sid)).toEqual([
      "ListOwnStage", "ReadOwnStage", "WriteDrillRecords", "EncryptThroughS3",
      "ListOwnStageInReplica", "ReadOwnStageInReplica", "WriteDrillRecordsInReplica", "EncryptThroughS3InReplica",
    ]);
  });
});
