/**
 * A bucket with an Object Lock default retention takes an upload only with an integrity checksum (S3
 * API Reference, PutObject: "The Content-MD5 or x-amz-sdk-checksum-algorithm header is required for any
 * request to upload an object with a retention period configured using Amazon S3 Object Lock"). The
 * local S3 models such a bucket (scripts/lib/localS3.ts, objectLock): first that model is shown to
 * refuse what S3 refuses, then a whole backup runs against it, and every write it made is looked at.
 */

import { rmSync } from "node:fs";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, type S3Client } from "@aws-sdk/client-s3";
import { putJson, s3Client } from "../../image/src/s3";
import { parseStorage } from "../../image/src/settings";
import { crc32Checksum } from "../../image/src/upload";
import { startLocalS3, type LocalS3, type S3Request } from "../../scripts/lib/localS3";
import { fakeBin, runCli, storedKeys, storedObject } from "../support/runner";

const MiB = 2 ** 20;
let s3: LocalS3;
let client: S3Client;
const requests: S3Request[] = [];
const bucket = "db-backup-locked";

beforeAll(async () => {
  s3 = await startLocalS3(bucket, { objectLock: true, authorize: (r) => (requests.push(r), true) });
  client = s3Client(parseStorage({ ...s3.env, STAGE: "prod" }).s3);
});
afterAll(() => s3.stop());

const body = Buffer.from("a manifest\n");
const s3Error = (err: unknown) => ({ name: (err as Error).name, message: (err as Error).message });

describe("the local S3's model of a locked bucket refuses what S3 refuses", () => {
  it("an upload without a checksum (the client sends none to an endpoint unless told: requestChecksumCalculation WHEN_REQUIRED)", async () => {
    await expect(client.send(new PutObjectCommand({ Bucket: bucket, Key: "prod/plain.json", Body: body })).catch(s3Error)).resolves.toEqual({
      name: "InvalidRequest",
      message: "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
    });
  });

  it("a checksum that does not match the body, and an algorithm named without its checksum", async () => {
    const wrong = crc32Checksum(Buffer.from("another body"));
    await expect(client.send(new PutObjectCommand({ Bucket: bucket, Key: "prod/x.json", Body: body, ChecksumCRC32: wrong })).catch(s3Error)).resolves.toMatchObject({ name: "BadDigest" });
    await expect(client.send(new PutObjectCommand({ Bucket: bucket, Key: "prod/x.json", Body: body, ContentMD5: "1B2M2Y8AsgTpgAmY7PhCfg==" })).catch(s3Error)).resolves.toMatchObject({ name: "BadDigest" });
    const named = new PutObjectCommand({ Bucket: bucket, Key: "prod/x.json", Body: body });
    named.middlewareStack.add((next) => (args) => ((args.request as { headers: Record<string, string> }).headers["x-amz-sdk-checksum-algorithm"] = "CRC32", next(args)), { step: "build" });
    await expect(client.send(named).catch(s3Error)).resolves.toMatchObject({ name: "InvalidRequest", message: expect.stringContaining("no corresponding x-amz-checksum-*") });
  });

  it("takes a checksum the SDK computed itself: its CRC32 and the runner's are the same function", async () => {
    await expect(client.send(new PutObjectCommand({ Bucket: bucket, Key: "prod/sdk.json", Body: body, ChecksumAlgorithm: "CRC32" }))).resolves.toBeDefined();
    expect(requests.at(-1)!.headers["x-amz-checksum-crc32"]).toBe(crc32Checksum(body));
  });

  it("a part whose checksum the upload was not created with, and a completion without the parts' checksums", async () => {
    const part = Buffer.alloc(MiB, 1);
    const plain = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "prod/a.dump" }));
    await expect(
      client.send(new UploadPartCommand({ Bucket: bucket, Key: "prod/a.dump", UploadId: plain.UploadId, PartNumber: 1, Body: part, ChecksumAlgorithm: "CRC32" })).catch(s3Error),
    ).resolves.toEqual({ name: "InvalidRequest", message: "Checksum Type mismatch occurred, expected checksum Type: null, actual checksum Type: crc32" });

    const withCrc = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "prod/b.dump", ChecksumAlgorithm: "CRC32" }));
    const sent = await client.send(new UploadPartCommand({ Bucket: bucket, Key: "prod/b.dump", UploadId: withCrc.UploadId, PartNumber: 1, Body: part, ChecksumAlgorithm: "CRC32" }));
    const complete = (Parts: { PartNumber: number; ETag?: string; ChecksumCRC32?: string }[]) =>
      client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: "prod/b.dump", UploadId: withCrc.UploadId, MultipartUpload: { Parts } })).catch(s3Error);
    await expect(complete([{ PartNumber: 1, ETag: sent.ETag }])).resolves.toMatchObject({ name: "InvalidRequest", message: expect.stringContaining("It was missing for part 1") });
    await expect(complete([{ PartNumber: 1, ETag: sent.ETag, ChecksumCRC32: crc32Checksum(Buffer.alloc(1)) }])).resolves.toMatchObject({ name: "InvalidPart" });
    await expect(complete([{ PartNumber: 1, ETag: sent.ETag, ChecksumCRC32: crc32Checksum(part) }])).resolves.toMatchObject({ $metadata: { httpStatusCode: 200 } });
  });
});

it("a backup's every write carries a CRC32 that S3 can check: each part, the upload it belongs to, and the manifest", async () => {
  requests.length = 0;
  // 12 MiB in 5 MiB parts: three parts, the last one short.
  const bin = fakeBin({
    mongodump: `#!/bin/bash
if [ "$1" = "--version" ]; then echo "mongodump version: 100.9.0 (stand-in)"; exit 0; fi
exec head -c ${12 * MiB} /dev/urandom
`,
  });
  try {
    const env = { ...process.env, ...s3.env, PATH: bin.path, STAGE: "prod", MONGO_CONNECTION_STRING: "mongodb://backup:pw@db.internal/", MONGO_DB_NAME: "billie", S3_PART_SIZE_MB: "5" };
    const run = await runCli(["backup"], env);
    expect(run.lines.filter((l) => l.level === "error")).toEqual([]);
    expect(run.code).toBe(0);

    const [dump] = (await storedKeys(env, "prod/mongodb/billie/")).filter((k) => k.endsWith(".archive.gz"));
    expect((await storedObject(env, dump)).length).toBe(12 * MiB);

    const writes = requests.filter((r) => r.method === "PUT");
    expect(writes.map((r) => (r.query.partNumber ? `part ${r.query.partNumber}` : r.key))).toEqual(["part 1", "part 2", "part 3", `${dump}.manifest.json`]);
    for (const w of writes) {
      expect(w.headers["x-amz-sdk-checksum-algorithm"]).toBe("CRC32");
      expect(w.headers["x-amz-checksum-crc32"]).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    }
    const created = requests.filter((r) => r.method === "POST" && r.query.uploads !== undefined);
    expect(created.map((r) => r.headers["x-amz-checksum-algorithm"])).toEqual(["CRC32"]);
    // No retention of its own: the bucket's default locks each version, "exactly as though you explicitly
    // placed a lock", with no Object Lock permission asked of the writer; S3's own advice is to set the
    // default and deny the writers retention settings ("Default retention settings", S3 User Guide,
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-overview.html, 2023 copy). The task
    // role has s3:PutObject and nothing of Object Lock (test/stack/stack.test.ts).
    for (const r of [...writes, ...created]) expect(Object.keys(r.headers).filter((h) => h.startsWith("x-amz-object-lock-") || h === "x-amz-bypass-governance-retention")).toEqual([]);
  } finally {
    rmSync(bin.dir, { recursive: true, force: true });
  }
});

it("a drill record or any other JSON the runner writes carries it too", async () => {
  requests.length = 0;
  await putJson(client, bucket, "prod/drills/app/x.json", { ok: true });
  expect(requests.map((r) => [r.method, r.headers["x-amz-checksum-crc32"]])).toEqual([["PUT", crc32Checksum(Buffer.from('{\n  "ok": true\n}\n'))]]);
});
