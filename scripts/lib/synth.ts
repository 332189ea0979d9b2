/**
 * The offline synth: renders a stack with Pulumi's runtime mocks, no AWS and no Pulumi CLI. Its config
 * is read from Pulumi.<stack>.yaml and checked by the same schema as `pulumi up`; secrets the file does
 * not hold in plain text are filled with SYNTH-SECRET(<key>).
 */

import { ConfigError, drillIdentityKey, needsDrillIdentity, parseStackConfig, project, secretKeyOf } from "../../components/config";
import { AwsMocks, promiseOf, type RecordedResource } from "./mocks";
import { readStackFile } from "./stackFiles";

export interface SynthResult {
  stack: string;
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
}

/**
 * Runs index.ts under mocks with the given config; resolves once every resource is registered.
 * `secrets` gives values for secret keys (`app-password`), as `pulumi config set --secret` would.
 */
export async function synthesize(stack: string, config: Record<string, string> = readStackFile(stack), secrets: Record<string, string> = {}): Promise<SynthResult> {
  const stage = parseStackConfig({ get: (key) => config[`${project}:${key}`] }, stack, config["aws:region"]);
  const secretKeys = [...stage.targets.map(secretKeyOf), ...(needsDrillIdentity(stage) ? [drillIdentityKey] : [])].map((key) => `${project}:${key}`);
  const plain = secretKeys.find((key) => key in config);
  if (plain) {
    throw new ConfigError(plain.slice(project.length + 1), `is in plain text in Pulumi.${stack}.yaml: remove it there and run \`pulumi config set --secret ${plain} <value>\``);
  }
  const full = { ...config };
  for (const key of secretKeys) full[key] ??= secrets[key.slice(project.length + 1)] ?? `SYNTH-SECRET(${key})`;

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
