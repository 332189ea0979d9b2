/**
 * The runner's commands: `backup` (what the container runs), `verify`, `restore`, and `drill` (what the
 * verifier task runs).
 * Exit status: 0 all good, 1 a target or check failed, 2 the settings or arguments are wrong,
 * 128 + the signal's number (143 for SIGTERM, 130 for SIGINT) when a signal stopped the command.
 * On a terminal the log is readable lines with a live progress display; `--json` keeps it JSON.
 * What each command takes and reads is its spec in commands.ts, which parses its options and prints its `--help`.
 */

import { constants } from "node:os";
import type { S3Client } from "@aws-sdk/client-s3";
import { runBackups } from "./backup";
import { commandHelp, commands, commonOptions, isCommandName, parseCommandArgs, runnerHelp, type CommandName, type OptionValues } from "./commands";
import { runDrills } from "./drill";
import { restoreMongoForDrill } from "./drillMongo";
import { restorePostgresForDrill } from "./drillPostgres";
import { latestPerTarget } from "./keys";
import { addSecret, log, useTerminal } from "./log";
import { checkArchive, downloadVerified, findBackups, restoreInto } from "./restore";
import { s3Client } from "./s3";
import { withIdentityFile } from "./encryption";
import { parseDrillSettings, parseProgressSeconds, scratchDir, parseSettings, parseStorage, parseTargets, restoreTarget, secretValues, SettingsError, withoutSecrets, type Source } from "./settings";

type Env = NodeJS.ProcessEnv;
/** A command's work, given its parsed options. */
type Run<K extends CommandName> = (values: OptionValues<(typeof commands)[K]>, env: Env, stop: AbortSignal) => Promise<number>;

/**
 * The status a shell reports for a process killed by `signal` (128 + its number). A stopped run exits
 * with it after cleaning up, so ECS's exit code and the alert say "stopped by SIGTERM", as they would
 * have without a handler, and never look like a run that merely had a failed target (1).
 */
export function signalExitCode(signal: unknown): number {
  const number = constants.signals[String(signal) as NodeJS.Signals];
  return number === undefined ? 1 : 128 + number;
}

async function backup(_values: unknown, env: Env, stop: AbortSignal): Promise<number> {
  const settings = parseSettings(env);
  secretValues(settings.targets, env).forEach(addSecret);
  let client: S3Client | undefined;
  const results = await runBackups(settings, () => (client ??= s3Client(settings.s3)), withoutSecrets(env, settings.targets), env, stop);
  if (stop.aborted) return signalExitCode(stop.reason);
  return results.every((r) => r.ok) ? 0 : 1;
}

function parseTime(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new SettingsError(`--at '${value}' is not a time: use ISO 8601, e.g. 2024-10-27T18:00:00+08:00`);
  return date;
}

/** Where a command reads: the bucket, or with --replica its copy in another region. */
const sourceOf = (values: { replica?: boolean }): Source => (values.replica ? "replica" : "bucket");

async function verify(values: OptionValues<typeof commands.verify>, env: Env, stop: AbortSignal): Promise<number> {
  const { stage, s3 } = parseStorage(env, sourceOf(values));
  const progressSeconds = parseProgressSeconds(env);
  const client = s3Client(s3);
  const refs = latestPerTarget(await findBackups(client, s3.bucket, stage), parseTime(values.at)).filter((r) => !values.target || r.name === values.target);
  if (refs.length === 0) {
    log("error", "no backup found", { stage, bucket: s3.bucket, target: values.target ?? null });
    return 1;
  }
  const tools = withoutSecrets(env, []);
  return withIdentityFile(env, async (identityFile) => {
    let failed = 0;
    for (const ref of refs) {
      try {
        const d = await downloadVerified(client, s3.bucket, ref, { dir: scratchDir(env), stop, progressSeconds, identityFile, env: tools });
        try {
          const detail = await checkArchive(d, values.deep, tools, stop);
          log("info", "verified", { target: ref.name, engine: ref.engine, key: ref.key, bytes: d.manifest.bytes, sha256: d.manifest.sha256, detail });
        } finally {
          await d.remove();
        }
      } catch (err) {
        if (stop.aborted) throw err; // stopped: not a verdict on this backup, and no other is checked
        failed++;
        log("error", "verification FAILED", { target: ref.name, engine: ref.engine, key: ref.key, error: (err as Error).message });
      }
    }
    return failed ? 1 : 0;
  });
}

async function restore(values: OptionValues<typeof commands.restore>, env: Env, stop: AbortSignal): Promise<number> {
  const allDatabases = values["all-databases"];
  if (allDatabases && values.database) throw new SettingsError("--all-databases restores every database under its own name: give it or --database, not both");
  if (!values.database && !allDatabases) throw new SettingsError(`--database is missing: ${commands.restore.options.database.description}`);
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new SettingsError(`--jobs '${values.jobs}' is not a positive whole number`);
  const { stage, s3 } = parseStorage(env, sourceOf(values));
  const progressSeconds = parseProgressSeconds(env);
  // The target's secret may be left out when restore brings its own (restoreTarget checks for one of them).
  const targets = parseTargets(env, "optional");
  secretValues(targets, env).forEach(addSecret);
  const name = values.target ?? (targets.length === 1 ? targets[0].name : undefined);
  if (!name) throw new SettingsError(`--target is missing: this environment configures ${targets.map((t) => t.name).join(", ")}`);
  const configured = targets.find((t) => t.name === name);
  if (!configured) throw new SettingsError(`--target '${name}' is not configured here: its connection settings come from the same variables as the backup (${targets.map((t) => t.name).join(", ")})`);
  if (allDatabases && configured.engine !== "mongodb") throw new SettingsError(`--all-databases is for a MongoDB backup of every database; '${name}' is a PostgreSQL target: name the database with --database`);
  const target = restoreTarget(configured, { host: values.host, port: values.port, user: values.user, sslmode: values.sslmode }, env);
  const into = values.database ?? "(every database, under its own name)";

  const client = s3Client(s3);
  const [ref] = latestPerTarget(await findBackups(client, s3.bucket, stage), parseTime(values.at)).filter((r) => r.name === name && r.engine === target.engine);
  if (!ref) {
    log("error", "no backup found", { stage, target: name, at: values.at ?? null });
    return 1;
  }
  log("info", "restore started", { target: name, key: ref.key, into });
  const d = await withIdentityFile(env, (identityFile) => downloadVerified(client, s3.bucket, ref, { dir: scratchDir(env), stop, progressSeconds, identityFile, env: withoutSecrets(env, targets) }));
  try {
    const backupUser = target.engine === "postgres" && configured.engine === "postgres" && target.user === configured.user;
    await restoreInto(d, target, { into: values.database ?? "", allDatabases, create: values.create, noOwner: values["no-owner"], jobs, backupUser }, withoutSecrets(env, targets), env, stop);
  } finally {
    await d.remove();
  }
  log("info", "restore finished", { target: name, key: ref.key, into, sha256: d.manifest.sha256 });
  return 0;
}

/**
 * Restores each target's latest backup (or the one `--target`, at or before `--at`) into a throwaway
 * server, counts it and compares it with the previous drill (drill.ts). Needs no target's secret; any
 * that are set (a laptop's environment) are kept from the tools and the log.
 */
async function drill(values: OptionValues<typeof commands.drill>, env: Env, stop: AbortSignal): Promise<number> {
  const settings = parseDrillSettings(env, sourceOf(values));
  if (values.target && settings.targets.length > 0 && !settings.targets.some((t) => t.name === values.target)) {
    throw new SettingsError(`--target '${values.target}' is not one of the targets BACKUP_TARGETS configures (${settings.targets.map((t) => t.name).join(", ")})`);
  }
  secretValues(settings.targets, env).forEach(addSecret);
  const records = await withIdentityFile(env, (identityFile) =>
    runDrills({
      settings,
      client: s3Client(settings.s3),
      engines: { postgres: restorePostgresForDrill, mongodb: restoreMongoForDrill },
      env: withoutSecrets(env, settings.targets),
      stop,
      at: parseTime(values.at),
      target: values.target,
      scratchRoot: scratchDir(env),
      identityFile,
    }),
  );
  if (stop.aborted) return signalExitCode(stop.reason);
  return records.length > 0 && records.every((r) => r.success) ? 0 : 1;
}

const jsonFlag = "--json" satisfies `--${keyof typeof commonOptions}`;

/**
 * Readable lines and a live progress display when stdout is a terminal (`npm run backup` on a
 * laptop); JSON lines, what CloudWatch keeps and parses, anywhere else (ECS, a pipe, the tests), or
 * when `--json` asks for them on a terminal.
 */
export function readableOutput(isTTY: boolean | undefined, argv: string[]): boolean {
  return isTTY === true && !argv.includes(jsonFlag);
}

const runs: { [K in CommandName]: Run<K> } = { backup, verify, restore, drill };

/** Parses a command's options by its spec, then prints its help or runs it. */
async function runCommand<K extends CommandName>(name: K, argv: string[], env: Env, stop: AbortSignal, print: (text: string) => void): Promise<number> {
  const values = parseCommandArgs(name, commands[name], argv);
  if (values.help) {
    print(commandHelp(name, commands[name]));
    return 0;
  }
  return await runs[name](values, env, stop);
}

/**
 * Runs one command. Aborting `stop` (the entry point below does on SIGTERM or SIGINT) stops its
 * tools and transfers, removes its private files, and makes it return the signal's exit status.
 * Help goes to `print` as text; everything else is the log.
 */
export async function main(argv: string[], env: Env, stop: AbortSignal = new AbortController().signal, print: (text: string) => void = (text) => void process.stdout.write(text)): Promise<number> {
  // --json chose the log's form (the entry point below); the commands' own options do not include it.
  const [command, ...rest] = argv.filter((arg) => arg !== jsonFlag);
  if (command === undefined || ["help", "--help", "-h"].includes(command)) {
    // `help <command>` is that command's help.
    print(isCommandName(rest[0]) ? commandHelp(rest[0], commands[rest[0]]) : runnerHelp());
    // No command at all did nothing that was asked: a usage error, as any other wrong arguments are.
    return command === undefined ? 2 : 0;
  }
  try {
    if (isCommandName(command)) return await runCommand(command, rest, env, stop, print);
    log("error", `unknown command '${command}': use ${Object.keys(commands).join(", ")} (help says what each does)`);
    return 2;
  } catch (err) {
    if (stop.aborted) {
      log("error", `${command} stopped by ${String(stop.reason)}`, { error: (err as Error)?.message ?? String(err) });
      return signalExitCode(stop.reason);
    }
    const usage = err instanceof SettingsError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    log("error", usage ? `invalid settings: ${(err as Error).message}` : `${command} failed: ${(err as Error).message}`);
    return usage ? 2 : 1;
  }
}

/**
 * ECS stops a task with SIGTERM and sends SIGKILL stopTimeout later; Ctrl-C sends SIGINT. Either
 * aborts the command's one AbortSignal, which every tool, upload and download of it watches. A second
 * signal means "now": the process exits at once.
 */
function stopOnSignals(): AbortSignal {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(signalExitCode(signal));
    log("warn", `${signal} received: stopping`, { signal });
    stop.abort(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return stop.signal;
}

if (require.main === module) {
  if (readableOutput(process.stdout.isTTY, process.argv.slice(2))) useTerminal(process.stdout);
  main(process.argv.slice(2), process.env, stopOnSignals()).then((code) => {
    process.exitCode = code;
  });
}
