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
 * It runs in both isolation modes (components/config.ts `isolation`): per-stage, one backup task for both
 * targets; per-target, each target's own task (its own container, secret, role and credentials), run
 * side by side, each storing only its target and refused (by the local S3's policy authorizer, as S3
 * would refuse it) when it writes the other target's prefix. The verifier task is the stage's in both
 * modes; its drills, which start a PostgreSQL server, run once, in the per-stage pass.
 *
 * What differs from ECS, and why: the credentials endpoint is on 127.0.0.1 (AWS_CONTAINER_CREDENTIALS_FULL_URI)
 * instead of 169.254.170.2; S3 is the local server (AWS_ENDPOINT_URL_S3, path style); the tools are this
 * machine's (PostgreSQL 15's pg_dump, not the image's 18; node 20, not 22) and mongodump is a stand-in.
 */

import { spawn, spawnSync } from "node:child_process";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
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
import type { SynthResult } from "../../scripts/lib/synth";
import type { RecordedResource } from "../../scripts/lib/mocks";
import { drillKey } from "../../image/src/keys";
import { listKeys, putJson, s3Client } from "../../image/src/s3";
import { parseStorage } from "../../image/src/settings";
import { declaredVolumes, entrypointOf, envOf, fileMode, finalStage, runAccountStep, sandboxUnavailable, type AccountStep } from "../support/image";
import { allows } from "../support/iam";
import { runCli, repoRoot, storedKeys } from "../support/runner";
import { compileRunner, type CompiledRunner } from "../support/runnerProcess";
import { policyAuthorizer } from "../support/s3Access";
import { environmentOf, synthTask, type SynthTask } from "../support/synthTask";
import { isolationModes, type Isolation } from "../../components/config";

const unavailable = sandboxUnavailable();
if (unavailable) process.stderr.write(`test/task/fargateTask.test.ts skipped: ${unavailable}\n`);
const maybe = unavailable ? describe.skip : describe;

const dockerfile = readFileSync(join(repoRoot, "image/Dockerfile"), "utf8");
const stage = finalStage(dockerfile);
/** node:22-bookworm-slim's PATH (its image config); the Dockerfile adds none. */
const imagePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/**
 * The tasks of a synth, by id: "drill" (the verifier), and the backup's: "backup" (per-stage) or each
 * target's name (per-target).
 */
type TaskId = string;
/** Each task role's credentials, as the container credentials endpoint hands them to that task. */
const roleKeyOf = (id: TaskId) => ({ key: `ASIA${id.toUpperCase()}ROLEEXAMPLE`, secret: `${id}-role-secret-access-key` });
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
  let image: AccountStep;
  let work: string;
  let runner: CompiledRunner;

  // What both modes share: the databases, the compiled runner, the image's accounts, the stand-in.
  beforeAll(async () => {
    pg = await startLocalPostgres();
    createSampleDatabase(pg, "app_task");
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
  }, 180_000);

  afterAll(() => {
    pg?.stop();
    image?.remove();
    runner?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe.each(isolationModes)("isolation %s", (mode: Isolation) => {
    let s3: LocalS3;
    let graph: SynthResult;
    let tasks: Record<TaskId, SynthTask>;
    /** The backup's tasks: the stage's one, or one per target. */
    const backupIds: TaskId[] = mode === "per-stage" ? ["backup"] : ["app", "events"];
    let container: SynthTask["container"];
    let authorizer: ReturnType<typeof policyAuthorizer>;
    let credentials: Server;
    const credentialRequests: string[] = [];
    /** One credentials path per task, as ECS gives each task its own (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI). */
    const credentialsPaths: Record<TaskId, string> = Object.fromEntries([...backupIds, "drill"].map((id) => [id, `/v2/credentials/${randomUUID()}`]));

    const resource = (type: string, test: (r: RecordedResource) => boolean = () => true) => graph.resources.find((r) => r.type === type && test(r))!;

    beforeAll(async () => {
      const config = {
        ...readStackFile("dev"),
        "db-backup:targets": JSON.stringify([
          { name: "app", engine: "postgres", host: pg.host, port: pg.port, database: "app_task", user: pg.user },
          { name: "events", engine: "mongodb", database: "events" },
        ]),
        "db-backup:isolation": mode,
      };
      // A fresh Pulumi runtime per synth: its mocks are per process (as test/stack/stack.test.ts does).
      jest.resetModules();
      const { synthesize } = await import("../../scripts/lib/synth");
      graph = await synthesize("dev", config, { "app-password": pg.password, "events-uri": mongoUri });
      tasks = { drill: synthTask(graph, "drill") };
      for (const id of backupIds) tasks[id] = id === "backup" ? synthTask(graph, "backup") : synthTask(graph, "backup", id);
      ({ container } = tasks[backupIds[0]]);
      // Each task's requests are answered by its own synthesized task role's policy.
      authorizer = policyAuthorizer(Object.fromEntries(Object.entries(tasks).map(([id, t]) => [roleKeyOf(id).key, t.taskPolicy])));
      const bucket = environmentOf(container).S3_BUCKET;
      s3 = await startLocalS3(bucket, { authorize: authorizer.authorize, accessKeys: Object.fromEntries(Object.keys(tasks).map((id) => [roleKeyOf(id).key, roleKeyOf(id).secret])) });

      credentials = createServer((req, res) => {
        credentialRequests.push(req.url ?? "");
        const id = Object.keys(credentialsPaths).find((k) => credentialsPaths[k] === req.url);
        if (!id) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            AccessKeyId: roleKeyOf(id).key,
            SecretAccessKey: roleKeyOf(id).secret,
            Token: `${id}-role-session-token`,
            Expiration: new Date(Date.now() + 3600_000).toISOString(),
            RoleArn: tasks[id].taskRole.outputs.arn,
          }),
        );
      });
      await new Promise<void>((resolve) => credentials.listen(0, "127.0.0.1", resolve));
    }, 120_000);

    afterAll(async () => {
      await s3?.stop();
      credentials?.close();
    });

    /** The container's environment as ECS builds it: the image's, ECS's own, the definition's and the secrets. */
    function taskEnvironment(id: TaskId): Record<string, string> {
      const { container } = tasks[id];
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
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${(credentials.address() as AddressInfo).port}${credentialsPaths[id]}`,
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
    async function runTask({ task = backupIds[0], imageVolumes = true, command }: { task?: TaskId; imageVolumes?: boolean; command?: string[] } = {}): Promise<TaskRun> {
      const { container } = tasks[task];
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
      const child = spawn("bwrap", args, { env: taskEnvironment(task), stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      const lines = stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      return { code, lines, stdout, stderr, leftInMounts: mounts.flatMap((m) => readdirSync(m.dir)) };
    }

    it("is defined as the image runs it: the image's user, a read-only root, one scratch volume, an init process", () => {
      expect(readFileSync(join(image.etc, "passwd"), "utf8")).toMatch(/^dbbackup:x:10001:10001:/m);
      for (const id of backupIds) {
        const { container } = tasks[id];
        expect(container.user).toBe("10001:10001");
        expect(container.readonlyRootFilesystem).toBe(true);
        expect(container.mountPoints.map((m) => m.containerPath)).toEqual(declaredVolumes(stage));
        expect(container.linuxParameters?.initProcessEnabled).toBe(true);
      }
    });

    it(mode === "per-stage" ? "gives the stage's task every target and its secret" : "gives each target's task only its own target and its own secret, and a role of its own", () => {
      const targetsOf = (id: TaskId) => (JSON.parse(environmentOf(tasks[id].container).BACKUP_TARGETS) as { name: string }[]).map((t) => t.name);
      const secretValues = (id: TaskId) => Object.values(taskEnvironment(id)).filter((v) => v === pg.password || v === mongoUri);
      if (mode === "per-stage") {
        expect({ targets: targetsOf("backup"), secrets: secretValues("backup").length }).toEqual({ targets: ["app", "events"], secrets: 2 });
        return;
      }
      expect({ targets: targetsOf("app"), secrets: secretValues("app") }).toEqual({ targets: ["app"], secrets: [pg.password] });
      expect({ targets: targetsOf("events"), secrets: secretValues("events") }).toEqual({ targets: ["events"], secrets: [mongoUri] });
      expect(tasks.app.taskRole.outputs.arn).not.toBe(tasks.events.taskRole.outputs.arn);
      expect(tasks.app.taskDefinition.inputs.family).toBe("db-backup-dev-app");
    });

    it("defines the verifier task as the image runs it too: the same user, read-only root, scratch volume and init process; `drill`; no secret", () => {
      const drill = tasks.drill.container;
      expect(drill).toMatchObject({ user: container.user, readonlyRootFilesystem: true, command: ["drill"], secrets: [], linuxParameters: { initProcessEnabled: true } });
      expect(drill.mountPoints.map((m) => m.containerPath)).toEqual(declaredVolumes(stage));
      expect(Object.keys(environmentOf(drill)).sort()).toEqual([...Object.keys(environmentOf(container)), "DRILL_MAX_ROW_LOSS_PERCENT"].sort());
      // The verifier is the stage's in both modes: every target, whatever each backup task holds.
      expect(JSON.parse(environmentOf(drill).BACKUP_TARGETS).map((t: { name: string }) => t.name)).toEqual(["app", "events"]);
      for (const id of backupIds) expect(tasks.drill.taskRole.outputs.arn).not.toBe(tasks[id].taskRole.outputs.arn);
    });

    describe("a scheduled run", () => {
      /** Each backup task's run; per-target, side by side, as their schedules start them at the same time. */
      let runs: Record<TaskId, TaskRun>;
      let run: TaskRun;
      let keys: string[];

      beforeAll(async () => {
        runs = Object.fromEntries(await Promise.all(backupIds.map(async (id) => [id, await runTask({ task: id })] as const)));
        // What the checks below read of all of them together: every line, and the output.
        const all = Object.values(runs);
        run = { code: Math.max(...all.map((r) => r.code ?? 1)), lines: all.flatMap((r) => r.lines), stdout: all.map((r) => r.stdout).join(""), stderr: all.map((r) => r.stderr).join(""), leftInMounts: all.flatMap((r) => r.leftInMounts) };
        keys = await storedKeys(s3.env, "");
      }, 120_000);

      it("stores every target and exits 0", () => {
        for (const r of Object.values(runs)) expect({ code: r.code, errors: r.lines.filter((l) => l.level === "error"), stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, errors: [], stderr: "" });
        expect(keys.sort()).toEqual([
          expect.stringMatching(/^dev\/mongodb\/events\/[0-9TZ-]+\.archive\.gz$/),
          expect.stringMatching(/^dev\/mongodb\/events\/[0-9TZ-]+\.archive\.gz\.manifest\.json$/),
          expect.stringMatching(/^dev\/postgres\/app\/[0-9TZ-]+\.dump$/),
          expect.stringMatching(/^dev\/postgres\/app\/[0-9TZ-]+\.dump\.manifest\.json$/),
        ]);
      });

      it("used each task role's credentials, and nothing the task role may not do", async () => {
        for (const id of backupIds) {
          expect(credentialRequests).toContain(credentialsPaths[id]);
          const backups = authorizer.decisions.filter((d) => d.accessKeyId === roleKeyOf(id).key);
          expect(backups.filter((d) => !d.allowed)).toEqual([]);
          expect(new Set(backups.map((d) => d.action))).toEqual(new Set(["s3:PutObject"]));
          // Per-target: a task writes only under its own target's prefix.
          const own = id === "backup" ? keys : keys.filter((k) => k.split("/")[2] === id);
          expect([...new Set(backups.map((d) => d.resource.replace(`arn:aws:s3:::${s3.bucket}/`, "")))].sort()).toEqual(own.sort());
          for (const key of own) expect(await allows(tasks[id].taskPolicy, { action: "s3:PutObject", resource: `arn:aws:s3:::${s3.bucket}/${key}` })).toBe(true);
        }
      });

      if (mode === "per-target") {
        it("refuses each target's task (AccessDenied, from the role's policy) a write under the other target's prefix", async () => {
          const clientOf = (id: TaskId) => s3Client(parseStorage({ ...s3.env, STAGE: "dev", AWS_ACCESS_KEY_ID: roleKeyOf(id).key, AWS_SECRET_ACCESS_KEY: roleKeyOf(id).secret }).s3);
          const before = authorizer.decisions.length;
          await expect(putJson(clientOf("app"), s3.bucket, "dev/mongodb/events/forged.archive.gz.manifest.json", { forged: true })).rejects.toMatchObject({ name: "AccessDenied" });
          await expect(putJson(clientOf("events"), s3.bucket, "dev/postgres/app/forged.dump.manifest.json", { forged: true })).rejects.toMatchObject({ name: "AccessDenied" });
          // Its own prefix, with the same client: allowed, so the refusals above are the policy's (the
          // operator removes the object again, so that the checks below see only the backups).
          await putJson(clientOf("app"), s3.bucket, "dev/postgres/app/own.json", { own: true });
          expect(authorizer.decisions.slice(before).map((d) => [d.accessKeyId, d.allowed])).toEqual([[roleKeyOf("app").key, false], [roleKeyOf("events").key, false], [roleKeyOf("app").key, true]]);
          await s3Client(parseStorage({ ...s3.env, STAGE: "dev" }).s3).send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: "dev/postgres/app/own.json" }));
          expect((await storedKeys(s3.env, "dev/")).sort()).toEqual(keys.sort());
        });
      }

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
      const clientOf = (id: TaskId) =>
        s3Client(parseStorage({ ...s3.env, STAGE: "dev", AWS_ACCESS_KEY_ID: roleKeyOf(id).key, AWS_SECRET_ACCESS_KEY: roleKeyOf(id).secret }).s3);
      let keys: string[];
      beforeAll(async () => {
        keys = await storedKeys(s3.env, "dev/");
        if (keys.length === 0) await runTask();
        keys = await storedKeys(s3.env, "dev/");
      }, 120_000);

      it("lets the runner, in the verifier's container with its role's credentials, list and read the stage's backups", async () => {
        const before = authorizer.decisions.length;
        // The drill command is the runner's; `verify --deep` does the reading a drill does first (list, download, check).
        const run = await runTask({ task: "drill", command: ["verify", "--deep"] });
        expect({ code: run.code, errors: run.lines.filter((l) => l.level === "error"), stderr: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: [], stderr: "" });
        expect(run.lines.filter((l) => l.msg === "verified").map((l) => l.target).sort()).toEqual(["app", "events"]);
        expect(credentialRequests).toContain(credentialsPaths.drill);
        const decisions = authorizer.decisions.slice(before).filter((d) => d.accessKeyId === roleKeyOf("drill").key);
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
        for (const id of backupIds) await expect(putJson(clientOf(id), s3.bucket, drillKey("dev", "app", new Date(Date.now() + 1000)), { forged: true })).rejects.toMatchObject({ name: "AccessDenied" });
      }, 60_000);
    });

    it("cannot back up MongoDB where the image declares no VOLUME: Fargate's empty root 0755 directory is not writable", async () => {
      const run = await runTask({ task: mode === "per-stage" ? "backup" : "events", imageVolumes: false });
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
     * Only the PostgreSQL target is drilled here; the MongoDB drill has its own test. Only in the
     * per-stage pass: the verifier task is the stage's in both modes (test/stack/stack.test.ts), and
     * each drill starts a server, which this test's time budget affords once.
     */
    if (mode === "per-stage") describe("the verifier task's drill", () => {
      // The synthesized verifier container (command drill, DrillEnvironment, its role's credentials, which
      // the local S3 checks each request against); only the PostgreSQL target, as said above.
      const drill = () => runTask({ task: "drill", command: ["drill", "--target", "app"] });
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
});

/** The metric a stale-backup alarm watches, whether it names one metric or a metric math query over it. */
function watchedMetric(alarm: RecordedResource): { namespace: string; metricName: string; dimensions: Record<string, string> } {
  const i = alarm.inputs as Record<string, any>;
  if (i.metricName) return { namespace: i.namespace, metricName: i.metricName, dimensions: i.dimensions };
  const metric = (i.metricQueries as { metric?: Record<string, any> }[]).find((q) => q.metric)!.metric!;
  return { namespace: metric.namespace, metricName: metric.metricName, dimensions: metric.dimensions };
}
