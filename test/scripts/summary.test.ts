/**
 * The reviewer's summary (`npm run synth -- <stack> --summary`): schedules put into words, and for each
 * committed stack, what its config and its synthesized resources say, found in the Markdown.
 */

import { parseStackConfig, project } from "../../components/config";
import type { PolicyDocument } from "../../components/policies";
import { describeSchedule } from "../../scripts/lib/schedule";
import { committedStacks, readStackFile } from "../../scripts/lib/stackFiles";
import { shortArn, synthSummary } from "../../scripts/lib/summary";
import type { SynthResult } from "../../scripts/lib/synth";

describe("describeSchedule", () => {
  it.each([
    ["rate(1 hour)", "UTC", "every hour"],
    ["rate(6 hours)", "UTC", "every 6 hours"],
    ["rate(1 day)", "UTC", "every day"],
    ["cron(0 6 * * ? *)", "Asia/Singapore", "at 06:00 daily (Asia/Singapore)"],
    ["cron(0 9-18 ? * MON-FRI *)", "Asia/Singapore", "every hour from 09:00 to 18:00, Monday to Friday (Asia/Singapore)"],
    ["cron(30 2 1 * ? *)", "UTC", "at 02:30 on day 1 of the month (UTC)"],
    ["cron(0 3 L * ? *)", "Europe/Berlin", "at 03:00 on the last day of the month (Europe/Berlin)"],
    ["cron(0/15 * * * ? *)", "UTC", "every 15 minutes (UTC)"],
    ["cron(0 */2 * * ? *)", "UTC", "every 2 hours (UTC)"],
    ["cron(0 * * * ? *)", "UTC", "every hour (UTC)"],
    ["cron(0 6,18 ? * 2,4 *)", "UTC", "at 06:00 and 18:00 on Monday and Wednesday (UTC)"],
    ["cron(0 8 1 JAN-MAR ? 2027)", "UTC", "at 08:00 on day 1 of the month in January to March in 2027 (UTC)"],
  ])("%s in %s is '%s'", (expression, zone, words) => {
    expect(describeSchedule(expression, zone)).toBe(words);
  });

  it("shows what it cannot put into words field by field, never a guess", () => {
    expect(describeSchedule("cron(0 3 ? * 6#3 *)")).toBe("minutes `0`, hours `3`, day-of-month `?`, month `*`, day-of-week `6#3`, year `*` (UTC)");
  });
});

describe.each(committedStacks())("the summary of stack %s", (stack) => {
  let graph: SynthResult;
  let summary: string;
  const config = parseStackConfig({ get: (key) => readStackFile(stack)[`${project}:${key}`] }, stack);
  beforeAll(async () => {
    jest.resetModules();
    graph = await (await import("../../scripts/lib/synth")).synthesize(stack);
    summary = synthSummary(graph);
  }, 60000);
  const section = (title: string) => summary.slice(summary.indexOf(`**${title}`)).split("\n\n**")[0];

  it("counts every resource by type", () => {
    expect(section("Resources")).toContain(`**Resources** (${graph.resources.length})`);
    const counted = [...section("Resources").matchAll(/^\| `[^`]+` \| (\d+) \|$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(counted).toBe(graph.resources.length);
    const roles = graph.resources.filter((r) => r.type === "aws:iam/role:Role").length;
    expect(section("Resources")).toContain(`| \`iam.Role\` | ${roles} |`);
  });

  it("says when the backups run, in words and in the stack's time zone", () => {
    const row = section("Schedules").split("\n").find((l) => l.includes(`\`${config.schedule}\``));
    expect(row).toContain(`| ${describeSchedule(config.schedule, config.scheduleTimezone)} |`);
    expect(row).toContain(`| ${config.scheduleTimezone} |`);
  });

  it("gives the task's size", () => {
    expect(section("Tasks")).toContain(`| ${config.cpu / 1024} vCPU | ${config.memory / 1024} GiB | ${config.ephemeralStorageGiB} GiB |`);
  });

  it("lists every action each role's policies grant, on the resources they name", () => {
    const roles = section("What each role may do");
    const missing: string[] = [];
    for (const policy of graph.resources.filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy")) {
      for (const s of (JSON.parse(policy.inputs.policy as string) as PolicyDocument).Statement) {
        for (const action of [s.Action].flat()) if (!roles.includes(`\`${action}\``)) missing.push(action);
        for (const resource of [s.Resource ?? []].flat()) if (!roles.includes(`\`${shortArn(resource)}\``)) missing.push(resource);
      }
    }
    expect(missing).toEqual([]);
    for (const role of graph.resources.filter((r) => r.type === "aws:iam/role:Role")) expect(roles).toContain(`*${role.name}*`);
  });

  it("states how long backups, old versions and logs are kept", () => {
    const kept = section("Retention");
    const days = (n: number) => `${n} day${n === 1 ? "" : "s"}`;
    expect(kept).toContain(`under \`${stack}/\`: deleted after ${days(config.backupRetentionDays)}`);
    expect(kept).toContain(`versions in the whole bucket: kept ${days(config.noncurrentRetentionDays)}`);
    expect(kept).toMatch(new RegExp(`log group .*: kept ${days(config.logRetentionDays)}`));
  });

  it("lists every alarm with whom it notifies, and where alerts go", () => {
    const alarms = graph.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm");
    for (const alarm of alarms) expect(section("Alarms")).toMatch(new RegExp(`^\\| ${alarm.name} \\|.*\\| [^|]*alerts[^|]* \\|$`, "m"));
    const stale = section("Alarms").split("\n").find((l) => l.includes(`${stack}-${config.targets[0].name}-stale`));
    expect(stale).toContain(`over ${config.staleAfterHours % 24 === 0 ? `${config.staleAfterHours / 24} d` : `${config.staleAfterHours} h`}`);
    expect(section("Where alerts go")).toContain(config.alertEmail ? `email \`${config.alertEmail}\`` : "no subscription");
  });
});

describe("a stack with resources the summary was not written for", () => {
  it("still counts them, and shows a second schedule and alarm like the first", () => {
    const graph: SynthResult = {
      stack: "x",
      outputs: {},
      resources: [
        { type: "aws:cloudwatch/dashboard:Dashboard", name: "x-dashboard", inputs: {}, outputs: { id: "x-dashboard" } },
        { type: "aws:scheduler/schedule:Schedule", name: "x-backup", inputs: { scheduleExpression: "rate(1 hour)", state: "ENABLED", target: { arn: "arn:aws:ecs:r:1:cluster/c", ecsParameters: { taskDefinitionArn: "arn:aws:ecs:r:1:task-definition/x:1" } } }, outputs: {} },
        { type: "aws:scheduler/schedule:Schedule", name: "x-drill", inputs: { scheduleExpression: "cron(0 6 * * ? *)", scheduleExpressionTimezone: "Asia/Singapore", state: "DISABLED", target: { arn: "arn:aws:ecs:r:1:cluster/c", ecsParameters: { taskDefinitionArn: "arn:aws:ecs:r:1:task-definition/x-drill:1" } } }, outputs: {} },
        { type: "aws:cloudwatch/metricAlarm:MetricAlarm", name: "x-drill-stale", inputs: { namespace: "DbBackup", metricName: "DrillSuccess", statistic: "Sum", comparisonOperator: "LessThanThreshold", threshold: 1, period: 180000, evaluationPeriods: 1, alarmActions: [] }, outputs: {} },
      ],
    };
    const summary = synthSummary(graph);
    expect(summary).toMatch(/^\| `cloudwatch\.Dashboard` \| 1 \|$/m);
    expect(summary).toContain("| x-drill | at 06:00 daily (Asia/Singapore) | `cron(0 6 * * ? *)` | Asia/Singapore | **disabled** | ecs:task-definition/x-drill:1 |");
    expect(summary).toContain("| x-drill-stale | DbBackup/DrillSuccess | Sum < 1 over 50 h | missing | **no one** |");
  });
});
