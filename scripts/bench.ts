/**
 * `npm run bench`: the runner against the blog's way of backing up, side by side in one run, on a
 * throwaway PostgreSQL database of at least 300 MB and a loopback S3 server. Prints wall times, ratios,
 * the runner's peak RSS at two database sizes, the bytes it wrote to local disk, and restore times; and,
 * for comparison, the runner against an endpoint that discards what it receives (scripts/lib/discardS3.ts).
 * Then the model of a 1-vCPU Fargate task: the dump side pinned to one CPU, PostgreSQL and the S3
 * endpoint on the others, runner against bare pg_dump for each compression the installed pg_dump has.
 * Not part of the tests: this machine is shared, so figures vary from run to run.
 *
 * BENCH_ROUNDS (3), BENCH_CPU_MODEL (all, 1vcpu or both: the default), BENCH_COMPRESSIONS (for the
 * one-CPU rounds: a comma-separated list of --compress values; every default of scripts/lib/benchPlan.ts
 * when unset) and BENCH_SCALE (1: a factor on the databases' sizes; below 1 only to check that it works).
 */

import { execFileSync } from "node:child_process";
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { defaultPgCompression, pgMajor } from "../image/src/engines";
import { onPath, runChecked, type RunResult } from "../image/src/proc";
import { gatedUpload, getStream, listKeys, s3Client } from "../image/src/s3";
import { parseStorage } from "../image/src/settings";
import { cpuModels, databaseRows, describeCompression, medianBy, requestedCompressions, splitCpus } from "./lib/benchPlan";
import { affinityOf, backendCpus, coreSiblings, pin, serverProcesses, tasksetProblem } from "./lib/cpuPinning";
import { startLocalPostgres, type LocalPostgres } from "./lib/localPostgres";
import { startDiscardS3, type DiscardS3 } from "./lib/discardS3";
import { startLocalS3 } from "./lib/localS3";
import { fillNotes } from "./lib/sampleDatabase";

const root = join(__dirname, "..");
/** BENCH_ROUNDS: how many times the four contenders run, side by side (default 3); the median round is reported. */
const roundCount = Number(process.env.BENCH_ROUNDS ?? 3);
if (!Number.isInteger(roundCount) || roundCount < 1) throw new Error(`BENCH_ROUNDS='${process.env.BENCH_ROUNDS}' must be a whole number of rounds, 1 or more`);
const models = cpuModels(process.env.BENCH_CPU_MODEL);
const rows = databaseRows(process.env.BENCH_SCALE);

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

/** `taskset -c <cpu>` before a command, to run it (and what it starts) on that CPU alone; nothing without a CPU. */
function onCpu(cpu: number | undefined): string[] {
  return cpu === undefined ? [] : ["taskset", "-c", String(cpu)];
}

/** One backup by the compiled runner, on `cpu` alone where one is given. */
async function runnerPass(env: NodeJS.ProcessEnv, cpu?: number): Promise<RunnerPass> {
  // The S3 server runs in this process: its CPU time is this process's during the pass.
  const s3Cpu = process.cpuUsage();
  // The compiled runner, as the container runs it, under a 2 MB file size limit: a dump spooled to disk would fail.
  const [command, ...prefix] = [...onCpu(cpu), "bash"];
  const { s, value } = await timed(() =>
    run(command, [...prefix, "-c", `ulimit -f 2048 && exec node -e "require('${root}/image/dist/cli.js').main(['backup'], process.env).then((c) => { const io = require('fs').readFileSync('/proc/self/io', 'utf8'); const u = process.resourceUsage(); process.stderr.write(JSON.stringify({ code: c, maxRssKiB: u.maxRSS, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6, writeBytes: Number(/write_bytes: (\\\\d+)/.exec(io)[1]) }) + '\\\\n'); process.exitCode = c; })"`], env),
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

/** What every section of a run shares: the servers, the databases' environments and the pg_dump in use. */
interface Bench {
  pg: LocalPostgres;
  discard: DiscardS3;
  work: string;
  /** libpq's environment for the database 'large'. */
  pgEnv: NodeJS.ProcessEnv;
  /** The runner's environment for a database, storing into the loopback S3 server. */
  env(db: string): NodeJS.ProcessEnv;
  major: number | undefined;
  /** The runner's own choice for this pg_dump (defaultPgCompression). */
  compression: string;
}

const fmt = (n: number) => n.toFixed(2);
const mib = (n: number) => (n / 2 ** 20).toFixed(1);

/** The machine as it is: the blog's way, the runner (to S3 and to the discarding endpoint), bare and uncompressed pg_dump, memory and restores. */
async function everyCpu({ pg, discard, work, pgEnv, env, compression }: Bench): Promise<string[]> {
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
  const { blog, runner, discarded, bare, raw } = medianBy(rounds, (r) => r.runner.s / r.bare);
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

  return [
    `Every CPU (the machine as it is, ${cpus().length} cores shared by all), median of ${roundCount} round(s):`,
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
}

/** The compressions to measure on one CPU: those asked for that this pg_dump takes, and why each other one is left out. */
async function usableCompressions({ pgEnv, major }: Bench): Promise<{ usable: string[]; left: string[] }> {
  const usable: string[] = [];
  const left: string[] = [];
  for (const c of requestedCompressions(process.env.BENCH_COMPRESSIONS, major)) {
    if (major !== undefined && major < 16 && !/^\d$/.test(c)) {
      left.push(`${c}: pg_dump ${major} takes only a gzip level 0-9` + (/^[a-z]/i.test(c) ? " (methods need pg_dump 16 or later)" : ""));
      continue;
    }
    // pg_dump itself says whether it was built with the method (zstd and lz4 are build options).
    try {
      await run("pg_dump", ["--format=custom", `--compress=${c}`, "--schema-only", "--no-sync", "--file=/dev/null"], pgEnv);
      usable.push(c);
    } catch (err) {
      left.push(`${c}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return { usable, left };
}

interface PinnedRound {
  runner: RunnerPass;
  bare: number;
  /** The runner encrypting with age (BACKUP_AGE_RECIPIENTS), for the runner's own compression only. */
  encrypted?: RunnerPass;
}

/**
 * A throwaway age recipient for the encrypted contender (its identity is discarded: nothing is decrypted
 * here), or why the contender cannot run: without age the runner cannot encrypt.
 */
function benchRecipient(): { recipient: string } | { reason: string } {
  const keygen = onPath("age-keygen", process.env);
  if (!keygen || !onPath("age", process.env)) return { reason: "age and age-keygen are not on PATH (Debian: apt-get install age)" };
  const line = execFileSync(keygen, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-"))!;
  return { recipient: execFileSync(keygen, ["-y"], { input: line + "\n", encoding: "utf8" }).trim() };
}

/**
 * The model of a 1-vCPU Fargate task. Everything in the task shares its one vCPU: pg_dump, and the
 * runner that carries pg_dump's output to S3. PostgreSQL and S3 are elsewhere, so here they get the
 * other CPUs. The endpoint is the discarding one: S3's own work (hashing, storing) is off the task, and
 * s3rver's writes to this machine's disk would bring kernel writeback onto the dump's CPU.
 *
 * @returns the section's lines, or a reason it could not be measured (the caller decides whether that fails the run)
 */
async function oneCpu(bench: Bench): Promise<{ lines: string[] } | { reason: string }> {
  const { pg, discard, pgEnv, env } = bench;
  const problem = tasksetProblem();
  if (problem) return { reason: problem };
  const allowed = affinityOf(process.pid)!;
  const layout = splitCpus(allowed);
  if ("reason" in layout) return layout;
  const { dump, servers } = layout;
  let serverPids: number[];
  try {
    serverPids = serverProcesses(pg);
  } catch (err) {
    return { reason: (err as Error).message };
  }
  const { usable, left } = await usableCompressions(bench);
  if (usable.length === 0) return { reason: `no compression to measure: ${left.join("; ")}` };
  const age = benchRecipient();

  const serverAffinity = affinityOf(serverPids[0]) ?? allowed;
  try {
    pin([process.pid], servers);
    pin(serverPids, servers);
  } catch (err) {
    pin([process.pid], allowed);
    return { reason: (err as Error).message };
  }
  const rounds = new Map<string, PinnedRound[]>(usable.map((c) => [c, []]));
  try {
    const backend = backendCpus(pg);
    if (backend.includes(dump)) throw new Error(`a new PostgreSQL backend may still run on CPU ${dump} (it may use ${backend.join(",")}): the server was not pinned`);
    const bare = (c: string) => timed(() => run("taskset", ["-c", String(dump), "pg_dump", "--format=custom", `--compress=${c}`, "--no-sync", "--file=/dev/null"], pgEnv)).then((t) => t.s);
    const runner = async (c: string, extra: NodeJS.ProcessEnv = {}) => {
      const received = discard.received();
      const pass = await runnerPass({ ...env("large"), AWS_ENDPOINT_URL_S3: discard.endpoint, PG_DUMP_COMPRESSION: c, ...extra }, dump);
      if (discard.received() - received < pass.bytes) throw new Error("the discarding endpoint received less than the runner sent");
      return pass;
    };
    for (let k = 1; k <= roundCount; k++) {
      for (const c of usable) {
        // Which of the two goes first alternates from round to round, so neither always follows the other.
        const round = {} as PinnedRound;
        const contenders = ["runner", "bare", ...("recipient" in age && c === bench.compression ? ["encrypted"] : [])];
        for (const contender of k % 2 === 1 ? contenders : contenders.reverse()) {
          execFileSync("sync");
          if (contender === "runner") round.runner = await runner(c);
          else if (contender === "encrypted" && "recipient" in age) round.encrypted = await runner(c, { BACKUP_AGE_RECIPIENTS: age.recipient });
          else round.bare = await bare(c);
        }
        rounds.get(c)!.push(round);
        process.stderr.write(
          `one CPU, round ${k}/${roundCount}, ${describeCompression(c)}: runner ${fmt(round.runner.s)} s (CPU ${fmt(round.runner.cpuSeconds)} s), ` +
            `bare pg_dump ${fmt(round.bare)} s; runner / bare ${fmt(round.runner.s / round.bare)}x` +
            (round.encrypted ? `; encrypted ${fmt(round.encrypted.s)} s, encrypted / runner ${fmt(round.encrypted.s / round.runner.s)}x` : "") +
            "\n",
        );
      }
    }
  } finally {
    pin([process.pid], allowed);
    pin(serverProcesses(pg), serverAffinity);
  }

  const siblings = coreSiblings(dump).filter((c) => servers.includes(c));
  const table = [["compression", "size", "bare pg_dump", "runner", "runner / bare", "rounds' runner / bare", "runner CPU", "target <= 1.3"]];
  for (const c of usable) {
    const all = rounds.get(c)!;
    const ratios = all.map((r) => r.runner.s / r.bare);
    const median = medianBy(all, (r) => r.runner.s / r.bare);
    const ratio = median.runner.s / median.bare;
    table.push([
      describeCompression(c),
      `${mib(median.runner.bytes)} MiB`,
      `${fmt(median.bare)} s`,
      `${fmt(median.runner.s)} s`,
      `${fmt(ratio)}x`,
      ratios.length > 1 ? `${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}x` : "",
      `${fmt(median.runner.cpuSeconds)} s`,
      // Judged on the printed figure, so a row never reads "1.30x NOT met".
      Number(fmt(ratio)) <= 1.3 ? "met" : "NOT met",
    ]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const encryption = encryptionLines(rounds.get(bench.compression), bench.compression, age);
  return {
    lines: [
      `One vCPU (the model of a 1-vCPU Fargate task), median of ${roundCount} round(s) per compression:`,
      `  CPU ${dump}: bare pg_dump; the runner and the pg_dump it starts (taskset -c ${dump})`,
      `  CPU ${servers.join(",")}: PostgreSQL (postmaster and backends) and the S3 endpoint, which discards the parts (this process)` +
        (siblings.length > 0 ? `; CPU ${dump} shares its core with CPU ${siblings.join(",")} (hyperthreads)` : ""),
      ``,
      ...table.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ")),
      ...(left.length > 0 ? ["", ...left.map((l) => `not measured: ${l}`)] : []),
      ``,
      `runner CPU: the runner's own process (reading pg_dump's output, SHA-256, the upload), not pg_dump's; both share CPU ${dump}.`,
      ``,
      ...encryption,
    ],
  };
}

/** The encrypted contender against the plain runner, on the same CPU and compression, round by round. */
function encryptionLines(rounds: PinnedRound[] | undefined, compression: string, age: { recipient: string } | { reason: string }): string[] {
  const title = `Encryption with age (BACKUP_AGE_RECIPIENTS), ${describeCompression(compression)}, on the same one CPU`;
  if ("reason" in age) return [`${title}: not measured, ${age.reason}`];
  const measured = (rounds ?? []).filter((r): r is PinnedRound & { encrypted: RunnerPass } => r.encrypted !== undefined);
  if (measured.length === 0) return [`${title}: not measured, the runner's own compression (${compression}) was not among those measured`];
  const ratios = measured.map((r) => r.encrypted.s / r.runner.s);
  const median = medianBy(measured, (r) => r.encrypted.s / r.runner.s);
  const ratio = median.encrypted.s / median.runner.s;
  return [
    `${title}, median of ${measured.length} round(s):`,
    `  runner ${fmt(median.runner.s)} s (CPU ${fmt(median.runner.cpuSeconds)} s), encrypted ${fmt(median.encrypted.s)} s (runner CPU ${fmt(median.encrypted.cpuSeconds)} s; age's is not counted there), ` +
      `${mib(median.encrypted.bytes)} MiB stored; encrypted / runner ${fmt(ratio)}x (rounds ${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}x); ` +
      `target <= 1.10: ${Number(fmt(ratio)) <= 1.1 ? "met" : "NOT met"}`,
  ];
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
    if (models.includes("all")) await fillNotes(pg, "small", rows.small);
    await fillNotes(pg, "large", rows.large);
    const size = (db: string) => Number(pg.psql(`SELECT pg_database_size('${db}')`, db)) / 2 ** 20;
    const version = execFileSync("pg_dump", ["--version"]).toString().trim();
    const major = pgMajor(version);
    const bench: Bench = {
      pg,
      discard,
      work,
      pgEnv: { ...process.env, ...pg.env("large") },
      env: (db: string) => ({ ...process.env, ...s3.env, STAGE: "bench", PG_DB_HOST: `${pg.host}:${pg.port}`, PG_DB_NAME: db, PG_DB_USER: pg.user, PG_DB_PASSWORD: pg.password }),
      major,
      compression: defaultPgCompression(major),
    };

    // Warm the cache so the first contender does not pay for reading the table from disk.
    await run("pg_dump", ["--format=custom", "--compress=0", "--no-sync", "--file=/dev/null"], bench.pgEnv);

    const databases = models.includes("all") ? `database 'large' ${size("large").toFixed(0)} MiB, 'small' ${size("small").toFixed(0)} MiB` : `database 'large' ${size("large").toFixed(0)} MiB`;
    const lines = [
      `${version}; ${databases}; runner compression ${bench.compression}` + (rows.scale !== 1 ? ` (BENCH_SCALE=${rows.scale}: a check that the bench works, not figures to quote)` : ""),
    ];
    if (models.includes("all")) lines.push(``, ...(await everyCpu(bench)));
    if (models.includes("1vcpu")) {
      const section = await oneCpu(bench);
      if ("reason" in section) {
        // Asked for alone, the model must be measured; as part of both, the rest of the run still stands.
        if (!models.includes("all")) throw new Error(`the one-CPU model cannot be measured here: ${section.reason}`);
        process.stderr.write(`one-CPU rounds skipped: ${section.reason}\n`);
        lines.push(``, `One vCPU (the model of a 1-vCPU Fargate task): not measured, ${section.reason}`);
      } else {
        lines.push(``, ...section.lines);
      }
    }
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
