/** The committed stack files, read as Pulumi hands their config to the program. No Pulumi runtime here. */

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { project } from "../../components/config";

export const repoRoot = join(__dirname, "../..");

/** The stacks that have a committed Pulumi.<stack>.yaml, sorted. */
export function committedStacks(dir = repoRoot): string[] {
  return readdirSync(dir).map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1]).filter((s): s is string => !!s).sort();
}

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
