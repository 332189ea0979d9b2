/**
 * `npm run s3-server -- [--bucket <name>] [--write-env <path>]`: the tests' loopback S3 server
 * (scripts/lib/localS3.ts) as a process of its own, for CI jobs that run the image against it. Once it
 * listens it writes the runner's S3 settings (endpoint, path-style, bucket, region, dummy keys: nothing
 * secret) as KEY=VALUE lines to that file, or to stdout, and serves until SIGTERM or SIGINT.
 */

import { renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startLocalS3 } from "./lib/localS3";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { bucket: { type: "string", default: "db-backup-local" }, "write-env": { type: "string" } } });
  const s3 = await startLocalS3(values.bucket);
  const lines = Object.entries(s3.env).map(([k, v]) => `${k}=${v}\n`).join("");
  const envFile = values["write-env"];
  if (envFile) {
    // Written whole, then renamed: a reader polling for the file never sees half of it.
    writeFileSync(`${envFile}.partial`, lines);
    renameSync(`${envFile}.partial`, envFile);
  } else {
    process.stdout.write(lines);
  }
  process.stderr.write(`local S3 at ${s3.endpoint}, bucket ${s3.bucket}, files in ${s3.directory}\n`);
  const stop = () => void s3.stop().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((err: Error) => {
  process.stderr.write(`s3-server failed: ${err.message}\n`);
  process.exit(1);
});
