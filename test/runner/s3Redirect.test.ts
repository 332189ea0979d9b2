/**
 * A bucket in another region than AWS_REGION, modelled by a loopback HTTP server that answers as S3
 * does a request signed for the wrong region: 301 Moved Permanently with the error code
 * PermanentRedirect ("Billing for Amazon S3 error responses", Amazon S3 User Guide,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/ErrorCodeBilling.html) and the bucket's region
 * in the x-amz-bucket-region header (the header HeadBucket is documented to return "whether access to
 * the bucket is authorized or not": GetBucketLocation, Amazon S3 API Reference,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html). The SDK follows it only
 * with followRegionRedirects ("Amazon S3 considerations", AWS SDK for JavaScript v3 Developer Guide,
 * https://docs.aws.amazon.com/sdk-for-javascript/v3/developer-guide/migrate-s3.html).
 */

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { UploadPartCommand } from "@aws-sdk/client-s3";
import { describeS3Error, putJson, s3Client } from "../../image/src/s3";
import type { S3Settings } from "../../image/src/settings";

const bucketRegion = "eu-west-1";

interface FakeS3 {
  settings: S3Settings;
  /** The region each request was signed for, in order. */
  signedFor: string[];
  close(): Promise<void>;
}

/** Answers 200 to requests signed for `bucketRegion`, and S3's PermanentRedirect to any other (to every request when `alwaysRedirect`). */
async function bucketInAnotherRegion(alwaysRedirect = false): Promise<FakeS3> {
  const signedFor: string[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(req.headers.authorization ?? "")?.[1] ?? "unsigned";
      signedFor.push(region);
      if (alwaysRedirect || region !== bucketRegion) {
        res.writeHead(301, { "content-type": "application/xml", "x-amz-bucket-region": bucketRegion });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>backups-1.s3.${bucketRegion}.amazonaws.com</Endpoint><Bucket>backups-1</Bucket></Error>`,
        );
        return;
      }
      res.writeHead(200, { etag: '"0123456789abcdef"' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const settings: S3Settings = {
    bucket: "backups-1",
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forcePathStyle: true,
    region: "us-east-1",
    partSizeBytes: 5 * 2 ** 20,
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "not-a-secret" },
  };
  return { settings, signedFor, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

it("follows S3's 301 PermanentRedirect to the bucket's region, for the manifest and for a part", async () => {
  const s3 = await bucketInAnotherRegion();
  try {
    const client = s3Client(s3.settings);
    await putJson(client, s3.settings.bucket, "dev/x.dump.manifest.json", { ok: true });
    expect(s3.signedFor).toEqual(["us-east-1", bucketRegion]);
    const part = await client.send(new UploadPartCommand({ Bucket: s3.settings.bucket, Key: "dev/x.dump", UploadId: "u-1", PartNumber: 1, Body: Buffer.alloc(1024, 7) }));
    expect(part.ETag).toBe('"0123456789abcdef"');
    expect(s3.signedFor.slice(2)).toEqual(["us-east-1", bucketRegion]);
  } finally {
    await s3.close();
  }
});

it("names the bucket's region and AWS_REGION when the redirect still fails", async () => {
  const s3 = await bucketInAnotherRegion(true);
  try {
    const err = await putJson(s3Client(s3.settings), s3.settings.bucket, "dev/x.dump.manifest.json", {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "PermanentRedirect" });
    expect(describeS3Error(err, s3.settings.bucket, "dev/x.dump.manifest.json", "write")).toBe(
      "bucket 'backups-1' is in region eu-west-1, not the one requests were sent to: set AWS_REGION to eu-west-1 (S3 answered PermanentRedirect to write s3://backups-1/dev/x.dump.manifest.json)",
    );
  } finally {
    await s3.close();
  }
});
