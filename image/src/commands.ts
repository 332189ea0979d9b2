/**
 * What each command is, said once: its summary, its options (with the type and default parseArgs
 * takes), the environment variables it reads and an example. The commands parse their arguments with
 * `parseCommandArgs(spec, argv)` and `--help` prints `commandHelp(spec)`, so an option cannot be parsed
 * without being documented, nor documented without being parsed.
 */

import { parseArgs } from "node:util";
import { SettingsError } from "./settings";

export interface OptionSpec {
  type: "string" | "boolean";
  default?: string | boolean;
  short?: string;
  /** What a string option's value is, as help shows it: `--at <time>`. */
  value?: string;
  description: string;
}

/** An environment variable as help describes it; `also` are the ones read with it (an alias, the rest of a key pair). */
export type VariableSpec = string | { description: string; also: readonly string[] };

/** The environment variables the runner reads, each described once; a command lists the ones it reads. */
export const variables = {
  STAGE: "(required) first part of every backup's key: dev, uat, prod",
  S3_BUCKET: "(required) the bucket the backups are in",
  AWS_REGION: { description: "the bucket's region; S3's redirect finds the bucket's own otherwise", also: ["AWS_DEFAULT_REGION"] },
  AWS_ENDPOINT_URL_S3: { description: "an S3-compatible endpoint instead of AWS's", also: ["AWS_ENDPOINT_URL"] },
  S3_FORCE_PATH_STYLE: "true for an endpoint that wants path-style requests (default false)",
  S3_PART_SIZE_MB: "size of the first 2,000 multipart parts in MiB (default 16, at least 5)",
  AWS_ACCESS_KEY_ID: { description: "static S3 credentials; the AWS SDK's default chain (profile, task role) otherwise", also: ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] },
  PG_DB_HOST: "one PostgreSQL database (the blog's variables): host or host:port",
  PG_DB_NAME: "its database",
  PG_DB_USER: "its user",
  PG_DB_PASSWORD: "(secret) its password",
  NEON_DB_ENDPOINT_OPTION: "Neon's endpoint, URL-encoded (endpoint%3Dep-…), sent as libpq's options",
  PG_SSLMODE: "libpq sslmode for that database (libpq's default prefer when unset)",
  PGSSLROOTCERT: "libpq's own: the CA certificate verify-ca and verify-full check the server against",
  MONGO_CONNECTION_STRING: "(secret) one MongoDB deployment (the blog's variables)",
  MONGO_DB_NAME: "its database (every database when unset)",
  MONGO_POINT_IN_TIME: "false dumps every database without the oplog (mongodump --oplog, one point in time, is the default where it applies: a replica set, every database)",
  BACKUP_TARGETS: "any number of databases, a JSON list; each names the variable that holds its secret (passwordEnv, uriEnv), which is read too",
  PG_DUMP_COMPRESSION: "pg_dump --compress (default zstd:1 with pg_dump 16 or later, 1 before)",
  BACKUP_CONCURRENCY: "targets dumped at once (default all)",
  BACKUP_TARGET_TIMEOUT_SECONDS: "a target still running after this long fails (default 21600)",
  BACKUP_PROGRESS_SECONDS: "seconds between progress lines of a dump or a download (default 60, at most 86400)",
  BACKUP_TIMEZONE: "IANA zone of the local time written in manifests (e.g. Asia/Singapore)",
  RESTORE_PG_PASSWORD: "(secret) the password of the user restore connects as (--user); the target's password variable when unset",
  RESTORE_MONGO_URI: "(secret) the connection string restore uses; the target's (uriEnv) when unset",
  BACKUP_AGE_RECIPIENTS: "age public keys (age1…), one per line: each dump is encrypted for them before it leaves the runner (keys end in .age)",
  AGE_IDENTITY_FILE: "(secret file) the path of the age identity that decrypts encrypted backups; never the identity itself",
  AGE_IDENTITY: "(secret) the identity itself, as the verifier task gets it from an ECS secret: written to a private file for age and removed afterwards; not with AGE_IDENTITY_FILE",
  BACKUP_REPLICA_BUCKET: "the copy of the stage's backups in another region, read with --replica (set on the verifier task when the stack has replicaRegion)",
  BACKUP_REPLICA_REGION: "that copy's region (e.g. ap-northeast-1)",
  DRILL_MAX_ROW_LOSS_PERCENT: "a drill fails when a table or collection lost more than this percentage of its rows since the previous drill",
} as const satisfies Record<string, VariableSpec>;

export type VariableName = keyof typeof variables;

export interface CommandSpec {
  /** One line, for the runner's list of commands. */
  summary: string;
  /** What it does, for its own help. */
  description: string;
  options: Readonly<Record<string, OptionSpec>>;
  variables: readonly VariableName[];
  examples: readonly string[];
}

/** What every command reads to reach the bucket (parseStorage checks the part size for each, though only backup uploads). */
const storage = ["STAGE", "S3_BUCKET", "AWS_REGION", "AWS_ENDPOINT_URL_S3", "S3_FORCE_PATH_STYLE", "S3_PART_SIZE_MB", "AWS_ACCESS_KEY_ID"] as const;
const targets = [
  "BACKUP_TARGETS",
  "PG_DB_HOST",
  "PG_DB_NAME",
  "PG_DB_USER",
  "PG_DB_PASSWORD",
  "NEON_DB_ENDPOINT_OPTION",
  "PG_SSLMODE",
  "PGSSLROOTCERT",
  "MONGO_CONNECTION_STRING",
  "MONGO_DB_NAME",
  "MONGO_POINT_IN_TIME",
] as const;

/** Which backup verify, restore and drill take: they pick it the same way (latestPerTarget). */
const at = { type: "string", value: "<time>", description: "the latest backup at or before this time (ISO 8601, e.g. 2024-10-27T18:00:00+08:00) instead of the latest" } as const;
const anyTarget = { type: "string", value: "<name>", description: "only this target (every target by default)" } as const;
/** Where verify, restore and drill read: the bucket, or its copy in another region. */
const replica = {
  type: "boolean",
  default: false,
  description: "read the copy in another region (BACKUP_REPLICA_BUCKET in BACKUP_REPLICA_REGION) instead of S3_BUCKET: when the bucket's region is down, or its backups are gone",
} as const;
/** The variables --replica reads. */
const replicaVariables = ["BACKUP_REPLICA_BUCKET", "BACKUP_REPLICA_REGION"] as const;

export const commands = {
  backup: {
    summary: "dump every configured database and store it in S3 with its manifest (what the task runs)",
    description:
      "Dumps every target (pg_dump --format=custom, mongodump --archive --gzip) straight into an S3 multipart upload, then writes <key>.manifest.json with its size and SHA-256: a manifest means the backup is complete. Exits 0 only when every target is stored, 1 when any failed.",
    options: {},
    variables: [...storage, ...targets, "PG_DUMP_COMPRESSION", "BACKUP_CONCURRENCY", "BACKUP_TARGET_TIMEOUT_SECONDS", "BACKUP_PROGRESS_SECONDS", "BACKUP_TIMEZONE", "BACKUP_AGE_RECIPIENTS"],
    examples: ["STAGE=dev S3_BUCKET=my-backups PG_DB_HOST=localhost PG_DB_NAME=app PG_DB_USER=backup PG_DB_PASSWORD=… npm run backup"],
  },
  verify: {
    summary: "check the latest backup of every target against its manifest, without a database",
    description:
      "Downloads each target's latest backup, checks its size and SHA-256 against the manifest and that pg_restore --list reads it (MongoDB archives: the whole gzip stream). Needs only read access to the bucket.",
    options: {
      target: anyTarget,
      at,
      deep: { type: "boolean", default: false, description: "also read every data block (pg_restore --file=/dev/null)" },
      replica,
    },
    variables: [...storage, ...replicaVariables, "BACKUP_PROGRESS_SECONDS", "AGE_IDENTITY_FILE", "AGE_IDENTITY"],
    examples: ["npm run verify -- --deep", "npm run verify -- --target app --at 2024-10-27T18:00:00+08:00", "npm run verify -- --replica"],
  },
  restore: {
    summary: "restore a target's latest backup (or the one at --at) into a database you name",
    description:
      "Downloads the backup into a private temporary directory, refuses it unless its size and SHA-256 are the manifest's, and restores it with pg_restore --exit-on-error (or mongorestore --nsFrom <db>.* --nsTo <database>.*). The connection is the target's from the backup's variables, each part replaced by restore's own where given: --host, --port, --user, --sslmode and RESTORE_PG_PASSWORD, or RESTORE_MONGO_URI. With these, no backup secret is needed. A --host other than the target's drops the target's libpq options (Neon's endpoint) and sslrootcert, which belong to its server.",
    options: {
      target: { type: "string", value: "<name>", description: "the target whose backup to restore; may be left out when one target is configured" },
      database: { type: "string", value: "<name>", description: "(required, but for --all-databases) the database to restore into, never the source unless you name it" },
      "all-databases": { type: "boolean", default: false, description: "a MongoDB backup of every database (a point-in-time one, with its oplog): restore each under its own name, replaying the oplog" },
      at,
      create: { type: "boolean", default: false, description: "create the database first (createdb; the user needs CREATEDB)" },
      "no-owner": { type: "boolean", default: false, description: "pg_restore --no-owner: the restoring user owns everything" },
      jobs: { type: "string", value: "<n>", default: "1", description: "pg_restore --jobs: tables restored at once" },
      host: { type: "string", value: "<host>", description: "PostgreSQL host to restore into (the target's by default)" },
      port: { type: "string", value: "<port>", description: "its port (the target's by default)" },
      user: { type: "string", value: "<user>", description: "the user to restore as, with its password in RESTORE_PG_PASSWORD (the target's by default)" },
      sslmode: { type: "string", value: "<mode>", description: "libpq sslmode for that connection (the target's by default)" },
      replica,
    },
    variables: [...storage, ...replicaVariables, "BACKUP_PROGRESS_SECONDS", "AGE_IDENTITY_FILE", "AGE_IDENTITY", "RESTORE_PG_PASSWORD", "RESTORE_MONGO_URI", ...targets],
    examples: [
      "npm run restore -- --database app_restored --create",
      "RESTORE_MONGO_URI=… npm run restore -- --target everything --all-databases",
      "RESTORE_PG_PASSWORD=… npm run restore -- --target app --database app_restored --create --no-owner --user admin --at 2024-10-27T18:00:00+08:00",
      "npm run restore -- --replica --target app --database app_restored --create",
    ],
  },
  drill: {
    summary: "restore every target's latest backup into a throwaway server, count its rows and report (the verifier task)",
    description:
      "Restores the latest backup of every target into a database server of its own (never the source, and with no target's secret), counts the rows of every table or collection, compares them with the previous drill, and writes a report to <stage>/drills/<name>/<timestamp>.json with the metrics DrillSuccess, RestoreSeconds, RestoredRows and BackupAgeHours. A target fails when a table or collection lost more than DRILL_MAX_ROW_LOSS_PERCENT of its rows.",
    options: {
      target: anyTarget,
      at,
      replica: { ...replica, description: `${replica.description}; the drill's record is written there too` },
    },
    variables: [...storage, ...replicaVariables, "BACKUP_TARGETS", "DRILL_MAX_ROW_LOSS_PERCENT", "BACKUP_PROGRESS_SECONDS", "AGE_IDENTITY_FILE", "AGE_IDENTITY"],
    examples: ["npm run drill -- --target app", "npm run drill -- --replica"],
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof commands;

export function isCommandName(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(commands, name);
}

/** What every command takes besides its own options. `--json` is read before a command parses its arguments (cli.ts). */
export const commonOptions = {
  json: { type: "boolean", description: "JSON log lines even on a terminal (they are JSON anywhere else)" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const satisfies Record<string, OptionSpec>;

type ParseConfig<S extends CommandSpec> = { args: string[]; options: S["options"] & Pick<typeof commonOptions, "help">; strict: true; allowPositionals: false };
/** A command's parsed options: parseArgs's own types. */
export type OptionValues<S extends CommandSpec> = ReturnType<typeof parseArgs<ParseConfig<S>>>["values"] & { help?: boolean };

function optionList(spec: CommandSpec): string {
  return Object.keys(spec.options)
    .map((name) => `--${name}`)
    .concat("--help")
    .join(", ");
}

/**
 * Parses a command's arguments by its spec. An unknown option or a stray argument is a SettingsError
 * (exit 2) that names the valid options; `--help` anywhere asks for help, whatever else is there.
 */
export function parseCommandArgs<const S extends CommandSpec>(name: string, spec: S, argv: string[]): OptionValues<S> {
  const options = { ...spec.options, help: commonOptions.help };
  // A lenient pass first, to find what the strict one would refuse and say it in the command's terms.
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const help = tokens.some((t) => t.kind === "option" && t.name === "help");
  for (const t of help ? [] : tokens) {
    if (t.kind === "option" && !Object.hasOwn(options, t.name)) {
      throw new SettingsError(`unknown option '${t.rawName}' for ${name}: its options are ${optionList(spec)}`);
    }
    if (t.kind === "positional") {
      throw new SettingsError(`${name} takes no argument '${t.value}': its options are ${optionList(spec)} (a value goes after its option, e.g. --database ${t.value})`);
    }
  }
  const { values } = parseArgs({ args: help ? ["--help"] : argv, options, strict: true, allowPositionals: false });
  return values as OptionValues<S>;
}

const width = 100;

/** Words wrapped to `width`, every line after the first indented by `indent`. */
function wrap(text: string, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join("\n" + " ".repeat(indent));
}

/** Rows of `term  description`, the descriptions in one column. */
function table(rows: [string, string][]): string {
  const column = Math.max(...rows.map(([term]) => term.length)) + 4;
  return rows.map(([term, text]) => `  ${term.padEnd(column - 2)}${wrap(text, column)}`).join("\n");
}

function optionRow(name: string, o: OptionSpec): [string, string] {
  const term = `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "<value>"}` : ""}`;
  const defaultNote = typeof o.default === "string" ? ` (default ${o.default})` : "";
  return [term, `${o.description}${defaultNote}`];
}

const image = "node /app/dist/cli.js";

function variableRow(name: VariableName): [string, string] {
  const v: VariableSpec = variables[name];
  return typeof v === "string" ? [name, v] : [name, `${v.description} [with ${v.also.join(", ")}]`];
}

/** Every variable a spec's list stands for: each one and those read with it. */
export function variablesRead(spec: CommandSpec): string[] {
  return spec.variables.flatMap((name) => {
    const v: VariableSpec = variables[name];
    return typeof v === "string" ? [name] : [name, ...v.also];
  });
}

/** The help `<command> --help` prints. */
export function commandHelp(name: string, spec: CommandSpec): string {
  const options = { ...spec.options, ...commonOptions } as Record<string, OptionSpec>;
  return [
    `${name}: ${spec.summary}`,
    "",
    wrap(spec.description, 0),
    "",
    `Usage: npm run ${name} -- [options]`,
    `       ${image} ${name} [options]   (in the image)`,
    "",
    "Options:",
    table(Object.entries(options).map(([option, o]) => optionRow(option, o))),
    "",
    "Environment:",
    table(spec.variables.map(variableRow)),
    "",
    spec.examples.length > 1 ? "Examples:" : "Example:",
    ...spec.examples.map((e) => `  ${e}`),
    "",
  ].join("\n");
}

/** The help the runner prints for `help`, `--help`, or no command. */
export function runnerHelp(): string {
  return [
    wrap("db-backup's runner: scheduled PostgreSQL and MongoDB backups into S3, and their verification and restore.", 0),
    "",
    "Usage: npm run <command> -- [options]",
    `       ${image} <command> [options]   (in the image)`,
    "",
    "Commands:",
    table(Object.entries(commands).map(([name, spec]) => [name, spec.summary])),
    "",
    "Options of every command:",
    table(Object.entries(commonOptions).map(([option, o]) => optionRow(option, o))),
    "",
    wrap("Settings come from environment variables; `npm run <command> -- --help` says what the command does and lists the variables it reads.", 0),
    wrap("Exit status: 0 all good, 1 a target or check failed, 2 the settings or arguments are wrong, 128 + the signal's number when stopped (143 for SIGTERM).", 0),
    "",
  ].join("\n");
}
