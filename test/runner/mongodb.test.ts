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

/**
 * The stand-in mongosh: answers the runner's deployment script as the deployment the connection string
 * names would (a replica set by default; "standalone", "mongos" or a user without the oplog role when
 * the host says so), and refuses unless the connection string came by its environment, not argv.
 */
const mongosh = (work: string) => `#!/bin/bash
record=${work}/mongosh-$$
echo "argv: $*" > "$record"
echo "uri: $DB_BACKUP_MONGO_URI" >> "$record"
echo "check-oplog: $DB_BACKUP_CHECK_OPLOG" >> "$record"
[ "$1 $2 $3 $4" = "--nodb --norc --quiet --eval" ] || { echo "stand-in: expected --nodb --norc --quiet --eval <script>, got: $*" >&2; exit 3; }
case "$*" in *mongodb:*|*mongodb+srv:*) echo "stand-in: a connection string on argv" >&2; exit 3;; esac
case "$5" in *"connect(process.env.DB_BACKUP_MONGO_URI)"*) ;; *) echo "stand-in: the script does not connect with the environment's URI" >&2; exit 3;; esac
case "$DB_BACKUP_MONGO_URI" in
  *bad-password*) echo "MongoServerError: Authentication failed." >&2; exit 1;;
  *standalone*) echo '{"version":"7.0.14","setName":null,"msg":null}';;
  *mongos*) echo '{"version":"8.0.4","setName":null,"msg":"isdbgrid"}';;
  *no-role*)
    if [ "$DB_BACKUP_CHECK_OPLOG" = 1 ]; then echo '{"version":"8.0.4","setName":"rs0","msg":null,"oplogError":"Unauthorized: not authorized on local to execute command { find: \"oplog.rs\" }"}'
    else echo '{"version":"8.0.4","setName":"rs0","msg":null}'; fi;;
  *) echo '{"version":"8.0.4","setName":"rs0","msg":null}';;
esac
`;

/** A directory on PATH with only the stand-in mongosh, put before the tools' when a test wants it. */
let shell: { dir: string; path: string };

beforeAll(async () => {
  s3 = await startLocalS3();
  work = mkdtempSync(join(tmpdir(), "db-backup-mongo-"));
  // Refuses (exit 3) unless called as `mongodump --archive --gzip --config=<0600 file> [--db=<name>] [--oplog]`;
  // records its argv, the config file and any environment variable holding a MongoDB URI. Against a
  // standalone server or without the oplog role, --oplog fails as mongodump's own (oplog_dump.go) does.
  // The stand-in mongorestore records its argv and refuses a connection string that is not in a private file.
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
db=""; oplog=""
for arg in "\${@:4}"; do case "$arg" in --db=*) db="\${arg#--db=}";; --oplog) oplog=1;; *) echo "stand-in: unexpected $arg" >&2; exit 3;; esac; done
[ -n "$db" ] && [ -n "$oplog" ] && { echo "Failed: bad option: --oplog mode only supported on full dumps" >&2; exit 1; }
if grep -q "bad-password" "$config"; then
  echo "Failed: can't create session: failed to connect: connection() error occurred during connection handshake: auth error: sasl conversation error: unable to authenticate using mechanism \\"SCRAM-SHA-256\\": (AuthenticationFailed) Authentication failed." >&2
  exit 1
fi
if [ -n "$oplog" ] && grep -q "standalone" "$config"; then echo "Failed: error getting recent oplog entry: mongo: no documents in result" >&2; exit 1; fi
if [ -n "$oplog" ] && grep -q "no-role" "$config"; then echo "Failed: error getting recent oplog entry: (Unauthorized) not authorized on local to execute command { find: \\"oplog.rs\\" }" >&2; exit 1; fi
# "large": more than a pipe holds, so it blocks until someone reads it all
if [ "$db" = "large" ]; then exec head -c 8000000 /dev/zero; fi
printf 'stand-in archive of %s%s\\n' "\${db:-all databases}" "\${oplog:+ with the oplog}" | gzip -c
`,
    mongorestore: `#!/bin/bash
record=${work}/restore-$$
echo "argv: $*" > "$record"
case "$*" in *mongodb:*|*mongodb+srv:*) echo "stand-in: a connection string on argv" >&2; exit 3;; esac
config=$(printf '%s\\n' "$@" | sed -n 's/^--config=//p')
[ -n "$config" ] && [ "$(stat -c %a "$config")" = "600" ] || { echo "stand-in: expected --config=<private file>" >&2; exit 3; }
`,
  });
  shell = fakeBin({ mongosh: mongosh(work) });
});

afterAll(async () => {
  await s3?.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(bin.dir, { recursive: true, force: true });
  rmSync(shell.dir, { recursive: true, force: true });
});

/** What the stand-ins recorded: mongodump's runs ("record-"), mongosh's ("mongosh-") or mongorestore's ("restore-"). */
function records(prefix = "record-"): string[] {
  return readdirSync(work).filter((f) => f.startsWith(prefix)).map((f) => readFileSync(join(work, f), "utf8"));
}

function freshRecords(): void {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
}

it("streams `mongodump --archive --gzip` to S3 with the connection string in a private file, never on argv", async () => {
  freshRecords();
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
  // One database: mongodump cannot add the oplog, so the manifest says the backup is not one point in time.
  expect(manifest).toMatchObject({ engine: "mongodb", target: "billie", database: "billie", tool: "mongodump version: 100.9.0 (stand-in)", compression: "gzip", pointInTime: false, serverVersion: null });

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

describe("a point-in-time backup of the whole deployment", () => {
  const whole = (over: NodeJS.ProcessEnv, withShell = true): NodeJS.ProcessEnv => ({
    ...process.env,
    ...s3.env,
    PATH: withShell ? `${shell.dir}:${bin.path}` : bin.path,
    MONGO_CONNECTION_STRING: uri,
    ...over,
  });

  it("dumps with --oplog, asks mongosh with the URI in its environment only, records the server's version, and restore replays the oplog", async () => {
    freshRecords();
    const env = whole({ STAGE: "pit" });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(0);
    expect(run.text).not.toContain("Sup3r-Secret-Pw");

    const [probe] = records("mongosh-");
    expect(probe).toContain(`uri: ${uri}`);
    expect(probe).toContain("check-oplog: 1");
    expect(probe.split("\n")[0]).not.toContain("Sup3r-Secret-Pw");
    const [dump] = records();
    expect(dump).toMatch(/^argv: --archive --gzip --config=\S+\/mongo\.yaml --oplog$/m);

    const keys = await storedKeys(env, "pit/mongodb/");
    const key = keys.find((k) => k.endsWith(".archive.gz"))!;
    expect(gunzipSync(await storedObject(env, key)).toString()).toBe("stand-in archive of all databases with the oplog\n");
    const manifest = JSON.parse((await storedObject(env, `${key}.manifest.json`)).toString());
    expect(manifest).toMatchObject({ database: null, pointInTime: true, serverVersion: "8.0.4" });

    // Every database under its own name, the oplog replayed; never renamed, which --oplogReplay refuses.
    const restore = await runCli(["restore", "--all-databases"], env);
    expect(restore.code).toBe(0);
    const [restored] = records("restore-");
    expect(restored).toMatch(/^argv: --archive=\S+\.archive\.gz --gzip --oplogReplay --config=\S+\/mongo\.yaml$/m);
  });

  it("refuses to restore a backup of every database into one renamed database, saying how to restore it whole", async () => {
    const env = whole({ STAGE: "pit" });
    const run = await runCli(["restore", "--database", "elsewhere"], env);
    expect(run.code).not.toBe(0);
    expect(run.text).toMatch(/holds every database at one point in time .*restore with --all-databases instead of --database .*mongorestore --archive=<file> --gzip --oplogReplay/);
    expect((await runCli(["restore", "--all-databases", "--database", "x"], env)).text).toMatch(/give it or --database, not both/);
  });

  it("without the oplog when the target says so: MONGO_POINT_IN_TIME=false, or pointInTime: false in BACKUP_TARGETS", async () => {
    freshRecords();
    expect((await runCli(["backup"], whole({ STAGE: "nopit", MONGO_POINT_IN_TIME: "false" }))).code).toBe(0);
    const targets = JSON.stringify([{ engine: "mongodb", name: "all", uriEnv: "MONGO_URI_ALL", pointInTime: false }]);
    expect((await runCli(["backup"], whole({ STAGE: "nopit", MONGO_CONNECTION_STRING: undefined, MONGO_URI_ALL: uri, BACKUP_TARGETS: targets }))).code).toBe(0);
    const dumps = records();
    expect(dumps).toHaveLength(2);
    for (const dump of dumps) expect(dump).toMatch(/^argv: --archive --gzip --config=\S+$/m);
    expect(records("mongosh-").map((r) => /check-oplog: (\d)/.exec(r)?.[1])).toEqual(["0", "0"]);

    const env = whole({ STAGE: "nopit" });
    const keys = (await storedKeys(env, "nopit/mongodb/")).filter((k) => k.endsWith(".manifest.json"));
    for (const key of keys) expect(JSON.parse((await storedObject(env, key)).toString())).toMatchObject({ pointInTime: false, serverVersion: "8.0.4" });
    // Restored whole without --oplogReplay: there is no oplog in it.
    freshRecords();
    expect((await runCli(["restore", "--target", "mongodb", "--all-databases"], env)).code).toBe(0);
    expect(records("restore-")[0]).not.toContain("--oplogReplay");
  });

  it.each([
    ["a standalone server", "mongodb://backup:pw@standalone.example.com/", /standalone server, not a replica set.*set MONGO_POINT_IN_TIME=false to back it up without the oplog/],
    ["a mongos", "mongodb://backup:pw@mongos.example.com/", /leads to a mongos \(a sharded cluster\).*set MONGO_POINT_IN_TIME=false/],
    ["a user without the backup role", "mongodb://backup:pw@no-role.example.com/", /may not read the oplog \(local\.oplog\.rs\).*built-in "backup" role.*or set MONGO_POINT_IN_TIME=false.*Unauthorized/],
    ["a wrong password", "mongodb://backup:bad-password@rs.example.com/", /MongoDB refused the credentials in MONGO_CONNECTION_STRING: MongoServerError: Authentication failed/],
  ])("%s fails before dumping, saying what to change, and stores nothing", async (_case, connection, message) => {
    freshRecords();
    const env = whole({ STAGE: "refused", MONGO_CONNECTION_STRING: connection });
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(message);
    expect(records()).toEqual([]); // mongodump never ran
    expect(await storedKeys(env, "refused/")).toEqual([]);
  });

  it("names the role a target in BACKUP_TARGETS needs, and its own setting to do without", async () => {
    const targets = JSON.stringify([{ engine: "mongodb", name: "events", uriEnv: "MONGO_URI_EVENTS" }]);
    const env = whole({ STAGE: "refused", MONGO_CONNECTION_STRING: undefined, MONGO_URI_EVENTS: "mongodb://b:pw@no-role.example.com/", BACKUP_TARGETS: targets });
    const run = await runCli(["backup"], env);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/the user in MONGO_URI_EVENTS may not read the oplog.*or set "pointInTime": false on target 'events'/);
  });

  it.each([
    ["a standalone server", "mongodb://backup:pw@standalone.example.com/", /server without an oplog \(not a replica set\).*set MONGO_POINT_IN_TIME=false.*mongodump exited with status 1/],
    ["a user without the backup role", "mongodb://backup:pw@no-role.example.com/", /may not read the oplog.*built-in "backup" role.*mongodump exited with status 1/],
  ])("without mongosh, mongodump --oplog's own failure on %s is explained", async (_case, connection, message) => {
    freshRecords();
    const env = whole({ STAGE: "noshell", MONGO_CONNECTION_STRING: connection }, false);
    const run = await runCli(["backup"], env);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(message);
    expect(records()[0]).toMatch(/--oplog$/m);
    expect(await storedKeys(env, "noshell/")).toEqual([]);
  });
});
