/**
 * `npm run test:aws` where it cannot run (no E2E_* variables, no AWS credentials, no Pulumi CLI, no
 * Docker): it must say what it needs and exit 0, or 1 when CI requires it to run, and never hang on the
 * AWS credential chain. The environment is built from nothing: PATH holds node alone, HOME is empty, the
 * AWS config files do not exist and the EC2 metadata endpoint is off (the chain's last, slowest step).
 */

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerfilePgMajor } from "../../scripts/lib/e2e";

const repoRoot = join(__dirname, "../..");
let home: string;

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "db-backup-e2e-"));
  symlinkSync(process.execPath, join(home, "node"));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function runE2e(extra: Record<string, string> = {}): Promise<{ code: number | null; output: string; seconds: number }> {
  const env = {
    PATH: home,
    HOME: home,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: join(home, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "no-aws-credentials"),
    ...extra,
  };
  const started = Date.now();
  const child = spawn(process.execPath, [require.resolve("tsx/cli"), join(repoRoot, "scripts", "e2e.ts")], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, output, seconds: (Date.now() - started) / 1000 })));
}

it("npm run test:aws is this script", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> };
  expect(pkg.scripts["test:aws"]).toBe("tsx scripts/e2e.ts");
});

it("without anything it needs, exits 0 and names every need and how to meet it", async () => {
  const { code, output, seconds } = await runE2e();
  expect(code).toBe(0);
  for (const variable of ["E2E_PG_HOST", "E2E_PG_DATABASE", "E2E_PG_USER", "E2E_PG_PASSWORD", "AWS_REGION"]) expect(output).toMatch(new RegExp(`^ +${variable} `, "m"));
  expect(output).toMatch(/^ +pulumi .*https:\/\/get\.pulumi\.com/m);
  expect(output).toMatch(/^ +docker buildx /m);
  expect(output).toMatch(/^ +AWS credentials /m);
  const major = dockerfilePgMajor(readFileSync(join(repoRoot, "image", "Dockerfile"), "utf8"));
  expect(output).toMatch(new RegExp(`^ +pg_restore ${major} `, "m"));
  expect(output).toContain("Proving it on AWS");
  expect(seconds).toBeLessThan(45);
}, 60000);

it("when CI requires it to run, exits 1; the password it was given is never printed", async () => {
  const password = "e2e-test-password-7f3a";
  const { code, output } = await runE2e({ E2E_REQUIRED: "true", E2E_PG_HOST: "db.example.com", E2E_PG_DATABASE: "app", E2E_PG_USER: "backup", E2E_PG_PASSWORD: password, AWS_REGION: "ap-southeast-1" });
  expect(code).toBe(1);
  expect(output).not.toMatch(/^ +E2E_PG_/m);
  expect(output).toMatch(/^ +pulumi /m);
  expect(output).not.toContain(password);
}, 60000);
