/** Child processes whose exit status decides and whose stderr is kept for the error message. */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** The last part of a process's stderr: enough to explain a failure without holding a flood in memory. */
export class StderrTail {
  private text = "";
  constructor(private readonly limit = 16 * 1024) {}
  push(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-this.limit);
  }
  toString(): string {
    return this.text.trim();
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. ENOENT: not on PATH). */
  spawnError?: NodeJS.ErrnoException;
}

/** Resolves once the process has exited and its stdio is closed; never rejects. */
export function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    let spawnError: NodeJS.ErrnoException | undefined;
    child.once("error", (err) => {
      spawnError = err;
      // A process that never started emits no 'close' on some Node versions.
      if (child.pid === undefined) resolve({ code: null, signal: null, spawnError });
    });
    child.once("close", (code, signal) => resolve({ code, signal, spawnError }));
  });
}

/**
 * How long a tool stopped with SIGTERM gets before SIGKILL. pg_dump and mongodump exit at once on
 * SIGTERM; this only bounds one that does not, well inside ECS's stopTimeout (README, "The runner").
 */
export const stopGraceMs = 3_000;

/** Sends SIGTERM, then SIGKILL if the process is still running `graceMs` later. */
export function terminate(child: ChildProcess, graceMs = stopGraceMs): void {
  child.kill("SIGTERM");
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }, graceMs).unref();
}

/** Terminates `child` when `signal` is aborted (at once if it already is); returns a function that stops watching. */
export function terminateOnAbort(child: ChildProcess, signal: AbortSignal | undefined, graceMs = stopGraceMs): () => void {
  if (!signal) return () => undefined;
  const stop = () => terminate(child, graceMs);
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  return () => signal.removeEventListener("abort", stop);
}

export function describeExit(command: string, exit: Exit): string {
  if (exit.spawnError?.code === "ENOENT") return `${command} was not found on PATH`;
  if (exit.spawnError) return `${command} could not be started: ${exit.spawnError.message}`;
  if (exit.signal) return `${command} was killed by ${exit.signal}`;
  return `${command} exited with status ${exit.code}`;
}

/** Where `name` would be found on the environment's PATH: the first executable file of that name, or undefined. */
export function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A local account's name and ids: a server that refuses root runs as it when the caller is root. */
export interface LocalUser {
  name: string;
  uid: number;
  gid: number;
}

/** The first of `names` that is an account here (`id -u`, `id -g`); undefined when none is. */
export function localUser(names: string[]): LocalUser | undefined {
  for (const name of names) {
    const [uid, gid] = ["-u", "-g"].map((flag) => spawnSync("id", [flag, name], { encoding: "utf8" }));
    if (uid.status === 0 && gid.status === 0) return { name, uid: Number(uid.stdout), gid: Number(gid.stdout) };
  }
  return undefined;
}

/** `command args` as they are, or under `runuser -u <user> --` when a user is given (root starting a server as that user). */
export function runAs(user: string | undefined, command: string, args: string[]): [string, string[]] {
  return user ? ["runuser", ["-u", user, "--", command, ...args]] : [command, args];
}

export interface RunResult {
  exit: Exit;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (versions, queries, restores), collecting its output; `signal` stops it. */
export async function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000, signal?: AbortSignal): Promise<RunResult> {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  const stderr = new StderrTail();
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => stderr.push(d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const unwatch = terminateOnAbort(child, signal);
  const exit = await exitOf(child);
  clearTimeout(timer);
  unwatch();
  return { exit, stdout, stderr: stderr.toString() };
}

export function succeeded(exit: Exit): boolean {
  return exit.code === 0 && !exit.spawnError;
}

/** Like `run`, but throws "<failure>: <how it exited>: <its stderr>" unless the command exited 0. */
export async function runChecked(failure: string, command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, signal?: AbortSignal): Promise<RunResult> {
  const res = await run(command, args, env, timeoutMs, signal);
  if (!succeeded(res.exit)) throw new Error(`${failure}: ${describeExit(command, res.exit)}: ${res.stderr}`);
  return res;
}
