/**
 * A stage's alerts as pure data: the EventBridge rules for a failed task (the pattern, and the text each
 * sends to the alert topic) and how the CloudWatch alarms evaluate. The tests apply EventBridge's and
 * CloudWatch's documented behaviour to them; scheduledBackup.ts only wires them to resources.
 */

/** The stage's two task families: the scheduled backup and the verifier's restore drill. */
export type TaskKind = "backup" | "drill";

export interface FailureRuleInputs {
  stage: string;
  clusterArn: string;
  clusterName: string;
  /**
   * Per task kind, `arn:…:task-definition/<family>:` of each of its families (the backup has one per
   * target with per-target isolation), so every revision of every family matches.
   */
  taskDefinitionFamilyArnPrefixes: Record<TaskKind, string[]>;
  region: string;
  logGroupName: string;
}

/**
 * The kinds of failure rule, fixed before any ARN is known (scheduledBackup.ts names a resource after
 * each). A failed drill alerts as a failed backup does, by rules of its own so that the text can say which.
 */
export const failureRuleIds = ["task-failed", "task-not-started", "drill-failed", "drill-not-started"] as const;

export interface FailureRule {
  /** Suffix of the rule's and the target's resource names. */
  id: (typeof failureRuleIds)[number];
  description: string;
  pattern: Record<string, unknown>;
  /** EventBridge InputTransformer: variables taken from the event, and the text they are put into. */
  inputPaths: Record<string, string>;
  inputTemplate: string;
}

/**
 * An InputTransformer string template: the text as one JSON string, `<name>` placeholders left as they
 * are. JSON.stringify escapes the text's own quotes and backslashes, which EventBridge requires of a
 * string template ("InputTransformer", EventBridge API Reference,
 * https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html).
 */
function stringTemplate(text: string): string {
  return JSON.stringify(text);
}

/** How each kind of task is named in its alerts, and what its failure means. */
const taskWords: Record<TaskKind, { ids: [FailureRule["id"], FailureRule["id"]]; task: string; failed: string; noRun: string; startFailures: string }> = {
  backup: { ids: ["task-failed", "task-not-started"], task: "backup task", failed: "a target failed, or the task was killed", noRun: "no backup was made", startFailures: "image pull, secrets, network" },
  drill: {
    ids: ["drill-failed", "drill-not-started"],
    task: "restore drill task",
    failed: "a backup did not restore, lost tables or rows, or the task was killed",
    noRun: "no restore drill was run",
    // The verifier task has no secrets to fetch.
    startFailures: "image pull, network",
  },
};

/** EventBridge's default limit on an event pattern's length, in characters (see taskFailureRules). */
export const eventPatternMaxLength = 2048;

function sized(pattern: Record<string, unknown>, task: string): Record<string, unknown> {
  const length = JSON.stringify(pattern).length;
  if (length > eventPatternMaxLength) {
    throw new Error(
      `the failure rule of the ${task}s would have an event pattern of ${length} characters, over EventBridge's default quota of ${eventPatternMaxLength} ` +
        `(one task definition family per target with isolation per-target): split the targets over more stacks, or use isolation per-stage`,
    );
  }
  return pattern;
}

/**
 * One rule per kind of failure and kind of task, so that every variable a template uses is present in
 * every event the rule matches. EventBridge's input transformation documents two traps ("Amazon EventBridge input
 * transformation", common issues, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html):
 * a variable whose path is absent from the event "isn't created and won't appear in the output" (a task
 * that never started has no exit code, which left "exit code )" in the old single text), and "EventBridge
 * doesn't escape values extracted by Input Path" (a stoppedReason holding a quote, as ECS's
 * CannotPullContainerError does, ended the JSON string early). So: each template uses only values the
 * rule's own pattern guarantees ("the event must contain all the field names listed in the event
 * pattern", "Amazon EventBridge event patterns", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html)
 * and that cannot hold a quote (a task ARN, an integer); the free-text stoppedReason is not copied into
 * the text but named with the command that shows it, as ECS keeps a stopped task for at least an hour
 * ("Checking stopped tasks for errors", Amazon ECS Developer Guide,
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html). ECS sends the
 * same task state change events for every task of the cluster, whatever its family ("Amazon ECS task
 * state change events", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html),
 * so the family's ARN prefix tells a backup from a drill. A value list is matched when any of its
 * matchers matches ("the value can be any of the values in the array", "Amazon EventBridge event
 * patterns"; prefix matching in "Content filtering in Amazon EventBridge event patterns",
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/content-filtering-with-event-patterns.html),
 * so one rule covers every backup family. EventBridge refuses a pattern over 2048 characters unless
 * the account's quota was raised (to at most 4096: "Amazon EventBridge quotas", Event pattern size,
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html), which bounds how many
 * per-target families one rule can list: refused here, at synth, with the way out.
 */
export function taskFailureRules(i: FailureRuleInputs): FailureRule[] {
  const describe = `aws ecs describe-tasks --region ${i.region} --cluster ${i.clusterName} --tasks <task>`;
  return (Object.keys(taskWords) as TaskKind[]).flatMap((kind): FailureRule[] => {
    const words = taskWords[kind];
    const stopped = {
      clusterArn: [i.clusterArn],
      taskDefinitionArn: i.taskDefinitionFamilyArnPrefixes[kind].map((prefix) => ({ prefix })),
      lastStatus: ["STOPPED"],
    };
    const envelope = (detail: Record<string, unknown>) => ({ source: ["aws.ecs"], "detail-type": ["ECS Task State Change"], detail: { ...stopped, ...detail } });
    return [
      {
        id: words.ids[0],
        description: `db-backup ${i.stage}: a ${words.task}'s container exited with a non-zero code (${words.failed})`,
        // Each task has one container (components/taskDefinition.ts), so the exit code that matched is containers[0]'s.
        pattern: sized(envelope({ containers: { exitCode: [{ "anything-but": 0 }] } }), words.task),
        inputPaths: { task: "$.detail.taskArn", exitCode: "$.detail.containers[0].exitCode" },
        inputTemplate: stringTemplate(
          `db-backup ${i.stage}: ${words.task} <task> failed: its container exited with code <exitCode>. ` +
            `The task's log says which target failed and why: CloudWatch log group ${i.logGroupName}. ` +
            `Stop details: ${describe}`,
        ),
      },
      {
        id: words.ids[1],
        description: `db-backup ${i.stage}: a ${words.task} failed to start (${words.noRun})`,
        pattern: sized(envelope({ stopCode: ["TaskFailedToStart"] }), words.task),
        inputPaths: { task: "$.detail.taskArn" },
        inputTemplate: stringTemplate(
          `db-backup ${i.stage}: ${words.task} <task> failed to start (ECS stop code TaskFailedToStart), so ${words.noRun}. ` +
            `ECS gives the reason (${words.startFailures}) as the task's stoppedReason for at least an hour: ` +
            `${describe} --query tasks[0].stoppedReason`,
        ),
      },
    ];
  });
}

/** How a metric alarm evaluates: the fields of aws.cloudwatch.MetricAlarm that decide its state. */
export interface AlarmEvaluation {
  statistic: "Sum" | "Maximum";
  period: number;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  threshold: number;
  comparisonOperator: "GreaterThanThreshold" | "LessThanThreshold";
  treatMissingData: "missing" | "ignore" | "breaching" | "notBreaching";
}

/**
 * CloudWatch's limit on an alarm's evaluation period (Period x EvaluationPeriods): seven days, one day for
 * periods under an hour (PutMetricAlarm, Period, as in the AWS SDK for Kotlin's PutMetricAlarmRequest.period,
 * https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/cloudwatch/aws.sdk.kotlin.services.cloudwatch.model/-put-metric-alarm-request/period.html).
 */
export function alarmEvaluationProblem(e: Pick<AlarmEvaluation, "period" | "evaluationPeriods">): string | undefined {
  const total = e.period * e.evaluationPeriods;
  const limit = e.period < 3600 ? 86400 : 604800;
  if (e.period % 60 !== 0) return `period ${e.period} s is not a multiple of 60`;
  return total > limit ? `period x evaluation periods is ${total} s, over CloudWatch's limit of ${limit} s` : undefined;
}

/**
 * The dead-letter alarm: ALARM while a start the scheduler gave up on waits in the queue. SQS publishes a
 * queue's metrics only while it is active, "for up to six hours if it contains any messages or if any
 * action accesses it" (SQS Developer Guide, "Monitoring Amazon SQS queues using CloudWatch",
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-monitoring-using-cloudwatch.html),
 * so a message nobody touches stops being reported. `ignore` keeps the alarm in its current state while
 * data is missing (CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing data",
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data);
 * `notBreaching` turned it OK with the message still there. It clears when someone reads the queue
 * (which makes it active again) and it reports zero.
 */
export function deadLetterAlarmEvaluation(): AlarmEvaluation {
  return { statistic: "Maximum", period: 300, evaluationPeriods: 1, datapointsToAlarm: 1, threshold: 0, comparisonOperator: "GreaterThanThreshold", treatMissingData: "ignore" };
}

/**
 * The alarm on a failure rule's deliveries: EventBridge counts each invocation of a target that failed
 * for good in AWS/Events FailedInvocations by RuleName (EventBridge User Guide, "Monitoring Amazon
 * EventBridge", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html), and a
 * topic policy that refuses EventBridge shows nowhere else ("Why isn't my Amazon SNS topic receiving
 * EventBridge notifications?", https://repost.aws/knowledge-center/sns-not-getting-eventbridge-notification).
 * The alarm itself publishes as CloudWatch, which the topic policy allows by its own statement. The
 * metric exists only when the rule fires, so missing data is no failure.
 */
export function failedDeliveryAlarmEvaluation(): AlarmEvaluation {
  return { statistic: "Sum", period: 300, evaluationPeriods: 1, datapointsToAlarm: 1, threshold: 0, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching" };
}

/**
 * The stale-backup alarm of one target: one period as long as `staleAfterHours`, the Sum of BackupSuccess
 * (1 per stored backup, 0 per failed one) over it, ALARM below 1.
 * - A run that reports and stores nothing for the whole window: Sum 0, ALARM.
 * - No data in the whole evaluation range (a fresh deploy, a paused schedule, a stage that stopped
 *   reporting): `missing` makes the alarm INSUFFICIENT_DATA ("Configuring how CloudWatch alarms treat
 *   missing data"), which is also a new alarm's first state. Actions run only when the state changes
 *   ("An alarm invokes actions only when the alarm changes state", "Using Amazon CloudWatch alarms"),
 *   so a fresh deploy pages no one, while a stage that had data and then none goes OK -> INSUFFICIENT_DATA
 *   and pages through the alarm's insufficient-data action.
 * - A paused schedule (`scheduleEnabled: false`) also disables the alarm's actions (scheduledBackup.ts).
 * No FILL(): what it makes of a series with no data at all in the range is not documented, and this is
 * exactly the fresh-deploy case. One long period needs no filling: a sliding window of that length is
 * the question asked ("any success in the last N hours?"); alarms with periods of a minute or more are
 * evaluated every minute over Period x EvaluationPeriods ("Using Amazon CloudWatch alarms", evaluating an alarm).
 *
 * The drill-stale alarm asks the same of DrillSuccess (1 per passed drill, 0 per failed one) over
 * `drillStaleAfterHours`, with the same reasoning: a fresh deploy waits silently for its first drill, a
 * stage whose drills stop passing or stop reporting pages, and `drillEnabled: false` disables its
 * actions (scheduledBackup.ts). A failed drill alerts at once through the failure rules; this alarm is
 * for drills that stop happening at all, or keep failing after that first alert.
 */
export function staleBackupAlarmEvaluation(staleAfterHours: number): AlarmEvaluation {
  const e: AlarmEvaluation = {
    statistic: "Sum",
    period: staleAfterHours * 3600,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    threshold: 1,
    comparisonOperator: "LessThanThreshold",
    treatMissingData: "missing",
  };
  const problem = alarmEvaluationProblem(e);
  if (problem) throw new Error(`stale alarm for ${staleAfterHours} hours: ${problem}`);
  return e;
}

/**
 * The size-anomaly alarm's band: CloudWatch anomaly detection on BackupBytes, not a hand-made average.
 * CloudWatch trains a model of the metric's expected values on "up to two weeks of metric data",
 * with its trend and "hourly, daily, and weekly patterns", and an alarm may be made before there are two
 * weeks of data; the model "is specific to a metric and a statistic" ("Using CloudWatch anomaly
 * detection", CloudWatch User Guide, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Anomaly_Detection.html).
 * The alarm makes its own model: "If you delete the model without deleting the alarm, the alarm
 * automatically recreates the model" ("Creating a CloudWatch alarm based on anomaly detection",
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Anomaly_Detection_Alarm.html).
 * - `Minimum` over one hour: the smallest backup stored in that hour, so a stage that backs up more
 *   often than hourly cannot hide a small dump behind normal ones, and every schedule the config
 *   allows (hourly in prod, six-hourly in uat, working hours in dev) gives one point per run-hour, which
 *   the model's hourly, daily and weekly patterns fit. A day-long period would leave fourteen points in
 *   the two weeks the model trains on.
 * - Four standard deviations ("ANOMALY_DETECTION_BAND(m1, N)": "the number of standard deviations to use
 *   for the band", default 2, "Using metric math", metric math functions,
 *   https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html). The alarm
 *   pages, so it must mean "far below usual": with residuals spread normally, 2 puts about 2.3% of
 *   ordinary backups under the band (some seventeen pages a month for an hourly target), 3 about 0.13%
 *   (one a month), 4 about 0.003% (one in years). How the residuals of a real database's dump sizes
 *   spread is for AWS's model to learn: the number is the knob if a stage's live band proves too tight.
 */
export const backupSizeBand = { stat: "Minimum", period: 3600, standardDeviations: 4 } as const;

/** The band of `metricId` as the size alarm draws it; the dashboard shows the same expression. */
export function sizeBandExpression(metricId: string): string {
  return `ANOMALY_DETECTION_BAND(${metricId}, ${backupSizeBand.standardDeviations})`;
}

/** One entry of an alarm's metric math (aws.cloudwatch.MetricAlarm `metricQueries`). */
export interface MetricQuery {
  /** Starts with a lowercase letter; expressions refer to the query by it. */
  id: string;
  returnData: boolean;
  label?: string;
  expression?: string;
  metric?: { namespace: string; metricName: string; dimensions: Record<string, string>; stat: string; period: number };
}

/** An alarm on an anomaly detection band: the fields of aws.cloudwatch.MetricAlarm that decide its state. */
export interface AnomalyAlarmEvaluation {
  metricQueries: MetricQuery[];
  /** The id of the ANOMALY_DETECTION_BAND query. */
  thresholdMetricId: string;
  comparisonOperator: "LessThanLowerThreshold";
  evaluationPeriods: number;
  datapointsToAlarm: number;
  treatMissingData: AlarmEvaluation["treatMissingData"];
}

/**
 * ALARM when one target's latest stored backup is far smaller than its model expects: a dropped table,
 * a dump of the wrong (empty) database after a failover, a filter that excluded most of the data.
 * - The metric and the band both return data, as CloudWatch itself stores an anomaly detection alarm;
 *   `thresholdMetricId` names the band ("If this is an alarm based on an anomaly detection model, make
 *   this value match the ID of the ANOMALY_DETECTION_BAND function", PutMetricAlarm); no `threshold`,
 *   which is "not used for alarms based on anomaly detection models".
 * - One breaching point alarms: a single dump far below the band is worth a look, and the next normal
 *   one clears it (OK is sent too, so the page is closed by the next message).
 * - `ignore`: a period without a backup (between uat's six-hourly runs, dev's nights and weekends, a failed
 *   backup, which declares no size: image/src/log.ts) keeps the state the last backup set ("Configuring
 *   how CloudWatch alarms treat missing data"). `missing` would turn it INSUFFICIENT_DATA between runs,
 *   and `notBreaching` would clear an alarm before any normal backup had been stored. Silence itself is
 *   the stale-backup alarm's business.
 * - No action on INSUFFICIENT_DATA: it is the state before the first backup and while the model has
 *   nothing to say, not a failure.
 */
export function backupSizeAlarmEvaluation(namespace: string, metricName: string, dimensions: Record<string, string>): AnomalyAlarmEvaluation {
  const e: AnomalyAlarmEvaluation = {
    metricQueries: [
      { id: "size", returnData: true, label: "smallest backup of the hour (bytes)", metric: { namespace, metricName, dimensions, stat: backupSizeBand.stat, period: backupSizeBand.period } },
      { id: "band", returnData: true, label: "expected size (anomaly detection band)", expression: sizeBandExpression("size") },
    ],
    thresholdMetricId: "band",
    comparisonOperator: "LessThanLowerThreshold",
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: "ignore",
  };
  const problem = alarmEvaluationProblem({ period: backupSizeBand.period, evaluationPeriods: e.evaluationPeriods });
  if (problem) throw new Error(`size-anomaly alarm: ${problem}`);
  return e;
}

/**
 * The replica's lag alarm: ALARM when the copy in another region has been more than `maxLagSeconds`
 * behind the primary for 15 minutes. S3 publishes ReplicationLatency, "the maximum number of seconds by
 * which the replication destination bucket is behind the source bucket for a given replication rule", in
 * AWS/S3 by SourceBucket, DestinationBucket and RuleId, in the destination's region, once the rule turns
 * replication metrics on ("Using S3 Replication metrics", S3 User Guide,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/repl-metrics.html). Metrics alone, without S3
 * Replication Time Control: RTC adds a 15-minute SLA and its threshold events for a per-GB fee, and a
 * backup copy an hour late is no worse than the hourly schedule that made it.
 * - `Maximum` over 5 minutes: the worst lag of the rule in each period; three periods in a row above the
 *   threshold, so one large dump copying across the ocean does not page while it is still moving.
 * - An hour by default: prod backs up hourly, so a copy an hour behind misses one backup; the dumps are
 *   small enough to cross in minutes (README "A copy in another region").
 * - `missing`: S3 keeps publishing while nothing replicates, and stops when the destination bucket is
 *   gone (the same page, "Is this metric still published if the destination bucket is deleted? No"), so
 *   silence after data means the copy is gone or no longer measured: INSUFFICIENT_DATA, which pages by
 *   the alarm's insufficient-data action. A fresh deploy starts there and pages no one (no state change).
 */
export function replicationLagAlarmEvaluation(maxLagSeconds = 3600): AlarmEvaluation {
  const e: AlarmEvaluation = {
    statistic: "Maximum",
    period: 300,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    threshold: maxLagSeconds,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "missing",
  };
  const problem = alarmEvaluationProblem(e);
  if (problem) throw new Error(`replication lag alarm: ${problem}`);
  return e;
}

/** The replication rule's metric, as the lag alarm and the dashboard name it. */
export const replicationLatencyMetric = { namespace: "AWS/S3", metricName: "ReplicationLatency" } as const;

/** The dimensions S3 publishes a replication rule's metrics under ("Using S3 Replication metrics"). */
export function replicationDimensions(sourceBucket: string, destinationBucket: string, ruleId: string): Record<string, string> {
  return { SourceBucket: sourceBucket, DestinationBucket: destinationBucket, RuleId: ruleId };
}

/** The S3 event type of a failed replication, the only one the source bucket notifies. */
export const replicationFailureEvent = "s3:Replication:OperationFailedReplication";

/** A topic configuration of an S3 bucket notification (aws.s3.BucketNotification `topics`). */
export interface BucketTopicNotification {
  id: string;
  topicArn: string;
  events: string[];
}

/**
 * The source bucket's notification of each object S3 failed to replicate, to the stage's alert topic.
 * A refusal (the replication role, a KMS key, the replica's Object Lock) marks the object FAILED rather
 * than pending, so the lag alarm may never see it. S3 reports it as the event
 * `s3:Replication:OperationFailedReplication`, "when an object that was eligible for replication failed
 * to replicate", with a `failureReason` ("Amazon S3 replication failure reasons",
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-failure-codes.html), provided the rule
 * has replication metrics on ("To receive replication failure event notifications
 * (s3:Replication:OperationFailedReplication), you must enable S3 Replication metrics on your
 * replication rule. You do not need to enable S3 Replication Time Control": "Receiving replication
 * failure events with Amazon S3 Event Notifications",
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-metrics-events.html). The rule has them
 * for the lag alarm already.
 * - To SNS, not EventBridge: that page names SQS, SNS and Lambda as the ways to receive them, and the
 *   events S3 sends to EventBridge are object created, deleted, restored, tagged, ACL, storage class and
 *   access tier changes, with no replication event ("Amazon Simple Storage Service events", EventBridge
 *   events reference, https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-s3.html). Turning
 *   EventBridge on for the bucket (`eventbridge: true`) would send all of those, every backup's upload
 *   and every lifecycle expiry ("After EventBridge is enabled, all events below are sent to
 *   EventBridge", "Using EventBridge", S3 User Guide), and still not this one.
 * - The stage's topic, not the replica's: "The Amazon SNS topic must be in the same region as your
 *   Amazon S3 bucket", and the notification is the source bucket's ("Amazon S3 Event Notifications",
 *   supported destinations, https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-event-types-and-destinations.html).
 *   The topic policy lets S3 publish for this bucket and account only (policies.ts alertTopicPolicy).
 * - S3 publishes its own JSON (no transformer): a `Records` list whose record names the object
 *   (`s3.object.key`) and `replicationEventData.failureReason`. It checks the destination when the
 *   configuration is set, by publishing an `s3:TestEvent` message ("to ensure that the topic exists and
 *   that the bucket owner has permission to publish"), so a topic policy that refuses S3 fails the
 *   deploy rather than the first failure's alert.
 */
export function replicationFailureNotification(topicArn: string): BucketTopicNotification {
  return { id: "replication-failed", topicArn, events: [replicationFailureEvent] };
}
