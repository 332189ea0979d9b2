/**
 * "May this principal do this to that?" asked of the documents this project writes, answered by
 * @cloud-copilot/iam-simulate, a maintained simulator of IAM's policy evaluation (identity, resource and
 * trust policies, every condition operator, same- and cross-account rules, KMS key policies). It also
 * refuses a question AWS would never be asked: an unknown action, a resource ARN the action does not
 * take, a context key the action does not have, a policy IAM would reject. Such a question throws here,
 * so a test cannot pass on a request that only looks plausible.
 *
 * One thing the simulator does not evaluate: `kms:EncryptionContext:<key>` condition keys. Before
 * evaluating, runSimulation keeps only the request's context keys that its data lists for the action
 * (or for every action: the global keys), compared in lower case, plus keys whose text up to the first
 * "/" starts one of those (tag keys such as aws:ResourceTag/<key>); every other key is dropped and
 * reported in ignoredContextKeys. Its data lists this key as `kms:EncryptionContext:${EncryptionContextKey}`,
 * a variable after a colon, not a "/", so the request's `kms:EncryptionContext:aws:s3:arn` is dropped
 * and a statement conditioned on it never applies, whatever the request holds (iam-simulate 0.1.173,
 * src/simulation_engine/simulationEngine.ts, normalizeSimulationParameters and listHasVariableKeyMatch;
 * test/stack/iamEvaluator.test.ts shows it). Those conditions alone are decided by the small matcher
 * below, `encryptionContextHolds`, and the rest of the statement by the simulator: the conditions of a
 * statement are ANDed, so the split is exact. Any other key the simulator would drop makes the
 * question throw instead.
 */

import { runSimulation, type Simulation } from "@cloud-copilot/iam-simulate";
import type { PolicyDocument, Statement } from "../../components/policies";
import { mockAccountId } from "../../scripts/lib/mocks";

export interface Request {
  action: string;
  resource: string;
  context?: Record<string, string>;
  /**
   * Who asks: an IAM ARN or a service principal (events.amazonaws.com). Required for a resource or trust
   * policy, whose answer depends on it; for an identity policy, the principal it is attached to (a role
   * of the synth's account unless given).
   */
  principal?: string;
}

/** The account the synth's mocks give every resource (scripts/lib/mocks.ts). */
export const account = mockAccountId;
const defaultRole = `arn:aws:iam::${account}:role/db-backup-test-principal`;

/**
 * A KMS key's own policy when it was created without one: the account may grant the key's use in IAM
 * policies ("Default key policy", AWS KMS Developer Guide,
 * https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html). The stack creates its
 * key without a policy, and README asks the same of an existing bucket's key. Without a key policy that
 * trusts the account, KMS ignores identity policies, and so does the simulator.
 */
export function defaultKeyPolicy(accountId = account): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{ Sid: "Enable IAM User Permissions", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: "kms:*", Resource: "*" }],
  };
}

type Kind = "identity" | "resource" | "trust";

/**
 * IAM's own rule tells the kinds apart: an identity policy has no Principal, a resource policy must
 * have one, and a role's trust policy is IAM's resource policy, with no Resource ("AWS JSON policy
 * elements: Principal", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
 */
function kindOf(doc: PolicyDocument): Kind {
  const withPrincipal = doc.Statement.filter((s) => s.Principal !== undefined).length;
  if (withPrincipal === 0) return "identity";
  if (withPrincipal !== doc.Statement.length) throw new Error("a policy mixes statements with and without Principal");
  return doc.Statement.every((s) => s.Resource === undefined) ? "trust" : "resource";
}

/** The account in an ARN, or undefined (S3 bucket and object ARNs and service principals name none). */
function accountOf(arn: string): string | undefined {
  const part = arn.split(":")[4];
  return part && /^[0-9]{12}$/.test(part) ? part : undefined;
}

// ---- The one part the simulator ignores: kms:EncryptionContext:<key> conditions ----

const isEncryptionContextKey = (key: string) => key.toLowerCase().startsWith("kms:encryptioncontext:");

function glob(pattern: string, value: string): boolean {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`).test(value);
}

/**
 * The operators the project applies to encryption context keys, as the IAM User Guide defines them
 * ("IAM JSON policy elements: Condition operators",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
 * values are case-sensitive, StringLike takes * and ?. Any other operator on such a key throws, so no
 * test passes on a condition this matcher only pretends to check.
 */
const encryptionContextOperators: Record<string, (expected: string, actual: string) => boolean> = {
  StringEquals: (e, a) => e === a,
  StringLike: glob,
};

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Whether a statement's kms:EncryptionContext:* conditions hold for the request's context: each key
 * must be present (a missing key fails a non-IfExists condition), several keys and operators are ANDed,
 * several values of one key ORed, and key names are matched without regard to case.
 */
export function encryptionContextHolds(condition: Statement["Condition"], context: Record<string, string>): boolean {
  let holds = true;
  for (const [operator, entries] of Object.entries(condition ?? {})) {
    for (const [key, expected] of Object.entries(entries)) {
      if (!isEncryptionContextKey(key)) continue;
      const test = encryptionContextOperators[operator];
      if (!test) throw new Error(`the test's encryption context matcher does not know the condition operator ${operator}`);
      const found = Object.keys(context).find((k) => k.toLowerCase() === key.toLowerCase());
      if (found === undefined || !list(expected).some((v) => test(v, context[found]))) holds = false;
    }
  }
  return holds;
}

/**
 * The policy the simulator is given: each statement's encryption context conditions decided here and
 * removed; a statement whose conditions fail cannot apply to this request, and is dropped.
 */
function withoutEncryptionContext(doc: PolicyDocument, context: Record<string, string>): PolicyDocument {
  const statements: Statement[] = [];
  for (const s of doc.Statement) {
    if (!encryptionContextHolds(s.Condition, context)) continue;
    if (!s.Condition) {
      statements.push(s);
      continue;
    }
    const rest: NonNullable<Statement["Condition"]> = {};
    for (const [operator, entries] of Object.entries(s.Condition)) {
      const kept = Object.fromEntries(Object.entries(entries).filter(([key]) => !isEncryptionContextKey(key)));
      if (Object.keys(kept).length > 0) rest[operator] = kept;
    }
    const { Condition: _, ...statement } = s;
    statements.push(Object.keys(rest).length > 0 ? { ...statement, Condition: rest } : statement);
  }
  return { ...doc, Statement: statements };
}

// ---- The simulator ----

type Outcome = "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied";

/**
 * The simulator's decision on one request under one policy. The resource is in the account its ARN
 * names, or the principal's for an ARN that names none (S3). An identity policy is the principal's only
 * policy, and a KMS key has its default key policy; a resource or trust policy is asked with no identity
 * policy, which is how a service principal's request is decided.
 */
export async function simulate(policy: PolicyDocument | string, r: Request): Promise<Outcome> {
  const doc: PolicyDocument = typeof policy === "string" ? JSON.parse(policy) : policy;
  const kind = kindOf(doc);
  if (kind !== "identity" && r.principal === undefined) throw new Error(`a ${kind} policy's answer depends on who asks: give the request a principal`);
  const principal = r.principal ?? defaultRole;
  const context = r.context ?? {};
  const evaluated = withoutEncryptionContext(doc, context);
  const resourcePolicy = kind === "identity" ? (r.action.toLowerCase().startsWith("kms:") ? defaultKeyPolicy() : undefined) : evaluated;
  const simulation: Simulation = {
    request: {
      principal,
      action: r.action,
      resource: { resource: r.resource, accountId: accountOf(r.resource) ?? accountOf(principal) ?? account },
      contextVariables: Object.fromEntries(Object.entries(context).filter(([key]) => !isEncryptionContextKey(key))),
    },
    identityPolicies: kind === "identity" && evaluated.Statement.length > 0 ? [{ name: "policy", policy: evaluated }] : [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: resourcePolicy && resourcePolicy.Statement.length > 0 ? resourcePolicy : undefined,
  };
  const result = await runSimulation(simulation, {});
  if (result.resultType === "error") throw new Error(`the simulator refuses the request ${JSON.stringify(r)}: ${JSON.stringify(result.errors)}`);
  if (result.resultType !== "single") throw new Error(`a request names one resource, not a pattern: ${r.resource}`);
  const ignored = result.result.ignoredContextKeys ?? [];
  if (ignored.length > 0) throw new Error(`the simulator ignores ${ignored.join(", ")} for ${r.action} on ${r.resource}: the request could not be asked as written`);
  return result.overallResult as Outcome;
}

/** True when IAM allows the request under this policy (identity, resource or trust). */
export async function allows(policy: PolicyDocument | string, r: Request): Promise<boolean> {
  return (await simulate(policy, r)) === "Allowed";
}

/** True when a statement of the policy explicitly denies the request. */
export async function denies(policy: PolicyDocument | string, r: Request): Promise<boolean> {
  return (await simulate(policy, r)) === "ExplicitlyDenied";
}

export interface S3KmsCall {
  /** The KMS operation S3 calls: GenerateDataKey to encrypt (CreateMultipartUpload, PutObject), Decrypt to read a data key back, Encrypt to wrap a replica's data key with the replica's key. */
  operation: "GenerateDataKey" | "Decrypt" | "Encrypt";
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
