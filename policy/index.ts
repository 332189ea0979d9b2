/** The policy pack: `pulumi preview --policy-pack policy`. Every rule is mandatory; the rules are in rules.ts. */

import { PolicyPack, type PolicyResource } from "@pulumi/policy";
import { resourceRules, stackRules } from "./rules";

/** The bucket a bucket-configuration resource's `bucket` property comes from. */
function bucketOf(resource: PolicyResource): PolicyResource | undefined {
  return resource.propertyDependencies?.bucket?.find((d) => d.type === "aws:s3/bucket:Bucket");
}

new PolicyPack("db-backup", {
  policies: [
    ...resourceRules.map((rule) => ({
      name: rule.name,
      description: rule.description,
      enforcementLevel: "mandatory" as const,
      validateResource: (args: { type: string; name: string; props: Record<string, any> }, reportViolation: (message: string) => void) => {
        rule.check(args).forEach((v) => reportViolation(v));
      },
    })),
    ...stackRules.map((rule) => ({
      name: rule.name,
      description: rule.description,
      enforcementLevel: "mandatory" as const,
      validateStack: (args: { resources: PolicyResource[] }, reportViolation: (message: string) => void) => {
        rule.check(args.resources, (r) => bucketOf(r as PolicyResource)).forEach((v) => reportViolation(v));
      },
    })),
  ],
});
