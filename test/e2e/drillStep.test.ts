/**
 * The restore drill step of `npm run test:aws` (scripts/lib/e2e.ts), without AWS: the tasks the run
 * starts and where their logs are, reading the verifier's run-task command, what a stopped task and a
 * drill record must show, and the DrillSuccess query. The records are made by the runner's own
 * drillRecord, so a change to the record's shape reaches these checks.
 */

import { containerName, drillContainerName } from "../../components/taskDefinition";
import { backupMetrics, drillMetrics, metricDimensions, metricNamespace } from "../../image/src/contract";
import { drillRecord, type DrillOutcome } from "../../image/src/drill";
import { backupKey, drillKey } from "../../image/src/keys";
import {
  drillRecordProblems,
  e2eStackName,
  e2eTargetNames,
  e2eTasks,
  latestDrillRecordKey,
  missingMetric,
  parseRunTaskCommand,
  successMetric,
  taskFailure,
  taskLogsCommand,
  type E2eTargets,
} from "../../scripts/lib/e2e";

const stage = e2eStackName(new Date("2026-11-30T06:00:00Z"), "0f0f");
const tasks = e2eTasks(stage);
const taskArn = "arn:aws:ecs:ap-southeast-1:123456789012:task/db-backup-e2e-cluster-1a2b3c4/0123456789abcdef0123456789abcdef";

describe("the tasks a run starts", () => {
  it("are the backup, then the restore drill, each from its own output, container and log prefix", () => {
    expect(tasks.backup).toMatchObject({ output: "runTaskCommand", container: containerName, streamPrefix: stage, metric: backupMetrics.success });
    expect(tasks.drill).toMatchObject({ output: "drillRunTaskCommand", container: drillContainerName, streamPrefix: `${stage}-drill`, metric: drillMetrics.success });
    expect(Object.keys(tasks)).toEqual(["backup", "drill"]);
  });

  it("point at the task's own log stream", () => {
    expect(taskLogsCommand(tasks.drill, taskArn, "/db-backup/e2e", "ap-southeast-1")).toBe(
      `aws logs tail /db-backup/e2e --region ap-southeast-1 --log-stream-names ${stage}-drill/drill/0123456789abcdef0123456789abcdef`,
    );
    expect(taskLogsCommand(tasks.backup, taskArn, "/db-backup/e2e", "ap-southeast-1")).toMatch(new RegExp(`--log-stream-names ${stage}/backup/0123456789abcdef0123456789abcdef$`));
  });

  it("restore every target the stack backs up", () => {
    const targets: E2eTargets = { region: "ap-southeast-1", postgres: { host: "h", port: 5432, database: "app", user: "u" } };
    expect(e2eTargetNames(targets)).toEqual([{ engine: "postgres", name: "pg" }]);
    expect(e2eTargetNames({ ...targets, mongodb: {} })).toEqual([{ engine: "postgres", name: "pg" }, { engine: "mongodb", name: "mongo" }]);
  });
});

it("reads the verifier's run-task command like the backup's", () => {
  const command =
    "aws ecs run-task --region ap-southeast-1 --cluster db-backup-e2e-cluster-1a2b3c4 --task-definition arn:aws:ecs:ap-southeast-1:123456789012:task-definition/db-backup-e2e-drill:1 " +
    "--launch-type FARGATE --count 1 --network-configuration 'awsvpcConfiguration={subnets=[subnet-0a],securityGroups=[sg-0c],assignPublicIp=ENABLED}'";
  expect(parseRunTaskCommand(command)).toEqual({
    region: "ap-southeast-1",
    cluster: "db-backup-e2e-cluster-1a2b3c4",
    taskDefinition: "arn:aws:ecs:ap-southeast-1:123456789012:task-definition/db-backup-e2e-drill:1",
    subnets: ["subnet-0a"],
    securityGroups: ["sg-0c"],
    assignPublicIp: "ENABLED",
  });
  expect(() => parseRunTaskCommand(command.replace("--task-definition", "--task"))).toThrow(/no --task-definition/);
});

describe("a stopped task", () => {
  const logs = taskLogsCommand(tasks.drill, taskArn, "/db-backup/e2e", "ap-southeast-1");

  it("passes with exit code 0 only", () => {
    expect(taskFailure(tasks.drill, { taskArn, exitCode: 0, stopCode: "EssentialContainerExited" }, logs)).toBeUndefined();
  });

  it("fails naming the task, its container, its exit code, ECS's reasons and its log stream", () => {
    const failure = taskFailure(tasks.drill, { taskArn, exitCode: 1, stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" }, logs)!;
    expect(failure).toMatch(/^the restore drill task's drill container ended with exit code 1 \(EssentialContainerExited; Essential container in task exited\)/);
    expect(failure).toContain(`logs: ${logs}`);
  });

  it("fails when the container never ran (no exit code)", () => {
    const failure = taskFailure(tasks.drill, { taskArn, stopCode: "TaskFailedToStart", stoppedReason: "ResourceInitializationError: unable to pull secrets or registry auth" }, logs)!;
    expect(failure).toMatch(/exit code \(none: the container never ran\) \(TaskFailedToStart; ResourceInitializationError/);
  });
});

describe("the drill record", () => {
  const backup = backupKey(stage, "postgres", "pg", new Date("2026-11-30T06:01:00Z"));
  const drilledAt = new Date("2026-11-30T06:10:00Z");
  const key = drillKey(stage, "pg", drilledAt);
  const outcome = (o: Partial<DrillOutcome>): DrillOutcome => ({
    stage,
    target: "pg",
    engine: "postgres",
    ref: { stage, engine: "postgres", name: "pg", key: backup, time: new Date("2026-11-30T06:01:00Z"), encrypted: false },
    drilledAt,
    downloadSeconds: 2,
    restoreOnlySeconds: 5,
    restore: { counts: { "public.orders": 120, "public.customers": 0 }, sizes: { public: 81920 }, serverVersion: "18.1" },
    problems: [],
    ...o,
  });

  it("is the newest record of the target, under <stage>/drills/<target>/", () => {
    const keys = [
      drillKey(stage, "pg", new Date("2026-11-30T06:05:00Z")),
      key,
      drillKey(stage, "pgx", new Date("2026-11-30T07:00:00Z")),
      drillKey("dev", "pg", new Date("2026-11-30T08:00:00Z")),
      `${stage}/drills/pg/notes.txt`,
      backup,
    ];
    expect(latestDrillRecordKey(keys, stage, "pg")).toBe(key);
    expect(latestDrillRecordKey(keys, stage, "mongo")).toBeUndefined();
  });

  it("proves the restore when it passed, on this run's backup, with rows counted", () => {
    expect(drillRecordProblems(JSON.parse(JSON.stringify(drillRecord(outcome({})))), key, backup)).toEqual([]);
  });

  it("fails a drill that failed, saying why the drill said it failed", () => {
    const record = drillRecord(outcome({ problems: ["table public.orders lost 90% of its rows (120 → 12) since the previous drill"] }));
    expect(record.success).toBe(false);
    expect(drillRecordProblems(record, key, backup)).toEqual([`${key} says the drill failed (success: false): table public.orders lost 90% of its rows (120 → 12) since the previous drill`]);
    const notRestored = drillRecord(outcome({ restore: undefined, restoreOnlySeconds: undefined, problems: ["initdb failed: could not create shared memory segment"] }));
    expect(drillRecordProblems(notRestored, key, backup).join("\n")).toMatch(/says the drill failed \(success: false\): initdb failed[\s\S]*counted no table or collection/);
  });

  it("fails a drill that restored an empty database: it proves nothing", () => {
    const problems = drillRecordProblems(drillRecord(outcome({ restore: { counts: {}, sizes: {}, serverVersion: "18.1" } })), key, backup);
    expect(problems).toEqual([`${key} counted no table or collection (counts: {}): the restored database was empty, so the drill proves nothing; give E2E_PG_DATABASE at least one table`]);
    const { counts: _counts, ...withoutCounts } = drillRecord(outcome({}));
    expect(drillRecordProblems(withoutCounts, key, backup)).toEqual([`${key} counted no table or collection (counts: undefined): the restored database was empty, so the drill proves nothing; give E2E_PG_DATABASE at least one table`]);
  });

  it("fails a record of another backup, counts that are not row counts, and what is not a record", () => {
    const other = backupKey(stage, "postgres", "pg", new Date("2026-11-29T06:01:00Z"));
    expect(drillRecordProblems(drillRecord(outcome({})), key, other)).toEqual([`${key} drilled "${backup}", not this run's backup ${other}`]);
    expect(drillRecordProblems({ ...drillRecord(outcome({})), counts: { "public.orders": "120" } }, key, backup)).toEqual([`${key} has counts that are not row counts: {"public.orders":"120"}`]);
    expect(drillRecordProblems(null, key, backup)).toEqual([`${key} is not a drill record (a JSON object)`]);
  });
});

describe("the success metrics", () => {
  it("query the drill's metric by the contract's namespace and dimensions", () => {
    expect(successMetric(drillMetrics.success, stage, "pg")).toEqual({
      Namespace: metricNamespace,
      MetricName: "DrillSuccess",
      Dimensions: [{ Name: "Stage", Value: stage }, { Name: "Target", Value: "pg" }],
    });
    expect(successMetric(backupMetrics.success, stage, "pg").MetricName).toBe("BackupSuccess");
    expect(successMetric(drillMetrics.success, stage, "pg").Dimensions.map((d) => d.Name)).toEqual([...metricDimensions]);
  });

  it("pass at Sum >= 1; a missing datapoint names the alarm it would set off, a 0 the failure, both the log stream", () => {
    const query = successMetric(tasks.drill.metric, stage, "pg");
    const logs = taskLogsCommand(tasks.drill, taskArn, "/db-backup/e2e", "ap-southeast-1");
    expect(missingMetric(tasks.drill, query, 1, 600, logs)).toBeUndefined();
    expect(missingMetric(tasks.drill, query, undefined, 600, logs)).toBe(
      `DbBackup/DrillSuccess for Stage=${stage}, Target=pg: no datapoint within 10 min: CloudWatch did not extract the restore drill's embedded metric, so the stale-drill alarm would fire\nlogs: ${logs}`,
    );
    expect(missingMetric(tasks.drill, query, 0, 600, logs)).toMatch(/^DbBackup\/DrillSuccess for .*: Sum 0, not >= 1: the restore drill's summary line reported a failure\nlogs: /);
  });
});
