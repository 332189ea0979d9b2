/**
 * The backup task as Fargate runs it, as near as this machine allows: the offline synth of a stack
 * whose targets are a real PostgreSQL and the MongoDB stand-in; the runner compiled as the Dockerfile
 * compiles it and started as its ENTRYPOINT plus CMD; the container definition's environment exactly as
 * synthesized, each secret resolved through the SSM parameter its valueFrom names; nothing else in the
 * environment but what the image and ECS set; the container's user; a read-only root filesystem; and
 * every mount point an empty root-owned 0755 directory unless the image declares a VOLUME there, in
 * which case it starts as the image's directory ("Use bind mounts with Amazon ECS", considerations:
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html). The local S3 answers
 * as S3 would for the synthesized task role's policy, and credentials come from a container
 * credentials endpoint, as the task role's do.
 *
 * What differs from ECS, and why: the credentials endpoint is on 127.0.0.1 (AWS_CONTAINER_CREDENTIALS_FULL_URI)
 * instead of 169.254.170.2; S3 is the local server (AWS_ENDPOINT_URL_S3, path style); the tools are this
 * machine's (PostgreSQL 15's pg_dump, not the image's 18; node 20, not 22) and mongodump is a stand-in.
 */

import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { createSampleDatabase } from "../../scripts/lib/sampleDatabase";
import { readStackFile } from "../../scripts/lib/stackFiles";
import { synthesize, type SynthResult } from "../../scripts/lib/synth";
import type { RecordedResource } from "../../scripts/lib/mocks";
import { drillKey } from "../../image/src/keys";
import { listKeys, putJson, s3Client } from "../../image/src/s3";
import { parseStorage } from "../../image/src/settings";
import { declaredVolumes, entrypointOf, envOf, fileMode, finalStage, runAccountStep, sandboxUnavailable, type AccountStep } from "../support/image";
import { allows } from "../support/iam";
import { runCli, repoRoot, storedKeys } from "../support/runner";
import { compileRunner, type CompiledRunner } from "../support/runnerProcess";
import { policyAuthorizer } from "../support/s3Access";
import { environmentOf, synthTask, type SynthTask, type TaskKind } from "../support/synthTask";

const unavailable = sandboxUnavailable();
if (unavailable) process.stderr.write(`test/task/fargateTask.test.ts skipped: ${unavailable}\n`);
const maybe = unavailable ? describe.skip : describe;

const dockerfile = readFileSync(join(repoRoot, "image/Dockerfile"), "utf8");
const stage = finalStage(dockerfile);
/** node:22-bookworm-slim's PATH (its image config); the Dockerfile adds none. */
const imagePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Each task role's credentials, as the container credentials endpoint hands them to that task. */
const roleKeys: Record<TaskKind, { key: string; secret: string }> = {
  backup: { key: "ASIATASKROLEEXAMPLE", secret: "task-role-secret-access-key" },
  drill: { key: "ASIADRILLROLEEXAMPLE", secret: "drill-role-secret-access-key" },
};
const taskRoleKey = roleKeys.backup.key;
const mongoUri = "mongodb://backup:Events-Secret-Pw@127.0.0.1:27017/?authSource=admin";

interface TaskRun {
  code: number | null;
  lines: Record<string, any>[];
  stdout: string;
  stderr: string;
  /** What each mount point's directory holds after the run. */
  leftInMounts: string[];
}

maybe("the backup task as Fargate runs it", () => {
  let pg: LocalPostgres;
  let s3: LocalS3;
  let graph: SynthResult;
  let tasks: Record<TaskKind, SynthTask>;
  let container: SynthTask["container"];
  let taskPolicy: string;
  let authorizer: ReturnType<typeof policyAuthorizer>;
  let image: AccountStep;
  let work: string;
  let runner: CompiledRunner;
  let credentials: Server;
  const credentialRequests: string[] = [];
  /** One credentials path per task, as ECS gives each task its own (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI). */
  const credentialsPaths: Record<TaskKind, string> = { backup: `/v2/credentials/${randomUUID()}`, drill: `/v2/credentials/${randomUUID()}` };
  const credentialsPath = credentialsPaths.backup;

  const resource = (type: string, test: (r: RecordedResource) => boolean = () => true) => graph.resources.find((r) => r.type === type && test(r))!;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    createSampleDatabase(pg, "app_task");
    const config = {
      ...readStackFile("dev"),
      "db-backup:targets": JSON.stringify([
        { name: "app", engine: "postgres", host: pg.host, port: pg.port, database: "app_task", user: pg.user },
        { name: "events", engine: "mongodb", database: "events" },
      ]),
    };
    graph = await synthesize("dev", config, { "app-password": pg.password, "events-uri": mongoUri });
    tasks = { backup: synthTask(graph, "backup"), drill: synthTask(graph, "drill") };
    ({ container, taskPolicy } = tasks.backup);
    // Each task's requests are answered by its own synthesized task role's policy.
    authorizer = policyAuthorizer({ [roleKeys.backup.key]: tasks.backup.taskPolicy, [roleKeys.drill.key]: tasks.drill.taskPolicy });
    const bucket = environmentOf(container).S3_BUCKET;
    s3 = await startLocalS3(bucket, { authorize: authorizer.authorize, accessKeys: Object.fromEntries(Object.values(roleKeys).map((k) => [k.key, k.secret])) });

    work = mkdtempSync(join(tmpdir(), "db-backup-task-"));
    // As the Dockerfile's build stage does (tsc -p image); bound at /app/dist below.
    runner = await compileRunner();
    chmodSync(dirname(runner.cli), 0o755); // a private temporary directory; the image's /app/dist is readable by its user
    image = runAccountStep(dockerfile);
    if (image.status !== 0) throw new Error(`the image's account step failed: ${image.stderr}`);

    // Refuses (exit 3) unless called as `mongodump --archive --gzip --config=<private file of its own user>`.
    writeFileSync(
      join(work, "mongodump"),
      `#!/bin/bash
if [ "$1" = "--version" ]; then echo "mongodump version: 100.10.0 (stand-in)"; exit 0; fi
[ "$1" = "--archive" ] && [ "$2" = "--gzip" ] || { echo "stand-in: expected --archive --gzip, got: $*" >&2; exit 3; }
case "$3" in --config=*) config="\${3#--config=}";; *) echo "stand-in: expected --config=<file>" >&2; exit 3;; esac
[ "$(stat -c '%a %u' "$config")" = "600 $(id -u)" ] || { echo "stand-in: $config is not private to $(id -u)" >&2; exit 3; }
grep -q '^uri: "mongodb://' "$config" || { echo "stand-in: no uri in $config" >&2; exit 3; }
printf 'stand-in archive of %s\\n' "\${4#--db=}" | gzip -c
`,
    );
    chmodSync(join(work, "mongodump"), 0o755);

    credentials = createServer((req, res) => {
      credentialRequests.push(req.url ?? "");
      const kind = (Object.keys(credentialsPaths) as TaskKind[]).find((k) => credentialsPaths[k] === req.url);
      if (!kind) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          AccessKeyId: roleKeys[kind].key,
          SecretAccessKey: roleKeys[kind].secret,
          Token: `${kind}-role-session-token`,
          Expiration: new Date(Date.now() + 3600_000).toISOString(),
          RoleArn: tasks[kind].taskRole.outputs.arn,
        }),
      );
    });
    await new Promise<void>((resolve) => credentials.listen(0, "127.0.0.1", resolve));
  }, 180_000);

  afterAll(async () => {
    await s3?.stop();
    pg?.stop();
    credentials?.close();
    image?.remove();
    runner?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The container's environment as ECS builds it: the image's, ECS's own, the definition's and the secrets. */
  function taskEnvironment(kind: TaskKind): Record<string, string> {
    const { container } = tasks[kind];
    const region = environmentOf(container).AWS_REGION;
    const ssm = (arn: string) => {
      const parameter = resource("aws:ssm/parameter:Parameter", (r) => r.outputs.arn === arn);
      if (!parameter) throw new Error(`no SSM parameter has the ARN ${arn}`);
      return parameter.inputs.value as string;
    };
    return {
      PATH: imagePath,
      ...envOf(stage),
      HOME: "/",
      HOSTNAME: "ip-172-31-7-42.ap-southeast-1.compute.internal",
      AWS_EXECUTION_ENV: "AWS_ECS_FARGATE",
      AWS_DEFAULT_REGION: region,
      AWS_REGION: region,
      ECS_CONTAINER_METADATA_URI: "http://127.0.0.1:1/v3/task-metadata",
      ECS_CONTAINER_METADATA_URI_V4: "http://127.0.0.1:1/v4/task-metadata",
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${(credentials.address() as AddressInfo).port}${credentialsPaths[kind]}`,
      ...Object.fromEntries(container.environment.map((e) => [e.name, e.value])),
      ...Object.fromEntries(container.secrets.map((s) => [s.name, ssm(s.valueFrom)])),
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
    };
  }

  /**
   * Runs a task's container in a bubblewrap sandbox, with its task role's credentials. `imageVolumes:
   * false` mounts every mount point as an empty root 0755 directory, as Fargate does where the image
   * declares no VOLUME; `command` stands for a run-task command override (`--overrides`).
   */
  async function runTask({ kind = "backup", imageVolumes = true, command }: { kind?: TaskKind; imageVolumes?: boolean; command?: string[] } = {}): Promise<TaskRun> {
    const { container } = tasks[kind];
    const run = mkdtempSync(join(work, "run-"));
    const mounts = container.mountPoints.map((m, i) => {
      const dir = join(run, `mount-${i}`);
      if (imageVolumes && declaredVolumes(stage).includes(m.containerPath)) {
        cpSync(image.volumes[m.containerPath], dir, { recursive: true, preserveTimestamps: true });
        const { uid, gid, mode } = fileMode(image.volumes[m.containerPath]);
        spawnSync("chown", [`${uid}:${gid}`, dir]);
        chmodSync(dir, mode);
      } else {
        mkdirSync(dir);
        chmodSync(dir, 0o755);
      }
      return { dir, path: m.containerPath, readOnly: m.readOnly };
    });
    const [uid, gid] = container.user.split(":");
    const { entrypoint, cmd } = entrypointOf(stage);
    const argv = [...(container.entryPoint ?? entrypoint), ...(command ?? container.command ?? cmd)];
    const args = [
      "--tmpfs", "/",
      "--ro-bind", "/usr", "/usr",
      ...["bin", "sbin", "lib", "lib64"].flatMap((d) => ["--symlink", `usr/${d}`, `/${d}`]),
      "--ro-bind", image.etc, "/etc",
      "--tmpfs", "/usr/local/bin",
      "--ro-bind", join(work, "mongodump"), "/usr/local/bin/mongodump",
      "--remount-ro", "/usr/local/bin",
      // The image's WORKDIR (bwrap would make it 0700 otherwise).
      "--perms", "0755", "--dir", "/app",
      "--ro-bind", dirname(runner.cli), "/app/dist",
      "--ro-bind", realpathSync(join(repoRoot, "node_modules")), "/app/node_modules",
      ...mounts.flatMap((m) => [m.readOnly ? "--ro-bind" : "--bind", m.dir, m.path]),
      "--dev", "/dev",
      "--proc", "/proc",
      ...(container.readonlyRootFilesystem ? ["--remount-ro", "/"] : []),
      "--chdir", "/app",
      "--unshare-pid",
      "--die-with-parent",
      "--", "setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--", ...argv,
    ];
    const child = spawn("bwrap", args, { env: taskEnvironment(kind), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    const lines = stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    return { code, lines, stdout, stderr, leftInMounts: mounts.flatMap((m) => readdirSync(m.dir)) };
  }

  it("is defined as the image runs it: the image's user, a read-only root, one scratch volume, an init process", () => {
    expect(container.user).toBe("10001:10001");
    expect(readFileSync(join(image.etc, "passwd"), "utf8")).toMatch(/^dbbackup:x:10001:10001:/m);
    expect(container.readonlyRootFilesystem).toBe(true);
    expect(container.mountPoints.map((m) => m.containerPath)).toEqual(declaredVolumes(stage));
    expect(container.linuxParameters?.initProcessEnabled).toBe(true);
  });

  it("defines the verifier task as the image runs it too: the same user, read-only root, scratch volume and init process; `drill`; no secret", () => {
    const drill = tasks.drill.container;
    expect(drill).toMatchObject({ user: container.user, readonlyRootFilesystem: true, command: ["drill"], secrets: [], linuxParameters: { initProcessEnabled: true } });
    expect(drill.mountPoints.map((m) => m.containerPath)).toEqual(declaredVolumes(stage));
    expect(Object.keys(environmentOf(drill)).sort()).toEqual([...Object.keys(environmentOf(container)), "DRILL_MAX_ROW_LOSS_PERCENT"].sort());
    expect(tasks.drill.taskRole.outputs.arn).not.toBe(tasks.backup.taskRole.outputs.arn);
  });

  describe("a scheduled run", () => {
    let run: TaskRun;
    let keys: string[];

    beforeAll(async () => {
      run = await runTask();
      keys = await storedKeys(s3.env, "");
    }, 120_000);

    it("stores every target and exits 0", () => {
      expect({ code: run.code, errors: run.lines.filter((l) => l.level === "error"), stderr: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: [], stderr: "" });
      expect(keys.sort()).toEqual([
        expect.stringMatching(/^dev\/mongodb\/events\/[0-9TZ-]+\.archive\.gz$/),
        expect.stringMatching(/^dev\/mongodb\/events\/[0-9TZ-]+\.archive\.gz\.manifest\.json$/),
        expect.stringMatching(/^dev\/postgres\/app\/[0-9TZ-]+\.dump$/),
        expect.stringMatching(/^dev\/postgres\/app\/[0-9TZ-]+\.dump\.manifest\.json$/),
      ]);
    });

    it("used the task role's credentials, and nothing the task role may not do", async () => {
      expect(credentialRequests).toContain(credentialsPath);
      const backups = authorizer.decisions.filter((d) => d.accessKeyId === taskRoleKey);
      expect(backups.filter((d) => !d.allowed)).toEqual([]);
      expect(new Set(backups.map((d) => d.action))).toEqual(new Set(["s3:PutObject"]));
      for (const key of keys) expect(await allows(taskPolicy, { action: "s3:PutObject", resource: `arn:aws:s3:::${s3.bucket}/${key}` })).toBe(true);
    });

    it("writes the metrics the stale-backup alarms watch, per target", () => {
      const alarms = graph.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm" && JSON.stringify(r.inputs).includes("BackupSuccess"));
      expect(alarms).toHaveLength(2);
      for (const alarm of alarms) {
        const watched = watchedMetric(alarm);
        const line = run.lines.find((l) => l._aws && Object.entries(watched.dimensions).every(([k, v]) => l[k] === v));
        expect(line).toBeDefined();
        const directive = line!._aws.CloudWatchMetrics[0];
        expect(directive.Namespace).toBe(watched.namespace);
        expect(directive.Metrics.map((m: { Name: string }) => m.Name)).toContain(watched.metricName);
        expect(directive.Dimensions).toContainEqual(Object.keys(watched.dimensions).sort());
        expect(line![watched.metricName]).toBe(1);
      }
    });

    it("keeps the secrets out of its output and leaves nothing behind on the scratch volume", () => {
      expect(run.stdout + run.stderr).not.toContain(pg.password);
      expect(run.stdout + run.stderr).not.toContain("Events-Secret-Pw");
      expect(run.leftInMounts).toEqual([]);
    });

    it("stores backups that verify, read back with an operator's credentials", async () => {
      const verified = await runCli(["verify", "--deep"], { ...process.env, ...s3.env, STAGE: "dev" });
      expect(verified.lines.filter((l) => l.msg === "verified").map((l) => l.target).sort()).toEqual(["app", "events"]);
      expect(verified.code).toBe(0);
    }, 60_000);
  });

  describe("the verifier's role, enforced per request, over what the scheduled run stored", () => {
    /** An S3 client of the runner's, signing with one task role's credentials. */
    const clientOf = (kind: TaskKind) =>
      s3Client(parseStorage({ ...s3.env, STAGE: "dev", AWS_ACCESS_KEY_ID: roleKeys[kind].key, AWS_SECRET_ACCESS_KEY: roleKeys[kind].secret }).s3);
    let keys: string[];
    beforeAll(async () => {
      keys = await storedKeys(s3.env, "dev/");
      if (keys.length === 0) await runTask();
      keys = await storedKeys(s3.env, "dev/");
    }, 120_000);

    it("lets the runner, in the verifier's container with its role's credentials, list and read the stage's backups", async () => {
      const before = authorizer.decisions.length;
      // The drill command is the runner's; `verify --deep` does the reading a drill does first (list, download, check).
      const run = await runTask({ kind: "drill", command: ["verify", "--deep"] });
      expect({ code: run.code, errors: run.lines.filter((l) => l.level === "error"), stderr: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: [], stderr: "" });
      expect(run.lines.filter((l) => l.msg === "verified").map((l) => l.target).sort()).toEqual(["app", "events"]);
      expect(credentialRequests).toContain(credentialsPaths.drill);
      const decisions = authorizer.decisions.slice(before).filter((d) => d.accessKeyId === roleKeys.drill.key);
      expect(decisions.filter((d) => !d.allowed)).toEqual([]);
      expect(new Set(decisions.map((d) => d.action))).toEqual(new Set(["s3:ListBucket", "s3:GetObject"]));
      expect(decisions.filter((d) => d.action === "s3:ListBucket").map((d) => d.context)).toContainEqual({ "s3:prefix": "dev/" });
      expect(run.leftInMounts).toEqual([]);
    }, 120_000);

    it("refuses the verifier a backup's key, another stage's listing and the bucket's root, and lets it write a drill record that the backup may not", async () => {
      const drill = clientOf("drill");
      const backupKey = keys.find((k) => k.endsWith(".dump"))!;
      await expect(putJson(drill, s3.bucket, backupKey, { forged: true })).rejects.toMatchObject({ name: "AccessDenied" });
      await expect(listKeys(drill, s3.bucket, "uat/")).rejects.toMatchObject({ name: "AccessDenied" });
      await expect(listKeys(drill, s3.bucket, "")).rejects.toMatchObject({ name: "AccessDenied" });
      const record = drillKey("dev", "app", new Date());
      await putJson(drill, s3.bucket, record, { restored: true });
      expect(await listKeys(drill, s3.bucket, "dev/drills/")).toEqual([record]);
      await expect(putJson(clientOf("backup"), s3.bucket, drillKey("dev", "app", new Date(Date.now() + 1000)), { forged: true })).rejects.toMatchObject({ name: "AccessDenied" });
    }, 60_000);
  });

  it("cannot back up MongoDB where the image declares no VOLUME: Fargate's empty root 0755 directory is not writable", async () => {
    const run = await runTask({ imageVolumes: false });
    expect(run.code).toBe(1);
    const failed = run.lines.find((l) => l.msg === "backup failed" && l.target === "events");
    expect(failed?.error).toMatch(/EACCES: permission denied, mkdtemp '\/tmp\/db-backup-/);
  }, 120_000);

  /**
   * The verifier task's drill in the same sandbox: its own PostgreSQL server (this machine's 15 under
   * the read-only /usr, as the image's postgresql-<PG_MAJOR> would be), started by the runner as
   * 10001, its files on the /tmp volume only. The sandbox's /dev/shm is a root 0755 directory the
   * task's user cannot write, the strictest a runtime could give: Fargate takes no sharedMemorySize
   * (docs/aws-behaviors.md), and the server keeps its dynamic shared memory in the data directory.
   * Only the PostgreSQL target is drilled here; the MongoDB drill has its own test.
   */
  describe("the verifier task's drill", () => {
    // The synthesized verifier container (command drill, DrillEnvironment, its role's credentials, which
    // the local S3 checks each request against); only the PostgreSQL target, as said above.
    const drill = () => runTask({ kind: "drill", command: ["drill", "--target", "app"] });
    const summaryOf = (run: TaskRun) => run.lines.find((l) => String(l.msg).startsWith("summary: drill"));
    let first: TaskRun;

    beforeAll(async () => {
      first = await drill();
    }, 180_000);

    it("runs with no target's secret", () => {
      const environment = taskEnvironment("drill");
      for (const s of tasks.backup.container.secrets) expect(environment).not.toHaveProperty(s.name);
      expect(Object.values(environment)).not.toContain(pg.password);
      expect(first.stdout + first.stderr).not.toContain(pg.password);
    });

    it("restores the latest backup into its own server as the image's user under a read-only root, and exits 0", () => {
      const probe = spawnSync("bwrap", ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", "--", "test", "-w", "/dev/shm"]);
      expect(probe.status).toBe(1); // /dev/shm not writable for the task's user
      expect({ code: first.code, errors: first.lines.filter((l) => l.level === "error"), stderr: first.code === 0 ? "" : first.stderr }).toEqual({ code: 0, errors: [], stderr: "" });
      expect(summaryOf(first)).toMatchObject({ Stage: "dev", Target: "app", DrillSuccess: 1, RestoredRows: 5504 });
      expect(first.leftInMounts).toEqual([]);
    });

    it("catches a table dropped before the next backup, and still leaves nothing behind", async () => {
      pg.psql("DROP TABLE public.documents", "app_task");
      expect((await runTask()).code).toBe(0);
      const before = await storedKeys(s3.env, "dev/drills/app/");
      const second = await drill();
      expect(second.code).toBe(1);
      expect(summaryOf(second)).toMatchObject({ level: "error", DrillSuccess: 0, problems: ["table public.documents is gone (the previous drill restored it with 1 rows)"] });
      expect(second.leftInMounts).toEqual([]);
      // The failed drill is recorded too (the verifier role's test above wrote a record of its own here).
      expect((await storedKeys(s3.env, "dev/drills/app/")).filter((k) => !before.includes(k))).toHaveLength(1);
    }, 240_000);
  });
});

/** The metric a stale-backup alarm watches, whether it names one metric or a metric math query over it. */
function watchedMetric(alarm: RecordedResource): { namespace: string; metricName: string; dimensions: Record<string, string> } {
  const i = alarm.inputs as Record<string, any>;
  if (i.metricName) return { namespace: i.namespace, metricName: i.metricName, dimensions: i.dimensions };
  const metric = (i.metricQueries as { metric?: Record<string, any> }[]).find((q) => q.metric)!.metric!;
  return { namespace: metric.namespace, metricName: metric.metricName, dimensions: metric.dimensions };
}
