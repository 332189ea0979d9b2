/**
 * Which IAM action S3 authorizes a REST request as, so the local S3 can answer as S3 would for a given
 * identity policy. Multipart uploads are authorized as s3:PutObject (create, each part, complete),
 * except the abort (s3:AbortMultipartUpload) and the listings (S3 user guide, "Multipart upload and
 * permissions": https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions).
 */

import type { PolicyDocument } from "../../components/policies";
import type { S3Request } from "../../scripts/lib/localS3";
import { allows, type Request } from "./iam";

export function s3ActionOf(r: S3Request): string {
  const has = (name: string) => r.query[name] !== undefined;
  if (r.key === "") {
    if (r.method === "GET" && has("uploads")) return "s3:ListBucketMultipartUploads";
    if (r.method === "GET" && has("versions")) return "s3:ListBucketVersions";
    if (r.method === "GET" || r.method === "HEAD") return "s3:ListBucket";
    return `s3:(bucket ${r.method})`; // nothing of ours creates or deletes buckets
  }
  switch (r.method) {
    case "PUT":
    case "POST":
      return "s3:PutObject";
    case "DELETE":
      if (has("uploadId")) return "s3:AbortMultipartUpload";
      return has("versionId") ? "s3:DeleteObjectVersion" : "s3:DeleteObject";
    case "GET":
    case "HEAD":
      if (has("uploadId")) return "s3:ListMultipartUploadParts";
      return has("versionId") ? "s3:GetObjectVersion" : "s3:GetObject";
    default:
      return `s3:(object ${r.method})`;
  }
}

/**
 * The IAM request an S3 REST request is evaluated as. A listing's `prefix` parameter is its s3:prefix
 * condition key ("Actions, resources, and condition keys for Amazon S3", s3:prefix: "Filters access by
 * key name prefix"); a listing without one has no such key, so a condition on it does not hold, which is
 * why the IAM User Guide's home-directory example allows `""` to list the bucket's root
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_s3_home-directory-console.html).
 */
export function iamRequestOf(r: S3Request, partition = "aws"): Request {
  const action = s3ActionOf(r);
  const prefix = r.query.prefix;
  return {
    action,
    resource: r.key === "" ? `arn:${partition}:s3:::${r.bucket}` : `arn:${partition}:s3:::${r.bucket}/${r.key}`,
    ...(action === "s3:ListBucket" && typeof prefix === "string" ? { context: { "s3:prefix": prefix } } : {}),
  };
}

/** The names s3ActionOf gives requests no backup makes: not IAM actions, so refused without asking the simulator. */
const unmodelled = (action: string) => action.startsWith("s3:(");

/**
 * An authorizer for the local S3: requests signed with an access key of `policies` are allowed what
 * that key's policy allows (as the IAM simulator decides), and each decision is recorded with the key;
 * requests signed with any other key (an operator's) pass. One key per task role, so that the backup and
 * the verifier task can run against the same server, each under its own synthesized role.
 */
export function policyAuthorizer(policies: Record<string, PolicyDocument | string>): {
  authorize: (r: S3Request) => Promise<boolean>;
  decisions: (Request & { accessKeyId: string; allowed: boolean })[];
} {
  const decisions: (Request & { accessKeyId: string; allowed: boolean })[] = [];
  return {
    decisions,
    authorize: async (r) => {
      const policy = r.accessKeyId === undefined ? undefined : policies[r.accessKeyId];
      if (policy === undefined) return true;
      const request = iamRequestOf(r);
      const allowed = !unmodelled(request.action) && (await allows(policy, request));
      decisions.push({ ...request, accessKeyId: r.accessKeyId!, allowed });
      return allowed;
    },
  };
}
