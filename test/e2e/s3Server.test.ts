/**
 * `npm run s3-server`, as CI's image job starts it: in the background, its settings read from the file it
 * writes once it listens. The settings must reach a working bucket, and SIGTERM must stop it cleanly.
 */

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { exitOf } from "../../image/src/proc";

const repoRoot = join(__dirname, "../..");

it("writes the runner's S3 settings once it listens, serves the bucket, and stops on SIGTERM", async () => {
  const dir = mkdtempSync(join(tmpdir(), "db-backup-s3-server-"));
  const envFile = join(dir, "s3.env");
  const child = spawn(process.execPath, [require.resolve("tsx/cli"), join(repoRoot, "scripts", "s3Server.ts"), "--bucket", "db-backup-ci", "--write-env", envFile], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = exitOf(child);
  try {
    for (let i = 0; i < 300 && !existsSync(envFile); i++) await new Promise((r) => setTimeout(r, 100));
    const settings = Object.fromEntries(
      readFileSync(envFile, "utf8")
        .trim()
        .split("\n")
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    expect(settings).toMatchObject({ S3_BUCKET: "db-backup-ci", S3_FORCE_PATH_STYLE: "true", AWS_REGION: "us-east-1" });
    expect(settings.AWS_ENDPOINT_URL_S3).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const s3 = new S3Client({
      endpoint: settings.AWS_ENDPOINT_URL_S3,
      forcePathStyle: true,
      region: settings.AWS_REGION,
      credentials: { accessKeyId: settings.AWS_ACCESS_KEY_ID, secretAccessKey: settings.AWS_SECRET_ACCESS_KEY },
    });
    await s3.send(new PutObjectCommand({ Bucket: settings.S3_BUCKET, Key: "ci/hello.txt", Body: "hello" }));
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: settings.S3_BUCKET }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(["ci/hello.txt"]);
    s3.destroy();

    const served = /files in (\S+)/.exec(stderr)?.[1];
    expect(served && existsSync(served)).toBe(true);
    child.kill("SIGTERM");
    expect((await exited).code).toBe(0);
    expect(existsSync(served!)).toBe(false);
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}, 60000);
