/**
 * The MongoDB path against a real server and the real mongodump/mongorestore. It runs where
 * MONGODB_TEST_URI points at a server (e.g. mongodb://127.0.0.1:27017) and the database tools are on
 * PATH, as in the GitHub Actions workflow; elsewhere it says why it is skipped.
 */

import { MongoClient } from "mongodb";
import { onPath } from "../../image/src/proc";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { runCli } from "../support/runner";

const uri = process.env.MONGODB_TEST_URI;
const missing = [!uri && "MONGODB_TEST_URI is not set", !onPath("mongodump", process.env) && "mongodump is not on PATH", !onPath("mongorestore", process.env) && "mongorestore is not on PATH"].filter(Boolean);
if (missing.length > 0) {
  // Straight to stderr: Jest drops console output of a suite that is skipped whole when several suites run.
  process.stderr.write(`skipping the real-MongoDB test: ${missing.join("; ")} (the GitHub Actions workflow provides a server and the tools)\n`);
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
});
