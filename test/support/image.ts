/**
 * The image as far as it can be had without a Docker engine: its Dockerfile read as instructions, and
 * its account step (the runner's user and scratch directory) run for real against this Debian 12's own
 * account files, in a bubblewrap sandbox with a writable copy of /etc.
 */

import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onPath } from "../../image/src/proc";
import { repoRoot } from "./runner";

export interface Instruction {
  keyword: string;
  args: string;
}

/** The instructions of the Dockerfile's final stage, continuation lines joined, comments dropped. */
export function finalStage(dockerfile: string): Instruction[] {
  const all = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((l) => /^[A-Z]+\s/.test(l))
    .map((l) => ({ keyword: l.split(/\s/, 1)[0], args: l.slice(l.indexOf(" ") + 1).trim() }));
  const lastFrom = all.map((i) => i.keyword).lastIndexOf("FROM");
  return all.slice(lastFrom);
}

/** The paths the final stage declares as volumes (`VOLUME ["/a", "/b"]` or `VOLUME /a /b`). */
export function declaredVolumes(stage: Instruction[]): string[] {
  return stage
    .filter((i) => i.keyword === "VOLUME")
    .flatMap((i) => (i.args.startsWith("[") ? (JSON.parse(i.args) as string[]) : i.args.split(/\s+/)));
}

/** The final stage's SHELL (Docker's default is /bin/sh -c). */
export function shellOf(stage: Instruction[]): string[] {
  const shell = stage.filter((i) => i.keyword === "SHELL").at(-1);
  return shell ? (JSON.parse(shell.args) as string[]) : ["/bin/sh", "-c"];
}

/** The final stage's ENTRYPOINT and CMD, both in exec form. */
export function entrypointOf(stage: Instruction[]): { entrypoint: string[]; cmd: string[] } {
  const last = (keyword: string) => JSON.parse(stage.filter((i) => i.keyword === keyword).at(-1)?.args ?? "[]") as string[];
  return { entrypoint: last("ENTRYPOINT"), cmd: last("CMD") };
}

/** The final stage's ENV (KEY=value form). */
export function envOf(stage: Instruction[]): Record<string, string> {
  return Object.fromEntries(stage.filter((i) => i.keyword === "ENV").flatMap((i) => i.args.split(/\s+/).map((kv) => kv.split("=", 2) as [string, string])));
}

/**
 * Why the sandbox cannot be made here, or undefined when it can (root, bubblewrap and setpriv). Where
 * REQUIRE_SANDBOX=1 (.ci/run), a missing sandbox is an error instead of a reason to skip.
 */
export function sandboxUnavailable(): string | undefined {
  const reason = sandboxProblem();
  if (reason && process.env.REQUIRE_SANDBOX === "1") throw new Error(`REQUIRE_SANDBOX=1, but the sandbox cannot be made: ${reason}`);
  return reason;
}

function sandboxProblem(): string | undefined {
  if (process.getuid?.() !== 0) return "not running as root: bubblewrap's bind mounts and setpriv's user switch need it (CI runs as root)";
  for (const tool of ["bwrap", "setpriv"]) {
    if (!onPath(tool, process.env)) return `${tool} is not installed (apt-get install bubblewrap util-linux)`;
  }
  const probe = spawnSync("bwrap", ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"], { encoding: "utf8" });
  if (probe.status !== 0) return `bubblewrap cannot make a sandbox on this machine: ${probe.stderr.trim()}`;
  return undefined;
}

export interface FileMode {
  uid: number;
  gid: number;
  /** Permission bits, e.g. 0o700. */
  mode: number;
}

export function fileMode(path: string): FileMode {
  const s = statSync(path);
  return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 };
}

export interface AccountStep {
  /** The RUN instruction's command, as the Dockerfile has it. */
  command: string;
  status: number | null;
  stderr: string;
  /** The sandbox's /etc after the step: the image's passwd and group. */
  etc: string;
  /** Each declared volume's directory after the step, as the image would hold it. */
  volumes: Record<string, string>;
  remove(): void;
}

/**
 * Runs the final stage's RUN that creates the runner's user, as root, in a sandbox whose /etc is a
 * copy of this machine's (Debian 12: base-passwd's accounts, as in the node:22-bookworm-slim base) and
 * whose declared volume paths start as the base image has them (/tmp: root, 1777).
 */
export function runAccountStep(dockerfile: string): AccountStep {
  const stage = finalStage(dockerfile);
  const step = stage.find((i) => i.keyword === "RUN" && /\buseradd\b/.test(i.args));
  if (!step) throw new Error("the Dockerfile's final stage has no RUN with useradd");
  const dir = mkdtempSync(join(tmpdir(), "db-backup-image-"));
  const etc = join(dir, "etc");
  cpSync("/etc", etc, { recursive: true, verbatimSymlinks: true });
  // Every path the step may prepare starts as in the base image; only the declared volumes are kept.
  const prepared = [...new Set(["/tmp", ...declaredVolumes(stage)])];
  const binds: string[] = [];
  const dirs = prepared.map((path, i) => {
    const copy = join(dir, `path-${i}`);
    mkdirSync(copy);
    chmodSync(copy, path === "/tmp" ? 0o1777 : 0o755);
    binds.push("--bind", copy, path);
    return [path, copy] as const;
  });
  const volumes = Object.fromEntries(dirs.filter(([path]) => declaredVolumes(stage).includes(path)));
  const res = spawnSync("bwrap", ["--ro-bind", "/", "/", "--bind", etc, "/etc", ...binds, "--dev", "/dev", "--proc", "/proc", "--", ...shellOf(stage), step.args], {
    encoding: "utf8",
    cwd: repoRoot,
  });
  return { command: step.args, status: res.status, stderr: res.stderr, etc, volumes, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
