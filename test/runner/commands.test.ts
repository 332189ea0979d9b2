/**
 * Each command's options are parsed from its spec (commands.ts) and its --help is printed from the same
 * spec, so what help says and what the parser takes are one list. The environment variables a command
 * reads are checked against its spec by reading them through a recording environment.
 */

import { commandHelp, commands, parseCommandArgs, variablesRead, type CommandSpec } from "../../image/src/commands";
import { parseSettings } from "../../image/src/settings";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { compileRunner } from "../support/runnerProcess";
import { runCli, runProcess } from "../support/runner";

const names = Object.keys(commands) as (keyof typeof commands)[];

describe.each(names)("%s --help", (name) => {
  const spec: CommandSpec = commands[name];

  it.each([["--help"], ["-h"]])(`with %s and no environment at all: what it does, its options, the variables it reads, an example; exit 0`, async (flag) => {
    const run = await runCli([name, flag], {});
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([]);
    expect(run.printed).toContain(spec.summary);
    for (const option of Object.keys(spec.options)) expect(run.printed).toMatch(new RegExp(`^  --${option}\\b`, "m"));
    for (const variable of spec.variables) expect(run.printed).toMatch(new RegExp(`^  ${variable} `, "m"));
    expect(run.printed).toMatch(/^Usage: npm run \S+ -- \[options\]$/m);
    for (const example of spec.examples) expect(run.printed).toContain(example);
  });

  it("help wins over anything else on the line, even an unknown option or a missing required one", async () => {
    const run = await runCli([name, "--no-such-option", "--help"], {});
    expect(run.code).toBe(0);
    expect(run.printed).toBe(commandHelp(name, spec));
  });

  it("an unknown option exits 2 naming every valid one", async () => {
    const run = await runCli([name, "--no-such-option"], {});
    expect(run.code).toBe(2);
    const msg = String(run.lines[0].msg);
    expect(msg).toMatch(new RegExp(`unknown option '--no-such-option' for ${name}: its options are`));
    for (const option of [...Object.keys(spec.options), "help"]) expect(msg).toContain(`--${option}`);
  });
});

it("an option added to a spec is parsed and shown in help, and one not in it is refused", () => {
  const base: CommandSpec = commands.verify;
  const spec = { ...base, options: { ...base.options, limit: { type: "string", value: "<n>", default: "3", description: "check at most n backups" } } } as const satisfies CommandSpec;
  expect(parseCommandArgs("verify", spec, ["--limit", "5"]).limit).toBe("5");
  expect(parseCommandArgs("verify", spec, []).limit).toBe("3");
  expect(commandHelp("verify", spec)).toMatch(/^  --limit <n> +check at most n backups \(default 3\)$/m);
  expect(() => parseCommandArgs("verify", base, ["--limit", "5"])).toThrow(/unknown option '--limit' for verify/);
});

it("restore's database left out is named with what it is for", async () => {
  const run = await runCli(["restore", "--create"], {});
  expect(run.code).toBe(2);
  expect(run.lines[0].msg).toBe(`invalid settings: --database is missing: ${commands.restore.options.database.description}`);
  expect(commandHelp("restore", commands.restore)).toMatch(/^  --database <name> +\(required, but for --all-databases\) the database to restore into/m);
});

it("a stray argument is refused with the options", async () => {
  const run = await runCli(["restore", "app_restored"], {});
  expect(run.code).toBe(2);
  expect(run.lines[0].msg).toMatch(/restore takes no argument 'app_restored': its options are --target, --database,.* \(a value goes after its option/);
});

describe("the runner itself", () => {
  it.each([["help"], ["--help"], ["-h"]])("%s lists every command with its summary, and exits 0", async (flag) => {
    const run = await runCli([flag], {});
    expect(run.code).toBe(0);
    for (const name of names) expect(run.printed).toMatch(new RegExp(`^  ${name} +${commands[name].summary.slice(0, 30).replace(/[()]/g, "\\$&")}`, "m"));
  });

  it("`help <command>` is that command's help", async () => {
    expect((await runCli(["help", "restore"], {})).printed).toBe(commandHelp("restore", commands.restore));
  });

  it("no command prints the same help but exits 2: nothing that was asked was done", async () => {
    const run = await runCli([], {});
    expect(run.code).toBe(2);
    expect(run.printed).toBe((await runCli(["help"], {})).printed);
  });

  it("an unknown command lists the commands", async () => {
    const run = await runCli(["bakcup"], {});
    expect(run.code).toBe(2);
    expect(run.lines[0].msg).toBe(`unknown command 'bakcup': use ${names.join(", ")} (help says what each does)`);
  });
});

describe("help as a person types it", () => {
  it("`node dist/cli.js backup --help` of the compiled runner, with no variable set", async () => {
    const runner = await compileRunner();
    try {
      const res = await runProcess(process.execPath, [runner.cli, "backup", "--help"], runner.env);
      expect(res.stderr).toBe("");
      expect(res.status).toBe(0);
      expect(res.stdout).toBe(commandHelp("backup", commands.backup));
    } finally {
      runner.remove();
    }
  }, 120_000);

  it("`npm run restore -- --help` reaches the runner with --help (the package.json script passes it on)", async () => {
    const res = await runProcess("npm", ["run", "--silent", "restore", "--", "--help"], { PATH: process.env.PATH });
    expect(res.status).toBe(0);
    expect(res.stdout).toBe(commandHelp("restore", commands.restore));
  }, 60_000);
});

/**
 * An environment that records every variable read from it. Spreading it (what handing the environment
 * to a child process does) would read every key, so it is only used up to that point.
 */
function recording(values: Record<string, string>): { env: NodeJS.ProcessEnv; read: Set<string> } {
  const read = new Set<string>();
  const env = new Proxy(values, {
    get(target, key) {
      if (typeof key === "string") read.add(key);
      return target[key as string];
    },
  });
  return { env, read };
}

describe("every variable a command reads is in its help", () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  const all = (extra: Record<string, string>) => ({
    ...s3.env,
    STAGE: "nothing-here",
    AWS_REGION: "eu-west-1",
    PG_DB_HOST: "db.example.com:5433",
    PG_DB_NAME: "app",
    PG_DB_USER: "backup",
    PG_DB_PASSWORD: "pw",
    NEON_DB_ENDPOINT_OPTION: "endpoint%3Dep-x",
    PG_SSLMODE: "require",
    MONGO_CONNECTION_STRING: "mongodb://h/",
    MONGO_DB_NAME: "events",
    BACKUP_TARGETS: JSON.stringify([{ name: "other", engine: "postgres", host: "h", database: "d", user: "u", passwordEnv: "PG_PASSWORD_OTHER" }]),
    PG_PASSWORD_OTHER: "pw2",
    BACKUP_PROGRESS_SECONDS: "30",
    ...extra,
  });
  // Read because BACKUP_TARGETS names it: help says so in BACKUP_TARGETS's line.
  const named = ["PG_PASSWORD_OTHER"];

  it("backup: what parseSettings reads", () => {
    const { env, read } = recording(all({ PG_DUMP_COMPRESSION: "1", BACKUP_CONCURRENCY: "1", BACKUP_TARGET_TIMEOUT_SECONDS: "60", BACKUP_TIMEZONE: "UTC", S3_PART_SIZE_MB: "8" }));
    parseSettings(env);
    expect([...read].filter((v) => !named.includes(v) && !variablesRead(commands.backup).includes(v))).toEqual([]);
    expect(read).toContain("PG_DB_PASSWORD");
  });

  it.each([
    ["verify", ["verify"]],
    ["restore", ["restore", "--target", "app", "--database", "copy", "--host", "other.example.com", "--user", "admin"]],
  ] as const)("%s: everything it reads before it finds there is no backup", async (name, argv) => {
    const { env, read } = recording(all({ RESTORE_PG_PASSWORD: "pw3", RESTORE_MONGO_URI: "mongodb://r/" }));
    const run = await runCli([...argv], env);
    expect(run.lines.at(-1)).toMatchObject({ msg: "no backup found" });
    expect([...read].filter((v) => !named.includes(v) && !variablesRead(commands[name]).includes(v))).toEqual([]);
    if (name === "restore") expect(read).toContain("RESTORE_PG_PASSWORD");
  });
});
