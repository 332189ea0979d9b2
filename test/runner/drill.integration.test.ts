/**
 * The restore drill for real: backups of a real PostgreSQL made by the runner, stored in the local S3,
 * and drilled into the throwaway server the runner starts (this machine's PostgreSQL 15: initdb,
 * pg_ctl, postgres, pg_restore), as root here, so through `runuser -u postgres` as the demo's cluster.
 * The server's programs are reached through PG_BIN_DIR, a directory of links to the real ones with a
 * pg_restore wrapper that writes down where it restores to (and, for the SIGTERM test, never ends).
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync, existsSync, writeFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DrillRecord } from "../../image/src/drill";
import { postgresBinDir } from "../../image/src/postgresServer";
import { stopGraceMs } from "../../image/src/proc";
import { startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { createSampleDatabase } from "../../scripts/lib/sampleDatabase";
import { runCli, storedKeys, storedObject, type Run } from "../support/runner";
import { compileRunner, isRunning, startRunner, waitUntil } from "../support/runnerProcess";

let pg: LocalPostgres;
let s3: LocalS3;
/** Where the pg_restore wrapper writes PGHOST (the throwaway server's socket directory) and its pid. */
let seen: string;
/** PG_BIN_DIR: the real server's programs, and pg_restore wrapped. */
let bin: string;
/** The same, with a pg_restore that never ends. */
let stuckBin: string;
let stageNo = 0;

function binDir(pgRestore: string): string {
  const dir = mkdtempSync(join(tmpdir(), "db-backup-drillbin-"));
  chmodSync(dir, 0o755);
  const real = postgresBinDir();
  for (const name of readdirSync(real)) if (name !== "pg_restore") symlinkSync(join(real, name), join(dir, name));
  writeFileSync(join(dir, "pg_restore"), pgRestore, { mode: 0o755 });
  return dir;
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startLocalPostgres(), startLocalS3()]);
  seen = mkdtempSync(join(tmpdir(), "db-backup-drillseen-"));
  const record = `echo "$PGHOST" > ${seen}/pghost\necho $$ > ${seen}/pg_restore\n`;
  bin = binDir(`#!/bin/bash\n${record}exec ${join(postgresBinDir(), "pg_restore")} "$@"\n`);
  stuckBin = binDir(`#!/bin/bash\n${record}exec -a "$0" sleep 600\n`);
}, 120_000);

afterAll(async () => {
  for (const dir of [seen, bin, stuckBin]) if (dir) rmSync(dir, { recursive: true, force: true });
  await s3?.stop();
  pg?.stop();
});

/** A private scratch directory for the drill (TMPDIR), reachable by the postgres user the server runs as, as /tmp is. */
function scratchDir(): string {
  const scratch = mkdtempSync(join(tmpdir(), "db-backup-drilltmp-"));
  chmodSync(scratch, 0o755);
  return scratch;
}

/** A drill with TMPDIR a scratch directory of its own, and what it left there. */
async function drill(e: NodeJS.ProcessEnv): Promise<Run & { left: string[]; scratch: string }> {
  const scratch = scratchDir();
  try {
    const run = await runCli(["drill"], { ...e, TMPDIR: scratch });
    return { ...run, left: readdirSync(scratch), scratch };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A stage of its own; the target `database` by the blog's variables (no secret is needed to drill, but a laptop has it). */
function env(database: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...s3.env, STAGE: `drill${++stageNo}`, PG_BIN_DIR: bin, PG_DB_HOST: `${pg.host}:${pg.port}`, PG_DB_NAME: database, PG_DB_USER: pg.user, PG_DB_PASSWORD: pg.password, ...extra };
}

async function records(e: NodeJS.ProcessEnv, target: string): Promise<DrillRecord[]> {
  const keys = (await storedKeys(e, `${e.STAGE}/drills/${target}/`)).sort();
  return Promise.all(keys.map(async (k) => JSON.parse((await storedObject(e, k)).toString()) as DrillRecord));
}

/** Exact rows per table in the source, named as the drill names them. */
function sourceCounts(database: string): Record<string, number> {
  const tables = pg.psql("SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1", database).split("\n");
  return Object.fromEntries(tables.map((t) => [t, Number(pg.psql(`SELECT count(*) FROM ${t}`, database))]));
}

const summary = (run: Run) => run.lines.find((l) => String(l.msg).startsWith("summary: drill"))!;

describe("a drill of a good backup", () => {
  let e: NodeJS.ProcessEnv;
  let run: Run;
  let scratchLeft: string[];
  let socketDir: string;

  beforeAll(async () => {
    createSampleDatabase(pg, "shop");
    e = env("shop");
    expect((await runCli(["backup"], e)).code).toBe(0);
    const drilled = await drill(e);
    run = drilled;
    scratchLeft = drilled.left;
    socketDir = readFileSync(join(seen, "pghost"), "utf8").trim();
    expect(socketDir).toMatch(new RegExp(`^${drilled.scratch}/db-backup-drill-`));
  }, 120_000);

  it("succeeds, and writes a record with every table's exact rows, the sizes and the RTO", async () => {
    expect({ code: run.code, errors: run.lines.filter((l) => l.level === "error") }).toEqual({ code: 0, errors: [] });
    const [record] = await records(e, "shop");
    const manifestKey = (await storedKeys(e, `${e.STAGE}/postgres/shop/`)).find((k) => k.endsWith(".manifest.json"))!;
    const manifest = JSON.parse((await storedObject(e, manifestKey)).toString());
    expect(record).toMatchObject({
      formatVersion: 1,
      stage: e.STAGE,
      target: "shop",
      engine: "postgres",
      backupKey: manifest.key,
      backupStartedAt: manifest.startedAt,
      success: true,
      problems: [],
      pointInTime: true,
      serverVersion: pg.psql("SHOW server_version"),
    });
    expect(record.counts).toEqual(sourceCounts("shop"));
    expect(record.counts).toMatchObject({ "sales.orders": 5000, "sales.customers": 500, '"Odd Schema"."Mixed Case ""Quoted"" Table"': 3 });
    expect(record.restoredRows).toBe(Object.values(record.counts).reduce((a, b) => a + b, 0));
    expect(Object.keys(record.sizes).sort()).toEqual(["Odd Schema", "public", "sales"]);
    expect(record.sizes.sales).toBeGreaterThan(500_000);
    expect(record.restoreSeconds).toBeGreaterThan(record.downloadSeconds!);
  });

  it("logs one summary line in embedded metric format", () => {
    const line = summary(run);
    expect(line).toMatchObject({ level: "info", msg: "summary: drill passed", Stage: e.STAGE, Target: "shop", DrillSuccess: 1, RestoredRows: 5504 });
    expect(line._aws).toMatchObject({ CloudWatchMetrics: [{ Namespace: "DbBackup", Dimensions: [["Stage", "Target"]] }] });
    expect(line.RestoreSeconds).toBeGreaterThan(0);
    expect(line.BackupAgeHours).toBeLessThan(0.1);
    expect(run.text).not.toContain(pg.password);
  });

  it("leaves nothing behind: the throwaway cluster and the download are gone", () => {
    expect(existsSync(socketDir)).toBe(false);
    expect(scratchLeft).toEqual([]);
  });
});

describe("a table dropped and one emptied between two backups", () => {
  it("fails the second drill, naming both, and records it as failed", async () => {
    createSampleDatabase(pg, "shrinking");
    const e = env("shrinking", { DRILL_MAX_ROW_LOSS_PERCENT: "50" });
    expect((await runCli(["backup"], e)).code).toBe(0);
    expect((await drill(e)).code).toBe(0);

    pg.psql("DROP TABLE public.documents; DELETE FROM sales.orders WHERE id > 1000; DELETE FROM sales.customers WHERE id > 400 AND id NOT IN (SELECT customer_id FROM sales.orders)", "shrinking");
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a key of its own (keys have seconds)
    expect((await runCli(["backup"], e)).code).toBe(0);
    const run = await drill(e);
    expect(run.left).toEqual([]);

    expect(run.code).toBe(1);
    const problems = [
      "table public.documents is gone (the previous drill restored it with 1 rows)",
      "table sales.orders lost 80% of its rows (5000 → 1000), more than DRILL_MAX_ROW_LOSS_PERCENT=50",
    ];
    expect(summary(run)).toMatchObject({ level: "error", msg: "summary: drill FAILED", DrillSuccess: 0, problems });
    const [first, second] = await records(e, "shrinking");
    expect(first.success).toBe(true);
    expect(second).toMatchObject({ success: false, problems, counts: { "sales.orders": 1000 } }); // customers lost 20%: within 50
  }, 120_000);
});

describe("a configured target without any backup", () => {
  it("is a failed drill, with a record, while the others are drilled", async () => {
    createSampleDatabase(pg, "present");
    const e = env("present", {
      // The verifier task's shape: targets named, their secrets not given.
      BACKUP_TARGETS: JSON.stringify([{ name: "billing", engine: "postgres", host: pg.host, database: "billing", user: "backup", passwordEnv: "PG_PASSWORD_BILLING" }]),
    });
    expect((await runCli(["backup"], { ...e, PG_PASSWORD_BILLING: "unused", BACKUP_TARGETS: "[]" })).code).toBe(0);
    const run = await drill(e);
    expect(run.code).toBe(1);
    expect(run.lines.filter((l) => String(l.msg).startsWith("summary: drill")).map((l) => [l.target, l.DrillSuccess])).toEqual([["present", 1], ["billing", 0]]);
    const [billing] = await records(e, "billing");
    expect(billing).toMatchObject({ success: false, backupKey: null, problems: [`no backup of postgres target 'billing' under s3://${s3.bucket}/${e.STAGE}/postgres/billing/`] });
  }, 120_000);
});

describe("SIGTERM during the drill's restore", () => {
  it("stops pg_restore and the throwaway server, removes their files, and exits 143", async () => {
    createSampleDatabase(pg, "stopped");
    const e = env("stopped", { PG_BIN_DIR: stuckBin });
    expect((await runCli(["backup"], e)).code).toBe(0);
    rmSync(join(seen, "pg_restore"), { force: true });
    const runner = await compileRunner();
    const scratch = scratchDir();
    const run = startRunner(runner, ["drill"], { ...e, TMPDIR: scratch });
    try {
      await waitUntil("pg_restore runs", () => existsSync(join(seen, "pg_restore")), 60_000);
      const socketDir = readFileSync(join(seen, "pghost"), "utf8").trim();
      const postmaster = Number(readFileSync(join(socketDir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
      const pgRestore = Number(readFileSync(join(seen, "pg_restore"), "utf8"));
      // Its command line names its data directory: a pid given since to another process is not taken for it.
      expect(isRunning(postmaster, join(socketDir, "data"))).toBe(true);
      // Its dynamic shared memory is a file in its data directory, not a segment in /dev/shm (which a
      // Fargate task cannot size, and which is outside the scratch volume).
      expect(readdirSync(join(socketDir, "data", "pg_dynshmem"))).toContainEqual(expect.stringMatching(/^mmap\.\d+$/));
      const sent = Date.now();
      run.kill("SIGTERM");
      const result = await run.exited;
      expect(result).toMatchObject({ code: 143, signal: null });
      expect(Date.now() - sent).toBeLessThan(stopGraceMs + 30_000);
      expect(isRunning(postmaster, join(socketDir, "data"))).toBe(false);
      expect(isRunning(pgRestore, join(stuckBin, "pg_restore"))).toBe(false);
      expect(readdirSync(scratch)).toEqual([]);
      expect(summary({ code: 143, lines: run.lines, text: "", printed: "" })).toMatchObject({ DrillSuccess: 0, problems: ["stopped by SIGTERM before it finished"] });
      expect(run.lines.at(-1)).toMatchObject({ msg: "drill run finished", stoppedBy: "SIGTERM" });
    } finally {
      run.kill("SIGTERM"); // a failed expectation above: the drill cleans up after itself all the same
      await run.exited;
      runner.remove();
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 180_000);
});

describe("the command line", () => {
  it("bad settings exit 2, naming the variable or the option", async () => {
    const e = env("shop");
    const bad = await runCli(["drill"], { ...e, DRILL_MAX_ROW_LOSS_PERCENT: "lots" });
    expect(bad.code).toBe(2);
    expect(bad.lines[0].msg).toMatch(/^invalid settings: DRILL_MAX_ROW_LOSS_PERCENT='lots' is not a percentage from 0 to 100/);
    const unknown = await runCli(["drill", "--target", "nope"], e);
    expect(unknown.code).toBe(2);
    expect(unknown.lines[0].msg).toMatch(/--target 'nope' is not one of the targets BACKUP_TARGETS configures \(shop\)/);
  });

  it("a stage with no backup at all fails the run", async () => {
    const e = { ...s3.env, PATH: process.env.PATH, STAGE: "nothing-here" };
    const run = await runCli(["drill"], e);
    expect(run.code).toBe(1);
    expect(run.lines.at(-1)).toMatchObject({ level: "error", msg: "no backup found to drill", stage: "nothing-here" });
  });

  it("a scratch directory it cannot use is a failed drill with its record, not a crash", async () => {
    createSampleDatabase(pg, "noscratch");
    const e = env("noscratch");
    expect((await runCli(["backup"], e)).code).toBe(0);
    const run = await runCli(["drill"], { ...e, TMPDIR: "/nonexistent/scratch" });
    expect(run.code).toBe(1);
    expect(summary(run)).toMatchObject({ DrillSuccess: 0, problems: [expect.stringMatching(/ENOENT.*mkdtemp '\/nonexistent\/scratch\/db-backup-drill-/)] });
    const [record] = await records(e, "noscratch");
    expect(record).toMatchObject({ success: false, restoreSeconds: null });
  }, 60_000);
});
