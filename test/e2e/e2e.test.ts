/**
 * The pure parts of `npm run test:aws` (scripts/lib/e2e.ts): the stack's name and config (checked by the
 * stack's own schema), the leftovers a killed run leaves, the backups a run must find, and its needs.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseStackConfig, project, secretKeyOf } from "../../components/config";
import {
  completeBackups,
  deletionBatches,
  describeNeeds,
  dockerfilePgMajor,
  e2eStackConfig,
  e2eStackName,
  e2eStackPattern,
  e2eStackStartedAt,
  leftoverStackFiles,
  leftoverStacks,
  parseRunTaskCommand,
  postgresMajor,
  readE2eEnv,
  stateOutputs,
  taggedLeftovers,
  taskWaitSeconds,
  type E2eTargets,
} from "../../scripts/lib/e2e";

const hour = 3600 * 1000;
const now = new Date("2026-11-30T06:00:00Z");

describe("the stack's name", () => {
  it("is a stage name the stack accepts, and carries its start time", () => {
    const name = e2eStackName(now, "3fa9");
    expect(name).toMatch(/^e2e-[0-9a-z]+-3fa9$/);
    // The stack's own rule: it names resources and S3 keys.
    expect(() => parseStackConfig({ get: (k) => ({ targets: '[{"name":"a","engine":"mongodb"}]', schedule: "rate(1 day)" })[k as "targets"] }, name)).not.toThrow();
    expect(e2eStackStartedAt(name)).toEqual(now);
  });

  it("stays within 20 characters for the rest of the century", () => {
    expect(e2eStackName(new Date("2099-12-31T23:59:59Z"), "ffff").length).toBeLessThanOrEqual(20);
  });

  it("two runs in the same second still differ", () => {
    expect(e2eStackName(now, "0001")).not.toBe(e2eStackName(now, "0002"));
  });
});

describe("what a killed run left", () => {
  const old = e2eStackName(new Date(now.getTime() - 4 * hour), "aaaa");
  const young = e2eStackName(new Date(now.getTime() - 10 * 60 * 1000), "bbbb");

  it("takes e2e stacks older than the limit, never a young one, a stage or a hand-made e2e stack", () => {
    expect(leftoverStacks([old, young, "dev", "prod", "e2e-mine", "e2e"], now, 3 * hour)).toEqual([old]);
  });

  it("takes the stack files of old e2e stacks only", () => {
    expect(leftoverStackFiles(["Pulumi.yaml", "Pulumi.dev.yaml", `Pulumi.${old}.yaml`, `Pulumi.${young}.yaml`, "README.md"], now, 3 * hour)).toEqual([`Pulumi.${old}.yaml`]);
  });

  it("reports resources tagged by other e2e stages, not by real stages or the current run", () => {
    const tagged = (arn: string, stage?: string) => ({ ResourceARN: arn, Tags: stage ? [{ Key: "other", Value: "x" }, { Key: "db-backup:stage", Value: stage }] : [] });
    expect(
      taggedLeftovers([tagged("arn:b", old), tagged("arn:dev", "dev"), tagged("arn:mine", young), tagged("arn:a", old), tagged("arn:untagged")], young),
    ).toEqual([
      { arn: "arn:a", stage: old },
      { arn: "arn:b", stage: old },
    ]);
  });
});

describe("the E2E_* variables", () => {
  const full = { E2E_PG_HOST: "db.example.com", E2E_PG_DATABASE: "app", E2E_PG_USER: "backup", E2E_PG_PASSWORD: "pw", AWS_REGION: "ap-southeast-1" };

  it("names every missing one", () => {
    const { targets, needs } = readE2eEnv({});
    expect(targets).toBeUndefined();
    expect(needs.map((n) => n.what)).toEqual(["E2E_PG_HOST", "E2E_PG_DATABASE", "E2E_PG_USER", "E2E_PG_PASSWORD", "AWS_REGION"]);
  });

  it("refuses a bad port or Neon endpoint, saying which", () => {
    expect(readE2eEnv({ ...full, E2E_PG_PORT: "70000" }).needs.map((n) => n.what)).toEqual(["E2E_PG_PORT"]);
    expect(readE2eEnv({ ...full, E2E_NEON_ENDPOINT: "endpoint=ep-x" }).needs.map((n) => n.what)).toEqual(["E2E_NEON_ENDPOINT"]);
  });

  it("reads the targets, MongoDB only with a URI", () => {
    expect(readE2eEnv(full).targets).toEqual({
      region: "ap-southeast-1",
      postgres: { host: "db.example.com", port: 5432, database: "app", user: "backup", neonEndpoint: undefined, sslmode: undefined },
      mongodb: undefined,
    });
    expect(readE2eEnv({ ...full, AWS_REGION: "", AWS_DEFAULT_REGION: "eu-west-1", E2E_PG_PORT: "6543", E2E_MONGODB_URI: "mongodb+srv://x" }).targets).toMatchObject({
      region: "eu-west-1",
      postgres: { port: 6543 },
      mongodb: { database: undefined },
    });
  });
});

describe("the stack's config", () => {
  const targets: E2eTargets = {
    region: "ap-southeast-1",
    postgres: { host: "ep-aged-morning-26453078.ap-southeast-1.aws.neon.tech", port: 5432, database: "app", user: "backup", neonEndpoint: "ep-aged-morning-26453078" },
    mongodb: { database: "events" },
  };
  const { plain, secrets } = e2eStackConfig(targets);
  const parsed = parseStackConfig({ get: (key) => plain[`${project}:${key}`] }, "e2e-abc123-0f0f");

  it("is valid for the stack's schema, as `pulumi up` reads it", () => {
    expect(plain["aws:region"]).toBe("ap-southeast-1");
    expect(parsed.targets).toEqual([
      { engine: "postgres", name: "pg", host: targets.postgres.host, port: 5432, database: "app", user: "backup", neonEndpoint: "ep-aged-morning-26453078", sslmode: "require", compression: undefined },
      { engine: "mongodb", name: "mongo", database: "events" },
    ]);
  });

  it("never runs on its own, and keeps nothing longer than a day", () => {
    expect(parsed).toMatchObject({ scheduleEnabled: false, retryAttempts: 0, backupRetentionDays: 1, noncurrentRetentionDays: 1, logRetentionDays: 1, cpu: 256, memory: 512 });
    // A hung dump is stopped and reported by the runner before the test stops waiting for the task.
    expect(parsed.targetTimeoutMinutes * 60).toBeLessThan(taskWaitSeconds / 1.5);
  });

  it("sets each target's secret under the key the program requires, and no secret in plain config", () => {
    expect(secrets.map((s) => s.key)).toEqual(parsed.targets.map((t) => `${project}:${secretKeyOf(t)}`));
    expect(secrets.map((s) => s.env)).toEqual(["E2E_PG_PASSWORD", "E2E_MONGODB_URI"]);
    expect(Object.keys(plain).filter((k) => /password|uri/i.test(k))).toEqual([]);
  });

  it("has one target without a MongoDB URI", () => {
    const one = e2eStackConfig({ ...targets, mongodb: undefined });
    expect(JSON.parse(one.plain[`${project}:targets`])).toHaveLength(1);
    expect(one.secrets.map((s) => s.key)).toEqual([`${project}:pg-password`]);
  });
});

describe("runTaskCommand", () => {
  const command =
    "aws ecs run-task --region ap-southeast-1 --cluster db-backup-e2e-cluster-1a2b3c4 --task-definition arn:aws:ecs:ap-southeast-1:123456789012:task-definition/db-backup-e2e:3 " +
    "--launch-type FARGATE --count 1 --network-configuration 'awsvpcConfiguration={subnets=[subnet-0a,subnet-0b],securityGroups=[sg-0c],assignPublicIp=ENABLED}'";

  it("gives RunTask's settings", () => {
    expect(parseRunTaskCommand(command)).toEqual({
      region: "ap-southeast-1",
      cluster: "db-backup-e2e-cluster-1a2b3c4",
      taskDefinition: "arn:aws:ecs:ap-southeast-1:123456789012:task-definition/db-backup-e2e:3",
      subnets: ["subnet-0a", "subnet-0b"],
      securityGroups: ["sg-0c"],
      assignPublicIp: "ENABLED",
    });
  });

  it("refuses a command it cannot read fully, naming the part", () => {
    expect(() => parseRunTaskCommand(command.replace("--cluster", "--clusterx"))).toThrow(/no --cluster/);
    expect(() => parseRunTaskCommand(command.replace("subnet-0a,subnet-0b", ""))).toThrow(/no subnet/);
    expect(() => parseRunTaskCommand(command.replace("assignPublicIp=ENABLED", "assignPublicIp=MAYBE"))).toThrow(/network-configuration/);
  });
});

describe("the backups a run must leave", () => {
  const stage = "e2e-abc123-0f0f";
  it("are data objects with their manifest, of this stage and target", () => {
    const keys = [
      `${stage}/postgres/pg/2026-11-30T06-00-00Z.dump`,
      `${stage}/postgres/pg/2026-11-30T06-00-00Z.dump.manifest.json`,
      `${stage}/postgres/pg/2026-11-30T07-00-00Z.dump`, // no manifest: incomplete
      `${stage}/postgres/pg/2026-11-30T08-00-00Z.dump.manifest.json`, // manifest without data
      `${stage}/postgres/other/2026-11-30T06-00-00Z.dump`,
      `${stage}/postgres/other/2026-11-30T06-00-00Z.dump.manifest.json`,
      `dev/postgres/pg/2026-11-30T06-00-00Z.dump`,
      `dev/postgres/pg/2026-11-30T06-00-00Z.dump.manifest.json`,
      `${stage}/mongodb/mongo/2026-11-30T06-00-00Z.archive.gz`,
      `${stage}/mongodb/mongo/2026-11-30T06-00-00Z.archive.gz.manifest.json`,
    ];
    expect(completeBackups(keys, stage, "postgres", "pg")).toEqual([`${stage}/postgres/pg/2026-11-30T06-00-00Z.dump`]);
    expect(completeBackups(keys, stage, "mongodb", "mongo")).toEqual([`${stage}/mongodb/mongo/2026-11-30T06-00-00Z.archive.gz`]);
    expect(completeBackups(keys.slice(2, 4), stage, "postgres", "pg")).toEqual([]);
  });
});

it("deletes in batches of at most 1,000 keys (S3's DeleteObjects limit)", () => {
  const batches = deletionBatches(Array.from({ length: 2500 }, (_, i) => i));
  expect(batches.map((b) => b.length)).toEqual([1000, 1000, 500]);
  expect(batches.flat()).toEqual(Array.from({ length: 2500 }, (_, i) => i));
  expect(deletionBatches([])).toEqual([]);
});

it("finds the bucket and repository in a stack's exported state", () => {
  const state = {
    version: 3,
    deployment: {
      resources: [
        { type: "pulumi:pulumi:Stack", outputs: {} },
        { type: "aws:s3/bucket:Bucket", outputs: { bucket: "db-backup-e2e-backups-1234567" } },
        { type: "aws:ecr/repository:Repository", outputs: { name: "db-backup-e2e-image-89abcde" } },
        { type: "aws:s3/bucket:Bucket" }, // a pending create: no outputs yet
      ],
    },
  };
  expect(stateOutputs(state, "aws:s3/bucket:Bucket", "bucket")).toEqual(["db-backup-e2e-backups-1234567"]);
  expect(stateOutputs(state, "aws:ecr/repository:Repository", "name")).toEqual(["db-backup-e2e-image-89abcde"]);
  expect(stateOutputs({}, "aws:s3/bucket:Bucket", "bucket")).toEqual([]);
});

describe("pg_restore's version against the image's", () => {
  it("reads the major of a client's --version", () => {
    expect(postgresMajor("pg_restore (PostgreSQL) 18.1 (Debian 18.1-1.pgdg120+2)\n")).toBe(18);
    expect(postgresMajor("pg_restore (PostgreSQL) 15.14\n")).toBe(15);
    expect(postgresMajor("command not found")).toBeUndefined();
  });

  it("reads PG_MAJOR from the image's Dockerfile", () => {
    const dockerfile = readFileSync(join(__dirname, "../../image/Dockerfile"), "utf8");
    const major = dockerfilePgMajor(dockerfile);
    expect(major).toBeGreaterThanOrEqual(16);
    expect(dockerfile).toContain(`ARG PG_MAJOR=${major}\n`);
    expect(dockerfilePgMajor("FROM debian\n")).toBeUndefined();
  });
});

it("says what it needs, one line each", () => {
  const text = describeNeeds([
    { what: "E2E_PG_HOST", how: "the host" },
    { what: "pulumi", how: "install it" },
  ]);
  expect(text).toMatch(/^ {2}E2E_PG_HOST {2}the host$/m);
  expect(text).toMatch(/^ {2}pulumi {7}install it$/m);
  expect(text).toContain("Proving it on AWS");
});

it("the stack name pattern is anchored", () => {
  expect(e2eStackPattern.test(`x${e2eStackName(now, "abcd")}`)).toBe(false);
});
