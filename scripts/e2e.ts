/**
 * `npm run test:aws`: proves a stage end to end on a real AWS account. It deploys a throwaway stack
 * (`e2e-…`) with Pulumi's Automation API, starts the backup task as the schedule would, requires exit
 * code 0 and a complete backup in the bucket, verifies it with `verify --deep`, starts the verifier task
 * once and requires exit code 0 and a passed drill record of that backup, waits for both tasks' success
 * metrics, and then always empties the bucket, destroys the stack and removes it. It first cleans up
 * after runs that were killed.
 *
 * Without what it needs (E2E_* variables, AWS credentials, the Pulumi CLI and a backend, Docker buildx,
 * a new enough pg_restore) it prints what is missing and exits 0, or 1 with E2E_REQUIRED=true (CI).
 */

import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { S3Client } from "@aws-sdk/client-s3";
import { LocalWorkspace, Stack, type OutputMap } from "@pulumi/pulumi/automation";
import type { DrillRecord } from "../image/src/drill";
import { drillsPrefix } from "../image/src/keys";
import { exitOf, onPath, run } from "../image/src/proc";
import { getJson, listKeys } from "../image/src/s3";
import {
  completeBackups,
  describeNeeds,
  dockerfilePgMajor,
  drillRecordProblems,
  e2eStackConfig,
  e2eStackName,
  e2eTargetNames,
  e2eTasks,
  latestDrillRecordKey,
  leftoverStackFiles,
  leftoverStacks,
  missingMetric,
  parseImageRef,
  parseRunTaskCommand,
  postgresMajor,
  postgresTargetName,
  readE2eEnv,
  secretEnvNames,
  stateOutputs,
  successMetric,
  taggedLeftovers,
  taskFailure,
  taskLogsCommand,
  taskWaitSeconds,
  type E2eTargets,
  type E2eTask,
  type Need,
} from "./lib/e2e";
import { callerIdentity, emptyPrefix, repositoryImages, resourcesWithStageTag, runTaskAndWait, waitForMetric } from "./lib/e2eAws";

const repoRoot = join(__dirname, "..");
/** A run takes well under an hour; an e2e stack older than this belongs to a run that was killed. */
const leftoverAfterMs = 3 * 3600 * 1000;
/** Metrics from log lines reach CloudWatch a minute or more after the line. */
const metricWaitSeconds = 10 * 60;

function say(text: string): void {
  process.stderr.write(`\n== ${text}\n`);
}

const installPulumi = "the Pulumi CLI: curl -fsSL https://get.pulumi.com | sh (or see https://www.pulumi.com/docs/iac/download-install/)";

/** Everything the run needs and does not have; empty when it may start. */
async function prerequisites(env: NodeJS.ProcessEnv, secrets: Record<string, string>): Promise<{ needs: Need[]; targets?: E2eTargets; pulumi?: string }> {
  const { targets, needs } = readE2eEnv({ ...env, ...secrets });
  const pulumi = onPath("pulumi", env);
  if (!pulumi) {
    needs.push({ what: "pulumi", how: installPulumi });
  } else {
    const who = await run(pulumi, ["whoami", "--json", "--non-interactive"], env, 60_000);
    if (who.exit.code !== 0) {
      needs.push({ what: "a Pulumi backend", how: "pulumi login --local, pulumi login s3://<state-bucket>, or PULUMI_ACCESS_TOKEN for Pulumi Cloud (or set PULUMI_BACKEND_URL)" });
    } else {
      const url = (JSON.parse(who.stdout || "{}") as { url?: string }).url ?? "";
      if (!/^https?:/.test(url) && !env.PULUMI_CONFIG_PASSPHRASE && !env.PULUMI_CONFIG_PASSPHRASE_FILE) {
        needs.push({ what: "PULUMI_CONFIG_PASSPHRASE", how: `the backend ${url} keeps secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE` });
      }
    }
  }
  const docker = onPath("docker", env);
  if (!docker || (await run(docker, ["buildx", "version"], env, 30_000)).exit.code !== 0) {
    needs.push({ what: "docker buildx", how: "Docker with the buildx plugin: the program builds the image (https://docs.docker.com/engine/install/)" });
  }
  // verify --deep reads the archive with the local pg_restore, which must be as new as the image's pg_dump.
  const imageMajor = dockerfilePgMajor(readFileSync(join(repoRoot, "image", "Dockerfile"), "utf8"));
  const pgRestore = onPath("pg_restore", env);
  const localMajor = pgRestore ? postgresMajor((await run(pgRestore, ["--version"], env, 30_000)).stdout) : undefined;
  if (imageMajor !== undefined && (localMajor === undefined || localMajor < imageMajor)) {
    needs.push({
      what: `pg_restore ${imageMajor}`,
      how: `${localMajor ? `pg_restore ${localMajor} is too old` : "pg_restore is not on PATH"}: the image's pg_dump ${imageMajor} writes archives only pg_restore ${imageMajor}+ reads (apt: postgresql-client-${imageMajor} from apt.postgresql.org)`,
    });
  }
  const identity = await callerIdentity(env.AWS_REGION ?? env.AWS_DEFAULT_REGION);
  if ("error" in identity) {
    needs.push({ what: "AWS credentials", how: `none usable (${identity.error}): aws configure sso / aws sso login, AWS_PROFILE, or AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY; in CI an OIDC role` });
  } else {
    say(`AWS caller: ${identity.arn}`);
  }
  return { needs, targets, pulumi };
}

/** `pulumi config set --secret` with the value on stdin, so it is never on a command line. */
async function setSecret(pulumi: string, stack: string, key: string, value: string): Promise<void> {
  const child = spawn(pulumi, ["config", "set", "--secret", key, "--stack", stack, "--non-interactive", "--cwd", repoRoot], { stdio: ["pipe", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(value);
  const exit = await exitOf(child);
  if (exit.code !== 0) throw new Error(`pulumi config set --secret ${key} failed: ${stderr.trim()}`);
}

const print = (text: string) => process.stdout.write(text);

/**
 * Empties the stack's bucket (every version under its stage prefix), destroys the stack and removes it.
 * The bucket comes from the exported state, so a stack whose `up` never finished is emptied too.
 */
async function teardown(workspace: LocalWorkspace, name: string, region: string, leftover: boolean): Promise<void> {
  const stack = await Stack.select(name, workspace);
  if (leftover) {
    // A killed `up` leaves the stack locked and pending creates in its state; both would stop destroy.
    await stack.cancel().catch(() => undefined);
    await stack.refresh({ clearPendingCreates: true, color: "never", onOutput: print }).catch((err: Error) => say(`refresh of ${name} failed (destroying anyway): ${err.message}`));
  }
  const state = await stack.exportStack();
  const s3 = new S3Client({ region });
  try {
    for (const bucket of stateOutputs(state, "aws:s3/bucket:Bucket", "bucket")) {
      const deleted = await emptyPrefix(s3, bucket, `${name}/`);
      say(`emptied s3://${bucket}/${name}/ (${deleted} object versions and delete markers)`);
    }
  } finally {
    s3.destroy();
  }
  try {
    await stack.destroy({ color: "never", onOutput: print });
  } catch (err) {
    const repositories = stateOutputs(state, "aws:ecr/repository:Repository", "name");
    if (/RepositoryNotEmpty/.test((err as Error).message) && repositories.length > 0) {
      say(
        `the image repository still holds images, so it cannot be deleted. Delete it with\n` +
          repositories.map((r) => `  aws ecr delete-repository --force --region ${region} --repository-name ${r}`).join("\n") +
          `\nand run npm run test:aws again: it destroys what is left of ${name}.`,
      );
    }
    throw err;
  }
  await workspace.removeStack(name);
  say(`stack ${name} destroyed and removed`);
}

/** Destroys the e2e stacks killed runs left, deletes their stray stack files, and reports resources still tagged e2e-*. */
async function cleanLeftovers(workspace: LocalWorkspace, region: string): Promise<void> {
  const now = new Date();
  const names = (await workspace.listStacks()).map((s) => s.name.split("/").pop()!);
  for (const name of leftoverStacks(names, now, leftoverAfterMs)) {
    say(`stack ${name} was left by a run that did not finish: destroying it`);
    await teardown(workspace, name, region, true).catch((err: Error) => say(`could not clean up ${name}: ${err.message}`));
  }
  for (const file of leftoverStackFiles(readdirSync(repoRoot), now, leftoverAfterMs)) {
    if (names.includes(file.slice("Pulumi.".length, -".yaml".length))) continue;
    unlinkSync(join(repoRoot, file));
    say(`deleted ${file}: its stack no longer exists`);
  }
}

async function reportTagged(region: string): Promise<void> {
  try {
    const left = taggedLeftovers(await resourcesWithStageTag(region));
    if (left.length === 0) return;
    say(`${left.length} resource(s) in ${region} are still tagged db-backup:stage=e2e-… (the tagging API may list resources deleted in the last minutes):`);
    for (const r of left) process.stderr.write(`  ${r.stage}  ${r.arn}\n`);
  } catch (err) {
    say(`could not list tagged resources (tag:GetResources): ${(err as Error).message}`);
  }
}

/** Runs the runner's own `verify --deep` against the stack's bucket with the caller's credentials. */
async function verifyDeep(stage: string, bucket: string, region: string): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, STAGE: stage, S3_BUCKET: bucket, AWS_REGION: region };
  for (const name of ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "S3_FORCE_PATH_STYLE", "BACKUP_TARGETS"]) delete env[name];
  const child = spawn(process.execPath, [require.resolve("tsx/cli"), join(repoRoot, "image", "src", "cli.ts"), "verify", "--deep"], { cwd: repoRoot, env, stdio: ["ignore", "inherit", "inherit"] });
  const exit = await exitOf(child);
  if (exit.code !== 0) throw new Error(`verify --deep exited with ${exit.code ?? exit.signal}`);
}

/**
 * Starts `task` from the run-task command in its stack output, waits for it to stop and requires exit
 * code 0 from its container; returns the command that shows its log stream.
 */
async function runStackTask(task: E2eTask, outputs: OutputMap, region: string, interrupted: AbortSignal): Promise<string> {
  if (interrupted.aborted) throw new Error("interrupted");
  const command = String(outputs[task.output]?.value ?? "");
  if (!command) throw new Error(`the stack exported no ${task.output}`);
  const settings = parseRunTaskCommand(command);
  say(`starting the ${task.what} task ${settings.taskDefinition} on ${settings.cluster} (subnets ${settings.subnets.join(", ")}, public IP ${settings.assignPublicIp})`);
  const outcome = await runTaskAndWait(settings, task.container, taskWaitSeconds, interrupted, say);
  const logs = taskLogsCommand(task, outcome.taskArn, String(outputs.logGroupName?.value ?? ""), region);
  const failure = taskFailure(task, outcome, logs);
  if (failure) throw new Error(failure);
  say(`the ${task.what} task exited 0 (logs: ${logs})`);
  return logs;
}

/** Waits for a target's success metric from `task` (Sum >= 1 since `since`), as its stale alarm would see it. */
async function requireSuccessMetric(task: E2eTask, stage: string, target: string, since: Date, region: string, logs: string, interrupted: AbortSignal): Promise<void> {
  const query = successMetric(task.metric, stage, target);
  const sum = await waitForMetric(region, query, since, metricWaitSeconds, interrupted);
  if (interrupted.aborted) throw new Error("interrupted");
  const problem = missingMetric(task, query, sum, metricWaitSeconds, logs);
  if (problem) throw new Error(problem);
  say(`${query.Namespace}/${query.MetricName} Sum ${sum} for ${stage}/${target}`);
}

async function withS3<T>(region: string, use: (s3: S3Client) => Promise<T>): Promise<T> {
  const s3 = new S3Client({ region });
  try {
    return await use(s3);
  } finally {
    s3.destroy();
  }
}

/** The newest complete backup of each target, listed with the caller's credentials; fails naming a target without one. */
async function requireBackups(bucket: string, stage: string, targets: E2eTargets): Promise<Record<string, string>> {
  const keys = await withS3(targets.region, (s3) => listKeys(s3, bucket, `${stage}/`));
  const latest: Record<string, string> = {};
  for (const { engine, name } of e2eTargetNames(targets)) {
    const found = completeBackups(keys, stage, engine, name);
    if (found.length === 0) throw new Error(`no complete backup (data object and .manifest.json) under s3://${bucket}/${stage}/${engine}/${name}/; found: ${keys.join(", ") || "nothing"}`);
    latest[name] = found[found.length - 1];
    say(`stored: s3://${bucket}/${latest[name]} and its manifest`);
  }
  return latest;
}

/**
 * Each target's drill record, read with the caller's credentials: it must say the drill passed, on this
 * run's backup, with rows counted in the restored server.
 */
async function requireDrillRecords(bucket: string, stage: string, targets: E2eTargets, backups: Record<string, string>, logs: string): Promise<void> {
  await withS3(targets.region, async (s3) => {
    const keys = await listKeys(s3, bucket, drillsPrefix(stage));
    for (const { name } of e2eTargetNames(targets)) {
      const key = latestDrillRecordKey(keys, stage, name);
      if (!key) throw new Error(`the restore drill left no record under s3://${bucket}/${stage}/drills/${name}/ (found: ${keys.join(", ") || "nothing"})\nlogs: ${logs}`);
      const record = await getJson<DrillRecord>(s3, bucket, key);
      const problems = drillRecordProblems(record, `s3://${bucket}/${key}`, backups[name]);
      if (problems.length > 0) throw new Error(`${problems.join("\n")}\nlogs: ${logs}`);
      say(`drill record s3://${bucket}/${key}: passed, ${record.restoredRows} rows in ${Object.keys(record.counts).length} tables/collections, server ${record.serverVersion ?? "?"}, ${record.restoreSeconds} s download + restore`);
    }
  });
}

async function proveStage(workspace: LocalWorkspace, pulumi: string, stage: string, targets: E2eTargets, secrets: Record<string, string>, interrupted: AbortSignal): Promise<void> {
  const { plain, secrets: secretKeys } = e2eStackConfig(targets);
  const stack = await Stack.create(stage, workspace);
  await stack.setAllConfig(Object.fromEntries(Object.entries(plain).map(([k, value]) => [k, { value }])));
  for (const s of secretKeys) await setSecret(pulumi, stage, s.key, secrets[s.env]);

  say(`pulumi up ${stage} (builds and pushes the image; about 5-10 minutes)`);
  const up = await stack.up({ color: "never", onOutput: print });
  const tasks = e2eTasks(stage);
  // Both tasks' commands before either starts: a stack without the verifier's fails before it costs a backup.
  const missing = ["bucketName", tasks.backup.output, tasks.drill.output].filter((output) => !up.outputs[output]?.value);
  if (missing.length > 0) throw new Error(`the stack exported no ${missing.join(", ")}`);
  const bucket = String(up.outputs.bucketName.value);

  const backupStarted = new Date();
  const backupLogs = await runStackTask(tasks.backup, up.outputs, targets.region, interrupted);
  const backups = await requireBackups(bucket, stage, targets);

  say("verify --deep with your credentials (the runner's own check: manifest, SHA-256, every data block)");
  await verifyDeep(stage, bucket, targets.region);

  // The verifier task as its schedule would start it: its own role reading the bucket, a PostgreSQL
  // server started inside it on Fargate (scratch on the task's ephemeral storage, /dev/shm as Fargate gives it).
  const drillStarted = new Date();
  const drillLogs = await runStackTask(tasks.drill, up.outputs, targets.region, interrupted);
  await requireDrillRecords(bucket, stage, targets, backups, drillLogs);

  // What only AWS can say (docs/aws-behaviors.md, "Settled only on a real account").
  say("the summary lines' metrics, as CloudWatch extracts them from the tasks' logs (what the stale-backup and stale-drill alarms watch)");
  await requireSuccessMetric(tasks.backup, stage, postgresTargetName, backupStarted, targets.region, backupLogs, interrupted);
  await requireSuccessMetric(tasks.drill, stage, postgresTargetName, drillStarted, targets.region, drillLogs, interrupted);

  const { repository } = parseImageRef(String(up.outputs.imageRef?.value ?? ""));
  const pushed = await repositoryImages(targets.region, repository, interrupted);
  say(`ECR ${repository} after one push: ${pushed.images.length} image(s)`);
  for (const image of pushed.images) {
    process.stderr.write(`  ${image.digest} tags=[${image.tags.join(",")}] ${image.mediaType ?? ""} ${image.artifactMediaType ?? ""}\n`);
  }
  say(`the lifecycle rule would expire now: ${pushed.wouldExpire === undefined ? "(no preview)" : pushed.wouldExpire.length ? pushed.wouldExpire.join(", ") : "nothing"}`);
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // An empty PULUMI_BACKEND_URL (an unset repository variable in CI) means "the default backend".
  if (env.PULUMI_BACKEND_URL === "") delete env.PULUMI_BACKEND_URL;
  // The secrets go to Pulumi on stdin; no child process (pulumi, the program, verify) inherits them.
  const secrets: Record<string, string> = {};
  for (const name of secretEnvNames) {
    if (env[name]) secrets[name] = env[name]!;
    delete env[name];
  }
  const { needs, targets, pulumi } = await prerequisites(env, secrets);
  if (needs.length > 0 || !targets || !pulumi) {
    process.stdout.write(describeNeeds(needs) + "\n");
    return env.E2E_REQUIRED === "true" ? 1 : 0;
  }

  const interrupted = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted.signal.aborted) process.exit(130);
    say(`${signal}: stopping, then tearing the stack down (${signal} again to leave it for the next run to clean up)`);
    interrupted.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const workspace = await LocalWorkspace.create({ workDir: repoRoot });
  await cleanLeftovers(workspace, targets.region);
  await reportTagged(targets.region);

  const stage = e2eStackName(new Date(), randomBytes(2).toString("hex"));
  say(`stack ${stage} in ${targets.region}`);
  let ok = false;
  try {
    await proveStage(workspace, pulumi, stage, targets, secrets, interrupted.signal);
    ok = true;
  } catch (err) {
    say(`FAILED: ${(err as Error).message}`);
  } finally {
    say(`tearing down ${stage}`);
    await teardown(workspace, stage, targets.region, false).catch((err: Error) => {
      ok = false;
      say(`TEARDOWN FAILED: ${err.message}\nThe next npm run test:aws destroys ${stage} once it is ${leftoverAfterMs / 3600_000} hours old.`);
    });
  }
  say(ok ? `OK: ${stage} deployed, backed up on Fargate, verified, restored by its drill and destroyed` : `FAILED (see above)`);
  return ok ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`test:aws failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
