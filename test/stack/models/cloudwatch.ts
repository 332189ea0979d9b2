/**
 * CloudWatch metric alarm evaluation as the CloudWatch User Guide documents it ("Using Amazon CloudWatch
 * alarms", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html):
 *
 * - A new alarm starts in INSUFFICIENT_DATA ("The alarm has just started ..."), and "an alarm invokes
 *   actions only when the alarm changes state"; actions run only while the alarm's actions are enabled
 *   (PutMetricAlarm ActionsEnabled).
 * - Alarms with a period of a minute or more are evaluated every minute over Period x EvaluationPeriods
 *   (a sliding window).
 * - Each evaluation retrieves more data points than EvaluationPeriods, the evaluation range. If the
 *   most recent EvaluationPeriods points are all there, they decide. If some are missing but the range
 *   holds at least EvaluationPeriods real points, the most recent real points decide and the missing-data
 *   setting is not used. Otherwise missing points are filled per treatMissingData, "as few times as
 *   possible", with every real point in the range counted ("How alarm state is evaluated when data is missing").
 * - All points missing: missing -> INSUFFICIENT_DATA, ignore -> current state, breaching -> ALARM,
 *   notBreaching -> OK. With `missing`, an alarm also goes to ALARM "when the oldest available breaching
 *   datapoint during the Evaluation Periods number of data points is at least as old as the value of
 *   Datapoints to Alarm, and all other more recent data points are breaching or missing" ("Avoiding
 *   premature transitions to alarm state"). With `ignore`, a state the real points do not settle is kept.
 *
 * How long the evaluation range is, is not documented beyond "a higher number of data points than ...
 * Evaluation Periods"; callers pass it, and the tests hold for several values.
 */

import type { AlarmEvaluation, AnomalyAlarmEvaluation } from "../../../components/alerts";

export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";
/** One data point of the evaluation range: the statistic's value, or undefined where there is no data. */
export type Point = number | undefined;

export type AlarmRule = Pick<AlarmEvaluation, "evaluationPeriods" | "datapointsToAlarm" | "threshold" | "comparisonOperator" | "treatMissingData">;

function breaching(rule: AlarmRule, value: number): boolean {
  return rule.comparisonOperator === "GreaterThanThreshold" ? value > rule.threshold : value < rule.threshold;
}

/** The state after one evaluation of the range (oldest point first), given the state before. */
export function evaluateAlarm(rule: AlarmRule, range: Point[], current: AlarmState): AlarmState {
  const n = rule.evaluationPeriods;
  const m = rule.datapointsToAlarm;
  if (range.length <= n) throw new Error("the evaluation range holds more points than EvaluationPeriods");
  const decide = (values: boolean[]) => (values.filter(Boolean).length >= m ? "ALARM" : "OK");
  const real = range.filter((p): p is number => p !== undefined);
  const recent = range.slice(-n);
  if (recent.every((p) => p !== undefined)) return decide(recent.map((p) => breaching(rule, p!)));
  if (real.length >= n) return decide(real.slice(-n).map((p) => breaching(rule, p)));
  if (real.length === 0) {
    return { missing: "INSUFFICIENT_DATA" as const, ignore: current, breaching: "ALARM" as const, notBreaching: "OK" as const }[rule.treatMissingData];
  }
  const realBreaching = real.map((p) => breaching(rule, p));
  const fill = n - real.length;
  const asBreaching = decide([...realBreaching, ...Array(fill).fill(true)]);
  const asNotBreaching = decide([...realBreaching, ...Array(fill).fill(false)]);
  switch (rule.treatMissingData) {
    case "breaching":
      return asBreaching;
    case "notBreaching":
      return asNotBreaching;
    case "ignore":
      return asBreaching === asNotBreaching ? asBreaching : current;
    case "missing": {
      // Ages count from the most recent point (1) back through the last EvaluationPeriods points.
      const ages = recent.map((p, i) => ({ p, age: n - i }));
      const oldestBreaching = ages.find(({ p }) => p !== undefined && breaching(rule, p));
      if (oldestBreaching && oldestBreaching.age >= m && ages.filter(({ age }) => age < oldestBreaching.age).every(({ p }) => p === undefined || breaching(rule, p))) {
        return "ALARM";
      }
      return asBreaching === asNotBreaching ? asBreaching : current;
    }
  }
}

export interface AlarmActions {
  actionsEnabled: boolean;
  alarm: boolean;
  ok: boolean;
  insufficientData: boolean;
}

export interface Notification {
  minute: number;
  state: AlarmState;
}

/**
 * Runs an alarm minute by minute over a timeline of samples (minute -> values published that minute),
 * returning the notifications its actions send. `period` is in seconds; each evaluation looks at
 * `rangePeriods` consecutive periods ending now (the sliding window).
 */
export function simulateAlarm(
  rule: AlarmRule & { period: number; statistic: "Sum" | "Maximum" | "Minimum" },
  actions: AlarmActions,
  samples: Map<number, number[]>,
  minutes: number,
  rangePeriods: number,
): { notifications: Notification[]; states: AlarmState[] } {
  const periodMinutes = rule.period / 60;
  // Per-minute sums and counts as prefix sums (index i covers minutes < i), so a window costs O(1).
  const sum = [0];
  const count = [0];
  for (let minute = 0; minute < minutes; minute++) {
    const values = samples.get(minute) ?? [];
    sum.push(sum[minute] + values.reduce((a, b) => a + b, 0));
    count.push(count[minute] + values.length);
  }
  const window = (end: number): Point => {
    const from = Math.max(0, end - periodMinutes + 1);
    if (end < 0 || count[end + 1] - count[from] === 0) return undefined;
    if (rule.statistic === "Sum") return sum[end + 1] - sum[from];
    const values: number[] = [];
    for (let minute = from; minute <= end; minute++) values.push(...(samples.get(minute) ?? []));
    return rule.statistic === "Maximum" ? Math.max(...values) : Math.min(...values);
  };
  let state: AlarmState = "INSUFFICIENT_DATA";
  const notifications: Notification[] = [];
  const states: AlarmState[] = [];
  for (let now = 0; now < minutes; now++) {
    const range: Point[] = [];
    for (let k = rangePeriods - 1; k >= 0; k--) range.push(window(now - k * periodMinutes));
    const next = evaluateAlarm(rule, range, state);
    if (next !== state && actions.actionsEnabled) {
      const wanted = { ALARM: actions.alarm, OK: actions.ok, INSUFFICIENT_DATA: actions.insufficientData }[next];
      if (wanted) notifications.push({ minute: now, state: next });
    }
    state = next;
    states.push(state);
  }
  return { notifications, states };
}

/** BackupSuccess samples of one target: 1 at each minute in `succeeded`, 0 at each minute in `failed`. */
export function backupRuns(succeeded: number[], failed: number[] = []): Map<number, number[]> {
  const samples = new Map<number, number[]>();
  for (const minute of succeeded) samples.set(minute, [...(samples.get(minute) ?? []), 1]);
  for (const minute of failed) samples.set(minute, [...(samples.get(minute) ?? []), 0]);
  return samples;
}

/** Minutes from `from` (inclusive) to `to` (exclusive), every `every` minutes. */
export const every = (every: number, from: number, to: number): number[] => Array.from({ length: Math.max(0, Math.ceil((to - from) / every)) }, (_, i) => from + i * every);

/**
 * ApproximateNumberOfMessagesVisible of a queue, one sample a minute while SQS counts the queue as
 * active: "for up to six hours if it contains any messages or if any action accesses it" (SQS Developer
 * Guide, "Monitoring Amazon SQS queues using CloudWatch",
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-monitoring-using-cloudwatch.html).
 * `actions` are the minutes something touched the queue and how many messages it held afterwards.
 */
export function queueDepthSamples(actions: { minute: number; visible: number }[], minutes: number): Map<number, number[]> {
  const samples = new Map<number, number[]>();
  for (let minute = 0; minute < minutes; minute++) {
    const last = actions.filter((a) => a.minute <= minute).pop();
    if (last && minute - last.minute < 6 * 60) samples.set(minute, [last.visible]);
  }
  return samples;
}

/**
 * An anomaly detection alarm as a threshold alarm on (metric - lower band) < 0, with the checks PutMetricAlarm
 * documents for it: `thresholdMetricId` is the id of the ANOMALY_DETECTION_BAND query, whose first
 * argument is the metric's id; the metric and the band return data; no static threshold ("Creating a
 * CloudWatch alarm based on anomaly detection"; PutMetricAlarm ThresholdMetricId and Threshold). The
 * band's values are CloudWatch's model, which exists only in AWS: `lowerBand(minute)` stands for it.
 * Returns what simulateAlarm needs, and the samples shifted by the band.
 */
export function anomalyAlarm(e: AnomalyAlarmEvaluation & { threshold?: number }, samples: Map<number, number[]>, lowerBand: (minute: number) => number) {
  if (e.threshold !== undefined) throw new Error("an anomaly detection alarm takes no static threshold");
  const band = e.metricQueries.find((q) => q.id === e.thresholdMetricId);
  if (!band?.expression) throw new Error(`thresholdMetricId '${e.thresholdMetricId}' names no expression among the alarm's metric queries`);
  const args = /^ANOMALY_DETECTION_BAND\((\w+)(?:,\s*([\d.]+))?\)$/.exec(band.expression);
  if (!args) throw new Error(`'${band.expression}' is not an ANOMALY_DETECTION_BAND expression`);
  const metric = e.metricQueries.find((q) => q.id === args[1]);
  if (!metric?.metric) throw new Error(`the band is of '${args[1]}', which is not a metric of the alarm`);
  if (!metric.returnData || !band.returnData) throw new Error("the metric and its band both return data in an anomaly detection alarm");
  const stat = metric.metric.stat;
  if (stat !== "Sum" && stat !== "Maximum" && stat !== "Minimum") throw new Error(`the model does not compute the statistic ${stat}`);
  const statistic: "Sum" | "Maximum" | "Minimum" = stat;
  // CloudWatch compares each period's value with the band at that period; the window's value is known
  // only per evaluation, so each sample is shifted by the band at its own minute, which is the same
  // thing for a band that changes slowly against the period (the model's hourly and daily patterns).
  const shifted = new Map([...samples].map(([minute, values]) => [minute, values.map((v) => v - lowerBand(minute))]));
  const rule = { ...e, statistic, period: metric.metric.period, threshold: 0, comparisonOperator: "LessThanThreshold" as const };
  return { rule, samples: shifted };
}

/** BackupBytes samples of one target: the size of each stored backup at its minute. */
export function backupSizes(runs: { minute: number; bytes: number }[]): Map<number, number[]> {
  const samples = new Map<number, number[]>();
  for (const { minute, bytes } of runs) samples.set(minute, [...(samples.get(minute) ?? []), bytes]);
  return samples;
}
