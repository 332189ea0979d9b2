/** The drill's pure parts: the comparison, the record, which targets are drilled, the settings, the metric line, and PostgreSQL's rules. */

import type { Manifest } from "../../image/src/backup";
import { drillJobs, drillRecord, drillTargets, isBaseline, rowLossProblems, type DrillOutcome, type DrillRecord } from "../../image/src/drill";
import { drillPgRestoreArgs, drillServerConfig, explainPgRestoreError, versionProblem } from "../../image/src/drillPostgres";
import { parseManifestKey, type BackupRef } from "../../image/src/keys";
import { logDrillMetrics, setLogSink } from "../../image/src/log";
import { parseDrillSettings, SettingsError } from "../../image/src/settings";

const ref = (name: string, time = "2026-11-29T06-00-00Z", engine = "postgres"): BackupRef =>
  parseManifestKey(`dev/${engine}/${name}/${time}${engine === "postgres" ? ".dump" : ".archive.gz"}.manifest.json`)!;

describe("rowLossProblems", () => {
  const baseline = { "sales.orders": 5000, "sales.customers": 500, "public.documents": 1, "public.empty": 0 };

  it("names a table that is gone and one that lost more than the threshold, and nothing else", () => {
    const counts = { "sales.orders": 4000, "sales.customers": 460, "public.empty": 0, "public.new": 7 };
    expect(rowLossProblems("postgres", baseline, counts, 10)).toEqual([
      "table public.documents is gone (the previous drill restored it with 1 rows)",
      "table sales.orders lost 20% of its rows (5000 → 4000), more than DRILL_MAX_ROW_LOSS_PERCENT=10",
    ]);
  });

  it("takes the threshold as given: 8% lost passes at 10 and fails at 5; exactly the threshold passes", () => {
    expect(rowLossProblems("postgres", { t: 500 }, { t: 460 }, 10)).toEqual([]);
    expect(rowLossProblems("postgres", { t: 500 }, { t: 460 }, 5)).toHaveLength(1);
    expect(rowLossProblems("postgres", { t: 500 }, { t: 450 }, 10)).toEqual([]);
    expect(rowLossProblems("postgres", { t: 500 }, { t: 0 }, 100)).toEqual([]);
  });

  it("growth, new tables and an empty table staying empty are no problem; MongoDB's are collections", () => {
    expect(rowLossProblems("postgres", { a: 10, b: 0 }, { a: 1000, b: 0, c: 1 }, 0)).toEqual([]);
    expect(rowLossProblems("mongodb", { "shop.events": 10 }, {}, 10)).toEqual(["collection shop.events is gone (the previous drill restored it with 10 rows)"]);
  });
});

const manifest = { startedAt: "2026-11-29T06:00:00.250Z", tool: "pg_dump (PostgreSQL) 18.1", pointInTime: true } as Manifest;

function outcome(extra: Partial<DrillOutcome> = {}): DrillOutcome {
  return { stage: "dev", target: "app", engine: "postgres", ref: ref("app"), drilledAt: new Date("2026-11-30T06:00:00.250Z"), problems: [], ...extra };
}

describe("drillRecord", () => {
  it("a restore with nothing wrong: success, RTO = download + restore, rows summed, age from the manifest's start", () => {
    const record = drillRecord(
      outcome({ manifest, downloadSeconds: 1.234, restoreOnlySeconds: 10.5, restore: { counts: { a: 3, b: 4 }, sizes: { public: 8192 }, serverVersion: "18.1" } }),
    );
    expect(record).toEqual({
      formatVersion: 1,
      stage: "dev",
      target: "app",
      engine: "postgres",
      backupKey: "dev/postgres/app/2026-11-29T06-00-00Z.dump",
      backupStartedAt: "2026-11-29T06:00:00.250Z",
      drilledAt: "2026-11-30T06:00:00.250Z",
      success: true,
      problems: [],
      downloadSeconds: 1.23,
      restoreSeconds: 11.73,
      restoredRows: 7,
      backupAgeHours: 24,
      counts: { a: 3, b: 4 },
      sizes: { public: 8192 },
      serverVersion: "18.1",
      pointInTime: true,
    } satisfies DrillRecord);
  });

  it("a restore with a problem is a failed drill that keeps its counts and RTO", () => {
    const record = drillRecord(outcome({ manifest, downloadSeconds: 1, restoreOnlySeconds: 2, restore: { counts: { a: 1 }, sizes: {}, serverVersion: "18.1" }, problems: ["table a lost …"] }));
    expect(record).toMatchObject({ success: false, problems: ["table a lost …"], restoreSeconds: 3, restoredRows: 1, counts: { a: 1 } });
  });

  it("a drill that failed before restoring: no RTO, no counts; the age from the key when no manifest was read", () => {
    const record = drillRecord(outcome({ problems: ["s3://… does not match its manifest"] }));
    expect(record).toMatchObject({ success: false, backupStartedAt: "2026-11-29T06:00:00.000Z", downloadSeconds: null, restoreSeconds: null, restoredRows: null, counts: {}, pointInTime: null });
    expect(record.backupAgeHours).toBeCloseTo(24, 1);
  });

  it("a target without a backup: no backup key, no age, and never a success even with no problem listed", () => {
    expect(drillRecord(outcome({ ref: undefined }))).toMatchObject({ success: false, backupKey: null, backupStartedAt: null, backupAgeHours: null });
  });
});

describe("isBaseline", () => {
  const record = (success: boolean, backupStartedAt: string | null) => ({ success, backupStartedAt }) as DrillRecord;
  it("is a successful drill of this backup or an older one", () => {
    expect(isBaseline(record(true, "2026-11-29T06:00:00Z"), "2026-11-30T06:00:00Z")).toBe(true);
    expect(isBaseline(record(true, "2026-11-30T06:00:00Z"), "2026-11-30T06:00:00Z")).toBe(true);
    expect(isBaseline(record(false, "2026-11-29T06:00:00Z"), "2026-11-30T06:00:00Z")).toBe(false);
    expect(isBaseline(record(true, "2026-12-01T06:00:00Z"), "2026-11-30T06:00:00Z")).toBe(false);
    expect(isBaseline(record(true, null), "2026-11-30T06:00:00Z")).toBe(false);
  });
});

describe("drillTargets", () => {
  const latest = [ref("app"), ref("old"), ref("events", "2026-11-29T06-00-00Z", "mongodb")];

  it("every configured target, one without a backup included; backups of targets no longer configured are not drilled", () => {
    const targets = drillTargets([{ engine: "postgres", name: "app" }, { engine: "postgres", name: "billing" }, { engine: "mongodb", name: "events" }], latest);
    expect(targets.map((t) => [t.engine, t.name, t.ref?.key ?? null])).toEqual([
      ["postgres", "app", "dev/postgres/app/2026-11-29T06-00-00Z.dump"],
      ["postgres", "billing", null],
      ["mongodb", "events", "dev/mongodb/events/2026-11-29T06-00-00Z.archive.gz"],
    ]);
  });

  it("with none configured, every target that has a backup; --target narrows either", () => {
    expect(drillTargets([], latest).map((t) => t.name)).toEqual(["app", "old", "events"]);
    expect(drillTargets([], latest, "old").map((t) => t.name)).toEqual(["old"]);
    expect(drillTargets([{ engine: "postgres", name: "app" }], latest, "app").map((t) => t.name)).toEqual(["app"]);
  });
});

describe("parseDrillSettings", () => {
  const env = {
    STAGE: "dev",
    S3_BUCKET: "backups-dev",
    AWS_REGION: "ap-southeast-1",
    BACKUP_TARGETS: JSON.stringify([{ name: "app", engine: "postgres", host: "db", database: "app", user: "backup", passwordEnv: "PG_PASSWORD_APP" }]),
  };

  it("reads the targets without their secrets (the verifier task has none) and defaults the threshold to 10", () => {
    expect(parseDrillSettings(env)).toMatchObject({ stage: "dev", maxRowLossPercent: 10, targets: [{ name: "app", engine: "postgres" }] });
    expect(parseDrillSettings({ ...env, DRILL_MAX_ROW_LOSS_PERCENT: "2.5" }).maxRowLossPercent).toBe(2.5);
    expect(parseDrillSettings({ STAGE: "dev", S3_BUCKET: "backups-dev" }).targets).toEqual([]);
  });

  it("refuses a threshold that is not a percentage, naming the variable", () => {
    for (const bad of ["ten", "-5", "150", "10%"]) {
      expect(() => parseDrillSettings({ ...env, DRILL_MAX_ROW_LOSS_PERCENT: bad })).toThrow(SettingsError);
      expect(() => parseDrillSettings({ ...env, DRILL_MAX_ROW_LOSS_PERCENT: bad })).toThrow(new RegExp(`^DRILL_MAX_ROW_LOSS_PERCENT='${bad}' is not a percentage from 0 to 100`));
    }
  });
});

describe("logDrillMetrics", () => {
  function line(m: Parameters<typeof logDrillMetrics>[1]): Record<string, any> {
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    try {
      logDrillMetrics("summary", m);
    } finally {
      restore();
    }
    return JSON.parse(lines[0]);
  }

  it("is an embedded-metric line: DbBackup, by Stage and Target, DrillSuccess, RestoreSeconds, RestoredRows, BackupAgeHours", () => {
    const l = line({ stage: "dev", target: "app", engine: "postgres", success: true, restoreSeconds: 12.5, restoredRows: 5503, backupAgeHours: 3.2 });
    expect(l._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: "DbBackup",
        Dimensions: [["Stage", "Target"]],
        Metrics: [
          { Name: "DrillSuccess", Unit: "Count" },
          { Name: "RestoreSeconds", Unit: "Seconds" },
          { Name: "RestoredRows", Unit: "Count" },
          { Name: "BackupAgeHours", Unit: "None" },
        ],
      },
    ]);
    expect(l).toMatchObject({ level: "info", Stage: "dev", Target: "app", DrillSuccess: 1, RestoreSeconds: 12.5, RestoredRows: 5503, BackupAgeHours: 3.2 });
  });

  it("a drill that did not restore sends DrillSuccess 0 and no RTO or row count (not a 0 that would pull the RTO graph down)", () => {
    const l = line({ stage: "dev", target: "app", engine: "postgres", success: false, backupAgeHours: 30 });
    expect(l.level).toBe("error");
    expect(l._aws.CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name)).toEqual(["DrillSuccess", "BackupAgeHours"]);
    expect(l.DrillSuccess).toBe(0);
    expect(l).not.toHaveProperty("RestoreSeconds");
    expect(l).not.toHaveProperty("RestoredRows");
  });
});

describe("the PostgreSQL drill's rules", () => {
  it("refuses, before restoring, a backup from a newer pg_dump than its server", () => {
    expect(versionProblem("pg_dump (PostgreSQL) 18.1 (Debian 18.1-1.pgdg120+2)", 15)).toMatch(/^the backup was written by pg_dump 18 .* and the drill's PostgreSQL server is 15: .*postgresql-18 or set PG_BIN_DIR/);
    expect(versionProblem("pg_dump (PostgreSQL) 15.14", 18)).toBeUndefined();
    expect(versionProblem("pg_dump (PostgreSQL) 18.1", 18)).toBeUndefined();
    expect(versionProblem(null, 18)).toBeUndefined();
  });

  it("says plainly when pg_restore cannot read a newer archive", () => {
    const stderr = "pg_restore exited with status 1: pg_restore: error: unsupported version (1.16) in file header";
    expect(explainPgRestoreError(stderr, "pg_dump (PostgreSQL) 18.1")).toBe(
      "this pg_restore cannot read archive format 1.16, written by a newer pg_dump (pg_dump (PostgreSQL) 18.1): drill with a PostgreSQL at least as new as the pg_dump (PG_BIN_DIR)",
    );
    expect(explainPgRestoreError("pg_restore: error: could not execute query: ERROR: extension \"postgis\" is not available", null)).toBeUndefined();
  });

  it("restores without the source's owners and grants, stopping at the first error, in parallel", () => {
    expect(drillPgRestoreArgs("/tmp/x/app.dump", 4)).toEqual(["--exit-on-error", "--no-owner", "--no-acl", "--jobs=4", "--dbname=drill", "/tmp/x/app.dump"]);
  });

  it("runs its server without TCP, with its socket and shared memory in the drill's directory (a quote in the path stays one value)", () => {
    const config = drillServerConfig("/tmp/it's/postgres");
    expect(config).toContain("listen_addresses = ''\n");
    expect(config).toContain("unix_socket_directories = '/tmp/it''s/postgres'\n");
    expect(config).toContain("dynamic_shared_memory_type = mmap\n");
  });

  it("uses the task's CPUs for pg_restore --jobs: 1 on the verifier's one vCPU, at most 8", () => {
    expect([drillJobs(1), drillJobs(2), drillJobs(64)]).toEqual([1, 2, 8]);
  });
});
