/**
 * `npm run synth -- <stack> --summary`: what a reviewer needs from a synthesized stack, in Markdown for a
 * pull request comment. A pure function of the synth's result, generic per resource type (every
 * schedule, task definition, role, lifecycle, log group, alarm and topic the graph holds), so a
 * resource added to the stack shows up here without a change.
 */

import type { PolicyDocument, Statement } from "../../components/policies";
import { describeSchedule } from "./schedule";
import type { SynthResult } from "./synth";

type Inputs = Record<string, any>;

const byType = (result: SynthResult, type: string) => result.resources.filter((r) => r.type === type);
const code = (text: string) => `\`${text}\``;
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
const table = (header: string[], rows: string[][]) =>
  [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)].join("\n");
const json = <T>(value: unknown): T => (typeof value === "string" ? (JSON.parse(value) as T) : (value as T));

/** `aws:cloudwatch/metricAlarm:MetricAlarm` → `cloudwatch.MetricAlarm`; other providers keep their package. */
export function shortType(type: string): string {
  const [pkg, module, name] = type.split(":");
  const mod = module?.split("/")[0];
  return pkg === "aws" ? `${mod}.${name}` : `${pkg}:${mod === "index" ? "" : `${mod}.`}${name}`;
}

/** An ARN without its `arn:<partition>:<service>:<region>:<account>:` prefix: what the resource is. */
export function shortArn(arn: string): string {
  const match = /^arn:[^:]+:([^:]+):[^:]*:[^:]*:(.+)$/.exec(arn);
  return match ? `${match[1]}:${match[2]}` : arn;
}

/** The logical name of the resource whose ARN (or ID) this is, else the shortened ARN. */
function nameOf(result: SynthResult, arn: string): string {
  const found = result.resources.find((r) => r.outputs.arn === arn || r.outputs.id === arn);
  return found ? found.name : shortArn(arn);
}

/** `3600` → "1 h", `300` → "5 min", `90` → "90 s". */
function duration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

const days = (n: number) => `${n} day${Number(n) === 1 ? "" : "s"}`;

function resourceCounts(result: SynthResult): string {
  const counts = new Map<string, number>();
  for (const r of result.resources) counts.set(shortType(r.type), (counts.get(shortType(r.type)) ?? 0) + 1);
  const rows = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([type, n]) => [code(type), String(n)]);
  return `**Resources** (${result.resources.length})\n\n${table(["type", "count"], rows)}`;
}

function schedules(result: SynthResult): string {
  const rows = byType(result, "aws:scheduler/schedule:Schedule").map((s) => {
    const i = s.inputs as Inputs;
    const zone = i.scheduleExpressionTimezone ?? "UTC";
    const task = i.target?.ecsParameters?.taskDefinitionArn;
    return [s.name, describeSchedule(i.scheduleExpression, zone), code(i.scheduleExpression), zone, i.state === "DISABLED" ? "**disabled**" : "enabled", task ? shortArn(task) : nameOf(result, i.target?.arn ?? "")];
  });
  return `**Schedules**\n\n${rows.length ? table(["schedule", "when", "expression", "time zone", "state", "starts"], rows) : "none"}`;
}

function tasks(result: SynthResult): string {
  const rows = byType(result, "aws:ecs/taskDefinition:TaskDefinition").map((t) => {
    const i = t.inputs as Inputs;
    const containers = json<{ name: string; environment?: { name: string }[]; secrets?: { name: string }[] }[]>(i.containerDefinitions ?? "[]");
    const variables = containers.map((c) => `${c.name}: ${[...(c.environment ?? []).map((e) => e.name), ...(c.secrets ?? []).map((e) => `${e.name} (secret)`)].join(", ")}`);
    return [
      t.outputs.id ? String(t.outputs.id) : t.name,
      `${Number(i.cpu) / 1024} vCPU`,
      `${Number(i.memory) / 1024} GiB`,
      `${i.ephemeralStorage?.sizeInGib ?? 20} GiB`,
      String(i.runtimePlatform?.cpuArchitecture ?? "X86_64").toLowerCase(),
      variables.join("; "),
    ];
  });
  return `**Tasks**\n\n${rows.length ? table(["family", "CPU", "memory", "disk", "architecture", "container: variables"], rows) : "none"}`;
}

/** A statement's conditions in short: `kms:ViaService=s3.ap-southeast-1.amazonaws.com`. */
function conditions(statement: Statement): string {
  return Object.values(statement.Condition ?? {})
    .flatMap((test) => Object.entries(test).map(([key, value]) => `${key}=${[value].flat().map(shortArn).join(",")}`))
    .join("; ");
}

function roles(result: SynthResult): string {
  const sections = byType(result, "aws:iam/role:Role").map((role) => {
    const trust = json<PolicyDocument>((role.inputs as Inputs).assumeRolePolicy);
    const services = trust.Statement.flatMap((s) => (s.Principal && s.Principal !== "*" ? [s.Principal.Service ?? []].flat() : []));
    const attached = [...byType(result, "aws:iam/rolePolicy:RolePolicy"), ...byType(result, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")].filter(
      (p) => (p.inputs as Inputs).role === role.outputs.name || (p.inputs as Inputs).role === role.outputs.id,
    );
    const rows = attached.flatMap((p) => {
      const i = p.inputs as Inputs;
      if (i.policyArn) return [["Allow", `managed policy ${code(shortArn(i.policyArn))}`, "", ""]];
      return json<PolicyDocument>(i.policy).Statement.map((s) => [s.Effect, [s.Action].flat().map(code).join(", "), [s.Resource ?? []].flat().map((r) => code(shortArn(r))).join(", "), conditions(s)]);
    });
    const head = `*${role.name}*, assumed by ${services.map(code).join(", ") || "(no service)"}`;
    return `${head}\n\n${rows.length ? table(["effect", "actions", "resources", "only when"], rows) : "no permissions"}`;
  });
  return `**What each role may do**\n\n${sections.join("\n\n") || "no roles"}`;
}

function retention(result: SynthResult): string {
  const lines: string[] = [];
  for (const lc of byType(result, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")) {
    for (const rule of ((lc.inputs as Inputs).rules ?? []) as Inputs[]) {
      if (rule.status !== "Enabled") continue;
      const scope = rule.filter?.prefix ? `under ${code(rule.filter.prefix)}` : "in the whole bucket";
      if (rule.expiration?.days) lines.push(`backups ${scope}: deleted after ${days(rule.expiration.days)}`);
      if (rule.noncurrentVersionExpiration?.noncurrentDays) lines.push(`overwritten or deleted versions ${scope}: kept ${days(rule.noncurrentVersionExpiration.noncurrentDays)}`);
      if (rule.abortIncompleteMultipartUpload?.daysAfterInitiation) lines.push(`unfinished uploads ${scope}: aborted after ${days(rule.abortIncompleteMultipartUpload.daysAfterInitiation)}`);
    }
  }
  for (const lg of byType(result, "aws:cloudwatch/logGroup:LogGroup")) {
    const kept = (lg.inputs as Inputs).retentionInDays;
    lines.push(`log group ${lg.name}: ${kept ? `kept ${days(kept)}` : "**kept forever**"}`);
  }
  for (const ecr of byType(result, "aws:ecr/lifecyclePolicy:LifecyclePolicy")) {
    for (const rule of json<{ rules?: { description?: string }[] }>((ecr.inputs as Inputs).policy).rules ?? []) lines.push(`images (${ecr.name}): ${rule.description ?? "a lifecycle rule"}`);
  }
  return `**Retention**\n\n${lines.map((l) => `- ${l}`).join("\n") || "none"}`;
}

const comparison: Record<string, string> = {
  GreaterThanThreshold: ">",
  GreaterThanOrEqualToThreshold: "≥",
  LessThanThreshold: "<",
  LessThanOrEqualToThreshold: "≤",
};

function alarms(result: SynthResult): string {
  const rows = byType(result, "aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => {
    const i = a.inputs as Inputs;
    const dimensions = Object.entries((i.dimensions ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(", ");
    const watches = i.metricName ? `${i.namespace}/${i.metricName}${dimensions ? ` (${dimensions})` : ""}` : `metric math (${((i.metricQueries ?? []) as Inputs[]).map((q) => q.expression ?? q.id).join(", ")})`;
    const period = i.period ? ` over ${duration(Number(i.period) * Number(i.evaluationPeriods ?? 1))}` : "";
    const when = `${i.statistic ?? ""} ${comparison[i.comparisonOperator] ?? i.comparisonOperator} ${i.threshold}${period}`.trim();
    const notifies = [...new Set([...(i.alarmActions ?? []), ...(i.insufficientDataActions ?? [])].map((arn: string) => nameOf(result, arn)))].join(", ");
    return [a.name, watches, when, i.treatMissingData ?? "missing", notifies || "**no one**"];
  });
  const rules = byType(result, "aws:cloudwatch/eventRule:EventRule").map((rule) => {
    const targets = byType(result, "aws:cloudwatch/eventTarget:EventTarget").filter((t) => (t.inputs as Inputs).rule === rule.outputs.name);
    return [rule.name, String((rule.inputs as Inputs).description ?? ""), targets.map((t) => nameOf(result, (t.inputs as Inputs).arn)).join(", ") || "**no one**"];
  });
  return [
    `**Alarms**\n\n${rows.length ? table(["alarm", "watches", "fires when", "missing data", "notifies"], rows) : "none"}`,
    `**Event rules**\n\n${rules.length ? table(["rule", "on", "notifies"], rules) : "none"}`,
  ].join("\n\n");
}

function alertDestinations(result: SynthResult): string {
  const lines = byType(result, "aws:sns/topic:Topic").map((topic) => {
    const subscriptions = byType(result, "aws:sns/topicSubscription:TopicSubscription").filter((s) => (s.inputs as Inputs).topic === topic.outputs.arn);
    const to = subscriptions.map((s) => `${(s.inputs as Inputs).protocol} ${code(String((s.inputs as Inputs).endpoint))}`);
    return `- topic ${topic.name}: ${to.length ? to.join(", ") : "no subscription (subscribe to it yourself)"}`;
  });
  return `**Where alerts go**\n\n${lines.join("\n") || "no topic"}`;
}

/** The reviewer's summary of one synthesized stack, as Markdown. */
export function synthSummary(result: SynthResult): string {
  return [`### Stack ${code(result.stack)}`, resourceCounts(result), schedules(result), tasks(result), roles(result), retention(result), alarms(result), alertDestinations(result)].join("\n\n") + "\n";
}

