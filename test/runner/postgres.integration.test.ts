/**
 * The runner against a real PostgreSQL cluster, the real pg_dump and pg_restore, and an S3 protocol
 * server on loopback. Fault injection swaps single pieces: a pg_dump that dies half-way, an S3 endpoint
 * that is down or has no such bucket, a wrong password.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { defaultPgCompression, pgMajor } from "../../image/src/engines";
import { onPath } from "../../image/src/proc";
import { s3Client } from "../../image/src/s3";
import { parseStorage } from "../../image/src/settings";
import { freePort, startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { compareDatabases, createSampleDatabase } from "../../scripts/lib/sampleDatabase";
import { fakeBin, runCli, runProcess, storedKeys, storedObject, which } from "../support/runner";

let pg: LocalPostgres;
let s3: LocalS3;
let stageNo = 0;

beforeAll(async () => {
  pg = await startLocalPostgres();
  s3 = await startLocalS3();
  createSampleDatabase(pg, "shop");
  pg.psql("CREATE DATABASE big");
  pg.psql("CREATE TABLE filler AS SELECT g AS id, md5(g::text) || repeat('x', 40) AS payload FROM generate_series(1, 200000) g", "big");
});

afterAll(async () => {
  await s3?.stop();
  pg?.stop();
});

/** The blog's variables for one database, in a stage of its own so tests do not see each other's backups. */
function blogEnv(database: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...s3.env,
    STAGE: `t${++stageNo}`,
    PG_DB_HOST: `${pg.host}:${pg.port}`,
    PG_DB_NAME: database,
    PG_DB_USER: pg.user,
    PG_DB_PASSWORD: pg.password,
    ...extra,
  };
}

function expectNoSecret(text: string): void {
  expect(text).not.toContain(pg.password);
}

describe("a varied database", () => {
  let env: NodeJS.ProcessEnv;
  let key: string;

  beforeAll(async () => {
    env = blogEnv("shop", { BACKUP_TIMEZONE: "Asia/Singapore" });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(0);
    expectNoSecret(run.text);
    const keys = await storedKeys(env, `${env.STAGE}/`);
    expect(keys).toHaveLength(2);
    key = keys.find((k) => k.endsWith(".dump"))!;
    expect(key).toMatch(new RegExp(`^${env.STAGE}/postgres/shop/\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}Z\\.dump$`));
    expect(keys).toContain(`${key}.manifest.json`);
  });

  it("is stored with a manifest whose SHA-256 and size are the object's", async () => {
    const body = await storedObject(env, key);
    const manifest = JSON.parse((await storedObject(env, `${key}.manifest.json`)).toString());
    expect(manifest).toMatchObject({
      formatVersion: 1,
      stage: env.STAGE,
      target: "shop",
      engine: "postgres",
      database: "shop",
      key,
      bytes: body.length,
      sha256: createHash("sha256").update(body).digest("hex"),
      serverVersion: pg.psql("SHOW server_version"),
      compression: defaultPgCompression(pgMajor(execFileSync("pg_dump", ["--version"]).toString())),
    });
    expect(manifest.tool).toMatch(/^pg_dump \(PostgreSQL\) \d+/);
    expect(manifest.startedAtLocal).toMatch(/\+08:00$/);
    expect(new Date(manifest.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(manifest.startedAt).getTime());
  });

  it("restores with PostgreSQL's own pg_restore into identical tables", async () => {
    const file = join(tmpdir(), `shop-${process.pid}.dump`);
    writeFileSync(file, await storedObject(env, key));
    try {
      pg.psql('CREATE DATABASE "shop_pg_restore"');
      execFileSync("pg_restore", ["--exit-on-error", "--dbname", "shop_pg_restore", file], { env: { ...process.env, ...pg.env() } });
    } finally {
      rmSync(file, { force: true });
    }
    expect(compareDatabases(pg, "shop", "shop_pg_restore")).toEqual([]);
  });

  it("restores with `restore` into a database the user names, and verifies", async () => {
    const restore = await runCli(["restore", "--database", "shop_copy", "--create"], env);
    expect(restore.code).toBe(0);
    expect(compareDatabases(pg, "shop", "shop_copy")).toEqual([]);
    const verify = await runCli(["verify", "--deep"], env);
    expect(verify.code).toBe(0);
    expect(verify.lines.find((l) => l.msg === "verified")).toMatchObject({ target: "shop", key, detail: expect.stringMatching(/reads \d+ entries and every data block/) });
  });

  it("verify and restore refuse an object that no longer matches its manifest", async () => {
    const tamperedEnv = blogEnv("shop");
    expect((await runCli(["backup"], tamperedEnv)).code).toBe(0);
    const [tampered] = (await storedKeys(tamperedEnv, `${tamperedEnv.STAGE}/`)).filter((k) => k.endsWith(".dump"));
    const { s3: settings } = parseStorage(tamperedEnv);
    const body = await storedObject(tamperedEnv, tampered);
    body[body.length - 10] ^= 0xff;
    await s3Client(settings).send(new PutObjectCommand({ Bucket: settings.bucket, Key: tampered, Body: body }));
    const verify = await runCli(["verify"], tamperedEnv);
    expect(verify.code).toBe(1);
    expect(verify.text).toMatch(/does not match its manifest/);
    const restore = await runCli(["restore", "--database", "never_made", "--create"], tamperedEnv);
    expect(restore.code).toBe(1);
    expect(pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'never_made'")).toBe("0");
  });
});

describe("never a broken backup", () => {
  it("a pg_dump that dies half-way fails the run and leaves no object and no open upload", async () => {
    const realPgDump = which("pg_dump");
    const argvLog = join(tmpdir(), `pg_dump-argv-${process.pid}`);
    // Writes the first 12 MB of a real dump (more than two 5 MiB parts), then fails.
    const bin = fakeBin({
      pg_dump: `#!/bin/bash
echo "$@" >> ${argvLog}
if [ "$1" = "--version" ]; then exec ${realPgDump} --version; fi
${realPgDump} "$@" | head -c 12000000
echo "pg_dump: error: simulated failure half-way" >&2
exit 1
`,
    });
    const env = blogEnv("big", { PATH: bin.path, PG_DUMP_COMPRESSION: "0", S3_PART_SIZE_MB: "5" });
    try {
      const run = await runCli(["backup"], env);
      expect(run.code).toBe(1);
      const failure = run.lines.find((l) => l.msg === "backup failed");
      expect(failure).toMatchObject({ target: "big", error: expect.stringMatching(/pg_dump exited with status 1.*simulated failure half-way/) });
      expect(run.lines.at(-1)).toMatchObject({ msg: "backup run finished", failed: 1, succeeded: 0 });
      expect(await storedKeys(env, `${env.STAGE}/`)).toEqual([]);
      expect(await s3.openUploads()).toEqual([]);
      expectNoSecret(run.text);
      expect(readFileSync(argvLog, "utf8")).not.toContain(pg.password);
    } finally {
      rmSync(bin.dir, { recursive: true, force: true });
      rmSync(argvLog, { force: true });
    }
  });

  it("pg_dump writes through stdbuf's 64 KiB buffer, and the backup restores", async () => {
    const seen = join(tmpdir(), `pg_dump-stdbuf-${process.pid}`);
    const bin = fakeBin({ pg_dump: `#!/bin/bash\necho "\${_STDBUF_O:-none}" > ${seen}\nexec ${which("pg_dump")} "$@"\n` });
    const env = blogEnv("shop", { PATH: bin.path });
    try {
      const run = await runCli(["backup"], env);
      expect(run.code).toBe(0);
      // stdbuf passes 64K on as bytes; where coreutils' stdbuf is missing, pg_dump runs as it is.
      expect(readFileSync(seen, "utf8").trim()).toBe(onPath("stdbuf", process.env) ? "65536" : "none");
      expect((await runCli(["verify", "--deep"], env)).code).toBe(0);
    } finally {
      rmSync(bin.dir, { recursive: true, force: true });
      rmSync(seen, { force: true });
    }
  });

  it("a dump larger than a part is stored whole through a multipart upload", async () => {
    const env = blogEnv("big", { PG_DUMP_COMPRESSION: "0", S3_PART_SIZE_MB: "5" });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(0);
    const stored = run.lines.find((l) => l.msg === "backup stored")!;
    expect(stored.bytes as number).toBeGreaterThan(15 * 1024 * 1024);
    expect((await runCli(["verify"], env)).code).toBe(0);
  });

  it("a part refused while pg_dump still runs fails on S3's answer, stops pg_dump, and leaves nothing", async () => {
    // The first part of the ~17 MB dump is refused (after the SDK's retries: a 403 is not retried).
    const env = blogEnv("big", { PG_DUMP_COMPRESSION: "0", S3_PART_SIZE_MB: "5" });
    s3.failUploadParts(1, 403, "AccessDenied");
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    const error = String(run.lines.find((l) => l.msg === "backup failed")?.error);
    expect(error).toMatch(/write s3:\/\/db-backup-local\/t\d+\/postgres\/big\/.* was denied/);
    expect(error).not.toMatch(/SIGTERM/);
    expect(await storedKeys(env, `${env.STAGE}/`)).toEqual([]);
    expect(await s3.openUploads()).toEqual([]);
  });

  it("a wrong password is named, and nothing is stored", async () => {
    const env = blogEnv("shop", { PG_DB_PASSWORD: "wrong-password-123" });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/wrong password for user 'postgres'.*check PG_DB_PASSWORD/);
    expect(run.text).not.toContain("wrong-password-123");
    expect(await storedKeys(env, `${env.STAGE}/`)).toEqual([]);
  });

  it("an unreachable database is named", async () => {
    const env = blogEnv("shop", { PG_DB_HOST: `127.0.0.1:${await freePort()}` });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/PostgreSQL at 127\.0\.0\.1:\d+ is unreachable/);
  });

  it("an S3 endpoint that is down fails the run with a clear error", async () => {
    const env = blogEnv("shop", { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${await freePort()}` });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/S3 endpoint unreachable/);
    expectNoSecret(run.text);
  }, 180000);

  it("a bucket that does not exist is named, and nothing is stored", async () => {
    const env = blogEnv("shop", { S3_BUCKET: "no-such-bucket" });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/bucket 'no-such-bucket' does not exist/);
    expect(await storedKeys(blogEnv("shop"), `${env.STAGE}/`)).toEqual([]);
    expect(await s3.openUploads()).toEqual([]);
  });

  it("one failing target does not stop the others, and the run says which failed", async () => {
    const env = blogEnv("shop", {
      OTHER_PW: pg.password,
      BACKUP_TARGETS: JSON.stringify([
        { name: "missing", engine: "postgres", host: pg.host, port: pg.port, database: "no_such_db", user: pg.user, passwordEnv: "OTHER_PW" },
      ]),
    });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    const summaries = run.lines.filter((l) => String(l.msg).startsWith("summary"));
    expect(summaries.map((l) => [l.target, l.BackupSuccess])).toEqual([["shop", 1], ["missing", 0]]);
    expect(summaries[1].error).toMatch(/database 'no_such_db' does not exist/);
    const keys = await storedKeys(env, `${env.STAGE}/`);
    expect(keys.filter((k) => k.endsWith(".manifest.json")).map((k) => k.split("/")[2])).toEqual(["shop"]);
  });
});

describe("the command line", () => {
  it("`npm run backup` with the blog's variables works under `ulimit -f 2048`, keeping no secret in its output", async () => {
    const env = blogEnv("big", { PG_DUMP_COMPRESSION: "0" });
    // A 2 MB file size limit: the ~17 MB dump can only succeed if nothing of it is written to disk.
    const res = await runProcess("bash", ["-c", "ulimit -f 2048 && exec npm run --silent backup"], env);
    expect(res.stderr).not.toContain(pg.password);
    expect(res.stdout).not.toContain(pg.password);
    expect(res.status).toBe(0);
    const lines = res.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.find((l) => l.msg === "backup stored").bytes).toBeGreaterThan(2048 * 1024 * 5);
  });

  it("bad settings exit 2 with the variable's name", async () => {
    const res = await runProcess("npm", ["run", "--silent", "backup"], { PATH: process.env.PATH, STAGE: "dev", S3_BUCKET: "b-1", PG_DB_HOST: "h" });
    expect(res.status).toBe(2);
    expect(JSON.parse(res.stdout.trim())).toMatchObject({ level: "error", msg: expect.stringMatching(/^invalid settings: PG_DB_NAME is not set/) });
  });
});
