/**
 * The multipart upload the runner streams dumps into, against a real S3 protocol server on loopback
 * (s3rver, scripts/lib/localS3.ts), with its faults injected by that server.
 */

import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { gatedUpload, s3Client } from "../../image/src/s3";
import { parseStorage, type S3Settings } from "../../image/src/settings";
import { largestUpload, MultipartUpload, partSizeOf, s3Limits, type PartLimits } from "../../image/src/upload";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { storedObject } from "../support/runner";

const MiB = 2 ** 20;
let s3: LocalS3;
let settings: S3Settings;
let client: S3Client;

beforeAll(async () => {
  s3 = await startLocalS3();
  settings = { ...parseStorage({ ...s3.env, STAGE: "test" }).s3, partSizeBytes: 5 * MiB };
  client = s3Client(settings);
});
afterAll(() => s3.stop());

/** `total` random bytes in chunks of uneven sizes, none of them aligned to a part. */
function unevenChunks(total: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let left = total, k = 0; left > 0; k++) {
    const size = Math.min(left, [65_536, 27_001, 1, 300_000, 8_192][k % 5]);
    chunks.push(randomBytes(size));
    left -= size;
  }
  return chunks;
}

async function stored(key: string): Promise<{ sha256: string; etag: string }> {
  const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: key }));
  const body = await storedObject(s3.env, key);
  return { sha256: createHash("sha256").update(body).digest("hex"), etag: head.ETag! };
}

const sha256 = (chunks: Buffer[]) => chunks.reduce((h, c) => h.update(c), createHash("sha256")).digest("hex");

it("cuts a stream into parts of the set size whatever its chunks, and stores exactly its bytes", async () => {
  const chunks = unevenChunks(12 * MiB + 12_345);
  await gatedUpload(client, settings, "test/parts.bin", Readable.from(chunks), "application/octet-stream");
  const object = await stored("test/parts.bin");
  expect(object.sha256).toBe(sha256(chunks));
  expect(object.etag).toMatch(/-3"$/); // 5 MiB + 5 MiB + the rest
  expect(await s3.openUploads()).toEqual([]);
});

it("stores an empty stream as an empty object", async () => {
  await gatedUpload(client, settings, "test/empty.bin", Readable.from([]), "application/octet-stream");
  const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: "test/empty.bin" }));
  expect(head.ContentLength).toBe(0);
});

it("sends a part again after a transient failure (503 SlowDown, 500) and completes", async () => {
  s3.failUploadParts(2, 503, "SlowDown");
  s3.failUploadParts(1, 500, "InternalError");
  const chunks = unevenChunks(11 * MiB);
  await gatedUpload(client, settings, "test/retried.bin", Readable.from(chunks), "application/octet-stream");
  expect((await stored("test/retried.bin")).sha256).toBe(sha256(chunks));
  expect(await s3.openUploads()).toEqual([]);
});

it("fails on a refused part without retrying it, and aborts the upload", async () => {
  s3.failUploadParts(1, 403, "AccessDenied");
  const upload = gatedUpload(client, settings, "test/denied.bin", Readable.from(unevenChunks(11 * MiB)), "application/octet-stream");
  await expect(upload).rejects.toMatchObject({ name: "AccessDenied" });
  await expect(client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: "test/denied.bin" }))).rejects.toMatchObject({ name: "NotFound" });
  expect(await s3.openUploads()).toEqual([]);
});

it("a stream destroyed half-way leaves no object and no open upload", async () => {
  const body = new Readable({ read() {} });
  const upload = gatedUpload(client, settings, "test/cut.bin", body, "application/octet-stream");
  for (const chunk of unevenChunks(7 * MiB)) body.push(chunk); // one whole part is sent
  await new Promise((resolve) => setTimeout(resolve, 200));
  body.destroy(new Error("the dump tool failed"));
  await expect(upload).rejects.toThrow("the dump tool failed");
  await expect(client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: "test/cut.bin" }))).rejects.toMatchObject({ name: "NotFound" });
  expect(await s3.openUploads()).toEqual([]);
});

describe("part sizes", () => {
  it("double every 2,000 parts, so 10,000 parts of a 16 MiB start hold 968 GiB", () => {
    expect(partSizeOf(1, 16 * MiB)).toBe(16 * MiB);
    expect(partSizeOf(2_000, 16 * MiB)).toBe(16 * MiB);
    expect(partSizeOf(2_001, 16 * MiB)).toBe(32 * MiB);
    expect(partSizeOf(10_000, 16 * MiB)).toBe(256 * MiB);
    expect(largestUpload(16 * MiB) / 2 ** 30).toBe(968.75);
  });

  it("never exceed S3's 5 GiB part limit", () => {
    expect(partSizeOf(s3Limits.maxParts, 1024 * MiB)).toBe(5 * 2 ** 30);
  });

  /** An upload with small limits, so growth and the part limit are reached with a few MiB. */
  async function uploadWith(limits: PartLimits, key: string, chunks: Buffer[]): Promise<void> {
    const upload = new MultipartUpload(client, { Bucket: settings.bucket, Key: key, ContentType: "application/octet-stream" }, 5 * MiB, { queueSize: 2, limits });
    const closed = new Promise((resolve) => upload.once("close", resolve));
    try {
      await pipeline(Readable.from(chunks), upload);
    } finally {
      await closed;
    }
  }

  it("grow as the upload goes on, with the stored bytes exactly the stream's", async () => {
    const chunks = unevenChunks(30 * MiB + 7);
    await uploadWith({ maxParts: 10, partsPerSize: 2 }, "test/growing.bin", chunks);
    const object = await stored("test/growing.bin");
    expect(object.sha256).toBe(sha256(chunks));
    expect(object.etag).toMatch(/-5"$/); // 5 + 5 + 10 + 10 MiB, then the rest
    expect(await s3.openUploads()).toEqual([]);
  });

  it("past the last part, fail with the setting to raise, storing nothing", async () => {
    const upload = uploadWith({ maxParts: 2, partsPerSize: 2 }, "test/too-big.bin", unevenChunks(11 * MiB));
    await expect(upload).rejects.toThrow(/would need more than 2 parts: with S3_PART_SIZE_MB=5 an upload holds at most 10 MiB; raise S3_PART_SIZE_MB/);
    await expect(client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: "test/too-big.bin" }))).rejects.toMatchObject({ name: "NotFound" });
    expect(await s3.openUploads()).toEqual([]);
  });
});
