/** Helpers for the runner's tests: captured log lines, fake tools on PATH, and S3 reads. */

import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { main } from "../../image/src/cli";
import { onPath } from "../../image/src/proc";
import { setLogSink } from "../../image/src/log";
import { getStream, listKeys, s3Client } from "../../image/src/s3";
import { parseStorage } from "../../image/src/settings";

export interface Run {
  code: number;
  lines: Record<string, unknown>[];
  /** Every line as written, for searching for secrets. */
  text: string;
  /** What was printed beside the log: help. */
  printed: string;
}

/** Runs the runner's CLI in this process, collecting its JSON log lines; `stop` stands for the entry point's signal handler. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv, stop?: AbortSignal): Promise<Run> {
  const raw: string[] = [];
  let printed = "";
  const restore = setLogSink((line) => raw.push(line));
  try {
    const code = await main(argv, env, stop, (text) => (printed += text));
    return { code, lines: raw.map((l) => JSON.parse(l) as Record<string, unknown>), text: raw.join("\n"), printed };
  } finally {
    restore();
  }
}

/** The keys stored under a prefix of the environment's bucket. */
export async function storedKeys(env: NodeJS.ProcessEnv, prefix = ""): Promise<string[]> {
  const { s3 } = parseStorage({ STAGE: "x", ...env });
  return listKeys(s3Client(s3), s3.bucket, prefix);
}

/** The bytes stored at a key of the environment's bucket. */
export async function storedObject(env: NodeJS.ProcessEnv, key: string): Promise<Buffer> {
  const { s3 } = parseStorage({ STAGE: "x", ...env });
  const body = await getStream(s3Client(s3), s3.bucket, key);
  return Buffer.concat(await body.toArray());
}

/** A directory holding executable stand-ins, to put first on PATH. */
export function fakeBin(scripts: Record<string, string>): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), "db-backup-fakebin-"));
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, name), body);
    chmodSync(join(dir, name), 0o755);
  }
  return { dir, path: `${dir}:${process.env.PATH}` };
}

/** The real tool's absolute path, for a stand-in that wraps it. */
export function which(tool: string): string {
  const path = onPath(tool, process.env);
  if (!path) throw new Error(`${tool} is not on PATH`);
  return path;
}

/**
 * Runs a command without blocking this process: the S3 server the command talks to runs inside the
 * test process, so spawnSync would deadlock.
 */
export function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = repoRoot): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

export const repoRoot = join(__dirname, "../..");
