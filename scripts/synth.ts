/** `npm run --silent synth -- <stack>`: prints the stack's resource graph as one JSON document. */

import { ConfigError } from "../components/config";
import { synthesize } from "./lib/synth";

async function main(): Promise<number> {
  const stack = process.argv[2];
  if (!stack) {
    process.stderr.write("usage: npm run --silent synth -- <stack>   (dev, uat or prod)\n");
    return 2;
  }
  try {
    const result = await synthesize(stack);
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return err instanceof ConfigError ? 1 : 2;
  }
}

main().then((code) => process.exit(code));
