/**
 * The failure alerts' text, produced the way EventBridge produces it (models/eventbridge.ts: the event
 * pattern decides which rule fires, the input transformer fills the template with unescaped values and
 * drops variables whose path is absent) from ECS task state change events shaped as ECS sends them.
 * The SNS target gets the result; a string template must come out as one valid JSON string.
 */

import { failureRuleIds, taskFailureRules, type FailureRule } from "../../components/alerts";
import { patternMatches, stopKinds, stoppedTaskEvent, transformString, type StopKind } from "./models/eventbridge";

const clusterArn = "arn:aws:ecs:ap-southeast-1:123456789012:cluster/db-backup-prod-cluster-4f1c2d0";
const family = "db-backup-prod";
const drillFamily = "db-backup-prod-drill";
const familyPrefix = (f: string) => `arn:aws:ecs:ap-southeast-1:123456789012:task-definition/${f}:`;
const rules = taskFailureRules({
  stage: "prod",
  clusterArn,
  clusterName: "db-backup-prod-cluster-4f1c2d0",
  taskDefinitionFamilyArnPrefixes: { backup: [familyPrefix(family)], drill: [familyPrefix(drillFamily)] },
  region: "ap-southeast-1",
  logGroupName: "db-backup-prod-logs-6e2a7b1",
});
const event = (kind: StopKind, taskDefinitionArn = `${familyPrefix(family)}7`) => stoppedTaskEvent({ clusterArn, taskDefinitionArn, kind });
const drillEvent = (kind: StopKind) => event(kind, `${familyPrefix(drillFamily)}3`);
const fired = (e: ReturnType<typeof event>) => rules.filter((r) => patternMatches(r.pattern as never, e));

/** What SNS receives from a rule for an event: the filled template, which must parse as one JSON string. */
function alertText(rule: FailureRule, e: ReturnType<typeof event>): string {
  const { output, missing } = transformString(rule.inputPaths, rule.inputTemplate, e);
  expect(missing).toEqual([]);
  const text = JSON.parse(output);
  expect(typeof text).toBe("string");
  return text;
}

it.each([
  ["backup", "target-failed", ["task-failed"]],
  ["backup", "oom-killed", ["task-failed"]],
  ["backup", "image-pull-failed", ["task-not-started"]],
  ["backup", "secrets-failed", ["task-not-started"]],
  ["backup", "succeeded", []],
  ["restore drill", "target-failed", ["drill-failed"]],
  ["restore drill", "oom-killed", ["drill-failed"]],
  ["restore drill", "image-pull-failed", ["drill-not-started"]],
  ["restore drill", "succeeded", []],
] as [string, StopKind, string[]][])("a %s task that %s fires %j, and no rule of the other family", (family, kind, ids) => {
  expect(fired(family === "backup" ? event(kind) : drillEvent(kind)).map((r) => r.id)).toEqual(ids);
});

it("builds one rule of each kind the component creates resources for", () => {
  expect(rules.map((r) => r.id)).toEqual([...failureRuleIds]);
});

it("ignores other task families and other clusters", () => {
  for (const kind of stopKinds) {
    expect(fired(event(kind, "arn:aws:ecs:ap-southeast-1:123456789012:task-definition/db-backup-prodx:1"))).toEqual([]);
    expect(fired(event(kind, "arn:aws:ecs:ap-southeast-1:123456789012:task-definition/db-backup-prod-drillx:1"))).toEqual([]);
    expect(rules.filter((r) => patternMatches(r.pattern as never, stoppedTaskEvent({ clusterArn: clusterArn.replace(/[^/]+$/, "other"), taskDefinitionArn: `arn:aws:ecs:ap-southeast-1:123456789012:task-definition/${family}:7`, kind })))).toEqual([]);
  }
});

it("a failed target or a killed task: the exit code and where to read why", () => {
  for (const [kind, code] of [["target-failed", 1], ["oom-killed", 137]] as [StopKind, number][]) {
    const e = event(kind);
    const [rule] = fired(e);
    const text = alertText(rule, e);
    expect(text).toBe(
      `db-backup prod: backup task ${(e.detail as any).taskArn} failed: its container exited with code ${code}. ` +
        "The task's log says which target failed and why: CloudWatch log group db-backup-prod-logs-6e2a7b1. " +
        `Stop details: aws ecs describe-tasks --region ap-southeast-1 --cluster db-backup-prod-cluster-4f1c2d0 --tasks ${(e.detail as any).taskArn}`,
    );
  }
});

it("a failed restore drill says so, with the same places to look", () => {
  const failed = drillEvent("target-failed");
  const [rule] = fired(failed);
  expect(alertText(rule, failed)).toBe(
    `db-backup prod: restore drill task ${(failed.detail as any).taskArn} failed: its container exited with code 1. ` +
      "The task's log says which target failed and why: CloudWatch log group db-backup-prod-logs-6e2a7b1. " +
      `Stop details: aws ecs describe-tasks --region ap-southeast-1 --cluster db-backup-prod-cluster-4f1c2d0 --tasks ${(failed.detail as any).taskArn}`,
  );
  const unstarted = drillEvent("image-pull-failed");
  const text = alertText(fired(unstarted)[0], unstarted);
  expect(text).toContain(`restore drill task ${(unstarted.detail as any).taskArn} failed to start (ECS stop code TaskFailedToStart), so no restore drill was run.`);
  expect(text).not.toMatch(/backup task|secrets|<|>|undefined/);
});

it("a task that never started: no exit code to show, and a reason with quotes cannot break the text", () => {
  for (const kind of ["image-pull-failed", "secrets-failed"] as StopKind[]) {
    const e = event(kind);
    expect((e.detail as any).stoppedReason).toContain('"');
    const [rule] = fired(e);
    const text = alertText(rule, e);
    expect(text).toContain(`backup task ${(e.detail as any).taskArn} failed to start (ECS stop code TaskFailedToStart), so no backup was made.`);
    expect(text).toContain(`aws ecs describe-tasks --region ap-southeast-1 --cluster db-backup-prod-cluster-4f1c2d0 --tasks ${(e.detail as any).taskArn} --query tasks[0].stoppedReason`);
    expect(text).not.toMatch(/exit code|<|>|undefined/);
  }
});

it("the single alert before this fix: an empty exit code for a task that never started, broken JSON for a quoted reason", () => {
  const before = {
    inputPaths: { task: "$.detail.taskArn", reason: "$.detail.stoppedReason", stopCode: "$.detail.stopCode", exitCode: "$.detail.containers[0].exitCode" },
    inputTemplate: `"db-backup prod: backup task <task> stopped (<stopCode>, exit code <exitCode>): <reason>. The task's log says which target failed and why."`,
  };
  const pull = transformString(before.inputPaths, before.inputTemplate, event("image-pull-failed"));
  expect(pull.missing).toEqual(["exitCode"]);
  expect(pull.output).toContain("(TaskFailedToStart, exit code ): CannotPullContainerError");
  expect(() => JSON.parse(pull.output)).toThrow();
});

describe("with one backup task family per target (isolation per-target)", () => {
  const targetFamilies = ["db-backup-prod-app", "db-backup-prod-events"];
  const perTarget = taskFailureRules({
    stage: "prod",
    clusterArn,
    clusterName: "db-backup-prod-cluster-4f1c2d0",
    taskDefinitionFamilyArnPrefixes: { backup: targetFamilies.map(familyPrefix), drill: [familyPrefix(drillFamily)] },
    region: "ap-southeast-1",
    logGroupName: "db-backup-prod-logs-6e2a7b1",
  });
  const firedPerTarget = (e: ReturnType<typeof event>) => perTarget.filter((r) => patternMatches(r.pattern as never, e)).map((r) => r.id);

  it.each(targetFamilies)("a failed or unstarted task of family %s fires the backup's rules, not the drill's", (f) => {
    expect(firedPerTarget(event("target-failed", `${familyPrefix(f)}2`))).toEqual(["task-failed"]);
    expect(firedPerTarget(event("secrets-failed", `${familyPrefix(f)}2`))).toEqual(["task-not-started"]);
    expect(firedPerTarget(event("succeeded", `${familyPrefix(f)}2`))).toEqual([]);
  });

  it("still tells the drill apart, and ignores a family that only starts like a target's", () => {
    expect(firedPerTarget(drillEvent("target-failed"))).toEqual(["drill-failed"]);
    for (const other of ["db-backup-prod", "db-backup-prod-appx", "db-backup-prod-ap"]) expect(firedPerTarget(event("target-failed", `${familyPrefix(other)}1`))).toEqual([]);
  });

  it("refuses, naming the way out, a stage with more families than fit in EventBridge's default pattern size", () => {
    const many = Array.from({ length: 40 }, (_, i) => familyPrefix(`db-backup-prod-target-${i}`));
    expect(() => taskFailureRules({ stage: "prod", clusterArn, clusterName: "c", taskDefinitionFamilyArnPrefixes: { backup: many, drill: [familyPrefix(drillFamily)] }, region: "ap-southeast-1", logGroupName: "g" }))
      .toThrow(/event pattern of \d+ characters, over EventBridge's default quota of 2048.*split the targets over more stacks, or use isolation per-stage/);
  });
});
