/**
 * MongoDB cannot be installed on this machine, so restore's own MongoDB connection is shown through
 * stand-ins: a `mongodump` that writes a small gzip archive, and a `mongorestore` that records its argv,
 * the private config file it was given and any variable holding a connection string. The real tools
 * are exercised in mongodb.real.test.ts.
 */

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { fakeBin, runCli } from "../support/runner";

const backupUri = "mongodb+srv://backup:Backup-Only-Pw@cluster0.example.mongodb.net/";
const restoreUri = "mongodb://restorer:Restore-Own-Pw@127.0.0.1:27017/?authSource=admin";
let s3: LocalS3;
let work: string;
let bin: { dir: string; path: string };

beforeAll(async () => {
  s3 = await startLocalS3();
  work = mkdtempSync(join(tmpdir(), "db-backup-mongorestore-"));
  bin = fakeBin({
    mongodump: `#!/bin/bash
if [ "$1" = "--version" ]; then echo "mongodump version: 100.9.0 (stand-in)"; exit 0; fi
printf 'stand-in archive\\n' | gzip -c
`,
    // Refuses (exit 3) unless the connection comes as --config=<0600 file>; records what it was given.
    mongorestore: `#!/bin/bash
record=${work}/record-$$
echo "argv: $*" > "$record"
env | grep -E 'mongodb(\\+srv)?://' | sed 's/^/env: /' >> "$record"
config=$(printf '%s\\n' "$@" | sed -n 's/^--config=//p')
[ -n "$config" ] || { echo "stand-in: expected --config=<file>" >&2; exit 3; }
[ "$(stat -c %a "$config")" = "600" ] || { echo "stand-in: config file is not private" >&2; exit 3; }
echo "config: $(cat "$config")" >> "$record"
`,
  });
  const env = { ...process.env, ...s3.env, PATH: bin.path, STAGE: "mongo-restore", BACKUP_TARGETS: JSON.stringify([{ name: "events", engine: "mongodb", uriEnv: "MONGO_URI_EVENTS", database: "events" }]) };
  expect((await runCli(["backup"], { ...env, MONGO_URI_EVENTS: backupUri })).code).toBe(0);
});

afterAll(async () => {
  await s3?.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(bin.dir, { recursive: true, force: true });
});

function restoreEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...s3.env, PATH: bin.path, STAGE: "mongo-restore", BACKUP_TARGETS: JSON.stringify([{ name: "events", engine: "mongodb", uriEnv: "MONGO_URI_EVENTS", database: "events" }]), ...extra };
}

function records(): string[] {
  return readdirSync(work).map((f) => readFileSync(join(work, f), "utf8"));
}

beforeEach(() => {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
});

it("RESTORE_MONGO_URI reaches mongorestore through its private config file, and the backup's secret is not needed", async () => {
  const run = await runCli(["restore", "--database", "events_copy"], restoreEnv({ RESTORE_MONGO_URI: restoreUri }));
  expect(run.code).toBe(0);
  const [record] = records();
  expect(record).toContain(`config: uri: ${JSON.stringify(restoreUri)}`);
  const argv = record.split("\n")[0].replace(/^argv: /, "").split(" ");
  expect(argv).toEqual([expect.stringMatching(/^--archive=\S+$/), "--gzip", "--nsFrom=events.*", "--nsTo=events_copy.*", expect.stringMatching(/^--config=\S+\/mongo\.yaml$/)]);
  expect(record.split("\n")[0]).not.toContain("Restore-Own-Pw");
  expect(record).not.toMatch(/^env: /m);
  expect(run.text).not.toContain("Restore-Own-Pw");
});

it("RESTORE_MONGO_URI wins over the target's connection string when both are set", async () => {
  const run = await runCli(["restore", "--database", "events_copy"], restoreEnv({ RESTORE_MONGO_URI: restoreUri, MONGO_URI_EVENTS: backupUri }));
  expect(run.code).toBe(0);
  const [record] = records();
  expect(record).toContain(`config: uri: ${JSON.stringify(restoreUri)}`);
  expect(record).not.toContain("Backup-Only-Pw");
  expect(run.text).not.toMatch(/Restore-Own-Pw|Backup-Only-Pw/);
});

it("without it, the target's connection string is used, as before", async () => {
  const run = await runCli(["restore", "--database", "events_copy"], restoreEnv({ MONGO_URI_EVENTS: backupUri }));
  expect(run.code).toBe(0);
  expect(records()[0]).toContain(`config: uri: ${JSON.stringify(backupUri)}`);
});

it("with neither, the settings name RESTORE_MONGO_URI and nothing runs", async () => {
  const run = await runCli(["restore", "--database", "events_copy"], restoreEnv({}));
  expect(run.code).toBe(2);
  expect(run.lines[0].msg).toMatch(/RESTORE_MONGO_URI is not set, nor the target's MONGO_URI_EVENTS/);
  expect(records()).toEqual([]);
});
