/**
 * `npm run sandbox`: the demo's throwaway PostgreSQL (with its sample database) and the local S3 server,
 * kept running so `npm run backup`, `verify` and `restore` can be tried by hand from another terminal.
 * stdout is only the `export` lines those commands need; everything else goes to stderr. Ctrl-C (SIGINT)
 * or SIGTERM stops both servers and removes their files.
 */

import { startLocalPostgres, type LocalPostgres } from "./lib/localPostgres";
import { startLocalS3, type LocalS3 } from "./lib/localS3";
import { createSampleDatabase } from "./lib/sampleDatabase";
import { exportLines, npmCommand, sandboxCommands, sandboxDatabase, sandboxVariables } from "./lib/sandbox";

const say = (text: string) => process.stderr.write(`${text}\n`);
// Ctrl-C under `npm run` may close the terminal's pipe before the cleanup's last line: no reason to crash.
process.stderr.on("error", () => {});

async function main(): Promise<void> {
  let pg: LocalPostgres | undefined;
  let s3: LocalS3 | undefined;
  let started = false;
  let stopRequested: string | undefined;
  const stop = async (why: string, code: number) => {
    // Removed first, reported after: with `npm run` the terminal may already be gone.
    await s3?.stop();
    pg?.stop();
    say(`${why}: stopped, the PostgreSQL cluster and the S3 files are removed`);
    process.exit(code);
  };
  // A signal during start-up waits for it to finish, so what was started is also what is removed.
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) return;
    stopRequested = signal;
    if (started) void stop(signal, 0);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    // Its own cluster even in CI (PGTEST_HOST): the sandbox's databases belong to no test.
    pg = await startLocalPostgres({ ownCluster: true });
    createSampleDatabase(pg, sandboxDatabase);
    s3 = await startLocalS3("db-backup-sandbox");
  } catch (err) {
    return stop(`start-up failed (${(err as Error).message})`, 1);
  }
  started = true;
  if (stopRequested) return stop(stopRequested, 0);
  say(`PostgreSQL ${pg.host}:${pg.port}, database '${sandboxDatabase}' (the demo's sample), cluster in ${pg.directory ?? "(not ours)"}`);
  say(`S3 ${s3.endpoint}, bucket ${s3.bucket}, files in ${s3.directory}`);
  say("\nPaste the lines below into another terminal and run there, in turn:");
  for (const argv of sandboxCommands) say(`  ${npmCommand(argv)}`);
  say("Ctrl-C here stops everything.\n");
  process.stdout.write(exportLines(sandboxVariables({ postgres: pg, s3: s3.env })));
}

void main();
