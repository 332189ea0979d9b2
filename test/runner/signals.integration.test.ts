/**
 * SIGTERM (and SIGINT) to the runner as the image runs it: compiled, in a process of its own, against
 * a real PostgreSQL and the local S3. ECS stops a task by sending SIGTERM to the container's process
 * and SIGKILL stopTimeout later ("the equivalent of docker stop": StopTask, Amazon ECS API Reference,
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html), so everything the
 * runner owes a stopped run has to happen between the two.
 *
 * The dumps that are still running are stand-ins that write a first part at once and then trickle
 * forever: pg_dump for one database (the real pg_dump for the others), and a mongodump that even
 * ignores SIGTERM, as a tool stuck in a system call might, so the SIGKILL that follows is exercised.
 */

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopGraceMs } from "../../image/src/proc";
import { startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { fakeBin, runCli, storedKeys, which } from "../support/runner";
import { compileRunner, isRunning, startRunner, uploadedParts, waitUntil, type CompiledRunner } from "../support/runnerProcess";

let pg: LocalPostgres;
let s3: LocalS3;
let runner: CompiledRunner;
/** Where the stand-ins write their process ids. */
let pids: string;
let bin: { dir: string; path: string };

const stage = "sig";
/** A first burst of more than one 5 MiB part, then 64 KiB every 0.2 s, never ending. */
const trickle = `head -c 6000000 /dev/urandom\nwhile true; do head -c 65536 /dev/urandom; sleep 0.2; done\n`;

beforeAll(async () => {
  [pg, s3, runner] = await Promise.all([startLocalPostgres(), startLocalS3(), compileRunner()]);
  pg.psql("CREATE DATABASE quickdb");
  pg.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g", "quickdb");
  pg.psql("CREATE DATABASE slowdb");
  pids = mkdtempSync(join(tmpdir(), "db-backup-pids-"));
  const realPgDump = which("pg_dump");
  bin = fakeBin({
    pg_dump: `#!/bin/bash
if [ "$1" = "--version" ] || [ "$PGDATABASE" != "slowdb" ]; then exec ${realPgDump} "$@"; fi
echo $$ >> ${pids}/pg_dump
${trickle}`,
    mongodump: `#!/bin/bash
if [ "$1" = "--version" ]; then echo "mongodump version: 100.10.0"; exit 0; fi
trap '' TERM
echo $$ >> ${pids}/mongodump
${trickle}`,
    pg_restore: `#!/bin/bash
echo $$ >> ${pids}/pg_restore
exec -a "$0" sleep 600
`,
  });
}, 180_000);

afterAll(async () => {
  // Stand-ins a broken runner left behind: only the ones this test started, by their ids.
  for (const name of bin && existsSync(pids) ? readdirSync(pids) : []) killStandIns(name);
  for (const dir of [pids, bin?.dir]) if (dir) rmSync(dir, { recursive: true, force: true });
  runner?.remove();
  await s3?.stop();
  pg?.stop();
});

const target = (name: string, database: string) => ({ name, engine: "postgres", host: pg.host, port: pg.port, database, user: pg.user, passwordEnv: "PG_PW" });

function env(tmp: string): NodeJS.ProcessEnv {
  return {
    PATH: bin.path,
    // Where the runner's private files go (mongodump's config, downloads): checked empty afterwards.
    TMPDIR: tmp,
    STAGE: stage,
    ...s3.env,
    S3_PART_SIZE_MB: "5",
    PG_PW: pg.password,
    MONGO_URI: "mongodb://backup:mongo-Secret-1@127.0.0.1:1/events",
    BACKUP_TARGETS: JSON.stringify([
      target("quick", "quickdb"),
      target("slow", "slowdb"),
      { name: "events", engine: "mongodb", uriEnv: "MONGO_URI", database: "events" },
    ]),
  };
}

/** The ids of every stand-in of `tool` started so far, the latest last. */
const pidsOf = (tool: string) => readFileSync(join(pids, tool), "utf8").trim().split("\n").map(Number);
/** Whether the latest stand-in for `tool` still runs (its command line names the stand-in's file; exec -a keeps it for pg_restore's sleep). */
const standInRuns = (tool: string) => isRunning(pidsOf(tool).at(-1)!, join(bin.dir, tool));
function killStandIns(tool: string): void {
  for (const pid of pidsOf(tool)) if (isRunning(pid, join(bin.dir, tool))) process.kill(pid, "SIGKILL");
}

describe("SIGTERM during a backup", () => {
  let tmp: string;
  let result: { code: number | null; signal: NodeJS.Signals | null; stderr: string };
  let lines: Record<string, unknown>[];
  let stopSeconds: number;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "db-backup-runner-tmp-"));
    const run = startRunner(runner, ["backup"], env(tmp));
    lines = run.lines;
    try {
      await waitUntil(
        "'quick' is stored and 'slow' and 'events' have each uploaded a part",
        () => lines.some((l) => l.msg === "backup stored" && l.target === "quick") && uploadedParts(s3, `${stage}/postgres/slow/`) >= 1 && uploadedParts(s3, `${stage}/mongodb/events/`) >= 1,
      );
    } catch (err) {
      run.kill("SIGKILL");
      throw new Error(`${(err as Error).message}; runner wrote: ${JSON.stringify(lines)}`);
    }
    const sent = Date.now();
    run.kill("SIGTERM");
    result = await run.exited;
    stopSeconds = (Date.now() - sent) / 1000;
  }, 120_000);

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("exits 143 (128 + SIGTERM) within a few seconds, well inside the task's 120 s stopTimeout", () => {
    expect(result).toMatchObject({ code: 143, signal: null });
    // The stand-in mongodump ignores SIGTERM: it takes the SIGKILL after the grace period.
    expect(stopSeconds).toBeLessThan(stopGraceMs / 1000 + 5);
  });

  it("stops every dump tool still running, the one that ignores SIGTERM too", () => {
    expect(standInRuns("pg_dump")).toBe(false);
    expect(standInRuns("mongodump")).toBe(false);
  });

  it("aborts the uploads in flight: no upload left open, nothing at the stopped targets' keys, no manifest", async () => {
    expect(await s3.openUploads()).toEqual([]);
    expect(await storedKeys(s3.env, `${stage}/postgres/slow/`)).toEqual([]);
    expect(await storedKeys(s3.env, `${stage}/mongodb/events/`)).toEqual([]);
  });

  it("keeps the target that was already stored, with its manifest", async () => {
    const keys = await storedKeys(s3.env, `${stage}/postgres/quick/`);
    expect(keys).toHaveLength(2);
    expect(keys.filter((k) => k.endsWith(".manifest.json"))).toHaveLength(1);
  });

  it("logs one line per stopped target, and the failure metrics as for any failed target", () => {
    const stopped = lines.filter((l) => l.msg === "backup stopped by a signal");
    expect(stopped.map((l) => [l.level, l.target, l.engine, l.signal]).sort()).toEqual([
      ["error", "events", "mongodb", "SIGTERM"],
      ["error", "slow", "postgres", "SIGTERM"],
    ]);
    const summaries = lines.filter((l) => String(l.msg).startsWith("summary:"));
    expect(summaries.map((l) => [l.target, l.BackupSuccess])).toEqual([["quick", 1], ["slow", 0], ["events", 0]]);
    for (const s of summaries.filter((l) => l.BackupSuccess === 0)) {
      expect(s).toMatchObject({ level: "error", msg: "summary: backup FAILED", Stage: stage, BackupBytes: 0, error: "stopped by SIGTERM before it was stored" });
      expect(s._aws).toMatchObject({ CloudWatchMetrics: [{ Namespace: "DbBackup", Dimensions: [["Stage", "Target"]] }] });
    }
    expect(lines.at(-1)).toMatchObject({ msg: "backup run finished", succeeded: 1, failed: 2, stoppedBy: "SIGTERM" });
    expect(JSON.stringify(lines)).not.toContain(pg.password);
    expect(JSON.stringify(lines)).not.toContain("mongo-Secret-1");
  });

  it("removes its private files (mongodump's connection-string file)", () => {
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe("a second SIGTERM", () => {
  it("exits at once, without waiting for a tool that ignores the first", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "db-backup-runner-tmp-"));
    try {
      const e = { ...env(tmp), STAGE: "sig2", BACKUP_TARGETS: JSON.stringify([{ name: "events", engine: "mongodb", uriEnv: "MONGO_URI", database: "events" }]) };
      const run = startRunner(runner, ["backup"], e);
      await waitUntil("'events' has uploaded a part", () => uploadedParts(s3, "sig2/mongodb/events/") >= 1);
      const sent = Date.now();
      run.kill("SIGTERM");
      await waitUntil("the first SIGTERM is logged", () => run.lines.some((l) => l.msg === "SIGTERM received: stopping"));
      run.kill("SIGTERM");
      expect(await run.exited).toMatchObject({ code: 143, signal: null });
      expect(Date.now() - sent).toBeLessThan(stopGraceMs);
      // What "at once" costs: the upload is left to the bucket's lifecycle rule for incomplete uploads.
      expect((await s3.openUploads()).filter((k) => k.startsWith("sig2/"))).toHaveLength(1);
    } finally {
      killStandIns("mongodump"); // the runner did not wait for it (in a task, it goes with the container)
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("a stop while targets wait for their turn (BACKUP_CONCURRENCY)", () => {
  it("does not start them, and reports them stopped with their failure metrics", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "db-backup-runner-tmp-"));
    const stop = new AbortController();
    try {
      const e = {
        ...env(tmp),
        STAGE: "sigwait",
        BACKUP_CONCURRENCY: "1",
        BACKUP_TARGETS: JSON.stringify([target("slow", "slowdb"), target("quick", "quickdb")]),
      };
      const watching = setInterval(() => {
        if (uploadedParts(s3, "sigwait/postgres/slow/") >= 1) stop.abort("SIGTERM");
      }, 100);
      const run = await runCli(["backup"], e, stop.signal).finally(() => clearInterval(watching));
      expect(run.code).toBe(143);
      expect(run.lines.filter((l) => l.msg === "backup started").map((l) => l.target)).toEqual(["slow"]);
      expect(run.lines.filter((l) => l.msg === "backup stopped by a signal").map((l) => l.target)).toEqual(["slow", "quick"]);
      expect(run.lines.filter((l) => String(l.msg).startsWith("summary:")).map((l) => [l.target, l.BackupSuccess])).toEqual([["slow", 0], ["quick", 0]]);
      expect(await storedKeys(s3.env, "sigwait/")).toEqual([]);
      expect((await s3.openUploads()).filter((k) => k.startsWith("sigwait/"))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe.each([
  ["verify", ["verify", "--deep"]],
  ["restore", ["restore", "--target", "quick", "--database", "quick_restored"]],
])("SIGTERM during %s", (command, argv) => {
  it("stops pg_restore, removes the download, and exits 143", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "db-backup-runner-tmp-"));
    try {
      const started = () => (existsSync(join(pids, "pg_restore")) ? pidsOf("pg_restore").length : 0);
      const before = started();
      // The backup stored by the test above; pg_restore is the stand-in that never ends.
      const run = startRunner(runner, argv, env(tmp));
      await waitUntil("pg_restore runs", () => started() > before);
      expect(readdirSync(tmp)).toHaveLength(1); // the private download directory
      const sent = Date.now();
      run.kill("SIGTERM");
      const result = await run.exited;
      expect(result).toMatchObject({ code: 143, signal: null });
      expect(Date.now() - sent).toBeLessThan(stopGraceMs + 5_000);
      expect(standInRuns("pg_restore")).toBe(false);
      expect(readdirSync(tmp)).toEqual([]);
      expect(run.lines.at(-1)).toMatchObject({ level: "error", msg: `${command} stopped by SIGTERM` });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
