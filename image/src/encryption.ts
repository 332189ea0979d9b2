/**
 * Client-side encryption with age (https://age-encryption.org): a dump is encrypted in the task, in the
 * stream, for public keys whose identities the bucket, the task and AWS never hold; restoring it needs
 * an identity file. The `age` binary does the work at native speed, in a pipe of its own: the dump
 * tool's stdout is its stdin (the kernel moves the bytes, not the runner), its stdout is what is
 * uploaded. It inherits nothing but PATH: the dump tool's environment holds the database password.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ageIdentitySecretEnv } from "./contract";
import { addSecret } from "./log";
import { describeExit, exitOf, StderrTail, succeeded, terminateOnAbort, type Exit } from "./proc";
import { parseIdentityFile, scratchDir, SettingsError } from "./settings";

export const ageCommand = "age";

/** `age -r … -r …`: recipients are public keys, so argv is the place for them. */
export function encryptArgs(recipients: string[]): string[] {
  return recipients.flatMap((r) => ["--recipient", r]);
}

/** `age --decrypt --identity <file>`: the file's path on argv, its contents never. */
export function decryptArgs(identityFile: string): string[] {
  return ["--decrypt", "--identity", identityFile];
}

/** What age needs from the environment: only where it is. */
function ageEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PATH: env.PATH };
}

export interface Encryptor {
  process: ChildProcess;
  /** age's exit, watched from its start: it may end before the dump tool does. */
  exited: Promise<Exit>;
  /** The ciphertext: what is hashed and uploaded. */
  output: Readable;
  stderr: StderrTail;
}

/**
 * Starts age reading `source` (a child's stdout, handed over as a file descriptor) and encrypting it
 * for `recipients`. The runner's own end of `source` is closed, so only age reads the dump.
 */
export function startEncryptor(source: Readable, recipients: string[], env: NodeJS.ProcessEnv): Encryptor {
  const child = spawn(ageCommand, encryptArgs(recipients), { env: ageEnv(env), stdio: [source, "pipe", "pipe"] });
  source.destroy();
  const stderr = new StderrTail();
  child.stderr?.on("data", (d: Buffer) => stderr.push(d));
  return { process: child, exited: exitOf(child), output: child.stdout!, stderr };
}

export interface IdentityFile {
  /** The file age reads the identity from; undefined when none is given. */
  path?: string;
  /** Removes the file this runner wrote (not one it was given). */
  remove: () => Promise<void>;
}

/**
 * Where age finds the identity: AGE_IDENTITY_FILE as given, or the verifier task's AGE_IDENTITY (an ECS
 * secret) written to a 0600 file in a fresh 0700 directory under `dir`, since age reads identities only
 * from files; `remove` deletes it. The identity is registered as a secret, so no log line carries it.
 */
export async function identityFile(env: NodeJS.ProcessEnv, dir = scratchDir(env)): Promise<IdentityFile> {
  const given = parseIdentityFile(env);
  const value = env[ageIdentitySecretEnv]?.trim();
  if (!value) return { path: given, remove: async () => undefined };
  if (given) throw new SettingsError(`AGE_IDENTITY_FILE and ${ageIdentitySecretEnv} are both set: give the identity one way`);
  addSecret(value);
  const folder = await mkdtemp(join(dir, "db-backup-age-"));
  const path = join(folder, "identity.txt");
  await writeFile(path, value + "\n", { mode: 0o600 });
  return { path, remove: () => rm(folder, { recursive: true, force: true }) };
}

/** Runs `work` with the identity file (identityFile), and removes a file written for it afterwards, whatever happens. */
export async function withIdentityFile<T>(env: NodeJS.ProcessEnv, work: (path: string | undefined) => Promise<T>): Promise<T> {
  const identity = await identityFile(env);
  try {
    return await work(identity.path);
  } finally {
    await identity.remove();
  }
}

/** Why age refused to decrypt, in words that name the setting to fix. */
export function explainDecryptError(stderr: string, identityFile: string): string {
  if (/no identity matched/i.test(stderr)) {
    return `the identity in AGE_IDENTITY_FILE (${identityFile}) is not one this backup was encrypted for: use the identity of one of the manifest's recipients`;
  }
  if (/failed to open|no such file|permission denied/i.test(stderr)) return `AGE_IDENTITY_FILE (${identityFile}) cannot be read`;
  if (/malformed|failed to read|unknown identity|invalid/i.test(stderr)) return `AGE_IDENTITY_FILE (${identityFile}) does not hold an age identity (AGE-SECRET-KEY-1…)`;
  return "age could not decrypt the backup";
}

/**
 * Decrypts `ciphertext` into a new private file at `path` (0600), with the identity in `identityFile`.
 * A wrong identity, a damaged or truncated ciphertext (age authenticates every chunk), or `stop` fails
 * it; the caller removes the partial file.
 */
export async function decryptToFile(ciphertext: Readable, path: string, identityFile: string, env: NodeJS.ProcessEnv, stop?: AbortSignal): Promise<void> {
  const file = await open(path, "wx", 0o600);
  let exit: Exit;
  const stderr = new StderrTail();
  try {
    const child = spawn(ageCommand, decryptArgs(identityFile), { env: ageEnv(env), stdio: ["pipe", file.fd, "pipe"] });
    child.stderr?.on("data", (d: Buffer) => stderr.push(d));
    const unwatch = terminateOnAbort(child, stop);
    const exited = exitOf(child);
    // age stops reading at a wrong identity: the pipe breaks, and age's own words are the error to give.
    const fed = pipeline(ciphertext, child.stdin!, { signal: stop }).catch((err: unknown) => err);
    exit = await exited;
    unwatch();
    const feedError = await fed;
    if (succeeded(exit) && feedError !== undefined) throw feedError;
  } finally {
    await file.close();
  }
  if (stop?.aborted) throw new Error(`decryption stopped by ${String(stop.reason)}`);
  if (!succeeded(exit)) throw new Error(`${explainDecryptError(stderr.toString(), identityFile)}: ${describeExit(ageCommand, exit)}${stderr.toString() ? `; stderr: ${stderr}` : ""}`);
}
