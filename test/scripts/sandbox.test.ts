/**
 * `npm run sandbox` as a person uses it: started in one terminal, its printed `export` lines pasted into
 * another, where backup, verify and restore run (here: the compiled runner in processes of their own,
 * with nothing but those lines, PATH and the image's NODE_PATH); then Ctrl-C, after which nothing of it
 * may be left running or on disk.
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { exitOf } from "../../image/src/proc";
import type { LocalPostgres } from "../../scripts/lib/localPostgres";
import { compareDatabases } from "../../scripts/lib/sampleDatabase";
import { exportLines, npmCommand, sandboxCommands, shellQuote } from "../../scripts/lib/sandbox";
import { digestsCover, largeObjects } from "../../scripts/lib/sampleDatabase";
import { repoRoot, runProcess } from "../support/runner";
import { compileRunner, waitUntil, type CompiledRunner } from "../support/runnerProcess";

/** The variables a POSIX shell has after running `lines`, read back from a process it starts. */
async function shellReads(lines: string, baseEnv: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const res = await runProcess("sh", ["-c", `${lines}\nexec "$NODE_BIN" -e 'process.stdout.write(JSON.stringify(process.env))'`], { ...baseEnv, NODE_BIN: process.execPath });
  if (res.status !== 0) throw new Error(`sh could not read the lines: ${res.stderr}`);
  return JSON.parse(res.stdout) as Record<string, string>;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

describe("exportLines", () => {
  it("quotes values so a shell reads back exactly what was printed", async () => {
    const values = { PLAIN: "abc-1.2:3", JSON: '[{"a":"b c"}]', QUOTE: "it's $HOME `x` \\n", EMPTY: "" };
    const read = await shellReads(exportLines(values), { PATH: process.env.PATH });
    expect({ PLAIN: read.PLAIN, JSON: read.JSON, QUOTE: read.QUOTE, EMPTY: read.EMPTY }).toEqual(values);
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });
});

describe("how the demo and the sandbox word what they run", () => {
  it("types a command with its options after --, as npm passes them on", () => {
    expect([npmCommand(["backup"]), npmCommand(["verify", "--deep"])]).toEqual(["npm run backup", "npm run verify -- --deep"]);
  });
  it("counts tables apart from the large objects", () => {
    const digests = new Map([["a.t1", "1 rows"], ["a.t2", "2 rows"], ["b.t3", "0 rows"], ["c.t4", "9 rows"], [largeObjects, "1 objects"]]);
    expect(digestsCover(digests)).toBe("4 tables and the large objects");
    expect(digestsCover(new Map([["a.t1", "1 rows"]]))).toBe("1 table");
  });
});

describe("npm run sandbox", () => {
  let runner: CompiledRunner;
  beforeAll(async () => {
    runner = await compileRunner();
  }, 120_000);
  afterAll(() => runner?.remove());

  it("prints the exports that make backup, verify and restore work from another shell, and removes everything on Ctrl-C", async () => {
    const child = spawn(process.execPath, [require.resolve("tsx/cli"), join(repoRoot, "scripts", "sandbox.ts")], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = exitOf(child);
    try {
      await waitUntil("the sandbox prints its exports", () => /\n$/.test(stdout) && stdout.includes("BACKUP_TARGETS"), 90_000);
      expect(stdout.split("\n").filter(Boolean).every((line) => line.startsWith("export "))).toBe(true);

      // The second terminal: no variable of this process, only the pasted lines (and PATH, for the tools).
      const terminal = { PATH: process.env.PATH, ...runner.env };
      const vars = await shellReads(stdout, terminal);
      expect(Object.keys(vars)).toEqual(
        expect.arrayContaining(["STAGE", "S3_BUCKET", "AWS_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BACKUP_TARGETS", "PG_PASSWORD_SHOP"]),
      );
      const run = async (...args: string[]) => {
        const res = await runProcess("sh", ["-c", `${stdout}\nexec "$NODE_BIN" "$RUNNER_CLI" "$@"`, "runner", ...args], { ...terminal, NODE_BIN: process.execPath, RUNNER_CLI: runner.cli });
        const lines = res.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        return { ...res, lines };
      };

      // The commands the sandbox tells a person to run, as it words them.
      expect(sandboxCommands.map((argv) => stderr.includes(`  ${npmCommand(argv)}\n`))).toEqual(sandboxCommands.map(() => true));
      const [backupArgs, verifyArgs, restoreArgs] = sandboxCommands;
      const backup = await run(...backupArgs);
      expect({ status: backup.status, stderr: backup.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      expect(backup.lines.find((l) => l.msg === "backup run finished")).toBeDefined();

      const verify = await run(...verifyArgs);
      expect({ status: verify.status, stderr: verify.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      expect(verify.lines.filter((l) => l.msg === "verified").map((l) => l.target)).toEqual(["shop"]);

      const restore = await run(...restoreArgs);
      expect({ status: restore.status, stderr: restore.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      const [target] = JSON.parse(vars.BACKUP_TARGETS) as { host: string; port: number; user: string }[];
      const pg = {
        psql: (sql: string, database?: string) => {
          const { execFileSync } = require("node:child_process") as typeof import("node:child_process");
          return execFileSync("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], {
            env: { PATH: process.env.PATH, PGHOST: target.host, PGPORT: String(target.port), PGUSER: target.user, PGPASSWORD: vars.PG_PASSWORD_SHOP, PGDATABASE: database ?? "postgres" },
            encoding: "utf8",
          }).trim();
        },
      } as unknown as LocalPostgres;
      expect(compareDatabases(pg, "shop", "shop_restored")).toEqual([]);

      const clusterDir = /cluster in (\S+)/.exec(stderr)?.[1];
      const s3Dir = /files in (\S+)/.exec(stderr)?.[1];
      const s3Port = Number(new URL(vars.AWS_ENDPOINT_URL_S3).port);
      expect([clusterDir && existsSync(clusterDir), s3Dir && existsSync(s3Dir), await listening(target.port), await listening(s3Port)]).toEqual([true, true, true, true]);

      child.kill("SIGINT");
      expect((await exited).code).toBe(0);
      expect([existsSync(clusterDir!), existsSync(s3Dir!), await listening(target.port), await listening(s3Port)]).toEqual([false, false, false, false]);
      expect(stderr).toMatch(/SIGINT: stopped/);
    } finally {
      // A failed check still stops the sandbox the way a person would, so its cluster is removed too.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
      }
    }
  }, 240_000);
});
