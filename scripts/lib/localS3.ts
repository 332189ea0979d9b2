/**
 * An S3 protocol server on loopback for the demo, the tests and the benchmark: s3rver, with the two
 * multipart calls it lacks (AbortMultipartUpload, ListMultipartUploads) added, so that "no multipart
 * upload is left behind" is something the runner can do and the tests can check.
 */

import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  /** Where s3rver keeps its files (for the tests' look at what is stored). */
  directory: string;
  /** Environment for the runner: endpoint, path-style, dummy credentials and region. */
  env: Record<string, string>;
  /** Keys of the multipart uploads still open in `bucket`. */
  openUploads(): Promise<string[]>;
  stop(): Promise<void>;
}

async function uploadKeys(uploadsDir: string): Promise<{ id: string; key: string }[]> {
  const ids = await readdir(uploadsDir).catch(() => [] as string[]);
  return Promise.all(ids.map(async (id) => ({ id, key: (await readFile(join(uploadsDir, id, "key"))).toString() })));
}

export async function startLocalS3(bucket = "db-backup-local"): Promise<LocalS3> {
  const directory = await mkdtemp(join(tmpdir(), "db-backup-s3-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const uploadsDir = (name: string) => server.store.getResourcePath(name, undefined, "uploads");

  server.middleware.unshift(async (ctx, next) => {
    const [, name] = ctx.path.split("/");
    if (ctx.method === "DELETE" && ctx.query.uploadId !== undefined) {
      await rm(join(uploadsDir(name), ctx.query.uploadId), { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (ctx.method === "GET" && ctx.query.uploads !== undefined && ctx.path.split("/").filter(Boolean).length === 1) {
      const uploads = await uploadKeys(uploadsDir(name));
      ctx.type = "application/xml";
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${name}</Bucket><IsTruncated>false</IsTruncated>` +
        uploads.map((u) => `<Upload><Key>${u.key}</Key><UploadId>${u.id}</UploadId></Upload>`).join("") +
        `</ListMultipartUploadsResult>`;
      return;
    }
    await next();
  });

  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    directory,
    env: {
      S3_BUCKET: bucket,
      AWS_ENDPOINT_URL_S3: endpoint,
      S3_FORCE_PATH_STYLE: "true",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    },
    openUploads: async () => (await uploadKeys(uploadsDir(bucket))).map((u) => u.key),
    stop: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
