/**
 * The MongoDB path against a real server and the real mongodump/mongorestore. It runs where
 * MONGODB_TEST_URI points at a server (e.g. mongodb://127.0.0.1:27017) and the database tools are on
 * PATH, as in the GitHub Actions workflow; elsewhere it says why it is skipped. Where the server is a
 * replica set and mongod and mongosh are on PATH too (the workflow's test job), it also backs up the
 * whole deployment at one point in time, restores it with the oplog replayed, and drills it into a
 * throwaway mongod started by the runner.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { restoreMongoForDrill } from "../../image/src/drillMongo";
import { latestPerTarget } from "../../image/src/keys";
import { onPath } from "../../image/src/proc";
import { downloadVerified, findBackups } from "../../image/src/restore";
import { s3Client } from "../../image/src/s3";
import { parseStorage } from "../../image/src/settings";
import { freePort } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { runCli } from "../support/runner";

const uri = process.env.MONGODB_TEST_URI;
const missing = [!uri && "MONGODB_TEST_URI is not set", !onPath("mongodump", process.env) && "mongodump is not on PATH", !onPath("mongorestore", process.env) && "mongorestore is not on PATH"].filter(Boolean);
if (missing.length > 0) {
  // Straight to stderr: Jest drops console output of a suite that is skipped whole when several suites run.
  process.stderr.write(`skipping the real-MongoDB test: ${missing.join("; ")} (the GitHub Actions workflow provides a server and the tools)\n`);
}
const missingForServer = [...missing, !onPath("mongod", process.env) && "mongod is not on PATH", !onPath("mongosh", process.env) && "mongosh is not on PATH"].filter(Boolean);
if (missing.length === 0 && missingForServer.length > 0) {
  process.stderr.write(`skipping the real-MongoDB point-in-time backup and drill: ${missingForServer.join("; ")} (the GitHub Actions workflow installs them)\n`);
}

/** A standalone mongod of our own on loopback, the restore target of a whole-deployment backup. */
async function startMongod(): Promise<{ uri: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "db-backup-mongod-"));
  const port = await freePort();
  const child: ChildProcess = spawn("mongod", ["--dbpath", dir, "--bind_ip", "127.0.0.1", "--port", String(port), "--unixSocketPrefix", dir], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const target = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  for (let i = 0; ; i++) {
    try {
      await (await MongoClient.connect(target, { serverSelectionTimeoutMS: 500 })).close();
      break;
    } catch (err) {
      if (i > 120) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    uri: target,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

(missing.length ? describe.skip : describe)("a real MongoDB server", () => {
  let s3: LocalS3;
  let client: MongoClient;

  beforeAll(async () => {
    s3 = await startLocalS3();
    client = await MongoClient.connect(uri!);
    const db = client.db("dbbackup_src");
    await db.dropDatabase();
    await db.collection<{ _id: number }>("customers").insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, name: `Customer ${i} ✓ 王芳`, tags: [`t${i % 5}`], nested: { n: i, at: new Date(Date.UTC(2024, 9, 27, 10, i % 60)) } })));
    await db.collection<{ _id: number }>("orders").insertMany(Array.from({ length: 2000 }, (_, i) => ({ _id: i, customer: i % 500, amount: i * 1.25 })));
    await db.collection("orders").createIndex({ customer: 1 });
  });

  afterAll(async () => {
    await client?.db("dbbackup_src").dropDatabase();
    await client?.db("dbbackup_restored").dropDatabase();
    await client?.close();
    await s3?.stop();
  });

  it("backs up with mongodump, verifies, and restores with mongorestore into an identical database", async () => {
    const env = { ...process.env, ...s3.env, STAGE: "real", MONGO_CONNECTION_STRING: uri, MONGO_DB_NAME: "dbbackup_src" };
    expect((await runCli(["backup"], env)).code).toBe(0);
    expect((await runCli(["verify"], env)).code).toBe(0);
    expect((await runCli(["restore", "--database", "dbbackup_restored"], env)).code).toBe(0);
    for (const name of ["customers", "orders"]) {
      const src = await client.db("dbbackup_src").collection(name).find().sort({ _id: 1 }).toArray();
      const dst = await client.db("dbbackup_restored").collection(name).find().sort({ _id: 1 }).toArray();
      expect(dst).toEqual(src);
    }
    const indexes = await client.db("dbbackup_restored").collection("orders").indexes();
    expect(indexes.map((i) => i.name)).toContain("customer_1");
  });

  (missingForServer.length ? describe.skip : describe)("the whole deployment at one point in time", () => {
    let replicaSet: boolean;
    beforeAll(async () => {
      replicaSet = !!(await client.db("admin").command({ hello: 1 })).setName;
    });

    it("backs up with --oplog, restores every database with the oplog replayed, and drills it into a throwaway mongod", async () => {
      expect(replicaSet).toBe(true); // the workflow starts MongoDB as a one-member replica set
      const env = { ...process.env, ...s3.env, STAGE: "realpit", MONGO_CONNECTION_STRING: uri };
      // Writes while the dump runs: those after the dump's first oplog entry reach the restore through the oplog.
      const writer = (async () => {
        for (let i = 0; i < 200; i++) await client.db("dbbackup_src").collection("ticks").insertOne({ i });
      })();
      expect((await runCli(["backup"], env)).code).toBe(0);
      await writer;

      const { s3: storage } = parseStorage(env);
      const s3c = s3Client(storage);
      const [ref] = latestPerTarget(await findBackups(s3c, storage.bucket, "realpit")).filter((r) => r.name === "mongodb");
      const server = await client.db("admin").command({ buildInfo: 1 });
      const d = await downloadVerified(s3c, storage.bucket, ref);
      try {
        expect(d.manifest).toMatchObject({ database: null, pointInTime: true, serverVersion: server.version });

        const target = await startMongod();
        const restored = new MongoClient(target.uri);
        try {
          expect((await runCli(["restore", "--all-databases"], { ...env, MONGO_CONNECTION_STRING: target.uri })).code).toBe(0);
          for (const name of ["customers", "orders"]) {
            const src = await client.db("dbbackup_src").collection(name).find().sort({ _id: 1 }).toArray();
            expect(await restored.db("dbbackup_src").collection(name).find().sort({ _id: 1 }).toArray()).toEqual(src);
          }

          // The same server as a source: a standalone, so a point-in-time backup of it fails saying what to set.
          const standalone = await runCli(["backup"], { ...env, STAGE: "realstandalone", MONGO_CONNECTION_STRING: target.uri });
          expect(standalone.code).toBe(1);
          expect(standalone.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/standalone server, not a replica set.*MONGO_POINT_IN_TIME=false/);
          expect((await runCli(["backup"], { ...env, STAGE: "realstandalone", MONGO_CONNECTION_STRING: target.uri, MONGO_POINT_IN_TIME: "false" })).code).toBe(0);
        } finally {
          await restored.close();
          await target.stop();
        }

        // The drill's mongod listens on its socket only: were it to take TCP port 27017 as well, it would
        // find the workflow's replica set there and fail to start.
        const scratch = mkdtempSync(join(tmpdir(), "db-backup-drill-"));
        try {
          const drilled = await restoreMongoForDrill(d, { scratch, env: process.env, stop: new AbortController().signal, jobs: 2 });
          expect(drilled.serverVersion).toMatch(/^\d+\.\d+\.\d+/);
          expect(drilled.counts).toMatchObject({ "dbbackup_src.customers": 500, "dbbackup_src.orders": 2000 });
          expect(drilled.counts["dbbackup_src.ticks"]).toBeGreaterThan(0);
          expect(drilled.sizes.dbbackup_src).toBeGreaterThan(0);
          // The throwaway server is gone, and with it everything it wrote.
          expect(existsSync(join(scratch, "mongod"))).toBe(false);
          expect(readdirSync(scratch)).toEqual([]);
        } finally {
          rmSync(scratch, { recursive: true, force: true });
        }
      } finally {
        await d.remove();
      }
    }, 180_000);
  });
});
