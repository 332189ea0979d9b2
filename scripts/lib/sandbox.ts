/**
 * What `npm run sandbox` prints: the runner's environment for the sandbox's PostgreSQL and S3, as shell
 * `export` lines to paste into another terminal. Pure, so the quoting is tested without a server.
 */

import { secretEnvName, type PostgresTarget } from "../../image/src/contract";

export const sandboxStage = "sandbox";
export const sandboxDatabase = "shop";

export interface SandboxServers {
  postgres: { host: string; port: number; user: string; password: string };
  /** The local S3's runner settings (LocalS3.env): bucket, endpoint, path-style, region, dummy keys. */
  s3: Record<string, string>;
}

/**
 * The variables that make `npm run backup`, `verify` and `restore` reach the sandbox: the stack's own
 * shape (BACKUP_TARGETS naming the variable that holds the password, as the task definition does), so
 * what is tried here is what runs in ECS.
 */
export function sandboxVariables(servers: SandboxServers): Record<string, string> {
  const { postgres } = servers;
  const target: PostgresTarget = {
    engine: "postgres",
    name: sandboxDatabase,
    host: postgres.host,
    port: postgres.port,
    database: sandboxDatabase,
    user: postgres.user,
    passwordEnv: secretEnvName({ engine: "postgres", name: sandboxDatabase }),
  };
  return {
    STAGE: sandboxStage,
    ...servers.s3,
    BACKUP_TARGETS: JSON.stringify([target]),
    // The throwaway cluster's random password: it exists only while the sandbox runs.
    [target.passwordEnv]: postgres.password,
  };
}

/** A word the shell reads back as exactly `value`: single quotes, with each ' written as '\''. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME=value` lines for a POSIX shell (sh, bash, zsh). */
export function exportLines(variables: Record<string, string>): string {
  return Object.entries(variables).map(([name, value]) => `export ${name}=${shellQuote(value)}\n`).join("");
}

/** How a person types the runner's command `argv`: `npm run verify -- --deep`. */
export function npmCommand([command, ...options]: string[]): string {
  return `npm run ${command}${options.length > 0 ? ` -- ${options.join(" ")}` : ""}`;
}

/** What to try in the sandbox, in order: the commands the README shows and the sandbox's test runs. */
export const sandboxCommands = [["backup"], ["verify", "--deep"], ["restore", "--database", `${sandboxDatabase}_restored`, "--create"]];
