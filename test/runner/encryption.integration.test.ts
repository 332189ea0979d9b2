/**
 * age encryption end to end, with the real age binary (Debian's), a real PostgreSQL cluster, pg_dump and
 * pg_restore, and the S3 protocol server on loopback: what S3 holds is ciphertext; verify and restore
 * decrypt with AGE_IDENTITY_FILE, refuse clearly without it, and a wrong identity restores nothing.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { compareDatabases, createSampleDatabase } from "../../scripts/lib/sampleDatabase";
import { fakeBin, runCli, storedKeys, storedObject, which } from "../support/runner";

let pg: LocalPostgres;
let s3: LocalS3;
let keysDir: string;
/** Two identities: the backup is encrypted for `ours` only. */
const identity = { ours: "", other: "" };
let recipient = "";
let stageNo = 0;

function newIdentity(name: string): string {
  const file = join(keysDir, name);
  execFileSync("age-keygen", ["-o", file], { stdio: "ignore" });
  return file;
}

beforeAll(async () => {
  pg = await startLocalPostgres();
  s3 = await startLocalS3();
  createSampleDatabase(pg, "shop");
  keysDir = mkdtempSync(join(tmpdir(), "db-backup-age-"));
  identity.ours = newIdentity("ours.txt");
  identity.other = newIdentity("other.txt");
  recipient = execFileSync("age-keygen", ["-y", identity.ours]).toString().trim();
});

afterAll(async () => {
  await s3?.stop();
  pg?.stop();
  rmSync(keysDir, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...s3.env,
    STAGE: `age${++stageNo}`,
    PG_DB_HOST: `${pg.host}:${pg.port}`,
    PG_DB_NAME: "shop",
    PG_DB_USER: pg.user,
    PG_DB_PASSWORD: pg.password,
    BACKUP_AGE_RECIPIENTS: recipient,
    ...extra,
  };
}

/** A fresh directory for the runner's private files (its TMPDIR), removed afterwards. */
async function inScratch(work: (scratch: string) => Promise<void>): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), "db-backup-age-scratch-"));
  try {
    await work(scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function databaseExists(name: string): boolean {
  return pg.psql(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`).trim() === "1";
}

describe("an encrypted backup", () => {
  let e: NodeJS.ProcessEnv;
  let key: string;

  beforeAll(async () => {
    e = env();
    const run = await runCli(["backup"], e);
    expect(run.code).toBe(0);
    key = (await storedKeys(e, `${e.STAGE}/`)).find((k) => !k.endsWith(".manifest.json"))!;
  });

  it("is stored as age ciphertext under a key ending in .age, and its manifest says for whom", async () => {
    expect(key).toMatch(/\/shop\/[^/]+\.dump\.age$/);
    const body = await storedObject(e, key);
    expect(body.subarray(0, 22).toString()).toBe("age-encryption.org/v1\n");
    expect(body.includes(Buffer.from("PGDMP"))).toBe(false); // pg_dump's custom-format magic is nowhere in it
    const manifest = JSON.parse((await storedObject(e, `${key}.manifest.json`)).toString());
    expect(manifest).toMatchObject({ encryption: { tool: "age", recipients: [recipient] }, bytes: body.length });
    expect(manifest.sha256).toBe(createHash("sha256").update(body).digest("hex"));
  });

  it("is verified, deeply, with the identity", async () => {
    const run = await runCli(["verify", "--deep"], { ...e, AGE_IDENTITY_FILE: identity.ours });
    expect(run.code).toBe(0);
    expect(run.lines.find((l) => l.msg === "verified")).toMatchObject({ key, detail: expect.stringContaining("every data block") });
  });

  it("restores with the identity into identical tables", async () => {
    const run = await runCli(["restore", "--database", "shop_from_age", "--create"], { ...e, AGE_IDENTITY_FILE: identity.ours });
    expect(run.code).toBe(0);
    expect(compareDatabases(pg, "shop", "shop_from_age")).toEqual([]);
  });

  it("is refused without an identity, with the variable to set, and nothing is restored", async () => {
    const verify = await runCli(["verify"], e);
    expect(verify.code).toBe(1);
    expect(verify.text).toContain("is encrypted with age: set AGE_IDENTITY_FILE");
    const restore = await runCli(["restore", "--database", "shop_no_identity", "--create"], e);
    expect(restore.code).toBe(2);
    expect(restore.text).toContain("AGE_IDENTITY_FILE");
    expect(databaseExists("shop_no_identity")).toBe(false);
  });

  it("is refused with a wrong identity, which restores nothing and leaves no file behind", async () => {
    await inScratch(async (scratch) => {
      const run = await runCli(["restore", "--database", "shop_wrong_identity", "--create"], { ...e, AGE_IDENTITY_FILE: identity.other, TMPDIR: scratch });
      expect(run.code).toBe(1);
      expect(run.text).toContain("is not one this backup was encrypted for");
      expect(databaseExists("shop_wrong_identity")).toBe(false);
      expect(readdirSync(scratch)).toEqual([]);
    });
  });

  it("is verified with the identity as the verifier task gets it (the AGE_IDENTITY secret), whose private file is removed", async () => {
    const secret = execFileSync("grep", ["^AGE-SECRET-KEY-", identity.ours]).toString().trim();
    await inScratch(async (scratch) => {
      const seen: string[] = [];
      const watcher = setInterval(() => seen.push(...readdirSync(scratch)), 5);
      const run = await runCli(["verify", "--deep"], { ...e, AGE_IDENTITY: secret, TMPDIR: scratch });
      clearInterval(watcher);
      expect(run.code).toBe(0);
      expect(run.text).not.toContain(secret);
      expect(seen.some((name) => name.startsWith("db-backup-age-"))).toBe(true); // it was written here…
      expect(readdirSync(scratch)).toEqual([]); // …and is gone
    });
    const both = await runCli(["verify"], { ...e, AGE_IDENTITY: secret, AGE_IDENTITY_FILE: identity.ours });
    expect(both.code).toBe(2);
    expect(both.text).toContain("AGE_IDENTITY_FILE and AGE_IDENTITY are both set");
  });

  it("is drilled with the identity: restored into a throwaway server and counted; without one, the drill fails naming the variable", async () => {
    await inScratch(async (scratch) => {
      chmodSync(scratch, 0o755); // the throwaway server runs as postgres here (root starts it through runuser)
      const without = await runCli(["drill"], { ...e, TMPDIR: scratch });
      expect(without.code).toBe(1);
      expect(without.lines.find((l) => String(l.msg).startsWith("summary: drill"))).toMatchObject({ DrillSuccess: 0, problems: [expect.stringContaining("set AGE_IDENTITY_FILE")] });
      const run = await runCli(["drill"], { ...e, AGE_IDENTITY_FILE: identity.ours, TMPDIR: scratch });
      expect(run.code).toBe(0);
      const summary = run.lines.find((l) => String(l.msg).startsWith("summary: drill"));
      expect(summary).toMatchObject({ DrillSuccess: 1, Target: "shop" });
      // Every table's exact count in the source, as the drill counts the restored copy.
      const rows = pg.psql("SELECT sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, tablename), false, true, '')))[1]::text::bigint) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')", "shop");
      expect(summary!.RestoredRows).toBe(Number(rows.trim()));
      expect(readdirSync(scratch)).toEqual([]);
    });
  }, 120_000);

  it("never logs the identity", async () => {
    const secret = execFileSync("grep", ["^AGE-SECRET-KEY-", identity.ours]).toString().trim();
    const run = await runCli(["verify", "--deep"], { ...e, AGE_IDENTITY_FILE: identity.ours });
    expect(run.text).not.toContain(secret);
    expect(run.text).not.toContain(secret.toLowerCase());
  });
});

it("stores nothing when pg_dump fails half-way, though age encrypted what it got", async () => {
  const realPgDump = which("pg_dump");
  const bin = fakeBin({
    pg_dump: `#!/bin/bash\nif [ "$1" = "--version" ]; then exec ${realPgDump} --version; fi\n${realPgDump} "$@" | head -c 20000\necho "pg_dump: error: simulated failure" >&2\nexit 1\n`,
  });
  const e = env({ PATH: bin.path });
  try {
    const run = await runCli(["backup"], e);
    expect(run.code).toBe(1);
    expect(run.text).toContain("simulated failure");
    expect(await storedKeys(e, `${e.STAGE}/`)).toEqual([]);
  } finally {
    rmSync(bin.dir, { recursive: true, force: true });
  }
});

it("stores nothing when age fails, and says it was age", async () => {
  const bin = fakeBin({ age: `#!/bin/bash\nhead -c 1000 >/dev/null\necho "age: error: simulated" >&2\nexit 1\n` });
  const e = env({ PATH: bin.path });
  try {
    const run = await runCli(["backup"], e);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")).toMatchObject({ error: expect.stringMatching(/age exited with status 1; stderr: age: error: simulated/) });
    expect(await storedKeys(e, `${e.STAGE}/`)).toEqual([]);
  } finally {
    rmSync(bin.dir, { recursive: true, force: true });
  }
});

it("gives age no secret: its environment is PATH alone", async () => {
  const seen = join(keysDir, "age-env");
  const bin = fakeBin({ age: `#!/bin/bash\nenv > ${seen}\nexec ${which("age")} "$@"\n` });
  const e = env({ PATH: bin.path });
  try {
    expect((await runCli(["backup"], e)).code).toBe(0);
    const names = execFileSync("cut", ["-d=", "-f1", seen]).toString().trim().split("\n").filter((n) => !["PWD", "SHLVL", "_"].includes(n));
    expect(names).toEqual(["PATH"]);
  } finally {
    rmSync(bin.dir, { recursive: true, force: true });
    writeFileSync(seen, "");
  }
});
