import { parseStackConfig, scheduleProblem, secretKeyOf, targetTaskSize, type ConfigSource } from "../../components/config";
import { runnerTargets } from "../../components/taskDefinition";
import { parseTargets } from "../../image/src/settings";

const base: Record<string, string> = {
  targets: JSON.stringify([
    { name: "app", engine: "postgres", host: "ep-x.neon.tech", database: "app", user: "backup", neonEndpoint: "ep-aged-morning-26453078" },
    { name: "events", engine: "mongodb", database: "events" },
  ]),
  schedule: "rate(1 hour)",
};
const source = (over: Record<string, string | undefined> = {}): ConfigSource => {
  const values = { ...base, ...over };
  return { get: (key) => values[key] };
};

it("applies the documented defaults", () => {
  const c = parseStackConfig(source(), "dev");
  expect(c).toMatchObject({
    stage: "dev",
    schedule: "rate(1 hour)",
    scheduleTimezone: "UTC",
    scheduleEnabled: true,
    retryAttempts: 2,
    retryWindowSeconds: 3600,
    backupRetentionDays: 30,
    noncurrentRetentionDays: 7,
    logRetentionDays: 30,
    cpu: 512,
    memory: 1024,
    ephemeralStorageGiB: 20,
    architecture: "amd64",
    isolation: "per-stage",
    containerInsights: false,
    kmsEncryption: false,
    staleAfterHours: 26,
    assignPublicIp: true,
    imagesToKeep: 10,
    targetTimeoutMinutes: 360,
    drillEnabled: true,
    drillSchedule: "cron(0 6 * * ? *)",
    drillCpu: 1024,
    drillMemory: 4096,
    drillEphemeralStorageGiB: 50,
    drillStaleAfterHours: 50,
    drillMaxRowLossPercent: 10,
  });
  expect(c.targets[0]).toMatchObject({ port: 5432, sslmode: "require" });
  expect(c.targets.map(secretKeyOf)).toEqual(["app-password", "events-uri"]);
});

it("hands a target's sslrootcert to the runner, which reads it back as it was configured", () => {
  const c = parseStackConfig(source({ targets: '[{"name":"app","engine":"postgres","host":"h","user":"u","database":"d","sslmode":"verify-full","sslrootcert":"system"}]' }), "dev");
  const env = { BACKUP_TARGETS: JSON.stringify(runnerTargets(c.targets)), PG_PASSWORD_APP: "x" };
  expect(parseTargets(env)).toEqual([expect.objectContaining({ name: "app", sslmode: "verify-full", sslrootcert: "system" })]);
});

it("hands a MongoDB target's pointInTime to the runner, which reads it back as it was configured", () => {
  const c = parseStackConfig(source({ targets: '[{"name":"events","engine":"mongodb","pointInTime":false},{"name":"all","engine":"mongodb"}]' }), "dev");
  const env = { BACKUP_TARGETS: JSON.stringify(runnerTargets(c.targets)), MONGO_URI_EVENTS: "x", MONGO_URI_ALL: "y" };
  expect(parseTargets(env)).toEqual([
    { engine: "mongodb", name: "events", uriEnv: "MONGO_URI_EVENTS", pointInTime: false },
    { engine: "mongodb", name: "all", uriEnv: "MONGO_URI_ALL" },
  ]);
});

it("takes the KMS key of an existing bucket", () => {
  const keyArn = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
  expect(parseStackConfig(source({ bucketName: "acme-db-backups", bucketKmsKeyArn: keyArn }), "prod")).toMatchObject({ bucketName: "acme-db-backups", bucketKmsKeyArn: keyArn, kmsEncryption: false });
  expect(parseStackConfig(source({ bucketName: "acme-db-backups" }), "prod").bucketKmsKeyArn).toBeUndefined();
});

it("private subnets turn the public IP off by default", () => {
  const c = parseStackConfig(source({ vpcId: "vpc-1", subnetIds: '["subnet-0abc", "subnet-0def"]' }), "prod");
  expect(c).toMatchObject({ vpcId: "vpc-1", subnetIds: ["subnet-0abc", "subnet-0def"], assignPublicIp: false });
});

it.each([
  ["rate(1 hour)", undefined],
  ["rate(5 minutes)", undefined],
  ["cron(0 3 * * ? *)", undefined],
  ["cron(0 9-18 ? * MON-FRI *)", undefined],
  ["every hour", /is not a rate\(\.\.\.\) or cron\(\.\.\.\) expression/],
  ["rate(1 hours)", /must say hour/],
  ["rate(2 hour)", /must say hours/],
  ["cron(0 3 * * *)", /is not a rate/],
  ["cron(0 3 * * MON *)", /must use '\?'/],
])("schedule %s", (expression, problem) => {
  if (problem) expect(scheduleProblem(expression)).toMatch(problem);
  else expect(scheduleProblem(expression)).toBeUndefined();
});

it.each([
  [{ schedule: "every hour" }, "db-backup:schedule: 'every hour' is not a rate(...) or cron(...) expression"],
  [{ schedule: undefined }, "db-backup:schedule: is missing"],
  [{ scheduleTimezone: "UTC+8" }, "db-backup:scheduleTimezone: 'UTC+8' is not an IANA time zone"],
  [{ targets: undefined }, "db-backup:targets: must be a list of at least one database"],
  [{ targets: "[]" }, "db-backup:targets: must be a list"],
  [{ targets: '[{"name":"App","engine":"postgres"}]' }, "db-backup:targets[0]: name 'App' must start with a letter"],
  [{ targets: '[{"name":"a","engine":"mysql"}]' }, "db-backup:targets[0]: engine 'mysql' is not supported"],
  [{ targets: '[{"name":"a","engine":"postgres","host":"h","user":"u"}]' }, "db-backup:targets[0]: 'database' is missing"],
  [{ targets: '[{"name":"a","engine":"postgres","host":"h","user":"u","database":"d","neonEndpoint":"endpoint%3Dep-x"}]' }, "'neonEndpoint' is Neon's endpoint ID"],
  [{ targets: '[{"name":"a","engine":"mongodb"},{"name":"a","engine":"mongodb"}]' }, "db-backup:targets: two targets are named 'a'"],
  [{ targets: '[{"name":"a","engine":"mongodb","pointInTime":"no"}]' }, "db-backup:targets[0]: 'pointInTime' must be true or false"],
  [{ targets: '[{"name":"a","engine":"mongodb","database":"d","pointInTime":true}]' }, "db-backup:targets[0]: pointInTime needs a dump of the whole deployment (mongodump --oplog cannot dump one database)"],
  [{ targets: '[{"name":"a","engine":"postgres","host":"h","user":"u","database":"d","port":0}]' }, "db-backup:targets[0]: 'port' must be a whole number from 1 to 65535"],
  [{ targets: '[{"name":"a","engine":"postgres","host":"h","user":"u","database":"d","sslmode":"required"}]' }, "db-backup:targets[0]: 'sslmode' must be one of disable, allow, prefer, require, verify-ca, verify-full"],
  [{ targets: '[{"name":"a","engine":"postgres","host":"h","user":"u","database":"d","compression":"brotli"}]' }, "db-backup:targets[0]: 'compression' must be a pg_dump compression: 0-9, none, gzip[:N], lz4[:N] or zstd[:N]"],
  [{ targets: '[{"name":"a","engine":"postgres","host":"h","user":"u","database":"d","sslmode":"verify-full","sslrootcert":"certs/ca.pem"}]' }, "db-backup:targets[0]: 'sslrootcert' 'certs/ca.pem' must be the absolute path"],
  [{ targets: '[{"name":"a","engine":"postgres","host":"h","user":"u","database":"d","sslmode":"require","sslrootcert":"system"}]' }, "db-backup:targets[0]: 'sslrootcert' 'system' needs sslmode 'verify-full'"],
  [{ logRetentionDays: "10" }, "db-backup:logRetentionDays: 10 is not a CloudWatch retention"],
  [{ cpu: "300" }, "db-backup:cpu: 300 is not a Fargate CPU size"],
  [{ cpu: "256", memory: "4096" }, "db-backup:memory: 4096 MiB does not go with cpu 256 on Fargate: use one of 512, 1024, 2048"],
  [{ ephemeralStorageGiB: "500" }, "db-backup:ephemeralStorageGiB: '500' must be a whole number from 20 to 200"],
  [{ architecture: "x86" }, "db-backup:architecture: 'x86' must be amd64 or arm64"],
  [{ containerInsights: "yes" }, "db-backup:containerInsights: 'yes' must be true or false"],
  [{ bucketName: "My_Bucket" }, "db-backup:bucketName: 'My_Bucket' is not an S3 bucket name"],
  [{ alertEmail: "oncall" }, "db-backup:alertEmail: 'oncall' is not an e-mail address"],
  [{ bucketKmsKeyArn: "arn:aws:kms:ap-southeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }, "db-backup:bucketKmsKeyArn: names the KMS key of an existing bucket, so it needs bucketName; for the bucket this stack creates, set kmsEncryption: true instead"],
  [{ bucketName: "acme-db-backups", bucketKmsKeyArn: "alias/backups" }, "db-backup:bucketKmsKeyArn: 'alias/backups' is not a KMS key ARN: give the key's full ARN"],
  [{ bucketName: "acme-db-backups", bucketKmsKeyArn: "arn:aws:kms:ap-southeast-1:123456789012:alias/backups" }, "aws kms describe-key --key-id <alias or id> --query KeyMetadata.Arn"],
  [{ bucketName: "acme-db-backups", bucketKmsKeyArn: "1234abcd-12ab-34cd-56ef-1234567890ab" }, "`aws s3api get-bucket-encryption --bucket acme-db-backups` shows the bucket's key"],
  [{ bucketName: "acme-db-backups", kmsEncryption: "true" }, "db-backup:kmsEncryption: only encrypts the bucket this stack creates; bucket 'acme-db-backups' keeps its own settings: if it uses SSE-KMS, set bucketKmsKeyArn to its key instead"],
  [{ staleAfterHours: "169" }, "db-backup:staleAfterHours: '169' must be a whole number from 2 to 168"],
  [{ encryptionRecipients: '["age1nope"]' }, "db-backup:encryptionRecipients: 'age1nope' is not an age public key"],
  [{ encryptionRecipients: '["AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"]' }, "db-backup:encryptionRecipients: holds an age identity, which is secret"],
  [{ encryptionRecipients: "[]" }, "db-backup:encryptionRecipients: must be a list of age public keys"],
  [{ drillSchedule: "daily" }, "db-backup:drillSchedule: 'daily' is not a rate(...) or cron(...) expression"],
  [{ drillCpu: "1024", drillMemory: "1024" }, "db-backup:drillMemory: 1024 MiB does not go with drillCpu 1024 on Fargate"],
  [{ drillEphemeralStorageGiB: "20" }, "db-backup:drillEphemeralStorageGiB: '20' must be a whole number from 21 to 200"],
  [{ drillMaxRowLossPercent: "101" }, "db-backup:drillMaxRowLossPercent: '101' must be a whole number from 0 to 100"],
  [{ isolation: "per-database" }, "db-backup:isolation: 'per-database' must be per-stage (one task runs every target) or per-target"],
  [{ targets: '[{"name":"a","engine":"mongodb","cpu":1024}]' }, "db-backup:targets[0].cpu: sizes target a's own task, which only `isolation: per-target` gives it"],
  [{ targets: '[{"name":"a","engine":"mongodb","memory":"big"}]', isolation: "per-target" }, "db-backup:targets[0].memory: 'big' must be a whole number"],
  [{ targets: '[{"name":"a","engine":"mongodb"},{"name":"b","engine":"mongodb","cpu":300}]', isolation: "per-target" }, "db-backup:targets[1].cpu: 300 is not a Fargate CPU size"],
  [{ targets: '[{"name":"a","engine":"mongodb","cpu":2048,"memory":1024}]', isolation: "per-target" }, "db-backup:targets[0].memory: 1024 MiB does not go with targets[0].cpu 2048 on Fargate: use one of 4096,"],
  // The stage's cpu (512) with the target's memory: the key to fix is the target's memory.
  [{ targets: '[{"name":"a","engine":"mongodb","memory":8192}]', isolation: "per-target" }, "db-backup:targets[0].memory: 8192 MiB does not go with cpu 512 on Fargate"],
  [{ targets: '[{"name":"drill","engine":"mongodb"}]', isolation: "per-target" }, "db-backup:targets[0]: name 'drill' is the verifier task's family suffix"],
  [{ vpcId: "vpc-1" }, "db-backup:subnetIds: vpcId and subnetIds go together"],
  [{ vpcId: "vpc-1", subnetIds: '["sn-1"]' }, "db-backup:subnetIds: must be a list of subnet IDs"],
])("refuses %j", (over, message) => {
  expect(() => parseStackConfig(source(over), "dev")).toThrow(message);
});

it("refuses a stack name that cannot name resources", () => {
  expect(() => parseStackConfig(source(), "Prod_EU")).toThrow(/stack name 'Prod_EU'/);
});

it("reads encryptionRecipients as a list of age public keys, or one key, without repeats", () => {
  const key = "age1pf3kycxgpz5x29ndxfxtn3z57mjlrgxhy4qtl59m6tj4d645yyys2p87jj";
  expect(parseStackConfig(source({ encryptionRecipients: JSON.stringify([key, key]) }), "dev").encryptionRecipients).toEqual([key]);
  expect(parseStackConfig(source({ encryptionRecipients: key }), "dev").encryptionRecipients).toEqual([key]);
  expect(parseStackConfig(source(), "dev").encryptionRecipients).toBeUndefined();
});

it("sizes each target's own task with per-target isolation: its cpu and memory, the stage's where unset", () => {
  const targets = JSON.stringify([
    { name: "big", engine: "mongodb", cpu: 2048, memory: "8192" },
    { name: "small", engine: "mongodb", memory: 2048 },
    { name: "plain", engine: "mongodb" },
  ]);
  const c = parseStackConfig(source({ targets, isolation: "per-target", cpu: "512", memory: "1024" }), "dev");
  expect(c.isolation).toBe("per-target");
  expect(c.targets.map((t) => targetTaskSize(c, t))).toEqual([{ cpu: 2048, memory: 8192 }, { cpu: 512, memory: 2048 }, { cpu: 512, memory: 1024 }]);
  // The size is the stack's, not the runner's: BACKUP_TARGETS does not carry it.
  expect(JSON.stringify(runnerTargets(c.targets))).not.toMatch(/cpu|memory/);
});

it("refuses, with isolation per-target, a target name whose IAM role names IAM would refuse, saying how long it may be", () => {
  const targets = JSON.stringify([{ name: "orders-archive-2024x", engine: "mongodb" }]);
  const over = () => parseStackConfig(source({ targets, isolation: "per-target" }), "staging-eu-west-abc");
  // db-backup-staging-eu-west-abc-orders-archive-2024x-execution is 60 characters, 68 with Pulumi's suffix.
  expect(over).toThrow("db-backup:targets[0]: name 'orders-archive-2024x' makes its task's execution role name 68 characters long");
  expect(over).toThrow("use a name of at most 16 characters in stage staging-eu-west-abc");
  expect(parseStackConfig(source({ targets: JSON.stringify([{ name: "orders-archive-2", engine: "mongodb" }]), isolation: "per-target" }), "staging-eu-west-abc").isolation).toBe("per-target");
  // One task for the stage names no role after a target.
  expect(parseStackConfig(source({ targets }), "staging-eu-west-abc").isolation).toBe("per-stage");
});
