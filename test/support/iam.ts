/**
 * A small evaluator of identity and resource policies, enough to ask "may this principal do this to
 * that?" of the documents this project writes: Allow/Deny, Action and Resource wildcards, and the
 * condition operators the project uses. An operator it does not know throws, whatever the request
 * holds, so a test can never pass on a condition the evaluator only pretended to check.
 *
 * Condition semantics follow the IAM User Guide, "IAM JSON policy elements: Condition operators"
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
 * several operators and several keys are ANDed, several values of one key are ORed, a key absent from
 * the request makes a (non-IfExists, non-negated) condition false, condition key names are not case
 * sensitive, String* values are, and Arn* operators match each colon-delimited part of the ARN
 * separately, with * and ? wildcards inside a part.
 */

import type { PolicyDocument, Statement } from "../../components/policies";

export interface Request {
  action: string;
  resource: string;
  context?: Record<string, string>;
}

function glob(pattern: string, value: string, caseInsensitive: boolean): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, caseInsensitive ? "i" : "");
  return regex.test(value);
}

/** ArnLike/ArnEquals: the six colon-delimited parts compared one by one; the last part keeps its colons. */
function arnLike(pattern: string, value: string): boolean {
  const split = (arn: string) => {
    const parts = arn.split(":");
    return parts.length < 6 ? undefined : [...parts.slice(0, 5), parts.slice(5).join(":")];
  };
  const p = split(pattern);
  const v = split(value);
  if (!p || !v) return false;
  return p.every((part, i) => glob(part, v[i], false));
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The operators this evaluator implements, each a test of one request value against one policy value. */
const operators: Record<string, (expected: string, actual: string) => boolean> = {
  StringEquals: (e, a) => e === a,
  StringLike: (e, a) => glob(e, a, false),
  ArnEquals: arnLike,
  ArnLike: arnLike,
  Bool: (e, a) => e.toLowerCase() === a.toLowerCase(),
};

/** The request's value of a condition key, looked up without regard to case as IAM does. */
function contextValue(context: Record<string, string>, key: string): string | undefined {
  const found = Object.keys(context).find((k) => k.toLowerCase() === key.toLowerCase());
  return found === undefined ? undefined : context[found];
}

function conditionHolds(condition: Statement["Condition"], context: Record<string, string>): boolean {
  // Every operator is checked before any value, so an unknown one fails even where the key is absent.
  for (const operator of Object.keys(condition ?? {})) {
    if (!(operator in operators)) throw new Error(`the test evaluator does not know the condition operator ${operator}`);
  }
  for (const [operator, entries] of Object.entries(condition ?? {})) {
    for (const [key, expected] of Object.entries(entries)) {
      const actual = contextValue(context, key);
      if (actual === undefined) return false;
      if (!list(expected).some((v) => operators[operator](v, actual))) return false;
    }
  }
  return true;
}

function matches(s: Statement, r: Request): boolean {
  return (
    list(s.Action).some((a) => glob(a, r.action, true)) &&
    list(s.Resource).some((res) => glob(res, r.resource, false)) &&
    conditionHolds(s.Condition, r.context ?? {})
  );
}

/** True when some statement allows the request and none denies it (IAM's evaluation for one policy). */
export function allows(policy: PolicyDocument | string, r: Request): boolean {
  const doc: PolicyDocument = typeof policy === "string" ? JSON.parse(policy) : policy;
  const hits = doc.Statement.filter((s) => matches(s, r));
  return hits.some((s) => s.Effect === "Allow") && !hits.some((s) => s.Effect === "Deny");
}

/** True when some statement of a resource policy denies the request. */
export function denies(policy: PolicyDocument | string, r: Request): boolean {
  const doc: PolicyDocument = typeof policy === "string" ? JSON.parse(policy) : policy;
  return doc.Statement.some((s) => s.Effect === "Deny" && matches(s, r));
}

export interface S3KmsCall {
  /** The KMS operation S3 calls: GenerateDataKey to encrypt (CreateMultipartUpload, PutObject), Decrypt to read a data key back. */
  operation: "GenerateDataKey" | "Decrypt";
  /** The bucket's KMS key, as S3 names it to KMS. */
  keyArn: string;
  /** ARN of the bucket written to. */
  bucketArn: string;
  /** Key of the object written. */
  objectKey: string;
  /** Whether the bucket (or the request) uses an S3 Bucket Key. */
  bucketKey: boolean;
  /** The bucket's region: S3 calls KMS from there. */
  region: string;
}

/**
 * The KMS request S3 makes on the caller's behalf for an SSE-KMS object, as the caller's policy sees it.
 * Its encryption context is aws:s3:arn = the object's ARN, or the bucket's ARN with an S3 Bucket Key
 * (S3 User Guide, "Protecting Data Using Server-Side Encryption with AWS KMS (SSE-KMS)", Encryption
 * context, https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context,
 * and "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys", changes to note before enabling,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html#bucket-key-changes). Because the
 * request comes through S3, kms:ViaService is s3.<region>.amazonaws.com (AWS KMS Developer Guide,
 * "AWS KMS condition keys", kms:ViaService and its services table,
 * https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
 */
export function s3KmsRequest(c: S3KmsCall): Request {
  return {
    action: `kms:${c.operation}`,
    resource: c.keyArn,
    context: {
      "kms:EncryptionContext:aws:s3:arn": c.bucketKey ? c.bucketArn : `${c.bucketArn}/${c.objectKey}`,
      "kms:ViaService": `s3.${c.region}.amazonaws.com`,
    },
  };
}
