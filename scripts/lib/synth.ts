/**
 * The offline synth: renders a stack with Pulumi's runtime mocks, no AWS and no Pulumi CLI. Its config
 * is read from Pulumi.<stack>.yaml and checked by the same schema as `pulumi up`; secrets the file does
 * not hold in plain text are filled with SYNTH-SECRET(<key>).
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigError, parseStackConfig, project, secretKeyOf } from "../../components/config";
import { AwsMocks, promiseOf, type RecordedResource } from "./mocks";

export interface SynthResult {
  stack: string;
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
}

export const repoRoot = join(__dirname, "../..");

/** A stack file's config as Pulumi hands it to the program: `ns:key` → string (objects as JSON). */
export function readStackFile(stack: string, dir = repoRoot): Record<string, string> {
  const file = join(dir, `Pulumi.${stack}.yaml`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new Error(`no stack file ${file}: the stacks are dev, uat and prod (Pulumi.<stack>.yaml)`);
  }
  const config = (parse(text) as { config?: Record<string, unknown> } | null)?.config ?? {};
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    // Encrypted values (`secure: v1:…`) cannot be read without the stack's key: left out, like any missing secret.
    if (value && typeof value === "object" && "secure" in (value as object)) continue;
    flat[key.includes(":") ? key : `${project}:${key}`] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return flat;
}

/** Runs index.ts under mocks with the given config; resolves once every resource is registered. */
export async function synthesize(stack: string, config: Record<string, string> = readStackFile(stack)): Promise<SynthResult> {
  const stage = parseStackConfig({ get: (key) => config[`${project}:${key}`] }, stack);
  const secretKeys = stage.targets.map((t) => `${project}:${secretKeyOf(t)}`);
  const plain = secretKeys.find((key) => key in config);
  if (plain) {
    throw new ConfigError(plain.slice(project.length + 1), `is in plain text in Pulumi.${stack}.yaml: remove it there and run \`pulumi config set --secret ${plain} <value>\``);
  }
  const full = { ...config };
  for (const key of secretKeys) full[key] ??= `SYNTH-SECRET(${key})`;

  const pulumi = await import("@pulumi/pulumi");
  const mocks = new AwsMocks(config["aws:region"] ?? "us-east-1");
  pulumi.runtime.setAllConfig(full, secretKeys);
  await pulumi.runtime.setMocks(mocks, project, stack, false);
  const program: Record<string, unknown> = await import("../../index");

  const outputs: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(program)) {
    outputs[name] = pulumi.Output.isInstance(value) ? await promiseOf(value) : value;
  }
  await pulumi.runtime.disconnect();
  return { stack, resources: mocks.resources, outputs };
}
