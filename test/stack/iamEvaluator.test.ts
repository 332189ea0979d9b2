/**
 * The test IAM evaluator (test/support/iam.ts) against IAM's documented condition semantics (IAM User
 * Guide, "IAM JSON policy elements: Condition operators",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html),
 * so the policy tests that lean on it cannot pass on a condition it only pretends to check.
 */

import type { PolicyDocument, Statement } from "../../components/policies";
import { allows, denies } from "../support/iam";

const allow = (Condition: Statement["Condition"]): PolicyDocument => ({
  Version: "2012-10-17",
  Statement: [{ Sid: "S", Effect: "Allow", Action: "kms:GenerateDataKey", Resource: "arn:aws:kms:ap-southeast-1:123456789012:key/k", Condition }],
});
const request = (context: Record<string, string>) => ({ action: "kms:GenerateDataKey", resource: "arn:aws:kms:ap-southeast-1:123456789012:key/k", context });

it("StringEquals is exact and case-sensitive in its value; a missing key fails the condition", () => {
  const p = allow({ StringEquals: { "kms:ViaService": "s3.ap-southeast-1.amazonaws.com" } });
  expect(allows(p, request({ "kms:ViaService": "s3.ap-southeast-1.amazonaws.com" }))).toBe(true);
  expect(allows(p, request({ "kms:ViaService": "S3.ap-southeast-1.amazonaws.com" }))).toBe(false);
  expect(allows(p, request({ "kms:ViaService": "s3.us-east-1.amazonaws.com" }))).toBe(false);
  expect(allows(p, request({}))).toBe(false);
});

it("condition key names are matched without regard to case", () => {
  const p = allow({ StringEquals: { "kms:ViaService": "s3.ap-southeast-1.amazonaws.com" } });
  expect(allows(p, request({ "KMS:viaservice": "s3.ap-southeast-1.amazonaws.com" }))).toBe(true);
});

it("StringLike takes * and ? and ORs several values of one key", () => {
  const p = allow({ StringLike: { "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::b", "arn:aws:s3:::b/prod/*"] } });
  expect(allows(p, request({ "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::b" }))).toBe(true);
  expect(allows(p, request({ "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::b/prod/postgres/app/x.dump" }))).toBe(true);
  expect(allows(p, request({ "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::b/dev/x" }))).toBe(false);
  expect(allows(p, request({ "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::bb" }))).toBe(false);
  expect(allows(allow({ StringLike: { k: "a?c" } }), request({ k: "abc" }))).toBe(true);
  expect(allows(allow({ StringLike: { k: "a?c" } }), request({ k: "abbc" }))).toBe(false);
});

it("several keys and several operators must all hold", () => {
  const p = allow({ StringEquals: { a: "1" }, StringLike: { b: "x*" } });
  expect(allows(p, request({ a: "1", b: "xy" }))).toBe(true);
  expect(allows(p, request({ a: "1", b: "yx" }))).toBe(false);
  expect(allows(p, request({ a: "2", b: "xy" }))).toBe(false);
  expect(allows(p, request({ b: "xy" }))).toBe(false);
});

it("ArnLike and ArnEquals match part by part: a wildcard does not cross a colon", () => {
  const p = allow({ ArnLike: { "aws:SourceArn": "arn:aws:events:*:123456789012:rule/*" } });
  expect(allows(p, request({ "aws:SourceArn": "arn:aws:events:ap-southeast-1:123456789012:rule/r" }))).toBe(true);
  expect(allows(p, request({ "aws:SourceArn": "arn:aws:events:ap-southeast-1:999999999999:rule/r" }))).toBe(false);
  // "*" for the region must not swallow "ap-southeast-1:999999999999:x" and leave the account to match.
  expect(allows(p, request({ "aws:SourceArn": "arn:aws:events:ap-southeast-1:999999999999:x:123456789012:rule/r" }))).toBe(false);
  const exact = allow({ ArnEquals: { "aws:SourceArn": "arn:aws:events:ap-southeast-1:123456789012:rule/r" } });
  expect(allows(exact, request({ "aws:SourceArn": "arn:aws:events:ap-southeast-1:123456789012:rule/r" }))).toBe(true);
  expect(allows(exact, request({ "aws:SourceArn": "arn:aws:events:ap-southeast-1:123456789012:rule/other" }))).toBe(false);
  expect(allows(exact, request({ "aws:SourceArn": "not-an-arn" }))).toBe(false);
});

it("an operator it does not know throws, even when the request lacks the key (fails closed for Allow and Deny)", () => {
  for (const operator of ["StringNotEquals", "StringEqualsIfExists", "Null", "ForAnyValue:StringLike", "NumericLessThan"]) {
    const condition = { [operator]: { "aws:SourceAccount": "123456789012" } };
    expect(() => allows(allow(condition), request({}))).toThrow(`does not know the condition operator ${operator}`);
    const deny: PolicyDocument = { Version: "2012-10-17", Statement: [{ Sid: "D", Effect: "Deny", Principal: "*", Action: "*", Resource: "*", Condition: condition }] };
    expect(() => denies(deny, request({}))).toThrow(operator);
  }
});
