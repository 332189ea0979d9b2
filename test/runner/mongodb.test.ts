/**
 * MongoDB cannot be installed on this machine, so the runner's MongoDB path is driven through a
 * stand-in `mongodump` that checks how it is called and records what it saw. The test against a real
 * server and the real database tools is in mongodb.real.test.ts.
 */

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { runBackups } from "../../image/src/backup";
import { setLogSink } from "../../image/src/log";
import { parseSettings } from "../../image/src/settings";
import { fakeBin, runCli, storedKeys, storedObject } from "../support/runner";

const uri = "mongodb+srv://backup:Sup3r-Secret-Pw@cluster0.example.mongodb.net/?retryWrites=true";
let s3: LocalS3;
let work: string;
let bin: { dir: string; path: string };

beforeAll(async () => {
  s3 = await startLocalS3();
  work = mkdtempSync(join(tmpdir(), "db-backup-mongo-"));
  // Refuses (exit 3) unless called as `mongodump --archive --gzip --config=<0600 file> [--db=<name>]`;
  // records its argv, the config file and any environment variable holding a MongoDB URI.
  bin = fakeBin({
    mongodump: `#!/bin/bash
if [ "$1" = "--version" ]; then echo "mongodump version: 100.9.0 (stand-in)"; exit 0; fi
record=${work}/record-$$
echo "argv: $*" > "$record"
env | grep -i 'mongodb' | sed 's/^/env: /' >> "$record"
[ "$1" = "--archive" ] && [ "$2" = "--gzip" ] || { echo "stand-in: expected --archive --gzip first, got: $*" >&2; exit 3; }
case "$3" in --config=*) config="\${3#--config=}";; *) echo "stand-in: expected --config=<file>" >&2; exit 3;; esac
[ "$(stat -c %a "$config")" = "600" ] || { echo "stand-in: config file is not private" >&2; exit 3; }
echo "config: $(cat "$config")" >> "$record"
db="\${4#--db=}"
if grep -q "bad-password" "$config"; then
  echo "Failed: can't create session: failed to connect: connection() error occurred during connection handshake: auth error: sasl conversation error: unable to authenticate using mechanism \\"SCRAM-SHA-256\\": (AuthenticationFailed) Authentication failed." >&2
  exit 1
fi
# "large": more than a pipe holds, so it blocks until someone reads it all
if [ "$db" = "large" ]; then exec head -c 8000000 /dev/zero; fi
printf 'stand-in archive of %s\\n' "\${db:-all databases}" | gzip -c
`,
  });
});

afterAll(async () => {
  await s3?.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(bin.dir, { recursive: true, force: true });
});

function records(): string[] {
  return readdirSync(work).map((f) => readFileSync(join(work, f), "utf8"));
}

it("streams `mongodump --archive --gzip` to S3 with the connection string in a private file, never on argv", async () => {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  const env = { ...process.env, ...s3.env, PATH: bin.path, STAGE: "dev", MONGO_CONNECTION_STRING: uri, MONGO_DB_NAME: "billie" };
  const run = await runCli(["backup"], env);
  expect(run.code).toBe(0);
  expect(run.text).not.toContain("Sup3r-Secret-Pw");

  const [record] = records();
  expect(record).toMatch(/^argv: --archive --gzip --config=\S+\/mongo\.yaml --db=billie$/m);
  expect(record).toContain(`config: uri: ${JSON.stringify(uri)}`);
  expect(record).not.toMatch(/^env: /m);
  expect(record.split("\n")[0]).not.toContain("Sup3r-Secret-Pw");
  // The private file is gone once the dump is over.
  const configPath = /--config=(\S+)/.exec(record)![1];
  expect(() => readFileSync(configPath)).toThrow(/ENOENT/);

  const keys = await storedKeys(env, "dev/mongodb/");
  const key = keys.find((k) => k.endsWith(".archive.gz"))!;
  expect(key).toMatch(/^dev\/mongodb\/billie\/\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z\.archive\.gz$/);
  expect(gunzipSync(await storedObject(env, key)).toString()).toBe("stand-in archive of billie\n");
  const manifest = JSON.parse((await storedObject(env, `${key}.manifest.json`)).toString());
  expect(manifest).toMatchObject({ engine: "mongodb", target: "billie", database: "billie", tool: "mongodump version: 100.9.0 (stand-in)", compression: "gzip" });

  const verify = await runCli(["verify"], env);
  expect(verify.code).toBe(0);
  expect(verify.lines.find((l) => l.msg === "verified")?.detail).toMatch(/gzip stream intact/);
});

it("a MongoDB that refuses the credentials fails the target with a clear error and stores nothing", async () => {
  const env = {
    ...process.env,
    ...s3.env,
    PATH: bin.path,
    STAGE: "bad",
    MONGO_CONNECTION_STRING: "mongodb://backup:bad-password@db.example.com/",
  };
  const run = await runCli(["backup"], env);
  expect(run.code).toBe(1);
  expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/MongoDB refused the credentials in MONGO_CONNECTION_STRING.*mongodump exited with status 1/);
  expect(run.text).not.toContain("bad-password");
  expect(await storedKeys(env, "bad/")).toEqual([]);
});

it("an S3 client that cannot be made fails the target and stops the dump instead of leaving it blocked", async () => {
  const env = { ...process.env, ...s3.env, PATH: bin.path, STAGE: "noclient", MONGO_CONNECTION_STRING: uri, MONGO_DB_NAME: "large" };
  const lines: string[] = [];
  const restore = setLogSink((line) => lines.push(line));
  try {
    const results = await runBackups(parseSettings(env), () => {
      throw new Error("no S3 client here");
    }, env, env);
    expect(results).toMatchObject([{ ok: false, error: expect.stringMatching(/^write s3:\/\/db-backup-local\/noclient\/mongodb\/large\/.*: Error: no S3 client here$/) }]);
  } finally {
    restore();
  }
  expect(lines.join("\n")).not.toContain("Sup3r-Secret-Pw");
}, 20_000);

it("a mongodump that is not installed is named", async () => {
  const env = { ...process.env, ...s3.env, PATH: "/nonexistent", STAGE: "none", MONGO_CONNECTION_STRING: uri };
  const run = await runCli(["backup"], env);
  expect(run.code).toBe(1);
  expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/mongodump was not found on PATH/);
});
