/** S3 access: one client from the settings, a gated streaming upload, and the reads restore needs. */

import { createHash } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import type { S3Settings } from "./settings";
import { s3Sdk } from "./sdk";
import { checksumAlgorithm, crc32Checksum, MultipartUpload, type UploadProgress } from "./upload";

/**
 * Over HTTPS a part needs no signed SHA-256 of its body: TLS protects it on the way, AWS also checks
 * the part's CRC32 (which every upload carries, upload.ts), and the manifest's SHA-256 covers the whole
 * backup. The SDK would otherwise hash every byte of every part once more, beside the manifest's hash
 * (S3 accepts UNSIGNED-PAYLOAD, as other AWS SDKs send it over HTTPS). Over plain HTTP (an
 * S3-compatible server in a private network, the local one) parts keep the signed hash.
 */
export function signsPartPayload(s3: S3Settings): boolean {
  return s3.endpoint !== undefined && !s3.endpoint.toLowerCase().startsWith("https:");
}

export function s3Client(s3: S3Settings): S3Client {
  const { S3Client } = s3Sdk();
  const client = new S3Client({
    // Without static keys, the standard chain: the task role in ECS, a profile or SSO on a laptop.
    credentials: s3.credentials,
    region: s3.region ?? "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    // S3-compatible servers often reject the SDK's default trailing checksums (aws-chunked bodies);
    // against AWS the default stays, and integrity is checked end to end by the manifest's SHA-256.
    // Uploads carry their CRC32 in a header either way (upload.ts): Object Lock requires one.
    ...(s3.endpoint ? { requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" } : {}),
    maxAttempts: 5,
    // A bucket in another region than AWS_REGION answers 301 PermanentRedirect with the bucket's region
    // in x-amz-bucket-region; the SDK then sends the request again, signed for that region. Without
    // this, every request to such a bucket fails (README, "The runner").
    followRegionRedirects: true,
  });
  if (!signsPartPayload(s3)) {
    client.middlewareStack.add(
      (next, context) => (args) => {
        const request = args.request as { headers?: Record<string, string> };
        if (context.commandName === "UploadPartCommand" && request.headers && !request.headers["x-amz-content-sha256"]) {
          request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
        }
        return next(args);
      },
      { step: "build", name: "unsignedPartPayload" },
    );
  }
  return client;
}

/** Passes bytes through unchanged while computing their SHA-256 and count. */
export class Meter extends Transform {
  private readonly hash = createHash("sha256");
  bytes = 0;
  private digest?: string;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
  sha256(): string {
    this.digest ??= this.hash.digest("hex");
    return this.digest;
  }
}

/**
 * Uploads whatever is written to `body` as a multipart upload. Nothing appears at `key` until the
 * caller ends `body`; destroying it instead makes the upload fail and abort its parts. This gate is
 * what keeps a dump that died half-way from being completed as an object when its stdout closes.
 * `cancelParts` cancels the part requests on their way, for a caller that is about to destroy `body`;
 * `progress` counts the parts sent, for the caller's progress lines.
 */
export async function gatedUpload(client: S3Client, s3: S3Settings, key: string, body: Readable, contentType: string, cancelParts?: AbortSignal, progress?: UploadProgress): Promise<void> {
  const upload = new MultipartUpload(client, { Bucket: s3.bucket, Key: key, ContentType: contentType }, s3.partSizeBytes, { cancelParts, progress });
  // 'close' comes after the upload was completed or aborted; a failed pipeline settles sooner.
  const closed = new Promise((resolve) => upload.once("close", resolve));
  try {
    await pipeline(body, upload);
  } finally {
    await closed;
  }
}

/** Writes a small JSON object (a manifest, a drill record), with the checksum every upload carries (upload.ts). */
export async function putJson(client: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  const { PutObjectCommand } = s3Sdk();
  const Body = Buffer.from(JSON.stringify(value, null, 2) + "\n");
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body, ContentType: "application/json", ChecksumAlgorithm: checksumAlgorithm, ChecksumCRC32: crc32Checksum(Body) }),
  );
}

export async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const { ListObjectsV2Command } = s3Sdk();
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const obj of page.Contents ?? []) if (obj.Key) keys.push(obj.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export async function getStream(client: S3Client, bucket: string, key: string): Promise<Readable> {
  const { GetObjectCommand } = s3Sdk();
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body as Readable;
}

export async function getJson<T>(client: S3Client, bucket: string, key: string): Promise<T> {
  const { GetObjectCommand } = s3Sdk();
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse(await res.Body!.transformToString()) as T;
}

/** Turns an S3 or network failure into a sentence that says what to fix. */
export function describeS3Error(err: unknown, bucket: string, key: string, action: string): string {
  const e = err as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $response?: { headers?: Record<string, string | undefined> };
  };
  const name = e.name ?? e.code ?? "";
  const status = e.$metadata?.httpStatusCode;
  const where = `s3://${bucket}/${key}`;
  if (name === "NoSuchBucket") return `bucket '${bucket}' does not exist (S3_BUCKET, or the endpoint in AWS_ENDPOINT_URL_S3)`;
  // What S3 answers a request sent to, or signed for, another region than the bucket's; the client
  // follows it, so this is left when the redirect could not be followed.
  if (name === "PermanentRedirect" || name === "IllegalLocationConstraintException" || status === 301) {
    const region = e.$response?.headers?.["x-amz-bucket-region"];
    return (
      `bucket '${bucket}' is in ${region ? `region ${region}` : "another region"}, not the one requests were sent to: ` +
      `set AWS_REGION to ${region ?? "the bucket's region"} (S3 answered ${name || status} to ${action} ${where})`
    );
  }
  if (name === "AccessDenied" || status === 403) {
    return `${action} ${where} was denied: the credentials in use need s3:${action === "write" ? "PutObject" : "GetObject"} on it (${e.message ?? name})`;
  }
  if (name === "NoSuchKey") return `${where} does not exist`;
  if (["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "TimeoutError"].includes(name) || /ECONNREFUSED|ENOTFOUND|socket hang up/.test(e.message ?? "")) {
    return `S3 endpoint unreachable while trying to ${action} ${where} (${e.message ?? name}); check AWS_ENDPOINT_URL_S3 and the network`;
  }
  return `${action} ${where} failed: ${name ? name + ": " : ""}${e.message ?? String(err)}`;
}
