/**
 * The e2e test starts the backup task with the settings in the stack's `runTaskCommand` output and the
 * verifier task with those in `drillRunTaskCommand`. Here those outputs come from the program itself
 * (index.ts under the offline synth) for the config the e2e test sets, so a change to the commands'
 * shape, a task's container name or its log stream prefix fails here, not on AWS.
 */

import { project } from "../../components/config";
import { backupMetrics, drillMetrics } from "../../image/src/contract";
import { e2eStackConfig, e2eStackName, e2eTasks, parseImageRef, parseRunTaskCommand, postgresTargetName, successMetric } from "../../scripts/lib/e2e";

it("parses the runTaskCommand the program exports for an e2e stack", async () => {
  const stage = e2eStackName(new Date("2026-11-30T06:00:00Z"), "0f0f");
  const { plain } = e2eStackConfig({ region: "ap-southeast-1", postgres: { host: "db.example.com", port: 5432, database: "app", user: "backup" }, mongodb: {} });
  const { synthesize } = await import("../../scripts/lib/synth");
  const graph = await synthesize(stage, plain);

  const settings = parseRunTaskCommand(graph.outputs.runTaskCommand as string);
  const one = (type: string, name?: string) => {
    const found = graph.resources.filter((r) => r.type === type && (name === undefined || r.name === name));
    expect(found).toHaveLength(1);
    return found[0];
  };
  const schedule = one("aws:scheduler/schedule:Schedule", `db-backup-${stage}-schedule`).inputs as { target: { ecsParameters: { networkConfiguration: { subnets: string[]; securityGroups: string[]; assignPublicIp: boolean } } } };
  const network = schedule.target.ecsParameters.networkConfiguration;

  expect(settings.region).toBe("ap-southeast-1");
  expect(settings.cluster).toBe(graph.outputs.clusterName);
  expect(settings.taskDefinition).toBe(graph.outputs.taskDefinitionArn);
  // The same network the schedule starts the task in.
  expect(settings.subnets).toEqual(network.subnets);
  expect(settings.subnets.length).toBeGreaterThan(0);
  expect(settings.securityGroups).toEqual(network.securityGroups);
  expect(settings.securityGroups).toEqual([one("aws:ec2/securityGroup:SecurityGroup").outputs.id]);
  expect(settings.assignPublicIp).toBe(network.assignPublicIp ? "ENABLED" : "DISABLED");
  expect(one("aws:scheduler/schedule:Schedule", `db-backup-${stage}-schedule`).inputs.state).toBe("DISABLED");
  expect(plain[`${project}:scheduleEnabled`]).toBe("false");
  // Nor does a restore drill start on its own in a stack that lives for one test.
  expect(one("aws:scheduler/schedule:Schedule", `db-backup-${stage}-drill-schedule`).inputs.state).toBe("DISABLED");

  // Each task the run starts: its output's command names its own task definition, in the same network,
  // whose one container is the one whose exit code the run reads, logging under the prefix the run names.
  const tasks = e2eTasks(stage);
  expect(Object.values(tasks).map((t) => t.output)).toEqual(["runTaskCommand", "drillRunTaskCommand"]);
  const taskDefinitions = new Set<string>();
  for (const task of Object.values(tasks)) {
    const s = parseRunTaskCommand(graph.outputs[task.output] as string);
    expect({ ...s, taskDefinition: undefined }).toEqual({ ...settings, taskDefinition: undefined });
    taskDefinitions.add(s.taskDefinition);
    const definition = graph.resources.find((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition" && r.outputs.arn === s.taskDefinition)!;
    const containers = JSON.parse(definition.inputs.containerDefinitions as string) as { name: string; logConfiguration: { options: Record<string, string> } }[];
    expect(containers.map((c) => c.name)).toEqual([task.container]);
    expect(containers[0].logConfiguration.options["awslogs-stream-prefix"]).toBe(task.streamPrefix);
  }
  expect(taskDefinitions.size).toBe(2);
  expect(parseRunTaskCommand(graph.outputs.drillRunTaskCommand as string).taskDefinition).toBe(graph.outputs.drillTaskDefinitionArn);
}, 60000);

it("looks for the metrics the stack's stale-backup and stale-drill alarms watch, in the repository the stack pushed to", async () => {
  const stage = e2eStackName(new Date("2026-11-30T06:00:00Z"), "0f0f");
  const { plain } = e2eStackConfig({ region: "ap-southeast-1", postgres: { host: "db.example.com", port: 5432, database: "app", user: "backup" } });
  jest.resetModules(); // the program registers its resources once per module registry
  const { synthesize } = await import("../../scripts/lib/synth");
  const graph = await synthesize(stage, plain);

  const tasks = e2eTasks(stage);
  expect([tasks.backup.metric, tasks.drill.metric]).toEqual([backupMetrics.success, drillMetrics.success]);
  for (const task of [tasks.backup, tasks.drill]) {
    const query = successMetric(task.metric, stage, postgresTargetName);
    const alarms = graph.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm" && r.inputs.metricName === task.metric);
    expect(alarms).toHaveLength(1);
    expect({ namespace: alarms[0].inputs.namespace, metricName: alarms[0].inputs.metricName, dimensions: alarms[0].inputs.dimensions }).toEqual({
      namespace: query.Namespace,
      metricName: query.MetricName,
      dimensions: Object.fromEntries(query.Dimensions.map((d) => [d.Name, d.Value])),
    });
  }
  const repository = graph.resources.find((r) => r.type === "aws:ecr/repository:Repository")!;
  expect(parseImageRef(graph.outputs.imageRef as string)).toEqual({
    registry: (repository.outputs.repositoryUrl as string).split("/")[0],
    repository: repository.outputs.name,
    digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
  });
  expect(() => parseImageRef("db-backup:latest")).toThrow(/not an image reference pinned by digest/);
}, 60000);
