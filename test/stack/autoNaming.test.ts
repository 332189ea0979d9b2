/**
 * With isolation per-target, a target's name is part of the auto-generated physical names of its roles
 * and schedule. The synth's mocks name a resource as Pulumi does and refuse, as pulumi-terraform-bridge
 * does, a name with no room for its `-` and 7 random characters (scripts/lib/mocks.ts `physicalName`;
 * components/config.ts cites the sources). So the config's refusal is checked against the bridge's own
 * rule at its boundary: the longest name the config lets through synthesizes, and every name it carries
 * fits its service's limit.
 */

import type { SynthResult } from "../../scripts/lib/synth";
import { readStackFile } from "../../scripts/lib/stackFiles";

// A long stage name, so that a target name IAM would refuse is one the target name rules allow.
const stage = "staging-eu-west-abc";

async function synth(config: Record<string, string>): Promise<SynthResult> {
  jest.resetModules();
  const { synthesize } = await import("../../scripts/lib/synth");
  return synthesize(stage, config);
}

const withTarget = (name: string) => ({
  ...readStackFile("dev"),
  "db-backup:isolation": "per-target",
  "db-backup:targets": JSON.stringify([{ name, engine: "mongodb", database: "app" }]),
});
// db-backup-staging-eu-west-abc-<name>-execution plus Pulumi's 8 characters is 64 for a 16-character name.
const longest = "orders-archive-2";

it("synthesizes the longest target name the config allows: its roles are IAM's 64 characters, its schedule Scheduler's 63", async () => {
  expect(longest).toHaveLength(16);
  const graph = await synth(withTarget(longest));
  const ofTarget = graph.resources.filter((r) => r.name.startsWith(`db-backup-${stage}-${longest}-`));
  const roleLengths = Object.fromEntries(ofTarget.filter((r) => r.type === "aws:iam/role:Role").map((r) => [r.name, (r.outputs.name as string).length]));
  const prefix = `db-backup-${stage}-${longest}`;
  expect(roleLengths).toEqual({ [`${prefix}-execution`]: 64, [`${prefix}-scheduler`]: 64, [`${prefix}-task`]: 59 });
  const schedule = ofTarget.find((r) => r.type === "aws:scheduler/schedule:Schedule")!;
  expect((schedule.outputs.name as string).length).toBe(63);
}, 120_000);

it("refuses one character more in the config, before Pulumi's auto-naming would", async () => {
  await expect(synth(withTarget(`${longest}x`))).rejects.toThrow(
    "db-backup:targets[0]: name 'orders-archive-2x' makes its task's execution role name 65 characters long",
  );
}, 120_000);
