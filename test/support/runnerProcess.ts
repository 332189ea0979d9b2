/**
 * The runner as the image runs it: compiled by `tsc -p image` (as the Dockerfile does) and started as
 * `node dist/cli.js <command>` in a process of its own, so that signals reach it as they reach the
 * container's process.
 */

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LocalS3 } from "../../scripts/lib/localS3";
import { repoRoot, runProcess } from "./runner";

export interface CompiledRunner {
  /** The compiled cli.js. */
  cli: string;
  /** What the process needs beside its own variables: the repository's node_modules, as /app/node_modules is in the image. */
  env: Record<string, string>;
  remove(): void;
}

export async function compileRunner(): Promise<CompiledRunner> {
  const dir = mkdtempSync(join(tmpdir(), "db-backup-dist-"));
  const res = await runProcess(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "image", "--outDir", dir], process.env);
  if (res.status !== 0) throw new Error(`tsc -p image failed: ${res.stdout}${res.stderr}`);
  return { cli: join(dir, "cli.js"), env: { NODE_PATH: join(repoRoot, "node_modules") }, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RunnerProcess {
  /** The JSON lines written so far. */
  lines: Record<string, unknown>[];
  /** Resolves with the exit once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

export function startRunner(runner: CompiledRunner, argv: string[], env: NodeJS.ProcessEnv): RunnerProcess {
  const child = spawn(process.execPath, [runner.cli, ...argv], { env: { ...env, ...runner.env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Record<string, unknown>[] = [];
  let pending = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    const text = pending + d.toString();
    const complete = text.split("\n");
    pending = complete.pop()!;
    for (const line of complete) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stderr }));
  });
  return { lines, exited, kill: (signal) => child.kill(signal) };
}

/** Polls `condition` every 100 ms until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * How many parts of an open multipart upload under `keyPrefix` the local S3 has on disk. It reads
 * s3rver's own layout (`<bucket>/._S3rver_uploads/<upload id>/{key,<n>,<n>.md5}`; the .md5 is written
 * once the part is whole, scripts/lib/localS3.ts), as S3 itself would answer ListParts.
 */
export function uploadedParts(s3: LocalS3, keyPrefix: string): number {
  const uploads = join(s3.directory, s3.bucket, "._S3rver_uploads");
  if (!existsSync(uploads)) return 0;
  let parts = 0;
  for (const id of readdirSync(uploads)) {
    const keyFile = join(uploads, id, "key");
    if (!existsSync(keyFile) || !readFileSync(keyFile, "utf8").startsWith(keyPrefix)) continue;
    parts += readdirSync(join(uploads, id)).filter((f) => /^\d+\.md5$/.test(f)).length;
  }
  return parts;
}

/**
 * Whether process `pid` is running and its command line contains `marker` (a stand-in's path): a pid
 * read from a file may since have been given to an unrelated process, which must be neither taken
 * for the stand-in nor killed in its place. A zombie counts as gone.
 */
export function isRunning(pid: number, marker: string): boolean {
  try {
    if (/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"))) return false;
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
  } catch {
    return false; // no such process
  }
}
