/**
 * `npx tsx scripts/drillRto.ts`: the recovery time a drill measures (download + restore) for the bench's
 * larger database (about 440 MiB of ordinary text, 2.6 million rows at BENCH_SCALE=1), backed up by the
 * runner into the loopback S3 and drilled into a throwaway server, as the verifier task does. Not part
 * of the tests: this machine is shared, so figures vary from run to run.
 */

import type { Manifest } from "../image/src/backup";
import { main } from "../image/src/cli";
import { newestDrillRecord } from "../image/src/drill";
import { manifestKey } from "../image/src/keys";
import { getJson, s3Client } from "../image/src/s3";
import { parseStorage } from "../image/src/settings";
import { databaseRows } from "./lib/benchPlan";
import { startLocalPostgres } from "./lib/localPostgres";
import { startLocalS3 } from "./lib/localS3";
import { fillNotes } from "./lib/sampleDatabase";

async function measure(): Promise<void> {
  const rows = databaseRows(process.env.BENCH_SCALE).large;
  const pg = await startLocalPostgres();
  const s3 = await startLocalS3();
  try {
    await fillNotes(pg, "large", rows);
    const env = { ...process.env, ...s3.env, STAGE: "rto", PG_DB_HOST: `${pg.host}:${pg.port}`, PG_DB_NAME: "large", PG_DB_USER: pg.user, PG_DB_PASSWORD: pg.password };
    if ((await main(["backup", "--json"], env)) !== 0) throw new Error("the backup failed");
    if ((await main(["drill", "--json"], env)) !== 0) throw new Error("the drill failed");
    const { stage, s3: settings } = parseStorage(env);
    const client = s3Client(settings);
    const record = await newestDrillRecord(client, settings.bucket, stage);
    if (!record) throw new Error("the drill left no record");
    const manifest = await getJson<Manifest>(client, settings.bucket, manifestKey(record.backupKey!));
    process.stderr.write(
      `\n${rows} rows, ${pg.psql("SELECT pg_size_pretty(pg_database_size('large'))")} in the source, a ${(manifest.bytes / 2 ** 20).toFixed(1)} MiB backup (${manifest.compression}); ` +
        `RTO ${record.restoreSeconds}s = download ${record.downloadSeconds}s + restore ${(record.restoreSeconds! - record.downloadSeconds!).toFixed(2)}s; ` +
        `${record.restoredRows} rows restored, ${JSON.stringify(record.sizes)} bytes per schema, server ${record.serverVersion}\n`,
    );
  } finally {
    await s3.stop();
    pg.stop();
  }
}

measure().catch((err: Error) => {
  process.stderr.write(`drillRto failed: ${err.message}\n`);
  process.exitCode = 1;
});
