/**
 * `npm run --silent synth -- <stack>`: prints the stack's resource graph as one JSON document;
 * with `--summary`, the reviewer's Markdown summary of it instead (scripts/lib/summary.ts).
 */

import { ConfigError } from "../components/config";
import { synthSummary } from "./lib/summary";
import { synthesize } from "./lib/synth";

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const summary = args.includes("--summary");
  const [stack, ...rest] = args.filter((a) => a !== "--summary");
  if (!stack || rest.length > 0 || stack.startsWith("-")) {
    process.stderr.write("usage: npm run --silent synth -- <stack> [--summary]   (dev, uat or prod; --summary: Markdown for a reviewer instead of JSON)\n");
    return 2;
  }
  try {
    const result = await synthesize(stack);
    process.stdout.write(summary ? synthSummary(result) : JSON.stringify(result, null, 2) + "\n");
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? 1 : 2;
  }
}

main().then((code) => process.exit(code));
