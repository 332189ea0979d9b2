/**
 * The replica's lag alarm, run through the model of CloudWatch's documented alarm evaluation
 * (models/cloudwatch.ts) against ReplicationLatency as S3 publishes it: minute by minute, the largest
 * number of seconds the destination is behind the source for the rule, 0 while nothing is pending, and
 * nothing at all once the destination bucket is gone ("Using S3 Replication metrics", S3 User Guide,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html).
 */

import { alarmEvaluationProblem, replicationLagAlarmEvaluation } from "../../components/alerts";
import { simulateAlarm, type AlarmState } from "./models/cloudwatch";

const hour = 60;
const day = 24 * hour;
const pages = <T extends { state: AlarmState }>(n: T[]) => n.filter((x) => x.state !== "OK");
const on = { actionsEnabled: true, alarm: true, ok: true, insufficientData: true };
const e = replicationLagAlarmEvaluation();

/**
 * ReplicationLatency, one sample a minute from `from` until `until`: each backup (hourly, at minute 5)
 * is pending from its upload until it has crossed, which takes `copyMinutes(backup)`, and the lag is the
 * age of the oldest pending one; 0 when none is.
 */
function latency(copyMinutes: (uploadedAt: number) => number, minutes: number, until = minutes): Map<number, number[]> {
  const uploads = Array.from({ length: Math.ceil(minutes / hour) }, (_, i) => i * hour + 5);
  const samples = new Map<number, number[]>();
  for (let minute = 0; minute < until; minute++) {
    const pending = uploads.filter((u) => u <= minute && minute < u + copyMinutes(u));
    samples.set(minute, [pending.length === 0 ? 0 : (minute - Math.min(...pending)) * 60]);
  }
  return samples;
}

it("fits CloudWatch's limit on Period x EvaluationPeriods, and watches the worst lag of each period", () => {
  expect(alarmEvaluationProblem(e)).toBeUndefined();
  expect(e).toMatchObject({ statistic: "Maximum", threshold: 3600, comparisonOperator: "GreaterThanThreshold" });
});

it.each([4, 6])("stays quiet while hourly backups cross in minutes, and a single slow one (66 minutes: over the hour for five) does not page (range %i)", (range) => {
  const minutes = 2 * day;
  const samples = latency((u) => (u === 10 * hour + 5 ? 66 : 3), minutes);
  expect(pages(simulateAlarm(e, on, samples, minutes, range).notifications)).toEqual([]);
  // Alarming on one period over the hour would have paged for that one slow copy.
  expect(pages(simulateAlarm({ ...e, evaluationPeriods: 1, datapointsToAlarm: 1 }, on, samples, minutes, range).notifications)[0]?.state).toBe("ALARM");
});

it.each([4, 6])("pages when replication stops, once the oldest uncopied backup is an hour old for 15 minutes (range %i)", (range) => {
  const minutes = 2 * day;
  const stuckFrom = day + 5; // the backup uploaded then never crosses, nor any after it
  const samples = latency((u) => (u >= stuckFrom ? Infinity : 3), minutes);
  const page = pages(simulateAlarm(e, on, samples, minutes, range).notifications);
  expect(page[0].state).toBe("ALARM");
  // Over an hour behind from stuckFrom + 61; three 5-minute windows later at most.
  expect(page[0].minute).toBeGreaterThan(stuckFrom + hour);
  expect(page[0].minute).toBeLessThanOrEqual(stuckFrom + hour + 16);
});

it.each([4, 6])("pages when the replica stops reporting (its bucket deleted), and not on a fresh deploy (range %i)", (range) => {
  const minutes = 2 * day;
  const gone = day;
  const { notifications } = simulateAlarm(e, on, latency(() => 3, minutes, gone), minutes, range);
  // Fresh deploy: INSUFFICIENT_DATA -> OK at the first sample, which is no page.
  expect(notifications[0]).toEqual({ minute: 0, state: "OK" });
  const page = pages(notifications);
  expect(page).toHaveLength(1);
  expect(page[0].state).toBe("INSUFFICIENT_DATA");
  expect(page[0].minute).toBeGreaterThan(gone);
});

it("with missing data ignored, the deleted replica would have gone unnoticed", () => {
  const minutes = 2 * day;
  const { notifications } = simulateAlarm({ ...e, treatMissingData: "ignore" }, on, latency(() => 3, minutes, day), minutes, 6);
  expect(pages(notifications)).toEqual([]);
});
