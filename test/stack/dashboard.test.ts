/** The stage dashboard's body: valid as CloudWatch documents it, and showing only what the runner writes. */

import { backupSizeAlarmEvaluation, replicationDimensions, replicationLagAlarmEvaluation, replicationLatencyMetric } from "../../components/alerts";
import { alarmsPerWidget, dashboardBody, dashboardUrl, type DashboardInputs } from "../../components/dashboard";
import { backupMetrics, drillMetrics, metricNamespace } from "../../image/src/contract";
import { dashboardProblems, overlaps, shownMetrics } from "./models/dashboard";

const alarmArn = (n: number) => `arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:db-backup-dev-${n}`;
const inputs: DashboardInputs = {
  stage: "dev",
  region: "ap-southeast-1",
  targets: [{ name: "app", engine: "postgres" }, { name: "events", engine: "mongodb" }],
  alarmArns: [1, 2, 3, 4, 5].map(alarmArn),
  deadLetterQueueName: "db-backup-dev-schedule-dlq-1a2b3c4",
  logGroupName: "db-backup-dev-logs-5d6e7f8",
};
// What the console receives: the body as JSON text.
const body = JSON.parse(JSON.stringify(dashboardBody(inputs)));

it("is a dashboard body as CloudWatch documents it, laid out without overlaps", () => {
  expect(dashboardProblems(body)).toEqual([]);
  expect(overlaps(body)).toEqual([]);
});

it("the checks refuse what CloudWatch's syntax does not allow", () => {
  const widgets = body.widgets as any[];
  const metric = widgets.findIndex((w) => w.type === "metric");
  const alarm = widgets.findIndex((w) => w.type === "alarm");
  const change = (n: number, f: (w: any) => void) => {
    const copy = JSON.parse(JSON.stringify(body));
    f(copy.widgets[n]);
    return dashboardProblems(copy);
  };
  expect(change(metric, (w) => (w.x = 20))).toEqual([expect.stringMatching(/past the grid's 24/)]);
  expect(change(metric, (w) => delete w.properties.region)).toEqual([expect.stringMatching(/region/)]);
  expect(change(metric, (w) => w.properties.metrics[0].splice(2, 1))).toEqual([expect.stringMatching(/not namespace, name and dimension pairs/)]);
  expect(change(metric, (w) => (w.properties.metrics[0][w.properties.metrics[0].length - 1].id = "Runs"))).toContainEqual(expect.stringMatching(/id 'Runs'/));
  expect(change(alarm, (w) => (w.properties.alarms = []))).toEqual([expect.stringMatching(/0 alarms, not 1-100/)]);
  expect(change(alarm, (w) => (w.type = "alarms"))).toEqual([expect.stringMatching(/type 'alarms'/)]);
});

it("shows only the runner's metrics, by the contract's names, with the stage's and the target's dimensions", () => {
  const written = new Set<string>([...Object.values(backupMetrics), ...Object.values(drillMetrics)]);
  const ours = shownMetrics(body).filter((m) => m.namespace === metricNamespace);
  expect(ours.length).toBeGreaterThan(0);
  for (const m of ours) {
    expect(written).toContain(m.name);
    expect(Object.keys(m.dimensions).sort()).toEqual(["Stage", "Target"]);
    expect(m.dimensions.Stage).toBe("dev");
  }
  // Every target shows every backup and drill metric, each in widgets titled with its name.
  for (const t of inputs.targets) {
    const shown = ours.filter((m) => m.dimensions.Target === t.name);
    expect(new Set(shown.map((m) => m.name))).toEqual(written);
    for (const m of shown) expect(m.widget).toMatch(new RegExp(`^${t.name}: `));
  }
  expect(new Set(ours.map((m) => m.dimensions.Target))).toEqual(new Set(["app", "events"]));
});

it("draws each target's size against the size alarm's own band: same metric, statistic, period and expression", () => {
  for (const t of inputs.targets) {
    const alarm = backupSizeAlarmEvaluation(metricNamespace, backupMetrics.bytes, { Stage: "dev", Target: t.name });
    const alarmMetric = alarm.metricQueries.find((q) => q.metric)!;
    const alarmBand = alarm.metricQueries.find((q) => q.id === alarm.thresholdMetricId)!;
    const widget = body.widgets.find((w: any) => w.properties.title === `${t.name}: backup size and its expected band (the size alarm)`);
    const [size] = shownMetrics({ widgets: [widget] });
    expect(size).toMatchObject({ name: alarmMetric.metric!.metricName, dimensions: alarmMetric.metric!.dimensions });
    expect(size.options).toMatchObject({ id: alarmMetric.id, stat: alarmMetric.metric!.stat, period: alarmMetric.metric!.period });
    expect(widget.properties.metrics).toContainEqual([expect.objectContaining({ expression: alarmBand.expression })]);
  }
  // Each graph keeps its period, so the band drawn is the one the alarm evaluates.
  expect(body.periodOverride).toBe("inherit");
});

it("shows the latest drill as single values, and failed backups as runs minus stored", () => {
  const latest = body.widgets.find((w: any) => w.properties.title === "app: latest restore drill");
  expect(latest.properties.view).toBe("singleValue");
  expect(shownMetrics({ widgets: [latest] }).map((m) => m.name)).toEqual(Object.values(drillMetrics));
  const backups = body.widgets.find((w: any) => w.properties.title === "app: backups per hour, stored and failed");
  const byId = Object.fromEntries(shownMetrics({ widgets: [backups] }).map((m) => [m.options.id, m]));
  expect(byId.runs).toMatchObject({ name: backupMetrics.success, options: { stat: "SampleCount" } });
  expect(byId.stored).toMatchObject({ name: backupMetrics.success, options: { stat: "Sum" } });
  expect(backups.properties.metrics).toContainEqual([expect.objectContaining({ expression: "runs - stored", id: "failed" })]);
});

it("shows every alarm of the stage, ALARM first, in widgets of at most 100", () => {
  const alarms = (b: any) => b.widgets.filter((w: any) => w.type === "alarm");
  expect(alarms(body).flatMap((w: any) => w.properties.alarms)).toEqual(inputs.alarmArns);
  expect(alarms(body)[0].properties.sortBy).toBe("stateUpdatedTimestamp");
  const many = Array.from({ length: 150 }, (_, n) => alarmArn(n));
  const big = dashboardBody({ ...inputs, alarmArns: many });
  expect(alarms(big).map((w: any) => w.properties.alarms.length)).toEqual([alarmsPerWidget, 50]);
  expect(alarms(big).flatMap((w: any) => w.properties.alarms)).toEqual(many);
  expect(dashboardProblems(big)).toEqual([]);
  expect(overlaps(big)).toEqual([]);
  expect(() => dashboardBody({ ...inputs, alarmArns: [] })).toThrow("at least one alarm ARN");
});

it("shows the schedule's dead-letter queue", () => {
  const queue = shownMetrics(body).filter((m) => m.namespace === "AWS/SQS");
  expect(queue).toEqual([expect.objectContaining({ name: "ApproximateNumberOfMessagesVisible", dimensions: { QueueName: inputs.deadLetterQueueName } })]);
});

it("links to the dashboard in the console of its region", () => {
  expect(dashboardUrl("ap-southeast-1", "db-backup-dev")).toBe("https://ap-southeast-1.console.aws.amazon.com/cloudwatch/home?region=ap-southeast-1#dashboards/dashboard/db-backup-dev");
});

describe("with a copy in another region", () => {
  const dimensions = replicationDimensions("db-backup-prod-backups-1a2b3c4", "db-backup-prod-replica-5d6e7f8", "prod-to-ap-northeast-1");
  const lag = replicationLagAlarmEvaluation();
  const replicated = JSON.parse(JSON.stringify(dashboardBody({ ...inputs, replication: { region: "ap-northeast-1", dimensions, maxLagSeconds: lag.threshold } })));

  it("graphs the lag alarm's metric, statistic and period, in the replica's region where S3 publishes it, with the alarm's threshold", () => {
    expect(dashboardProblems(replicated)).toEqual([]);
    expect(overlaps(replicated)).toEqual([]);
    const [shown, ...more] = shownMetrics(replicated).filter((m) => m.namespace === replicationLatencyMetric.namespace);
    expect(more).toEqual([]);
    expect(shown).toMatchObject({ name: replicationLatencyMetric.metricName, dimensions, options: { stat: lag.statistic, period: lag.period } });
    const widget = replicated.widgets.find((w: any) => w.properties.title === shown.widget);
    expect(widget.properties.region).toBe("ap-northeast-1");
    expect(widget.properties.annotations.horizontal).toEqual([{ value: lag.threshold, label: "the lag alarm's threshold" }]);
  });

  it("has no such graph without one", () => {
    expect(shownMetrics(body).filter((m) => m.namespace === replicationLatencyMetric.namespace)).toEqual([]);
  });
});
