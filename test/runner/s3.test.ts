/**
 * What the S3 client puts on the wire, seen through a request handler that records each request
 * instead of sending it (AWS cannot be reached from here).
 */

import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { PutObjectCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { s3Client, signsPartPayload } from "../../image/src/s3";
import { parseStorage } from "../../image/src/settings";

interface Sent {
  headers: Record<string, string>;
}

/** A client for these settings whose requests are recorded and answered 200 with an ETag. */
function recordingClient(env: Record<string, string>): { send: (command: UploadPartCommand | PutObjectCommand) => Promise<unknown>; sent: Sent[]; signs: boolean } {
  const { s3 } = parseStorage({ STAGE: "t", S3_BUCKET: "bucket-1", AWS_REGION: "eu-west-1", AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "not-a-secret", ...env });
  const client = s3Client(s3);
  const sent: Sent[] = [];
  client.config.requestHandler = {
    handle: async (request: Sent) => {
      sent.push(request);
      return { response: { statusCode: 200, headers: { etag: '"recorded"' }, body: Readable.from([]) } };
    },
  } as unknown as typeof client.config.requestHandler;
  return { send: (command) => client.send(command as UploadPartCommand), sent, signs: signsPartPayload(s3) };
}

const body = Buffer.from("part of a dump\n".repeat(1000));
const bodySha256 = createHash("sha256").update(body).digest("hex");
const part = () => new UploadPartCommand({ Bucket: "bucket-1", Key: "dev/postgres/app/x.dump", UploadId: "u-1", PartNumber: 1, Body: body });

it("sends parts to AWS (HTTPS) without a signed SHA-256 of the body, but with S3's CRC32 and a signature", async () => {
  const aws = recordingClient({});
  expect(aws.signs).toBe(false);
  await aws.send(part());
  const [headers] = aws.sent.map((r) => r.headers);
  expect(headers["x-amz-content-sha256"]).toBe("UNSIGNED-PAYLOAD");
  expect(headers["x-amz-checksum-crc32"]).toMatch(/^[A-Za-z0-9+/]+=*$/);
  expect(headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=.*x-amz-content-sha256/);

  // Only parts: the manifest's PUT keeps its signed hash.
  await aws.send(new PutObjectCommand({ Bucket: "bucket-1", Key: "dev/x.manifest.json", Body: body }));
  expect(aws.sent[1].headers["x-amz-content-sha256"]).toBe(bodySha256);
});

it("sends parts to an HTTPS endpoint unsigned too, and to a plain-HTTP endpoint with the body's SHA-256 signed", async () => {
  const https = recordingClient({ AWS_ENDPOINT_URL_S3: "https://s3.internal.example:9000", S3_FORCE_PATH_STYLE: "true" });
  await https.send(part());
  expect(https.sent[0].headers["x-amz-content-sha256"]).toBe("UNSIGNED-PAYLOAD");

  const http = recordingClient({ AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000", S3_FORCE_PATH_STYLE: "true" });
  expect(http.signs).toBe(true);
  await http.send(part());
  expect(http.sent[0].headers["x-amz-content-sha256"]).toBe(bodySha256);
});
