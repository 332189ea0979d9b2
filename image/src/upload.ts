/**
 * A multipart upload fed as a Writable stream, built on the S3 client's own multipart calls.
 *
 * Each chunk is copied once, into one of a fixed set of part buffers that are reused from part to
 * part, and the chunk itself is garbage at once. `@aws-sdk/lib-storage`, used before, keeps every
 * chunk until its part is full and then joins them into a newly allocated Buffer: in a CPU profile of
 * the runner streaming a 121 MiB dump, that join alone was 0.45 s of the 1.45 s spent in JavaScript,
 * all of it CPU taken from the dump tool running beside it (README, "Performance").
 *
 * Nothing is at the key until the stream is ended: `end()` sends the last part and completes the
 * upload; `destroy(err)`, a failed part or a failed completion aborts it, so no part is left behind.
 */

import { Writable } from "node:stream";
import { crc32 } from "node:zlib";
import type { CompletedPart, S3Client } from "@aws-sdk/client-s3";
import { log } from "./log";
import { s3Sdk } from "./sdk";

/** How many parts an upload may have, and after how many parts their size doubles. */
export interface PartLimits {
  maxParts: number;
  partsPerSize: number;
}

/** S3's limit of 10,000 parts; parts double every 2,000, so a dump past 10,000 first-size parts still fits. */
export const s3Limits: PartLimits = { maxParts: 10_000, partsPerSize: 2_000 };
/** S3's largest part. */
const maxPartBytes = 5 * 1024 ** 3;

/** The size of part `n` (from 1): the first size for parts 1-2,000, twice that for 2,001-4,000, and so on. */
export function partSizeOf(n: number, firstPartBytes: number, limits = s3Limits): number {
  return Math.min(maxPartBytes, firstPartBytes * 2 ** Math.floor((n - 1) / limits.partsPerSize));
}

/** The largest object the upload can take with a given first part size. */
export function largestUpload(firstPartBytes: number, limits = s3Limits): number {
  let total = 0;
  for (let n = 1; n <= limits.maxParts; n++) total += partSizeOf(n, firstPartBytes, limits);
  return total;
}

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/**
 * The integrity checksum every upload carries: S3 refuses an upload to a bucket with an Object Lock
 * default retention that has neither Content-MD5 nor an x-amz-checksum-* header with the algorithm in
 * x-amz-sdk-checksum-algorithm (PutObject, "ChecksumAlgorithm" and "Content-MD5", Amazon S3 API
 * Reference, https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html; "Uploading objects to
 * an Object Lock enabled bucket", https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html).
 * Given explicitly, the SDK neither computes it again nor leaves it out: it would not send one to an
 * endpoint (requestChecksumCalculation WHEN_REQUIRED, s3.ts), nor under AWS_REQUEST_CHECKSUM_CALCULATION=when_required.
 */
export const checksumAlgorithm = "CRC32";

/** A body's CRC32 as S3 takes it in x-amz-checksum-crc32: the four big-endian bytes, base64. zlib's runs in native code. */
export function crc32Checksum(body: Uint8Array): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32(body));
  return bytes.toString("base64");
}

export interface UploadTarget {
  Bucket: string;
  Key: string;
  ContentType: string;
}

/** What an upload has handed over to S3 so far, for progress lines: the parts S3 has acknowledged. */
export interface UploadProgress {
  partsSent: number;
}

export interface MultipartUploadOptions {
  /** Parts that may be on their way while the next one fills; memory is (queueSize + 1) part buffers, allocated once. Default 2. */
  queueSize?: number;
  /** S3's by default; the tests pass smaller ones to reach the growth and the limit quickly. */
  limits?: PartLimits;
  /**
   * Cancels the parts on their way (a stopped run need not wait for them); the upload still has to be
   * ended or destroyed, and its abort is sent regardless.
   */
  cancelParts?: AbortSignal;
  /** Counts the parts S3 has acknowledged, for the caller's progress lines. */
  progress?: UploadProgress;
}

export class MultipartUpload extends Writable {
  private readonly uploadId: Promise<string>;
  /** Part buffers not in use, all of the current part size; the one being filled is `current`. */
  private readonly free: Buffer[] = [];
  private current?: Buffer;
  private filled = 0;
  private partCount = 0;
  private readonly sending = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  private failure: unknown;
  private completed = false;

  private readonly queueSize: number;
  private readonly limits: PartLimits;
  private readonly cancelParts?: AbortSignal;
  private readonly progress: UploadProgress;

  /** @param firstPartBytes size of the first 2,000 parts (S3_PART_SIZE_MB); later parts are larger */
  constructor(
    private readonly client: S3Client,
    private readonly target: UploadTarget,
    private readonly firstPartBytes: number,
    options: MultipartUploadOptions = {},
  ) {
    super();
    this.queueSize = options.queueSize ?? 2;
    this.limits = options.limits ?? s3Limits;
    this.cancelParts = options.cancelParts;
    this.progress = options.progress ?? { partsSent: 0 };
    const { CreateMultipartUploadCommand } = s3Sdk();
    // The upload's algorithm is named at its start: S3 then requires it of every part, and each part's
    // checksum in the completion (UploadPart, CompleteMultipartUpload, Amazon S3 API Reference).
    this.uploadId = client.send(new CreateMultipartUploadCommand({ ...target, ChecksumAlgorithm: checksumAlgorithm })).then((res) => {
      if (!res.UploadId) throw new Error(`CreateMultipartUpload for s3://${target.Bucket}/${target.Key} returned no UploadId`);
      return res.UploadId;
    });
    // Its failure is reported by the first part, the completion or the abort, whichever comes first.
    this.uploadId.catch(() => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    // Most chunks fit in the part being filled: copied at once, without a promise.
    if (this.current && this.failure === undefined && this.filled + chunk.length < this.current.length) {
      this.filled += chunk.copy(this.current, this.filled);
      return done();
    }
    this.fill(chunk).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finish().then(() => done(), done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.completed) return done(err);
    this.abort().then(() => done(err), () => done(err));
  }

  /** Copies `chunk` into part buffers, sending each as it fills; waits while every buffer is on its way. */
  private async fill(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; ) {
      if (this.failure !== undefined) throw this.failure;
      const part = this.current ?? (this.current = await this.takeBuffer());
      const copied = chunk.copy(part, this.filled, at);
      this.filled += copied;
      at += copied;
      if (this.filled === part.length) this.sendCurrent();
    }
  }

  /** A free part buffer of the next part's size, once one is back from its upload. */
  private async takeBuffer(): Promise<Buffer> {
    const size = partSizeOf(this.partCount + 1, this.firstPartBytes, this.limits);
    while (this.sending.size > this.queueSize) await Promise.race(this.sending);
    const reused = this.free.pop();
    if (reused?.length === size) return reused;
    this.free.length = 0; // parts grew: the smaller buffers go
    return Buffer.allocUnsafeSlow(size);
  }

  private sendCurrent(): void {
    const buffer = this.current!;
    const body = buffer.subarray(0, this.filled);
    this.current = undefined;
    this.filled = 0;
    const PartNumber = ++this.partCount;
    if (PartNumber > this.limits.maxParts) {
      throw new Error(
        `s3://${this.target.Bucket}/${this.target.Key} would need more than ${this.limits.maxParts} parts: with S3_PART_SIZE_MB=${this.firstPartBytes / 2 ** 20} ` +
          `an upload holds at most ${size(largestUpload(this.firstPartBytes, this.limits))}; raise S3_PART_SIZE_MB`,
      );
    }
    const { UploadPartCommand } = s3Sdk();
    // A Buffer body: the SDK retries a failed part itself (throttling, 5xx, a reset connection).
    const sent: Promise<void> = (async () => {
      const UploadId = await this.uploadId;
      const ChecksumCRC32 = crc32Checksum(body);
      const part = { Bucket: this.target.Bucket, Key: this.target.Key, UploadId, PartNumber, Body: body, ChecksumAlgorithm: checksumAlgorithm, ChecksumCRC32 } as const;
      const res = await this.client.send(new UploadPartCommand(part), { abortSignal: this.cancelParts });
      this.parts.push({ PartNumber, ETag: res.ETag, ChecksumCRC32 });
      this.progress.partsSent++;
    })().finally(() => {
      this.sending.delete(sent);
      this.free.push(buffer);
    });
    // Marks the failure for the next write, and keeps it from surfacing as an unhandled rejection.
    sent.catch((err: unknown) => (this.failure ??= err));
    this.sending.add(sent);
  }

  private async finish(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    // The rest is the last part; an empty stream is one empty part, as S3 wants at least one.
    if (this.filled > 0 || this.partCount === 0) {
      this.current ??= Buffer.alloc(0);
      this.sendCurrent();
    }
    await Promise.all(this.sending);
    const UploadId = await this.uploadId;
    const { CompleteMultipartUploadCommand } = s3Sdk();
    const Parts = [...this.parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.target.Bucket, Key: this.target.Key, UploadId, MultipartUpload: { Parts } }));
    this.completed = true;
  }

  /** Waits for the parts on their way, then aborts; a bucket lifecycle rule is the backstop if S3 cannot be reached. */
  private async abort(): Promise<void> {
    let UploadId: string;
    try {
      UploadId = await this.uploadId;
    } catch {
      return; // no upload was started
    }
    await Promise.allSettled(this.sending);
    const { AbortMultipartUploadCommand } = s3Sdk();
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.target.Bucket, Key: this.target.Key, UploadId }));
    } catch (err) {
      log("warn", "could not abort the multipart upload; the bucket's lifecycle rule removes it after a day", {
        key: this.target.Key,
        error: (err as Error).message,
      });
    }
  }
}
