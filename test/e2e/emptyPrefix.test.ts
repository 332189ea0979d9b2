/**
 * The teardown's emptying of the stack's versioned bucket (scripts/lib/e2eAws.ts emptyPrefix), against
 * a stand-in for S3: the loopback server has no versioning, so this fake models the parts of S3's API
 * the function relies on, as documented for ListObjectVersions (pages marked by IsTruncated,
 * NextKeyMarker and NextVersionIdMarker; versions and delete markers listed apart), DeleteObjects (at
 * most 1,000 keys a request; failures reported per key in Errors, not as an exception) and
 * ListMultipartUploads. Only the prefix is touched.
 */

import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { emptyPrefix } from "../../scripts/lib/e2eAws";

interface Entry {
  Key: string;
  VersionId: string;
  marker: boolean;
}

class FakeVersionedBucket {
  deleteRequests: number[] = [];
  aborted: string[] = [];
  constructor(
    public entries: Entry[],
    public uploads: { Key: string; UploadId: string }[] = [],
    private readonly pageSize = 3,
    private readonly refuse = new Set<string>(),
  ) {}

  async send(command: unknown): Promise<unknown> {
    if (command instanceof ListObjectVersionsCommand) {
      const { Prefix = "", KeyMarker, VersionIdMarker } = command.input;
      const all = this.entries.filter((e) => e.Key.startsWith(Prefix)).sort((a, b) => a.Key.localeCompare(b.Key) || a.VersionId.localeCompare(b.VersionId));
      const start = KeyMarker === undefined ? 0 : all.findIndex((e) => e.Key === KeyMarker && e.VersionId === VersionIdMarker) + 1;
      const page = all.slice(start, start + this.pageSize);
      const truncated = start + this.pageSize < all.length;
      const last = page[page.length - 1];
      return {
        Versions: page.filter((e) => !e.marker).map(({ Key, VersionId }) => ({ Key, VersionId })),
        DeleteMarkers: page.filter((e) => e.marker).map(({ Key, VersionId }) => ({ Key, VersionId })),
        IsTruncated: truncated,
        NextKeyMarker: truncated ? last.Key : undefined,
        NextVersionIdMarker: truncated ? last.VersionId : undefined,
      };
    }
    if (command instanceof DeleteObjectsCommand) {
      const objects = command.input.Delete?.Objects ?? [];
      if (objects.length > 1000) throw Object.assign(new Error("The XML you provided was not well-formed"), { name: "MalformedXML" });
      this.deleteRequests.push(objects.length);
      const errors = objects.filter((o) => this.refuse.has(o.Key!)).map((o) => ({ Key: o.Key, VersionId: o.VersionId, Code: "AccessDenied" }));
      this.entries = this.entries.filter((e) => !objects.some((o) => o.Key === e.Key && o.VersionId === e.VersionId) || this.refuse.has(e.Key));
      return { Errors: errors.length ? errors : undefined };
    }
    if (command instanceof ListMultipartUploadsCommand) {
      return { Uploads: this.uploads.filter((u) => u.Key.startsWith(command.input.Prefix ?? "")) };
    }
    if (command instanceof AbortMultipartUploadCommand) {
      this.aborted.push(command.input.Key!);
      this.uploads = this.uploads.filter((u) => u.UploadId !== command.input.UploadId);
      return {};
    }
    throw new Error(`the fake does not answer ${(command as object).constructor.name}`);
  }
}

const stage = "e2e-abc123-0f0f";
const versionsOf = (key: string, n: number, marker = false): Entry[] => Array.from({ length: n }, (_, i) => ({ Key: key, VersionId: `v${i}`, marker: marker && i === n - 1 }));

it("deletes every version and delete marker under the prefix, across pages, and nothing else", async () => {
  const s3 = new FakeVersionedBucket([
    ...versionsOf(`${stage}/postgres/pg/1.dump`, 2),
    ...versionsOf(`${stage}/postgres/pg/1.dump.manifest.json`, 1),
    ...versionsOf(`${stage}/postgres/pg/2.dump`, 3, true), // two versions under a delete marker
    ...versionsOf("dev/postgres/app/1.dump", 2),
  ]);
  expect(await emptyPrefix(s3 as unknown as S3Client, "bucket", `${stage}/`)).toBe(6);
  expect(s3.entries.map((e) => e.Key)).toEqual(["dev/postgres/app/1.dump", "dev/postgres/app/1.dump"]);
});

it("sends at most 1,000 keys per DeleteObjects", async () => {
  const s3 = new FakeVersionedBucket(versionsOf(`${stage}/postgres/pg/1.dump`, 2300), [], 1000);
  expect(await emptyPrefix(s3 as unknown as S3Client, "bucket", `${stage}/`)).toBe(2300);
  expect(s3.deleteRequests).toEqual([1000, 1000, 300]);
  expect(s3.entries).toEqual([]);
});

it("aborts the multipart uploads left open under the prefix", async () => {
  const s3 = new FakeVersionedBucket([], [
    { Key: `${stage}/postgres/pg/3.dump`, UploadId: "u1" },
    { Key: "dev/postgres/app/3.dump", UploadId: "u2" },
  ]);
  await emptyPrefix(s3 as unknown as S3Client, "bucket", `${stage}/`);
  expect(s3.aborted).toEqual([`${stage}/postgres/pg/3.dump`]);
});

it("fails, naming the keys, when S3 refuses some deletions (reported in Errors, not thrown)", async () => {
  const s3 = new FakeVersionedBucket(versionsOf(`${stage}/postgres/pg/1.dump`, 1), [], 3, new Set([`${stage}/postgres/pg/1.dump`]));
  await expect(emptyPrefix(s3 as unknown as S3Client, "bucket", `${stage}/`)).rejects.toThrow(`${stage}/postgres/pg/1.dump: AccessDenied`);
});
