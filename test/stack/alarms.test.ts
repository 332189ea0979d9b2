/**
 * The dead-letter, stale-backup, stale-drill and size-anomaly alarms, run through a model of CloudWatch's
 * documented alarm evaluation (models/cloudwatch.ts) against what SQS and the runner publish.
 */

import { alarmEvaluationProblem, backupSizeAlarmEvaluation, deadLetterAlarmEvaluation, staleBackupAlarmEvaluation, type AlarmEvaluation } from "../../components/alerts";
import { backupMetrics, metricNamespace } from "../../image/src/contract";
import { anomalyAlarm, backupRuns, backupSizes, evaluateAlarm, every, queueDepthSamples, simulateAlarm, type AlarmState, type Point } from "./models/cloudwatch";

describe("the model reproduces CloudWatch's table (Datapoints to Alarm and Evaluation Periods 3, range 5)", () => {
  // "Using Amazon CloudWatch alarms", How alarm state is evaluated when data is missing: 0 is not
  // breaching, X breaching, - missing; the most recent point on the right.
  const rule = { evaluationPeriods: 3, datapointsToAlarm: 3, threshold: 0.5, comparisonOperator: "GreaterThanThreshold" as const };
  const parse = (row: string): Point[] => row.split(" ").map((c) => (c === "-" ? undefined : c === "X" ? 1 : 0));
  it.each([
    ["0 - X - X", "OK", "OK", "OK", "OK"],
    ["0 - - - -", "OK", "OK", "OK", "OK"],
    ["- - - - -", "INSUFFICIENT_DATA", "retain", "ALARM", "OK"],
    ["0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"],
    ["- - X - -", "ALARM", "retain", "ALARM", "OK"],
  ])("%s", (row, missing, ignore, breaching, notBreaching) => {
    for (const current of ["OK", "ALARM", "INSUFFICIENT_DATA"] as AlarmState[]) {
      const expect_ = (want: string) => (want === "retain" ? current : want);
      expect(evaluateAlarm({ ...rule, treatMissingData: "missing" }, parse(row), current)).toBe(expect_(missing));
      expect(evaluateAlarm({ ...rule, treatMissingData: "ignore" }, parse(row), current)).toBe(expect_(ignore));
      expect(evaluateAlarm({ ...rule, treatMissingData: "breaching" }, parse(row), current)).toBe(expect_(breaching));
      expect(evaluateAlarm({ ...rule, treatMissingData: "notBreaching" }, parse(row), current)).toBe(expect_(notBreaching));
    }
  });
});

const hour = 60;
const day = 24 * hour;
const pages = <T extends { state: AlarmState }>(n: T[]) => n.filter((x) => x.state !== "OK");

describe("dead-letter queue alarm", () => {
  const dlq = { ...deadLetterAlarmEvaluation() };
  const actions = { actionsEnabled: true, alarm: true, ok: false, insufficientData: false };
  // The scheduler gives up on a start at minute 30; nobody looks at the queue for two days, then drains it.
  const minutes = 3 * day;
  const samples = queueDepthSamples([{ minute: 30, visible: 1 }, { minute: 2 * day, visible: 0 }], minutes);

  it.each([2, 5])("stays in ALARM while the message waits, after SQS stops reporting the idle queue (range %i)", (range) => {
    const { notifications, states } = simulateAlarm(dlq, actions, samples, minutes, range);
    expect(notifications).toEqual([{ minute: 30, state: "ALARM" }]);
    expect(states.slice(30, 2 * day).every((s) => s === "ALARM")).toBe(true);
    expect(states[states.length - 1]).toBe("OK");
  });

  it("with missing data as not breaching (before this fix) it cleared six hours later, the message still queued", () => {
    const { states } = simulateAlarm({ ...dlq, treatMissingData: "notBreaching" }, actions, samples, minutes, 2);
    expect(states[30 + 6 * hour + 10]).toBe("OK");
  });
});

describe.each([3, 13, 26, 72, 168])("stale-backup alarm, staleAfterHours %i", (staleAfterHours) => {
  const e = staleBackupAlarmEvaluation(staleAfterHours);
  const stale = staleAfterHours * hour;
  const interval = Math.max(1, Math.floor(staleAfterHours / 3)) * hour; // a schedule that runs well within the window
  const minutes = Math.max(6 * day, 8 * stale + 4 * interval);
  const on = { actionsEnabled: true, alarm: true, ok: true, insufficientData: true };
  const off = { ...on, actionsEnabled: false };

  it("fits CloudWatch's limit on Period x EvaluationPeriods", () => {
    expect(alarmEvaluationProblem(e)).toBeUndefined();
    expect(e.period * e.evaluationPeriods).toBe(stale * 60);
  });

  it.each([2, 5])("does not page on a fresh deploy, whenever the first backup runs (range %i)", (range) => {
    for (const first of [20, stale - 10, stale + 5 * hour]) {
      const { notifications } = simulateAlarm(e, on, backupRuns(every(interval, first, minutes)), minutes, range);
      expect(pages(notifications)).toEqual([]);
      expect(notifications).toEqual([{ minute: first, state: "OK" }]);
    }
  });

  it.each([2, 5])("pages when a running stage stops succeeding, once no success is left in the window (range %i)", (range) => {
    const runs = every(interval, 20, minutes);
    const lastSuccess = runs.filter((m) => m <= 2 * stale + interval).pop()!;
    const samples = backupRuns(runs.filter((m) => m <= lastSuccess), runs.filter((m) => m > lastSuccess));
    const { notifications } = simulateAlarm(e, on, samples, minutes, range);
    expect(pages(notifications)).toEqual([{ minute: lastSuccess + stale, state: "ALARM" }]);
  });

  it.each([2, 5])("pages when a running stage stops reporting at all (range %i)", (range) => {
    const runs = every(interval, 20, 2 * stale + interval);
    const last = runs[runs.length - 1];
    const { notifications } = simulateAlarm(e, on, backupRuns(runs), minutes, range);
    const page = pages(notifications);
    expect(page).toHaveLength(1);
    expect(page[0].state).toBe("INSUFFICIENT_DATA");
    // The previous windows still hold successes until they leave the evaluation range.
    expect(page[0].minute).toBeGreaterThan(last);
    expect(page[0].minute).toBeLessThanOrEqual(last + range * stale);
  });

  it("says nothing while the schedule is paused, whatever the data", () => {
    const lastSuccess = 2 * stale;
    for (const samples of [new Map(), backupRuns(every(interval, 20, lastSuccess)), backupRuns([], every(interval, 20, minutes))]) {
      expect(simulateAlarm(e, off, samples, minutes, 3).notifications).toEqual([]);
    }
  });

  it("before this fix (hourly periods, missing data breaching) it paged on a fresh deploy", () => {
    const before: AlarmEvaluation = { statistic: "Sum", period: 3600, evaluationPeriods: staleAfterHours, datapointsToAlarm: staleAfterHours, threshold: 1, comparisonOperator: "LessThanThreshold", treatMissingData: "breaching" };
    const { notifications } = simulateAlarm(before, on, backupRuns(every(interval, 20, day)), day, staleAfterHours + 2);
    expect(notifications[0]).toEqual({ minute: 0, state: "ALARM" });
  });
});

it("refuses an evaluation period CloudWatch would refuse", () => {
  expect(() => staleBackupAlarmEvaluation(169)).toThrow("over CloudWatch's limit of 604800 s");
  expect(alarmEvaluationProblem({ period: 300, evaluationPeriods: 289 })).toMatch("limit of 86400 s");
  expect(alarmEvaluationProblem({ period: 90, evaluationPeriods: 1 })).toMatch("not a multiple of 60");
});

describe("stale-drill alarm: daily drills, drillStaleAfterHours 50 (the defaults)", () => {
  // The drill-stale alarm is the stale-backup alarm's evaluation over DrillSuccess (alerts.ts).
  const e = staleBackupAlarmEvaluation(50);
  const window = 50 * hour;
  const minutes = 20 * day;
  const drills = every(day, 6 * hour, minutes);
  const on = { actionsEnabled: true, alarm: true, ok: true, insufficientData: true };

  it.each([2, 5])("a fresh deploy waits for its first drill without paging (range %i)", (range) => {
    const { notifications } = simulateAlarm(e, on, backupRuns(drills), minutes, range);
    expect(notifications).toEqual([{ minute: drills[0], state: "OK" }]);
  });

  it.each([2, 5])("one failed drill is the failure alert's business; the second in a row pages (range %i)", (range) => {
    const lastPass = drills[5];
    const once = simulateAlarm(e, on, backupRuns(drills.filter((m) => m !== drills[6]), [drills[6]]), minutes, range);
    expect(pages(once.notifications)).toEqual([]);
    const failing = simulateAlarm(e, on, backupRuns(drills.filter((m) => m <= lastPass), drills.filter((m) => m > lastPass)), minutes, range);
    expect(pages(failing.notifications)).toEqual([{ minute: lastPass + window, state: "ALARM" }]);
  });

  it.each([2, 5])("pages when the drills stop happening (range %i)", (range) => {
    const ran = drills.slice(0, 6);
    const page = pages(simulateAlarm(e, on, backupRuns(ran), minutes, range).notifications);
    expect(page.map((n) => n.state)).toEqual(["INSUFFICIENT_DATA"]);
    expect(page[0].minute).toBeGreaterThan(ran[ran.length - 1] + window);
  });

  it("says nothing with drills disabled (actions off), whatever the data", () => {
    const off = { ...on, actionsEnabled: false };
    for (const samples of [new Map(), backupRuns(drills.slice(0, 3)), backupRuns([], drills)]) {
      expect(simulateAlarm(e, off, samples, minutes, 3).notifications).toEqual([]);
    }
  });
});

describe("size-anomaly alarm", () => {
  const e = backupSizeAlarmEvaluation(metricNamespace, backupMetrics.bytes, { Stage: "dev", Target: "app" });
  const gib = 1024 ** 3;
  const actions = { actionsEnabled: true, alarm: true, ok: true, insufficientData: false };
  // A trained band: ordinary dumps of about 1 GiB, the lower bound at 0.9 GiB. The band itself is
  // CloudWatch's model, which only AWS computes.
  const lowerBand = () => 0.9 * gib;
  const ordinary = (minute: number) => ({ minute, bytes: gib * (1 + 0.01 * Math.sin(minute)) });
  const run = (sizes: { minute: number; bytes: number }[], range: number, evaluation = e) => {
    const { rule, samples } = anomalyAlarm(evaluation, backupSizes(sizes), lowerBand);
    return simulateAlarm(rule, actions, samples, 10 * day, range);
  };

  it("fits together as CloudWatch requires: the threshold is the band, the band is of the watched metric, no static threshold", () => {
    expect(() => anomalyAlarm(e, new Map(), lowerBand)).not.toThrow();
    expect(e).not.toHaveProperty("threshold");
    expect(() => anomalyAlarm({ ...e, thresholdMetricId: "size" }, new Map(), lowerBand)).toThrow("names no expression");
    const elsewhere = e.metricQueries.map((q) => (q.expression ? { ...q, expression: "ANOMALY_DETECTION_BAND(other, 4)" } : q));
    expect(() => anomalyAlarm({ ...e, metricQueries: elsewhere }, new Map(), lowerBand)).toThrow("not a metric of the alarm");
    expect(() => anomalyAlarm({ ...e, threshold: 0 }, new Map(), lowerBand)).toThrow("no static threshold");
    expect(alarmEvaluationProblem({ period: e.metricQueries[0].metric!.period, evaluationPeriods: e.evaluationPeriods })).toBeUndefined();
  });

  it.each([2, 5])("pages on a backup far below the band and clears with the next ordinary one, hourly backups (range %i)", (range) => {
    const hours = every(hour, 10, 10 * day);
    const small = hours[100];
    const { notifications } = run(hours.map((m) => (m === small ? { minute: m, bytes: 0.2 * gib } : ordinary(m))), range);
    expect(notifications).toEqual([{ minute: hours[0], state: "OK" }, { minute: small, state: "ALARM" }, { minute: hours[101], state: "OK" }]);
  });

  it.each([2, 5])("keeps its state through the hours without a backup (six-hourly runs, nights and weekends) (range %i)", (range) => {
    const runs = every(6 * hour, 10, 10 * day);
    const small = runs[10];
    const { notifications, states } = run(runs.map((m) => (m === small ? { minute: m, bytes: 0.2 * gib } : ordinary(m))), range);
    expect(notifications).toEqual([{ minute: runs[0], state: "OK" }, { minute: small, state: "ALARM" }, { minute: runs[11], state: "OK" }]);
    expect(states.slice(small, runs[11]).every((s) => s === "ALARM")).toBe(true);
    expect(states.slice(runs[0], small).every((s) => s === "OK")).toBe(true);
    // With `missing` it would flap to INSUFFICIENT_DATA between runs, and `notBreaching` would clear the
    // alarm once the small backup left the evaluation range, before any ordinary one was stored.
    const sizes = runs.map((m) => (m === small ? { minute: m, bytes: 0.2 * gib } : ordinary(m)));
    expect(run(sizes, range, { ...e, treatMissingData: "missing" }).states.slice(runs[0], small)).toContain("INSUFFICIENT_DATA");
    expect(run(sizes, range, { ...e, treatMissingData: "notBreaching" }).states[small + (range + 1) * hour]).toBe("OK");
  });

  it("a failed backup, which declares no size, changes nothing; before the runner stopped declaring 0, it paged", () => {
    const hours = every(hour, 10, 5 * day);
    const failed = hours[30];
    expect(run(hours.filter((m) => m !== failed).map(ordinary), 3).notifications).toEqual([{ minute: hours[0], state: "OK" }]);
    const before = run(hours.map((m) => (m === failed ? { minute: m, bytes: 0 } : ordinary(m))), 3).notifications;
    expect(before).toContainEqual({ minute: failed, state: "ALARM" });
  });

  it("is silent before the first backup: INSUFFICIENT_DATA has no action", () => {
    const { notifications, states } = run([], 3);
    expect(notifications).toEqual([]);
    expect(new Set(states)).toEqual(new Set(["INSUFFICIENT_DATA"]));
  });
});
