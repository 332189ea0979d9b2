/**
 * `npm run bench`: the runner against the blog's way of backing up, side by side in one run, on a
 * throwaway PostgreSQL database of at least 300 MB and a loopback S3 server. Prints wall times, ratios,
 * the runner's peak RSS at two database sizes, the bytes it wrote to local disk, and restore times; and,
 * for comparison, the runner against an endpoint that discards what it receives (scripts/lib/discardS3.ts).
 * Not part of the tests: this machine is shared, so figures vary from run to run.
 */

import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { defaultPgCompression, pgMajor } from "../image/src/engines";
import { runChecked, type RunResult } from "../image/src/proc";
import { gatedUpload, getStream, listKeys, s3Client } from "../image/src/s3";
import { parseStorage } from "../image/src/settings";
import { startLocalPostgres, type LocalPostgres } from "./lib/localPostgres";
import { startDiscardS3 } from "./lib/discardS3";
import { startLocalS3 } from "./lib/localS3";

const root = join(__dirname, "..");
/** BENCH_ROUNDS: how many times the four contenders run, side by side (default 3); the median round is reported. */
const roundCount = Number(process.env.BENCH_ROUNDS ?? 3);
if (!Number.isInteger(roundCount) || roundCount < 1) throw new Error(`BENCH_ROUNDS='${process.env.BENCH_ROUNDS}' must be a whole number of rounds, 1 or more`);

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** A benchmarked command: it must succeed, and it may take as long as it takes (an hour at most). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return runChecked(`${command} failed`, command, args, env, 3600_000);
}

async function timed<T>(work: () => Promise<T>): Promise<{ s: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await work();
  return { s: seconds(start), value };
}

/**
 * Ordinary text: sentences drawn from a 5,000-word vocabulary of made-up words, which compress about
 * as well as application text does (roughly 3:1 with gzip). Generated here and loaded with COPY.
 */
async function fill(pg: LocalPostgres, database: string, rows: number): Promise<void> {
  pg.psql(`CREATE DATABASE ${database}`);
  pg.psql("CREATE TABLE notes (id bigint, created_at timestamptz, author text, body text)", database);
  const vocabulary = Array.from({ length: 5000 }, (_, k) => createHash("md5").update(String(k)).digest("hex").slice(0, 3 + (k % 7)));
  const copy = spawn("psql", ["-X", "-q", "-c", "COPY notes FROM STDIN"], { env: { ...process.env, ...pg.env(database) }, stdio: ["pipe", "inherit", "inherit"] });
  const done = new Promise((resolve, reject) => copy.on("close", (code) => (code === 0 ? resolve(null) : reject(new Error(`COPY exited ${code}`)))));
  const epoch = Date.UTC(2024, 9, 27);
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  for (let g = 1; g <= rows; ) {
    let chunk = "";
    for (const end = Math.min(rows, g + 9999); g <= end; g++) {
      const words = Array.from({ length: 12 + (g % 8) }, () => vocabulary[next() % 5000]).join(" ");
      chunk += `${g}\t${new Date(epoch - g * 1000).toISOString()}\tcustomer ${g % 50000}\t${words}\n`;
    }
    if (!copy.stdin.write(chunk)) await new Promise((resolve) => copy.stdin.once("drain", resolve));
  }
  copy.stdin.end();
  await done;
}

interface RunnerPass {
  s: number;
  rssMiB: number;
  diskWrites: number;
  bytes: number;
  dumpSeconds: number;
  storedSeconds: number;
  cpuSeconds: number;
  s3CpuSeconds: number;
}

async function runnerPass(env: NodeJS.ProcessEnv): Promise<RunnerPass> {
  // The S3 server runs in this process: its CPU time is this process's during the pass.
  const s3Cpu = process.cpuUsage();
  // The compiled runner, as the container runs it, under a 2 MB file size limit: a dump spooled to disk would fail.
  const { s, value } = await timed(() =>
    run("bash", ["-c", `ulimit -f 2048 && exec node -e "require('${root}/image/dist/cli.js').main(['backup'], process.env).then((c) => { const io = require('fs').readFileSync('/proc/self/io', 'utf8'); const u = process.resourceUsage(); process.stderr.write(JSON.stringify({ code: c, maxRssKiB: u.maxRSS, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6, writeBytes: Number(/write_bytes: (\\\\d+)/.exec(io)[1]) }) + '\\\\n'); process.exitCode = c; })"`], env),
  );
  const stats = JSON.parse(value.stderr.trim().split("\n").pop()!);
  const stored = value.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === "backup stored");
  if (stats.code !== 0 || !stored) throw new Error(`the runner failed: ${value.stdout}`);
  const s3Used = process.cpuUsage(s3Cpu);
  return {
    s,
    rssMiB: stats.maxRssKiB / 1024,
    diskWrites: stats.writeBytes,
    bytes: stored.bytes,
    dumpSeconds: stored.dumpSeconds,
    storedSeconds: stored.durationSeconds,
    cpuSeconds: stats.cpuSeconds,
    s3CpuSeconds: (s3Used.user + s3Used.system) / 1e6,
  };
}

async function main(): Promise<void> {
  process.stderr.write("building the runner (npm run --workspace=image build)\n");
  execFileSync("npm", ["run", "--silent", "--workspace=image", "build"], { cwd: root, stdio: "inherit" });
  const pg = await startLocalPostgres();
  const s3 = await startLocalS3();
  const discard = await startDiscardS3();
  const work = mkdtempSync(join(tmpdir(), "db-backup-bench-"));
  try {
    process.stderr.write("creating the databases\n");
    await fill(pg, "small", 1_000_000);
    await fill(pg, "large", 2_600_000);
    const size = (db: string) => Number(pg.psql(`SELECT pg_database_size('${db}')`, db)) / 2 ** 20;
    const pgEnv = { ...process.env, ...pg.env("large") };
    const version = execFileSync("pg_dump", ["--version"]).toString().trim();
    const compression = defaultPgCompression(pgMajor(version));
    const env = (db: string) => ({ ...process.env, ...s3.env, STAGE: "bench", PG_DB_HOST: `${pg.host}:${pg.port}`, PG_DB_NAME: db, PG_DB_USER: pg.user, PG_DB_PASSWORD: pg.password });

    // Warm the cache so the first contender does not pay for reading the table from disk.
    await run("pg_dump", ["--format=custom", "--compress=0", "--no-sync", "--file=/dev/null"], pgEnv);

    const blogFile = join(work, "blog.dump");
    // The same runner, its parts received over loopback and dropped: the S3 server's work off this machine.
    const discardEnv = { ...env("large"), AWS_ENDPOINT_URL_S3: discard.endpoint };
    const { s3: settings } = parseStorage(env("large"));
    const client = s3Client(settings);
    const blogWay = () =>
      timed(async () => {
        const dump = await timed(() => run("pg_dump", ["-F", "c", "-f", blogFile], pgEnv));
        // What `aws s3 cp` does with a file: a multipart upload read from disk (here with the runner's own uploader).
        const upload = await timed(() => gatedUpload(client, settings, "blog/large.dump", createReadStream(blogFile), "application/octet-stream"));
        return { dump: dump.s, upload: upload.s };
      });
    const dumpToNull = (level: string) => timed(() => run("pg_dump", ["--format=custom", `--compress=${level}`, "--no-sync", "--file=/dev/null"], pgEnv));

    // Side by side, round after round; each contender starts with no dirty pages left by the one before.
    const rounds: { blog: Awaited<ReturnType<typeof blogWay>>; runner: RunnerPass; discarded: RunnerPass; bare: number; raw: number }[] = [];
    for (let k = 1; k <= roundCount; k++) {
      execFileSync("sync");
      const blog = await blogWay();
      execFileSync("sync");
      const runner = await runnerPass(env("large"));
      execFileSync("sync");
      const received = discard.received();
      const discarded = await runnerPass(discardEnv);
      if (discard.received() - received < discarded.bytes) throw new Error("the discarding endpoint received less than the runner sent");
      execFileSync("sync");
      const bare = (await dumpToNull(compression)).s;
      execFileSync("sync");
      const raw = (await dumpToNull("0")).s;
      rounds.push({ blog, runner, discarded, bare, raw });
      process.stderr.write(
        `round ${k}/${roundCount}: blog ${blog.s.toFixed(2)} s, runner ${runner.s.toFixed(2)} s, runner to the discarding endpoint ${discarded.s.toFixed(2)} s, ` +
          `bare pg_dump ${bare.toFixed(2)} s, uncompressed ${raw.toFixed(2)} s; runner / bare ${(runner.s / bare).toFixed(2)}x (discarding: ${(discarded.s / bare).toFixed(2)}x)\n`,
      );
    }
    // The round whose runner/bare ratio is the median stands for the run, so its figures belong together.
    const byRatio = [...rounds].sort((a, b) => a.runner.s / a.bare - b.runner.s / b.bare);
    const { blog, runner, discarded, bare, raw } = byRatio[Math.floor((byRatio.length - 1) / 2)];
    const blogBytes = statSync(blogFile).size;
    const small = await runnerPass(env("small"));

    // Restore times: the blog's file and the runner's backup, each into a fresh database.
    const runnerFile = join(work, "runner.dump");
    const backupKey = (await listKeys(client, settings.bucket, "bench/postgres/large/")).find((k) => k.endsWith(".dump"))!;
    await pipeline(await getStream(client, settings.bucket, backupKey), createWriteStream(runnerFile));
    pg.psql("CREATE DATABASE restore_blog");
    pg.psql("CREATE DATABASE restore_runner");
    const restoreBlog = await timed(() => run("pg_restore", ["--dbname=restore_blog", "--exit-on-error", blogFile], pgEnv));
    const restoreRunner = await timed(() => run("pg_restore", ["--dbname=restore_runner", "--exit-on-error", runnerFile], pgEnv));

    const fmt = (n: number) => n.toFixed(2);
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    const lines = [
      `${version}; database 'large' ${size("large").toFixed(0)} MiB, 'small' ${size("small").toFixed(0)} MiB; runner compression ${compression}`,
      ``,
      `blog's way (pg_dump -Fc to a file, then upload)  ${fmt(blog.s)} s  (dump ${fmt(blog.value.dump)} s + upload ${fmt(blog.value.upload)} s), ${mib(blogBytes)} MiB, ${mib(blogBytes)} MiB on local disk`,
      `runner (streamed to S3)                          ${fmt(runner.s)} s, ${mib(runner.bytes)} MiB, peak RSS ${runner.rssMiB.toFixed(0)} MiB, ${runner.diskWrites} bytes written to local disk`,
      `  of which: dump ran ${fmt(runner.dumpSeconds)} s, stored with manifest at ${fmt(runner.storedSeconds)} s after the target started`,
      `  CPU: runner process ${fmt(runner.cpuSeconds)} s, S3 server ${fmt(runner.s3CpuSeconds)} s (both on this machine's ${cpus().length} cores)`,
      `runner, endpoint discarding the parts            ${fmt(discarded.s)} s; CPU: runner ${fmt(discarded.cpuSeconds)} s, endpoint ${fmt(discarded.s3CpuSeconds)} s`,
      `bare pg_dump --compress=${compression} > /dev/null             ${fmt(bare)} s`,
      `uncompressed pg_dump > /dev/null (read limit)     ${fmt(raw)} s`,
      ``,
      `blog / runner                 ${fmt(blog.s / runner.s)}x   (target >= 1.6)  ${blog.s / runner.s >= 1.6 ? "met" : "NOT met"}`,
      `runner / bare pg_dump         ${fmt(runner.s / bare)}x   (target <= 1.3)  ${runner.s / bare <= 1.3 ? "met" : "NOT met"}`,
      `runner / read limit           ${fmt(runner.s / raw)}x`,
      `runner (discarding) / bare    ${fmt(discarded.s / bare)}x   (for comparison: the server's work off this machine)`,
      `peak RSS small / large        ${small.rssMiB.toFixed(0)} / ${runner.rssMiB.toFixed(0)} MiB   (target < 200, flat)  ${runner.rssMiB < 200 && runner.rssMiB < small.rssMiB * 1.25 ? "met" : "NOT met"}`,
      `restore from blog's file      ${fmt(restoreBlog.s)} s`,
      `restore from runner's backup  ${fmt(restoreRunner.s)} s`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    rmSync(work, { recursive: true, force: true });
    await s3.stop();
    await discard.stop();
    pg.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.message}\n`);
  process.exitCode = 1;
});
