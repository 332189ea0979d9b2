/**
 * The e2e test starts the task with the settings in the stack's `runTaskCommand` output. Here that
 * output comes from the program itself (index.ts under the offline synth) for the config the e2e test
 * sets, so a change to the command's shape fails here, not on AWS.
 */

import { project } from "../../components/config";
import { backupSuccessMetric, e2eStackConfig, e2eStackName, parseImageRef, parseRunTaskCommand, postgresTargetName } from "../../scripts/lib/e2e";

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
}, 60000);

it("looks for the metric the stack's stale-backup alarm watches, in the repository the stack pushed to", async () => {
  const stage = e2eStackName(new Date("2026-11-30T06:00:00Z"), "0f0f");
  const { plain } = e2eStackConfig({ region: "ap-southeast-1", postgres: { host: "db.example.com", port: 5432, database: "app", user: "backup" } });
  jest.resetModules(); // the program registers its resources once per module registry
  const { synthesize } = await import("../../scripts/lib/synth");
  const graph = await synthesize(stage, plain);

  const alarm = graph.resources.find((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm" && (r.inputs.dimensions as Record<string, string> | undefined)?.Target === postgresTargetName)!;
  const query = backupSuccessMetric(stage, postgresTargetName);
  expect({ namespace: alarm.inputs.namespace, metricName: alarm.inputs.metricName, dimensions: alarm.inputs.dimensions }).toEqual({
    namespace: query.Namespace,
    metricName: query.MetricName,
    dimensions: Object.fromEntries(query.Dimensions.map((d) => [d.Name, d.Value])),
  });
  const repository = graph.resources.find((r) => r.type === "aws:ecr/repository:Repository")!;
  expect(parseImageRef(graph.outputs.imageRef as string)).toEqual({
    registry: (repository.outputs.repositoryUrl as string).split("/")[0],
    repository: repository.outputs.name,
    digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
  });
  expect(() => parseImageRef("db-backup:latest")).toThrow(/not an image reference pinned by digest/);
}, 60000);
