/**
 * The dead-letter and stale-backup alarms, run through a model of CloudWatch's documented alarm
 * evaluation (models/cloudwatch.ts) against what SQS and the runner publish.
 */

import { alarmEvaluationProblem, deadLetterAlarmEvaluation, staleBackupAlarmEvaluation, type AlarmEvaluation } from "../../components/alerts";
import { backupRuns, evaluateAlarm, every, queueDepthSamples, simulateAlarm, type AlarmState, type Point } from "./models/cloudwatch";

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
