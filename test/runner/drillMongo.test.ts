/**
 * The MongoDB drill's throwaway server, driven through stand-ins: MongoDB cannot be installed here.
 * The stand-in mongod records how it was started (arguments, user) and stands for a server by a file at
 * its socket path until SIGTERM; mongosh answers a ping only while that file is there, and prints the
 * counts; mongorestore records its arguments and fails or hangs when told to. The real server is driven
 * in mongodb.real.test.ts.
 */

import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Manifest } from "../../image/src/backup";
import { parseDrillCounts, restoreMongoForDrill } from "../../image/src/drillMongo";
import type { Downloaded } from "../../image/src/restore";
import { fakeBin } from "../support/runner";

const counts = { "shop.orders": 2000, "shop.customers": 500, "events.clicks": 0 };
const sizes = { shop: 1_234_567, events: 4096 };

let work: string;
let bin: { dir: string; path: string };
let scratch: string;
let archive: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "db-backup-drill-mongo-"));
  // Started as root, the drill runs mongod as another user, who must reach the stand-ins and this directory.
  chmodSync(work, 0o777);
  bin = fakeBin({
    mongod: `#!/bin/bash
record=${work}/mongod
echo "argv: $*" > "$record"
echo "uid: $(id -u)" >> "$record"
while [ $# -gt 0 ]; do case "$1" in --dbpath) dbpath=$2; shift;; --bind_ip) bind=$2; shift;; esac; shift; done
if [ "$(cat ${work}/mode 2>/dev/null)" = start-fail ]; then echo '{"s":"F","msg":"Fatal assertion","attr":{"msgid":28595}}'; exit 14; fi
echo wt > "$dbpath/WiredTiger" || exit 100
trap 'echo "stopped by TERM" >> "$record"; rm -f "$bind"; exit 0' TERM
touch "$bind"
while :; do sleep 0.05; done
`,
    mongosh: `#!/bin/bash
socket=$(printf '%b' "$(sed -e 's|^mongodb://||' -e 's|/$||' -e 's/%/\\\\x/g' <<<"$DB_BACKUP_MONGO_URI")")
echo "home: $HOME" > ${work}/mongosh-home
case "$*" in *mongodb:*) echo "stand-in: a connection string on argv" >&2; exit 3;; esac
[ -e "$socket" ] || { echo "MongoNetworkError: connect ENOENT $socket" >&2; exit 1; }
case "$5" in
  *"ping: 1"*) echo ok;;
  *listDatabases*) echo "Current Mongosh Log ID: 0"; echo '${JSON.stringify({ version: "8.0.4", counts, sizes })}';;
  *) echo "stand-in: unknown script" >&2; exit 3;;
esac
`,
    mongorestore: `#!/bin/bash
echo "argv: $*" > ${work}/mongorestore
case "$(cat ${work}/mode 2>/dev/null)" in
  restore-fail) echo "Failed: shop.orders: error restoring from archive: E11000 duplicate key error" >&2; exit 1;;
  restore-hang) touch ${work}/restoring; exec sleep 30;;
esac
`,
  });
  chmodSync(bin.dir, 0o755);
  archive = join(work, "backup.archive.gz");
  writeFileSync(archive, "stand-in archive");
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(bin.dir, { recursive: true, force: true });
});

beforeEach(() => {
  for (const f of ["mode", "mongod", "mongorestore", "restoring", "mongosh-home"]) rmSync(join(work, f), { force: true });
  scratch = mkdtempSync(join(tmpdir(), "db-backup-scratch-"));
});

afterEach(() => rmSync(scratch, { recursive: true, force: true }));

function downloaded(pointInTime: boolean): Downloaded {
  const manifest = { engine: "mongodb", database: null, pointInTime } as Manifest;
  return { ref: { key: "dev/mongodb/all/x.archive.gz" } as Downloaded["ref"], manifest, path: archive, remove: async () => undefined };
}

function drill(pointInTime: boolean, stop = new AbortController().signal) {
  return restoreMongoForDrill(downloaded(pointInTime), { scratch, env: { ...process.env, PATH: bin.path }, stop, jobs: 2 });
}

const record = (name: string) => readFileSync(join(work, name), "utf8");

/** The server was stopped with SIGTERM, and nothing of it is left in the scratch directory. */
function expectStoppedAndRemoved(): void {
  expect(record("mongod")).toContain("stopped by TERM");
  expect(existsSync(join(scratch, "mongod"))).toBe(false);
}

it("starts mongod under scratch on a Unix socket only, restores with the oplog replayed, counts, then stops it and removes its files", async () => {
  const result = await drill(true);
  expect(result).toEqual({ counts, sizes, serverVersion: "8.0.4" });

  const dir = join(scratch, "mongod");
  const mongod = record("mongod");
  expect(mongod).toContain(`argv: --dbpath ${dir}/data --bind_ip ${dir}/mongod.sock --unixSocketPrefix ${dir} --port 27017 --setParameter diagnosticDataCollectionEnabled=false\n`);
  // Started as root, mongod runs as an unprivileged user; otherwise as the runner's own.
  const uid = Number(/uid: (\d+)/.exec(mongod)![1]);
  if (process.getuid?.() === 0) expect(uid).not.toBe(0);
  else expect(uid).toBe(process.getuid?.());

  const socketUri = `mongodb://${encodeURIComponent(`${dir}/mongod.sock`)}/`;
  expect(record("mongorestore")).toBe(`argv: --uri=${socketUri} --archive=${archive} --gzip --stopOnError --numParallelCollections=2 --oplogReplay\n`);
  expect(record("mongosh-home")).toBe(`home: ${dir}\n`);
  expectStoppedAndRemoved();
});

it("does not replay an oplog a backup does not have", async () => {
  await drill(false);
  expect(record("mongorestore")).not.toContain("--oplogReplay");
  expectStoppedAndRemoved();
});

it("a failed restore fails the drill with mongorestore's error, and the server is still stopped and removed", async () => {
  writeFileSync(join(work, "mode"), "restore-fail");
  await expect(drill(true)).rejects.toThrow(/mongorestore into the throwaway mongod failed: mongorestore exited with status 1: .*E11000 duplicate key error/);
  expectStoppedAndRemoved();
});

it("a stop (SIGTERM from ECS) during the restore ends mongorestore and the server, and removes its files", async () => {
  writeFileSync(join(work, "mode"), "restore-hang");
  const stop = new AbortController();
  const started = Date.now();
  const drilled = drill(true, stop.signal);
  while (!existsSync(join(work, "restoring"))) await new Promise((r) => setTimeout(r, 20));
  stop.abort("SIGTERM");
  await expect(drilled).rejects.toThrow(/mongorestore into the throwaway mongod failed: mongorestore was killed by SIGTERM/);
  expect(Date.now() - started).toBeLessThan(15_000);
  expectStoppedAndRemoved();
}, 20_000);

it("a server that does not start fails the drill with its log, and leaves nothing behind", async () => {
  writeFileSync(join(work, "mode"), "start-fail");
  await expect(drill(true)).rejects.toThrow(/mongod did not start: mongod exited with status 14: .*Fatal assertion/);
  expect(existsSync(join(scratch, "mongod"))).toBe(false);
});

it("a mongod that is not installed is named", async () => {
  await expect(restoreMongoForDrill(downloaded(true), { scratch, env: { ...process.env, PATH: "/nonexistent" }, stop: new AbortController().signal, jobs: 1 })).rejects.toThrow(
    /mongod was not found on PATH/,
  );
});

describe("the counts mongosh prints", () => {
  it("are read from its last line", () => {
    expect(parseDrillCounts(`noise\n{"version":"8.0.4","counts":{"a.b":3},"sizes":{"a":10}}\n`)).toEqual({ counts: { "a.b": 3 }, sizes: { a: 10 }, serverVersion: "8.0.4" });
  });

  it.each([
    ["nothing", "", /mongosh printed no counts: \(nothing\)/],
    ["no JSON", "MongoServerError: not primary", /mongosh printed no counts: MongoServerError/],
    ["no counts", '{"version":"8.0.4","sizes":{}}', /mongosh printed no counts/],
    ["a count that is not a number", '{"counts":{"a.b":{"low":1,"high":0}},"sizes":{}}', /counts that are not counts: a\.b=/],
  ])("refuse %s", (_case, stdout, message) => {
    expect(() => parseDrillCounts(stdout)).toThrow(message);
  });
});
