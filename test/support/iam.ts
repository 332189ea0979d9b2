/**
 * A small evaluator of identity and resource policies, enough to ask "may this principal do this to
 * that?" of the documents this project writes: Allow/Deny, Action and Resource wildcards, and the
 * condition operators the project uses. An operator it does not know fails the test instead of passing.
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

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function conditionHolds(condition: Statement["Condition"], context: Record<string, string>): boolean {
  for (const [operator, entries] of Object.entries(condition ?? {})) {
    for (const [key, expected] of Object.entries(entries)) {
      const actual = context[key];
      if (actual === undefined) return false;
      const values = list(expected);
      const ok = (() => {
        switch (operator) {
          case "StringEquals":
          case "ArnEquals":
          case "Bool":
            return values.includes(actual);
          case "StringLike":
          case "ArnLike":
            return values.some((v) => glob(v, actual, false));
          default:
            throw new Error(`the test evaluator does not know the condition operator ${operator}`);
        }
      })();
      if (!ok) return false;
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
