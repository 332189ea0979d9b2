/**
 * A stage's CloudWatch dashboard as pure data: the body `aws.cloudwatch.Dashboard` takes, in the form
 * "Dashboard Body Structure and Syntax" gives (CloudWatch API Reference,
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html):
 * a `widgets` array of objects with `type`, `x`, `y`, `width`, `height` (a 24-column grid) and
 * `properties`; a metric widget's `metrics` are arrays of namespace, metric name and dimension
 * name/value pairs, optionally ending in an options object, or an `expression` object; it names its
 * `region`. The metrics are the runner's, by the contract's names; README "Dashboard" says how to read it.
 */

import { backupMetrics, drillMetrics, metricNamespace } from "../image/src/contract";
import { backupSizeBand, replicationLatencyMetric, sizeBandExpression } from "./alerts";

export interface DashboardInputs {
  stage: string;
  region: string;
  targets: { name: string; engine: string }[];
  /** Every alarm of the stage, shown in the alarm status widget. */
  alarmArns: string[];
  /** The schedule's dead-letter queue. */
  deadLetterQueueName: string;
  /** The task's log group, named in the header for the reader who needs the why. */
  logGroupName: string;
  /** The copy in another region (replicaRegion): its rule's metric dimensions and region, and the lag alarm's threshold. */
  replication?: { region: string; dimensions: Record<string, string>; maxLagSeconds: number };
}

export interface Widget {
  type: "metric" | "text" | "alarm";
  x: number;
  y: number;
  width: number;
  height: number;
  properties: Record<string, unknown>;
}

export interface DashboardBody {
  start: string;
  periodOverride: "inherit" | "auto";
  widgets: Widget[];
}

/** An alarm status widget takes "1-100" alarm ARNs. */
export const alarmsPerWidget = 100;
const gridWidth = 24;
const hour = 3600;
const day = 24 * hour;

type Sized = Omit<Widget, "x" | "y">;

/** Places widgets left to right, a new row when the next does not fit; each row as tall as its tallest. */
function layout(rows: Sized[][]): Widget[] {
  const placed: Widget[] = [];
  let y = 0;
  for (const row of rows) {
    let x = 0;
    let height = 0;
    for (const w of row) {
      if (x + w.width > gridWidth) {
        y += height;
        x = 0;
        height = 0;
      }
      placed.push({ ...w, x, y });
      x += w.width;
      height = Math.max(height, w.height);
    }
    y += height;
  }
  return placed;
}

/** One of the runner's metrics of a target, as a dashboard metric array. */
function runnerMetric(stage: string, target: string, name: string, options: Record<string, unknown>): unknown[] {
  return [metricNamespace, name, "Stage", stage, "Target", target, options];
}

function metricWidget(width: number, height: number, region: string, properties: Record<string, unknown>): Sized {
  return { type: "metric", width, height, properties: { region, view: "timeSeries", ...properties } };
}

function targetWidgets(i: DashboardInputs, t: { name: string; engine: string }): Sized[] {
  const m = (name: string, options: Record<string, unknown>) => runnerMetric(i.stage, t.name, name, options);
  return [
    { type: "text", width: gridWidth, height: 1, properties: { markdown: `## ${t.name} (${t.engine})` } },
    metricWidget(8, 6, i.region, {
      title: `${t.name}: backups per hour, stored and failed`,
      period: hour,
      metrics: [
        m(backupMetrics.success, { id: "runs", stat: "SampleCount", visible: false }),
        m(backupMetrics.success, { id: "stored", stat: "Sum", label: "stored", color: "#2ca02c" }),
        [{ expression: "runs - stored", id: "failed", label: "failed", color: "#d62728" }],
      ],
      yAxis: { left: { min: 0 } },
    }),
    metricWidget(8, 6, i.region, {
      title: `${t.name}: backup size and its expected band (the size alarm)`,
      period: backupSizeBand.period,
      metrics: [
        m(backupMetrics.bytes, { id: "size", stat: backupSizeBand.stat, label: "smallest backup of the hour" }),
        [{ expression: sizeBandExpression("size"), id: "band", label: "expected" }],
      ],
    }),
    metricWidget(8, 6, i.region, {
      title: `${t.name}: backup duration (s)`,
      period: hour,
      metrics: [m(backupMetrics.durationSeconds, { stat: "Maximum", label: "longest of the hour" })],
      yAxis: { left: { min: 0 } },
    }),
    {
      type: "metric",
      width: 6,
      height: 6,
      properties: {
        region: i.region,
        view: "singleValue",
        title: `${t.name}: latest restore drill`,
        period: hour,
        metrics: [
          m(drillMetrics.success, { stat: "Minimum", label: "passed (1) / failed (0)" }),
          m(drillMetrics.restoreSeconds, { stat: "Maximum", label: "RTO: download + restore (s)" }),
          m(drillMetrics.restoredRows, { stat: "Minimum", label: "rows restored" }),
          m(drillMetrics.backupAgeHours, { stat: "Maximum", label: "age of the drilled backup (h)" }),
        ],
      },
    },
    metricWidget(9, 6, i.region, {
      title: `${t.name}: RTO per drill (s)`,
      period: day,
      metrics: [m(drillMetrics.restoreSeconds, { stat: "Maximum", label: "download + restore" })],
      yAxis: { left: { min: 0 } },
    }),
    metricWidget(9, 6, i.region, {
      title: `${t.name}: rows restored per drill`,
      period: day,
      metrics: [m(drillMetrics.restoredRows, { stat: "Minimum", label: "rows (documents)" })],
      yAxis: { left: { min: 0 } },
    }),
  ];
}

/** The dashboard of one stage: its alarms and dead-letter queue on top, then one block per target. */
export function dashboardBody(i: DashboardInputs): DashboardBody {
  if (i.alarmArns.length === 0) throw new Error("the dashboard's alarm widget needs at least one alarm ARN");
  const alarmWidgets: Sized[] = [];
  for (let from = 0; from < i.alarmArns.length; from += alarmsPerWidget) {
    alarmWidgets.push({
      type: "alarm",
      width: 16,
      height: 6,
      properties: {
        title: `db-backup ${i.stage}: alarms (ALARM first)`,
        alarms: i.alarmArns.slice(from, from + alarmsPerWidget),
        sortBy: "stateUpdatedTimestamp",
      },
    });
  }
  const header: Sized = {
    type: "text",
    width: gridWidth,
    height: 2,
    properties: {
      markdown: `# db-backup ${i.stage}\nBackups and restore drills of ${i.targets.map((t) => t.name).join(", ")}. Why a run failed: log group \`${i.logGroupName}\`. How to read this dashboard: the project's README, "Dashboard".`,
    },
  };
  const deadLetters = metricWidget(8, 6, i.region, {
    title: "Scheduled starts that failed (dead-letter queue)",
    period: 300,
    metrics: [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", i.deadLetterQueueName, { stat: "Maximum", label: "messages waiting" }]],
    yAxis: { left: { min: 0 } },
  });
  // S3 publishes the rule's metrics in the replica's region; a metric widget names its own region.
  const r = i.replication;
  const replication = r
    ? [metricWidget(gridWidth, 6, r.region, {
        title: `Copy in ${r.region}: how far behind the backups it is (s)`,
        period: 300,
        metrics: [[replicationLatencyMetric.namespace, replicationLatencyMetric.metricName, ...Object.entries(r.dimensions).flat(), { stat: "Maximum", label: "replication latency" }]],
        annotations: { horizontal: [{ value: r.maxLagSeconds, label: "the lag alarm's threshold" }] },
        yAxis: { left: { min: 0 } },
      })]
    : [];
  return {
    start: "-P7D",
    // Each graph keeps its own period: the size graph's must be the size alarm's for the band to be the alarm's.
    periodOverride: "inherit",
    widgets: layout([[header], [...alarmWidgets, deadLetters], replication, ...i.targets.map((t) => targetWidgets(i, t))]),
  };
}

/**
 * The dashboard in the CloudWatch console. Dashboards are global to the account ("All dashboards in your
 * account are global, not region-specific", AWS::CloudWatch::Dashboard); the console address of one is
 * not documented, this is the form the console itself shows.
 */
export function dashboardUrl(region: string, name: string): string {
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${encodeURIComponent(name)}`;
}
