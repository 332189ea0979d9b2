/**
 * The tests' IAM answers (test/support/iam.ts) come from @cloud-copilot/iam-simulate, except the
 * kms:EncryptionContext:* conditions, which it drops and our small matcher decides. This file shows
 * that it drops them (so the day it stops, this fails and the matcher can go), that our matcher and the
 * simulator's own condition engine agree on the project's KMS grant, that the matcher follows IAM's
 * documented condition semantics for those keys, and that a question AWS would never be asked throws.
 *
 * The earlier tests of our own ArnLike, Bool and key-case handling are retired: the simulator now
 * answers every condition but the encryption context ones, and is tested by its maintainers.
 */

import { createValidatedPolicy, validateResourcePolicy } from "@cloud-copilot/iam-policy";
import { runSimulation, runUnsafeSimulation } from "@cloud-copilot/iam-simulate";
import { taskRolePolicy, type BucketKeySetting, type PolicyDocument, type Statement } from "../../components/policies";
import { account, allows, defaultKeyPolicy, denies, encryptionContextHolds, s3KmsRequest, simulate, type Request } from "../support/iam";

const region = "ap-southeast-1";
const keyArn = `arn:aws:kms:${region}:${account}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const bucketArn = "arn:aws:s3:::db-backup-prod-backups-1a2b3c4";
const role = `arn:aws:iam::${account}:role/db-backup-prod-task`;
const s3Asks = (over: Partial<Parameters<typeof s3KmsRequest>[0]> = {}) =>
  s3KmsRequest({ operation: "GenerateDataKey", keyArn, bucketArn, objectKey: "prod/postgres/app/x.dump", bucketKey: true, region, ...over });

/**
 * The simulator's decision with every context key kept: its unvalidated entry point, which filters none.
 * That entry point loads a plain resource policy without a name and then fails reading it
 * (iam-simulate 0.1.173, CoreSimulatorEngine analyzeResourcePolicy: `resourcePolicy.metadata().name`),
 * so the key policy goes in already validated, with its name, as runSimulation also accepts policies.
 */
function unfiltered(policy: PolicyDocument, r: Request): string {
  return runUnsafeSimulation(
    {
      request: { principal: role, action: r.action, resource: { resource: r.resource, accountId: account }, contextVariables: r.context ?? {} },
      identityPolicies: [{ name: "policy", policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: createValidatedPolicy(defaultKeyPolicy(), validateResourcePolicy, { name: "key policy" }),
    },
    {},
  );
}

describe("what the simulator ignores", () => {
  it("drops kms:EncryptionContext:aws:s3:arn from a KMS request, so a grant conditioned on it never applies (iam-simulate 0.1.173)", async () => {
    const policy = taskRolePolicy({ bucketArn, stage: "prod", kms: { keyArn, bucketKey: "enabled" } });
    const r = s3Asks();
    const result = await runSimulation(
      {
        request: { principal: role, action: r.action, resource: { resource: r.resource, accountId: account }, contextVariables: r.context! },
        identityPolicies: [{ name: "policy", policy }],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: defaultKeyPolicy(),
      },
      {},
    );
    if (result.resultType !== "single") throw new Error(JSON.stringify(result));
    // If this fails, the simulator has learned the key: drop encryptionContextHolds from test/support/iam.ts.
    expect(result.result.ignoredContextKeys).toEqual(["kms:EncryptionContext:aws:s3:arn"]);
    expect(result.overallResult).toBe("ImplicitlyDenied");
    // The same request with the key kept, as our helper decides it and as the simulator's condition engine does.
    expect(await allows(policy, r)).toBe(true);
    expect(unfiltered(policy, r)).toBe("Allowed");
  });
});

describe("our encryption context matcher and the simulator's condition engine agree on the project's KMS grant", () => {
  const requests: Request[] = [];
  for (const operation of ["GenerateDataKey", "Decrypt"] as const)
    for (const bucketKey of [true, false])
      for (const bucket of [bucketArn, "arn:aws:s3:::someone-elses-bucket", `${bucketArn}x`])
        for (const objectKey of ["prod/postgres/app/x.dump", "dev/postgres/app/x.dump", "prodx/a"])
          for (const via of [region, "us-east-1", undefined]) {
            const r = s3Asks({ operation, bucketKey, bucketArn: bucket, objectKey, region: via ?? region });
            if (via === undefined) delete r.context!["kms:ViaService"];
            requests.push(r);
          }

  it.each(["enabled", "disabled", "unknown"] as BucketKeySetting[])("Bucket Key %s: the same answer to each of 108 requests, some allowed and some not", async (bucketKey) => {
    const policy = taskRolePolicy({ bucketArn, stage: "prod", kms: { keyArn, bucketKey } });
    const answers = await Promise.all(requests.map(async (r) => ({ r, ours: (await allows(policy, r)) ? "Allowed" : "ImplicitlyDenied", simulator: unfiltered(policy, r) })));
    expect(answers.filter((a) => a.ours !== a.simulator)).toEqual([]);
    expect(new Set(answers.map((a) => a.ours))).toEqual(new Set(["Allowed", "ImplicitlyDenied"]));
  });

  it("a Deny on the encryption context is split the same way: it applies exactly when its context condition holds", async () => {
    const policy: PolicyDocument = {
      Version: "2012-10-17",
      Statement: [
        { Sid: "Use", Effect: "Allow", Action: "kms:GenerateDataKey", Resource: keyArn },
        { Sid: "NotThatBucket", Effect: "Deny", Action: "kms:*", Resource: "*", Condition: { StringLike: { "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::someone-elses-bucket*" } } },
      ],
    };
    const mine = s3Asks();
    const theirs = s3Asks({ bucketArn: "arn:aws:s3:::someone-elses-bucket" });
    expect([await simulate(policy, mine), unfiltered(policy, mine)]).toEqual(["Allowed", "Allowed"]);
    expect([await simulate(policy, theirs), unfiltered(policy, theirs)]).toEqual(["ExplicitlyDenied", "ExplicitlyDenied"]);
    expect(await denies(policy, theirs)).toBe(true);
  });
});

/**
 * The matcher against IAM's documented condition semantics (IAM User Guide, "IAM JSON policy elements:
 * Condition operators",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
 */
describe("the encryption context matcher", () => {
  const key = "kms:EncryptionContext:aws:s3:arn";
  const holds = (condition: Statement["Condition"], context: Record<string, string>) => encryptionContextHolds(condition, context);

  it("StringEquals is exact and case-sensitive in its value; a missing key fails the condition", () => {
    const c = { StringEquals: { [key]: "arn:aws:s3:::b" } };
    expect(holds(c, { [key]: "arn:aws:s3:::b" })).toBe(true);
    expect(holds(c, { [key]: "arn:aws:s3:::B" })).toBe(false);
    expect(holds(c, { [key]: "arn:aws:s3:::b/x" })).toBe(false);
    expect(holds(c, {})).toBe(false);
  });

  it("StringLike takes * and ? and ORs several values of one key", () => {
    const c = { StringLike: { [key]: ["arn:aws:s3:::b", "arn:aws:s3:::b/prod/*"] } };
    expect(holds(c, { [key]: "arn:aws:s3:::b" })).toBe(true);
    expect(holds(c, { [key]: "arn:aws:s3:::b/prod/postgres/app/x.dump" })).toBe(true);
    expect(holds(c, { [key]: "arn:aws:s3:::b/dev/x" })).toBe(false);
    expect(holds(c, { [key]: "arn:aws:s3:::bb" })).toBe(false);
    expect(holds({ StringLike: { "kms:EncryptionContext:k": "a?c" } }, { "kms:EncryptionContext:k": "abc" })).toBe(true);
    expect(holds({ StringLike: { "kms:EncryptionContext:k": "a?c" } }, { "kms:EncryptionContext:k": "abbc" })).toBe(false);
  });

  it("several keys and several operators must all hold; condition key names are matched without regard to case", () => {
    const c = { StringEquals: { "kms:EncryptionContext:a": "1" }, StringLike: { "kms:EncryptionContext:b": "x*" } };
    expect(holds(c, { "kms:EncryptionContext:a": "1", "kms:EncryptionContext:b": "xy" })).toBe(true);
    expect(holds(c, { "KMS:encryptioncontext:A": "1", "kms:EncryptionContext:B": "xy" })).toBe(true);
    expect(holds(c, { "kms:EncryptionContext:a": "1", "kms:EncryptionContext:b": "yx" })).toBe(false);
    expect(holds(c, { "kms:EncryptionContext:b": "xy" })).toBe(false);
  });

  it("leaves every other key to the simulator", () => {
    expect(holds({ StringEquals: { "kms:ViaService": "s3.ap-southeast-1.amazonaws.com" } }, {})).toBe(true);
  });

  it("throws on an operator it does not know, even when the request lacks the key (fails closed for Allow and Deny)", async () => {
    for (const operator of ["StringNotEquals", "StringEqualsIfExists", "Null", "ForAnyValue:StringLike", "StringEqualsIgnoreCase"]) {
      const Condition = { [operator]: { [key]: "arn:aws:s3:::b" } };
      expect(() => holds(Condition, {})).toThrow(`does not know the condition operator ${operator}`);
      for (const Effect of ["Allow", "Deny"] as const) {
        const policy: PolicyDocument = { Version: "2012-10-17", Statement: [{ Sid: "S", Effect, Action: "kms:GenerateDataKey", Resource: keyArn, Condition }] };
        await expect(allows(policy, s3Asks())).rejects.toThrow(operator);
      }
    }
  });
});

describe("a question AWS would never be asked throws", () => {
  const s3 = taskRolePolicy({ bucketArn, stage: "prod" });

  it("an action on a resource it does not take (an object action on a bucket, a bucket action on an object)", async () => {
    await expect(allows(s3, { action: "s3:GetObject", resource: bucketArn })).rejects.toThrow("no.resource.types");
    await expect(allows(s3, { action: "s3:ListBucket", resource: `${bucketArn}/prod/x` })).rejects.toThrow("no.resource.types");
  });

  it("an action that does not exist", async () => {
    await expect(allows(s3, { action: "s3:PutObjects", resource: `${bucketArn}/prod/x` })).rejects.toThrow("invalid.action");
  });

  it("a context key the action does not have", async () => {
    await expect(allows(s3, { action: "s3:PutObject", resource: `${bucketArn}/prod/x`, context: { "ecs:cluster": "arn:aws:ecs:ap-southeast-1:123456789012:cluster/c" } })).rejects.toThrow("ignores ecs:cluster");
  });

  it("a resource or trust policy asked without saying who asks", async () => {
    const topic = { Version: "2012-10-17" as const, Statement: [{ Sid: "S", Effect: "Allow" as const, Principal: { Service: "events.amazonaws.com" }, Action: "sns:Publish", Resource: "arn:aws:sns:ap-southeast-1:123456789012:t" }] };
    await expect(allows(topic, { action: "sns:Publish", resource: "arn:aws:sns:ap-southeast-1:123456789012:t" })).rejects.toThrow("depends on who asks");
    expect(await allows(topic, { principal: "events.amazonaws.com", action: "sns:Publish", resource: "arn:aws:sns:ap-southeast-1:123456789012:t" })).toBe(true);
  });
});
