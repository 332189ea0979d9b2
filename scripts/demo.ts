/**
 * `npm run demo`: the whole cycle on this machine, with nothing to configure. A throwaway PostgreSQL
 * cluster and a loopback S3 server are started, a sample database is backed up by the runner with the
 * blog's variables, verified, restored into a fresh database by `restore`, and compared table by table;
 * then drilled: restored into a throwaway server of its own by `drill`, which prints the recovery time.
 * On a terminal the runner's log is readable, with its progress display (`npm run demo -- --json` for JSON).
 */

import { main, readableOutput } from "../image/src/cli";
import { newestDrillRecord, type DrillRecord } from "../image/src/drill";
import { useTerminal } from "../image/src/log";
import { s3Client } from "../image/src/s3";
import { parseStorage } from "../image/src/settings";
import { startLocalPostgres } from "./lib/localPostgres";
import { startLocalS3 } from "./lib/localS3";
import { npmCommand } from "./lib/sandbox";
import { compareDatabases, createSampleDatabase, digestsCover, tableDigests } from "./lib/sampleDatabase";

function say(text: string): void {
  process.stderr.write(`\n== ${text}\n`);
}

async function demo(): Promise<number> {
  say("starting a throwaway PostgreSQL cluster and a local S3 server");
  const pg = await startLocalPostgres();
  const s3 = await startLocalS3();
  try {
    createSampleDatabase(pg, "shop");
    say(`sample database 'shop' on 127.0.0.1:${pg.port}; S3 at ${s3.endpoint}, bucket ${s3.bucket}`);
    const env = {
      ...process.env,
      ...s3.env,
      STAGE: "demo",
      PG_DB_HOST: `${pg.host}:${pg.port}`,
      PG_DB_NAME: "shop",
      PG_DB_USER: pg.user,
      PG_DB_PASSWORD: pg.password,
      BACKUP_TIMEZONE: "Asia/Singapore",
    };
    // Each step announces the command it runs, from the same arguments, so the two cannot disagree.
    const steps: [string[], string][] = [
      [["backup"], " (the blog's variables: STAGE, S3_BUCKET, PG_DB_HOST, PG_DB_NAME, PG_DB_USER, PG_DB_PASSWORD)"],
      [["verify", "--deep"], ""],
      [["restore", "--database", "shop_restored", "--create"], ""],
    ];
    for (const [argv, note] of steps) {
      say(`${npmCommand(argv)}${note}`);
      if ((await main(argv, env)) !== 0) return 1;
    }

    say("comparing shop with shop_restored, table by table");
    const digests = tableDigests(pg, "shop");
    const differences = compareDatabases(pg, "shop", "shop_restored");
    for (const [table, digest] of digests) {
      const bad = differences.find((d) => d.table === table);
      process.stderr.write(`  ${bad ? "DIFFERS" : "same   "} ${table}: ${digest}${bad ? ` vs ${bad.b}` : ""}\n`);
    }
    if (differences.length > 0) {
      say(`FAILED: ${differences.length} table(s) differ after the restore`);
      return 1;
    }
    say(`all ${digestsCover(digests)} are identical after backup, verify and restore`);

    say("npm run drill (what the verifier task runs every day: the latest backup restored into a throwaway server, counted and recorded)");
    if ((await main(["drill"], env)) !== 0) return 1;
    const record = await latestDrill(env);
    say(
      `OK: the backup restores. RTO ${record.restoreSeconds}s (download ${record.downloadSeconds}s + restore); ` +
        `${record.restoredRows} rows in ${Object.keys(record.counts).length} tables; record s3://${s3.bucket}/${record.stage}/drills/${record.target}/`,
    );
    return 0;
  } finally {
    await s3.stop();
    pg.stop();
  }
}

if (readableOutput(process.stdout.isTTY, process.argv.slice(2))) useTerminal(process.stdout);
demo().then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    process.stderr.write(`demo failed: ${err.message}\n`);
    process.exitCode = 1;
  },
);

/** The newest drill record of the demo's stage. */
async function latestDrill(env: NodeJS.ProcessEnv): Promise<DrillRecord> {
  const { stage, s3 } = parseStorage(env);
  const record = await newestDrillRecord(s3Client(s3), s3.bucket, stage);
  if (!record) throw new Error(`the drill left no record under s3://${s3.bucket}/${stage}/drills/`);
  return record;
}
