/**
 * The seam between the stack and the runner (image/src/contract.ts), from both ends: what every committed
 * stack hands its container is read back by the runner's own parser as the targets the stack file names;
 * and a field renamed on one side only fails the type check.
 */

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { committedStacks, readStackFile } from "../../scripts/lib/stackFiles";
import type { SynthResult } from "../../scripts/lib/synth";
import { parseSettings } from "../../image/src/settings";

const root = join(__dirname, "../..");

describe.each(committedStacks())("stack %s's container, read by the runner", (stack) => {
  let graph: SynthResult;
  beforeAll(async () => {
    jest.resetModules();
    const { synthesize } = await import("../../scripts/lib/synth");
    graph = await synthesize(stack);
  }, 60000);

  it("gives back the stack file's targets, with the secrets where the stack names them", () => {
    // The backup's task definitions: the stage's one, or one per target (isolation per-target), in the file's order.
    const taskDefinitions = graph.resources.filter((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition" && r.name !== `db-backup-${stack}-drill`);
    const read = taskDefinitions.map((taskDefinition) => {
      const [container] = JSON.parse(taskDefinition.inputs.containerDefinitions as string);
      const environment = Object.fromEntries((container.environment as { name: string; value: string }[]).map((e) => [e.name, e.value]));
      // ECS sets each secret from its SSM parameter under secrets[].name; a dummy stands in for the value.
      const secrets = Object.fromEntries((container.secrets as { name: string }[]).map((s) => [s.name, `dummy-${s.name}`]));
      const settings = parseSettings({ ...environment, ...secrets });
      // Each container holds exactly the secrets of its own targets.
      expect(Object.keys(secrets).sort()).toEqual(settings.targets.map((t) => (t.engine === "postgres" ? t.passwordEnv : t.uriEnv)).sort());
      return settings;
    });
    const settings = { ...read[0], targets: read.flatMap((r) => r.targets) };

    // Expected from the stack file and the documented conventions, not from the code that wrote the environment.
    const file = readStackFile(stack);
    const configured = JSON.parse(file["db-backup:targets"]) as Record<string, string | number | undefined>[];
    expect(configured.length).toBeGreaterThan(0);
    expect(settings.targets).toEqual(
      configured.map((t) =>
        t.engine === "postgres"
          ? {
              engine: "postgres",
              name: t.name,
              host: t.host,
              port: t.port ?? 5432,
              database: t.database,
              user: t.user,
              passwordEnv: `PG_PASSWORD_${String(t.name).toUpperCase().replace(/-/g, "_")}`,
              // Neon's endpoint ID as libpq options, and TLS, which Neon requires.
              options: t.neonEndpoint === undefined ? undefined : `endpoint=${t.neonEndpoint}`,
              sslmode: t.sslmode ?? (t.neonEndpoint === undefined ? undefined : "require"),
              sslrootcert: t.sslrootcert,
              compression: t.compression,
            }
          : { engine: "mongodb", name: t.name, uriEnv: `MONGO_URI_${String(t.name).toUpperCase().replace(/-/g, "_")}`, database: t.database, pointInTime: t.pointInTime },
      ),
    );
    for (const r of read) expect(r).toMatchObject({
      stage: stack,
      s3: { bucket: graph.outputs.bucketName, region: file["aws:region"] },
      timeZone: file["db-backup:scheduleTimezone"] ?? "UTC",
      targetTimeoutSeconds: Number(file["db-backup:targetTimeoutMinutes"] ?? 360) * 60,
    });
  });
});

describe("a field renamed on one side only", () => {
  // The two sides of the seam and the contract, type-checked with one file's text edited in memory.
  const files = ["components/taskDefinition.ts", "image/src/settings.ts"].map((f) => join(root, f));
  const unedited = new Map<string, ts.SourceFile | undefined>();
  const typeErrors = (edit?: { file: string; from: string; to: string }): string[] => {
    const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, types: ["node"] };
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile;
    host.readFile = (name) => {
      const text = readFile(name);
      if (!edit || name !== join(root, edit.file)) return text;
      expect(text).toContain(edit.from);
      return text!.replace(edit.from, edit.to);
    };
    host.getSourceFile = (name, languageVersion) => {
      const parse = () => {
        const text = host.readFile(name);
        return text === undefined ? undefined : ts.createSourceFile(name, text, languageVersion);
      };
      if (edit && name === join(root, edit.file)) return parse();
      if (!unedited.has(name)) unedited.set(name, parse());
      return unedited.get(name);
    };
    const program = ts.createProgram(files, options, host);
    return ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? d.file.fileName.slice(root.length + 1) : ""}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
  };

  it("type-checks as committed", () => {
    expect(typeErrors()).toEqual([]);
  }, 60000);

  it.each([
    ["the contract renames a target field", { file: "image/src/contract.ts", from: "  passwordEnv: string;", to: "  passwordVar: string;" }, ["components/config.ts", "components/taskDefinition.ts", "image/src/settings.ts"]],
    ["the stack writes a field the contract does not have", { file: "components/taskDefinition.ts", from: "passwordEnv: secretEnvName(t)", to: "passwordVar: secretEnvName(t)" }, ["components/taskDefinition.ts"]],
    ["the runner reads a field the contract does not have", { file: "image/src/settings.ts", from: 'envRef(obj, "passwordEnv"', to: 'envRef(obj, "passwordVar"' }, ["image/src/settings.ts"]],
    ["the runner reads a port field the contract does not have", { file: "image/src/settings.ts", from: "obj.port ??", to: "obj.portNumber ??" }, ["image/src/settings.ts"]],
    ["the stack sets a variable the contract does not name", { file: "components/taskDefinition.ts", from: "BACKUP_TIMEZONE: i.config", to: "BACKUP_TZ: i.config" }, ["components/taskDefinition.ts"]],
    ["the runner reads a stack variable the contract does not name", { file: "image/src/settings.ts", from: '"BACKUP_TIMEZONE" satisfies', to: '"BACKUP_TZ" satisfies' }, ["image/src/settings.ts"]],
  ])("fails the type check when %s", (_case, edit, failing) => {
    const errors = typeErrors(edit);
    expect([...new Set(errors.map((e) => e.split(":")[0]))].sort()).toEqual(failing);
  }, 60000);
});

it("is all the stack and the runner import of each other", () => {
  const imports = (dir: string) =>
    readdirSync(join(root, dir))
      .filter((f) => f.endsWith(".ts"))
      .flatMap((f) => [...readFileSync(join(root, dir, f), "utf8").matchAll(/(?:from|import\(|require\()\s*"([^"]+)"/g)].map((m) => `${dir}/${f} -> ${m[1]}`));
  const stack = imports("components");
  expect(stack.length).toBeGreaterThan(0);
  expect(stack.filter((i) => i.includes("image/")).map((i) => i.split(" -> ")[1])).toEqual(expect.arrayContaining(["../image/src/contract"]));
  expect(stack.filter((i) => i.includes("image/") && !i.endsWith(" -> ../image/src/contract"))).toEqual([]);
  expect(imports("image/src").filter((i) => i.includes("components"))).toEqual([]);
});

it("the image build compiles the contract with the runner", () => {
  // image/tsconfig.json compiles everything under image/src, which the Dockerfile copies whole.
  expect(JSON.parse(readFileSync(join(root, "image/tsconfig.json"), "utf8")).include).toEqual(["src/**/*.ts"]);
  expect(readFileSync(join(root, "image/Dockerfile"), "utf8")).toMatch(/^COPY image\/src image\/src$/m);
});
