/**
 * The backup bucket's protections, in one place for the primary and its replica (replicaRegion), so the
 * copy in another region is kept exactly as the original: versioning, every public access blocked,
 * TLS only, objects owned by the bucket owner, SSE (a KMS key of its own in the bucket's region when
 * kmsEncryption is on), Object Lock's default retention when objectLock is on, and the same lifecycle.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "./config";
import { bucketPolicy } from "./policies";

export interface LockedDownBucket {
  bucket: aws.s3.Bucket;
  /** Its SSE-KMS key (in the bucket's region); undefined for SSE-S3. */
  kmsKeyArn?: pulumi.Output<string>;
  /** Everything that must exist before objects are replicated into or out of the bucket. */
  ready: pulumi.Resource[];
}

/**
 * Creates `id` and its protections with `opts` (the component as parent; the replica's provider for the
 * copy). The bucket itself is protected in prod: `pulumi destroy` stops at it.
 */
export function lockedDownBucket(id: string, cfg: StackConfig, keyDescription: string, opts: pulumi.CustomResourceOptions): LockedDownBucket {
  const tags = { "db-backup:stage": cfg.stage };
  const bucket = new aws.s3.Bucket(id, { forceDestroy: false, tags }, { ...opts, protect: cfg.stage === "prod" });
  const kmsKeyArn = cfg.kmsEncryption
    ? new aws.kms.Key(id, { description: keyDescription, enableKeyRotation: true, deletionWindowInDays: 30, tags }, opts).arn
    : undefined;
  const encryption = new aws.s3.BucketServerSideEncryptionConfiguration(id, {
    bucket: bucket.id,
    rules: [{
      applyServerSideEncryptionByDefault: kmsKeyArn ? { sseAlgorithm: "aws:kms", kmsMasterKeyId: kmsKeyArn } : { sseAlgorithm: "AES256" },
      bucketKeyEnabled: kmsKeyArn !== undefined,
    }],
  }, opts);
  const versioning = new aws.s3.BucketVersioning(id, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, opts);
  const ready: pulumi.Resource[] = [encryption, versioning];
  if (cfg.objectLock) {
    // Enabled through PutObjectLockConfiguration on the versioned bucket, not the Bucket's
    // objectLockEnabled, which replaces an existing bucket (prod's is protected): S3 turns Object
    // Lock on for an existing versioned bucket this way ("Configuring S3 Object Lock", S3 User Guide).
    // The default retention is bucket-wide; the bucket holds only this stage's prefix.
    ready.push(new aws.s3.BucketObjectLockConfiguration(id, {
      bucket: bucket.id,
      objectLockEnabled: "Enabled",
      rule: { defaultRetention: { mode: cfg.objectLock.mode, days: cfg.objectLock.days } },
    }, { ...opts, dependsOn: [versioning] }));
  }
  const publicAccess = new aws.s3.BucketPublicAccessBlock(id, {
    bucket: bucket.id,
    blockPublicAcls: true,
    blockPublicPolicy: true,
    ignorePublicAcls: true,
    restrictPublicBuckets: true,
  }, opts);
  new aws.s3.BucketOwnershipControls(id, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, opts);
  new aws.s3.BucketPolicy(id, { bucket: bucket.id, policy: pulumi.jsonStringify(bucket.arn.apply(bucketPolicy)) }, { ...opts, dependsOn: [publicAccess] });
  new aws.s3.BucketLifecycleConfiguration(id, {
    bucket: bucket.id,
    rules: [
      { id: "expire-backups", status: "Enabled", filter: { prefix: `${cfg.stage}/` }, expiration: { days: cfg.backupRetentionDays } },
      { id: "expire-noncurrent-versions", status: "Enabled", filter: {}, noncurrentVersionExpiration: { noncurrentDays: cfg.noncurrentRetentionDays } },
      { id: "abort-incomplete-uploads", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } },
    ],
  }, opts);
  return { bucket, kmsKeyArn, ready };
}
