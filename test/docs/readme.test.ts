/**
 * The README's reference tables, held to the code they describe, so neither can change without the
 * other: the config table to the schema (components/config.ts), the runner's variable table to what the
 * runner reads, the roles table to the policy builders, the layout table to the tree. Each failure names
 * the row to add, fix or remove.
 */

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, drillIdentityKey, parseStackConfig, schemaKeys, secretKeyOf } from "../../components/config";
import * as policies from "../../components/policies";
import type { PolicyDocument } from "../../components/policies";
import * as settings from "../../image/src/settings";
import { parseSettings } from "../../image/src/settings";
import { npmCommand, sandboxCommands } from "../../scripts/lib/sandbox";
import { codeSpans, readme, tableAfterHeader, type TableRow } from "../support/markdown";
import { repoRoot, runCli } from "../support/runner";

const text = readme();

describe("README config table", () => {
  const rows = tableAfterHeader(text, "| key | default | meaning |");
  const keysOf = (row: TableRow) => codeSpans(row.cells[0]);
  const documented = new Map<string, { row: TableRow; index: number }>();
  for (const row of rows) keysOf(row).forEach((key, index) => documented.set(key, { row, index }));
  const schema = schemaKeys();

  it("has a row for every key the schema reads", () => {
    const missing = schema
      .filter((k) => !documented.has(k.key))
      .map((k) => `no row for \`${k.key}\` (components/config.ts reads it; ${k.required ? "required" : `default ${k.default === undefined ? "none" : `\`${String(k.default)}\``}`}): add | \`${k.key}\` | … | … |`);
    expect(missing).toEqual([]);
  });

  it("names no key the schema does not read (besides the secrets, which the program reads)", () => {
    const known = new Set(schema.map((k) => k.key));
    const secretRows = [secretKeyOf({ engine: "postgres", name: "<name>" } as never), secretKeyOf({ engine: "mongodb", name: "<name>" }), drillIdentityKey];
    const unknown = [...documented.keys()].filter((key) => !known.has(key) && !secretRows.includes(key)).map((key) => `row \`${key}\` names a key components/config.ts never reads: remove it or fix its name`);
    expect(unknown).toEqual([]);
  });

  it("states each key's default as the schema applies it", () => {
    const wrong: string[] = [];
    for (const k of schema) {
      const entry = documented.get(k.key);
      if (!entry) continue; // reported by the first test
      const cell = entry.row.cells[1];
      const values = codeSpans(cell);
      const stated = values[Math.min(entry.index, values.length - 1)];
      if (k.required) {
        if (!cell.startsWith("(required")) wrong.push(`row \`${k.key}\`: default cell '${cell}' should say (required): the schema refuses a config without it`);
      } else if (k.default === undefined) {
        if (stated !== undefined) wrong.push(`row \`${k.key}\`: default cell '${cell}' states \`${stated}\`, but the schema sets no value when the key is unset`);
      } else if (stated !== String(k.default)) {
        wrong.push(`row \`${k.key}\`: default cell '${cell}' states ${stated === undefined ? "no value" : `\`${stated}\``}, the schema's default is \`${String(k.default)}\``);
      }
    }
    expect(wrong).toEqual([]);
  });

  const minimal: Record<string, string> = {
    targets: JSON.stringify([{ name: "main", engine: "postgres", host: "db.example.com", database: "main", user: "backup" }]),
    schedule: "rate(1 hour)",
  };
  const accepts = (overrides: Record<string, string>) => {
    try {
      parseStackConfig({ get: (key) => ({ ...minimal, ...overrides })[key] }, "dev");
      return true;
    } catch (err) {
      if (err instanceof ConfigError) return false;
      throw err;
    }
  };

  it("states each whole-number range, e.g. (0-185), as the schema checks it", () => {
    const wrong: string[] = [];
    for (const row of rows) {
      const keys = keysOf(row);
      const range = /\((\d+)-(\d+)[;)]/.exec(row.cells[2]);
      if (!range || keys.length !== 1) continue;
      const [min, max] = [Number(range[1]), Number(range[2])];
      const [key] = keys;
      const verdicts = { [min - 1]: false, [min]: true, [max]: true, [max + 1]: false };
      for (const [value, expected] of Object.entries(verdicts)) {
        if (accepts({ [key]: value }) !== expected) wrong.push(`row \`${key}\` says (${min}-${max}), but the schema ${expected ? "refuses" : "accepts"} ${value}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("states the target-name rule the schema checks: its first character and its longest length", () => {
    const targetsRow = documented.get("targets")!.row.cells[2];
    const named = (name: string) => accepts({ targets: JSON.stringify([{ name, engine: "mongodb" }]) });
    let longest = 0;
    while (longest < 200 && named("a".repeat(longest + 1))) longest++;
    expect({ longest: /at most (\d+) characters/.exec(targetsRow)?.[1] }).toEqual({ longest: String(longest) });
    expect({ startsWithDigit: named("1abc"), startsWithDash: named("-abc"), readmeSaysLetterFirst: /starts with a lowercase letter/.test(targetsRow) }).toEqual({
      startsWithDigit: false,
      startsWithDash: false,
      readmeSaysLetterFirst: true,
    });
  });
});

describe("README config table, a target's own task size", () => {
  it("names the size fields the schema keeps on a target with isolation per-target", () => {
    const targetsRow = tableAfterHeader(text, "| key | default | meaning |").find((row) => codeSpans(row.cells[0]).includes("targets"))!.cells[2];
    const target = { name: "main", engine: "mongodb", cpu: 1024, memory: 4096 };
    const parsed = parseStackConfig({ get: (key) => ({ targets: JSON.stringify([target]), schedule: "rate(1 hour)", isolation: "per-target" })[key] }, "dev").targets[0] as unknown as Record<string, unknown>;
    const sizeFields = Object.keys(parsed).filter((field) => !(field in { name: 1, engine: 1 }) && parsed[field] !== undefined);
    expect(sizeFields).toEqual(["cpu", "memory"]);
    expect(sizeFields.filter((field) => !codeSpans(targetsRow).includes(field)).map((field) => `the targets row does not name \`${field}\``)).toEqual([]);
    expect(targetsRow).toContain("`isolation: per-target`");
  });
});

describe("README runner variable table", () => {
  const rows = tableAfterHeader(text, "| variable | meaning |");
  const documented = new Set(rows.flatMap((row) => codeSpans(row.cells[0]).map((span) => /^[A-Z][A-Z0-9_]*/.exec(span)?.[0]).filter((v): v is string => !!v)));

  /** An environment that records every variable the runner asks it for. */
  const recording = (values: Record<string, string>, read: Set<string>) =>
    new Proxy(values, {
      get: (target, key) => {
        if (typeof key === "string") read.add(key);
        return Reflect.get(target, key);
      },
    }) as NodeJS.ProcessEnv;

  // Variables that hold a target's secret are named by BACKUP_TARGETS, not by the runner: not rows of their own.
  const targets = JSON.stringify([
    { name: "app", engine: "postgres", host: "127.0.0.1", port: 1, database: "app", user: "backup", passwordEnv: "SECRET_OF_APP" },
    { name: "events", engine: "mongodb", uriEnv: "SECRET_OF_EVENTS" },
  ]);
  const named = ["SECRET_OF_APP", "SECRET_OF_EVENTS"];

  let recorded: Promise<Set<string>> | undefined;
  const readByRunner = () => (recorded ??= record());
  async function record(): Promise<Set<string>> {
    const read = new Set<string>();
    // backup: every setting it takes comes through parseSettings (the blog's variables and BACKUP_TARGETS at
    // once). Every other one-argument parse function of settings.ts is asked too, so one added there for a new
    // command (its environment its only argument) is covered without a change here.
    const full = {
      STAGE: "dev",
      S3_BUCKET: "bucket",
      PG_DB_HOST: "127.0.0.1:1",
      PG_DB_NAME: "legacy",
      PG_DB_USER: "u",
      PG_DB_PASSWORD: "p",
      MONGO_CONNECTION_STRING: "mongodb://127.0.0.1:1",
      BACKUP_TARGETS: targets,
      SECRET_OF_APP: "p",
      SECRET_OF_EVENTS: "mongodb://127.0.0.1:1",
      AWS_ACCESS_KEY_ID: "k",
      AWS_SECRET_ACCESS_KEY: "s",
    };
    parseSettings(recording(full, read));
    for (const [name, parse] of Object.entries(settings)) {
      if (!name.startsWith("parse") || typeof parse !== "function" || parse.length !== 1) continue;
      try {
        (parse as (env: NodeJS.ProcessEnv) => unknown)(recording(full, read));
      } catch {
        // A setting this environment lacks: what it read up to there is recorded.
      }
    }
    // verify and restore, as commands: everything they read before their first request, which nothing answers.
    const unreachable = {
      STAGE: "dev",
      S3_BUCKET: "bucket",
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:1",
      S3_FORCE_PATH_STYLE: "true",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "k",
      AWS_SECRET_ACCESS_KEY: "s",
      BACKUP_TARGETS: targets,
      SECRET_OF_APP: "p",
      SECRET_OF_EVENTS: "mongodb://127.0.0.1:1",
    };
    await runCli(["verify"], recording({ ...unreachable }, read));
    await runCli(["restore", "--target", "app", "--database", "app_restored"], recording({ ...unreachable }, read));
    for (const key of named) read.delete(key);
    // Only variable names: a parse function may also read a target's fields from what it is given.
    return new Set([...read].filter((key) => /^[A-Z][A-Z0-9_]*$/.test(key)));
  }

  it("has a row for every variable the runner reads", async () => {
    const read = await readByRunner();
    const missing = [...read].filter((v) => !documented.has(v)).map((v) => `no row names \`${v}\` (the runner reads it): add it to the table under "The runner"`);
    expect(missing).toEqual([]);
  });

  it("names no variable the runner neither reads nor hands to its tools", async () => {
    const read = await readByRunner();
    const source = readdirSync(join(repoRoot, "image/src"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(repoRoot, "image/src", f), "utf8"))
      .join("\n");
    const stray = [...documented].filter((v) => !read.has(v) && !new RegExp(`\\b${v}\\b`).test(source)).map((v) => `row names \`${v}\`, which image/src never reads or sets: remove it or fix its name`);
    expect(stray).toEqual([]);
  });
});

describe("README roles table", () => {
  const rows = tableAfterHeader(text, "| role | may | may not |");
  const arn = (what: string) => `arn:aws:${what}`;
  /** Each role policy builder, the README rows of the roles it builds, and inputs that make it grant all it can. */
  const sourceKms = { keyArn: "arn:aws:kms:us-east-1:123456789012:key/k", bucketKey: "enabled" } as const;
  const replica = { bucketArn: "arn:aws:s3:::r", kms: { keyArn: "arn:aws:kms:ap-northeast-1:123456789012:key/r", bucketKey: "enabled" } } as const;
  const builders: Record<string, { rows: string[]; document: () => PolicyDocument }> = {
    executionRolePolicy: {
      rows: ["backup execution role", "verifier execution role"],
      document: () => policies.executionRolePolicy({ repositoryArn: arn("ecr:r"), logGroupArn: arn("logs:g"), parameterArns: [arn("ssm:p")] }),
    },
    taskRolePolicy: {
      rows: ["backup task role"],
      document: () => policies.taskRolePolicy({ bucketArn: "arn:aws:s3:::b", stage: "dev", kms: { keyArn: "arn:aws:kms:us-east-1:123456789012:key/k", bucketKey: "unknown" } }),
    },
    verifierRolePolicy: {
      rows: ["verifier task role"],
      document: () => policies.verifierRolePolicy({ bucketArn: "arn:aws:s3:::b", stage: "dev", kms: { ...sourceKms, bucketKey: "unknown" }, replica }),
    },
    replicationRolePolicy: {
      rows: ["replication role"],
      document: () => policies.replicationRolePolicy({ sourceBucketArn: "arn:aws:s3:::b", stage: "dev", sourceKms, replica, objectLock: true }),
    },
    schedulerRolePolicy: {
      rows: ["backup scheduler role", "verifier scheduler role"],
      document: () =>
        policies.schedulerRolePolicy({
          region: "us-east-1",
          accountId: "123456789012",
          partition: "aws",
          family: "f",
          clusterArn: arn("ecs:c"),
          executionRoleArn: arn("iam:e"),
          taskRoleArn: arn("iam:t"),
          deadLetterQueueArn: arn("sqs:q"),
        }),
    },
  };

  it("knows every role policy builder of components/policies.ts", () => {
    const exported = Object.keys(policies).filter((name) => name.endsWith("RolePolicy") && name !== "assumeRolePolicy");
    expect(exported.filter((name) => !(name in builders)).map((name) => `components/policies.ts exports ${name}: add its role's row to README's roles table and to \`builders\` here`)).toEqual([]);
  });

  const builderRows = Object.values(builders).flatMap(({ rows: labels, document }) => labels.map((label): [string, () => PolicyDocument] => [label, document]));
  it.each(builderRows)("the %s row lists exactly the actions its policy builder grants", (label, document) => {
    const row = rows.find((r) => r.cells[0].startsWith(label));
    expect({ row: row ? label : `no row starting '${label}'` }).toEqual({ row: label });
    const statements = document().Statement.filter((s) => s.Effect === "Allow");
    const granted = new Set(statements.flatMap((s) => [s.Action].flat()));
    // A condition key (`kms:ViaService`) is written like an action: the row may name it as a limit.
    const conditionKeys = new Set(statements.flatMap((s) => Object.values(s.Condition ?? {}).flatMap((test) => Object.keys(test))));
    const listed = new Set(codeSpans(row!.cells[1]).filter((span) => /^[a-z0-9-]+:[A-Za-z*]+$/.test(span) && !conditionKeys.has(span)));
    expect({
      grantedButNotListed: [...granted].filter((a) => !listed.has(a)).map((a) => `${label}: \`${a}\` is granted but not in the row's "may" cell`),
      listedButNotGranted: [...listed].filter((a) => !granted.has(a)).map((a) => `${label}: \`${a}\` is in the row's "may" cell but not granted`),
    }).toEqual({ grantedButNotListed: [], listedButNotGranted: [] });
  });
});

describe("README layout table", () => {
  const rows = tableAfterHeader(text, "| path | what |");
  const tracked = execFileSync("git", ["ls-files"], { cwd: repoRoot, encoding: "utf8" }).split("\n").filter(Boolean);
  const rowPaths = rows.flatMap((row) => codeSpans(row.cells[0]));
  const pattern = (path: string) => new RegExp(`^${path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/<[^>]+>/g, "[^/]+")}${path.endsWith("/") ? "" : "(/|$)"}`);

  it("names only paths that exist", () => {
    const absent = rowPaths.filter((p) => !tracked.some((f) => pattern(p).test(f))).map((p) => `row \`${p}\`: no tracked file matches it`);
    expect(absent).toEqual([]);
  });

  it("covers every top-level file and folder", () => {
    const topLevel = [...new Set(tracked.map((f) => f.split("/")[0]))];
    const uncovered = topLevel.filter((top) => !rowPaths.some((p) => p === top || p.startsWith(`${top}/`) || pattern(p).test(top))).map((top) => `\`${top}\` is in no row's path: add a row for it`);
    expect(uncovered).toEqual([]);
  });

  /**
   * The granularity: a source file of components/, image/src/ and scripts/ is named in its folder's row by
   * its own name; a folder of scripts/lib/ or test/ by its folder name (`lib/`, `runner/`).
   */
  it("names every source file of components/, image/src/ and scripts/, and every folder of test/", () => {
    const rowOf = (top: string) => rows.find((r) => codeSpans(r.cells[0]).some((p) => p === `${top}/` || p === top));
    const uncovered: string[] = [];
    for (const file of tracked) {
      const parts = file.split("/");
      const [top] = parts;
      let needs: string | undefined;
      if ((top === "components" || top === "scripts") && parts.length === 2 && file.endsWith(".ts")) needs = parts[1];
      else if (top === "image" && parts[1] === "src" && parts.length === 3) needs = `src/${parts[2]}`;
      else if ((top === "scripts" || top === "test") && parts.length > 2) needs = `${parts[1]}/`;
      if (!needs) continue;
      const row = rowOf(top);
      const spans = row ? codeSpans(row.cells[1]) : [];
      if (!spans.includes(needs)) uncovered.push(`${file}: the \`${top}/\` row of the layout table does not name \`${needs}\``);
    }
    expect([...new Set(uncovered)]).toEqual([]);
  });
});

describe("README sandbox instructions", () => {
  it("shows `npm run sandbox` and then the commands the sandbox tells a person to run, in its order", () => {
    const section = text.slice(text.indexOf("## The runner"), text.indexOf("## Restoring"));
    const block = /```sh\n(npm run sandbox[\s\S]*?)```/.exec(section)?.[1] ?? "(no ```sh block starting with npm run sandbox under \"The runner\")";
    const shown = block.split("\n").filter((line) => line.startsWith("npm run ") && !line.startsWith("npm run sandbox")).map((line) => line.trim());
    expect(shown).toEqual(sandboxCommands.map(npmCommand));
  });
});
