/**
 * For `npm run bench` only: CPU affinity with util-linux's `taskset`, to model a 1-vCPU Fargate task on
 * a machine with more CPUs. The dump side is started under `taskset -c <cpu>` (its children inherit
 * the affinity); this process (which serves S3) and the PostgreSQL server, postmaster and every child,
 * are moved to the other CPUs, and new backends inherit the postmaster's affinity when it forks them.
 */

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { onPath } from "../../image/src/proc";
import { parseCpuList } from "./benchPlan";
import type { LocalPostgres } from "./localPostgres";

/** The CPUs `pid` may run on, or undefined where taskset is missing or fails. */
export function affinityOf(pid: number): number[] | undefined {
  try {
    const out = execFileSync("taskset", ["-cp", String(pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const list = /affinity list:\s*(\S+)/.exec(out)?.[1];
    return list ? parseCpuList(list) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Moves every thread of each process to `cpus`; throws with taskset's message where it may not. A
 * process that has exited meanwhile (a backend ending its session) is passed over.
 */
export function pin(pids: number[], cpus: number[]): void {
  for (const pid of pids) {
    try {
      execFileSync("taskset", ["-a", "-cp", cpus.join(","), String(pid)], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      if (!existsSync(`/proc/${pid}`)) continue;
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`taskset could not move process ${pid} to CPU ${cpus.join(",")}: ${stderr || (err as Error).message}`);
    }
  }
}

/** Why taskset cannot be used here, or undefined when it can. */
export function tasksetProblem(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!onPath("taskset", env)) return "taskset (util-linux) is not on PATH";
  if (!affinityOf(process.pid)) return "taskset cannot read this process's CPU affinity";
  return undefined;
}

function statusField(pid: number, field: string): string | undefined {
  try {
    return new RegExp(`^${field}:\\s*(.*)$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1].trim();
  } catch {
    return undefined;
  }
}

/**
 * The server's processes on this machine: the postmaster (the parent of a backend, which reads its own
 * /proc/self/status through pg_read_file, a superuser's function) and its children. Throws where the
 * server is not a process here (a container, PGTEST_HOST), whose CPUs are not ours to choose.
 */
export function serverProcesses(pg: LocalPostgres): number[] {
  const status = pg.psql("SELECT pg_read_file('/proc/self/status')");
  const postmaster = Number(/^PPid:\s*(\d+)/m.exec(status)?.[1]);
  if (!postmaster || statusField(postmaster, "Name") !== "postgres") {
    throw new Error(`the PostgreSQL server at ${pg.host}:${pg.port} is not a process on this machine (a container or another host?), so it cannot be pinned`);
  }
  const children = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => statusField(pid, "PPid") === String(postmaster));
  return [postmaster, ...children];
}

/** The CPUs a new backend of the server may run on, as the backend itself reports them. */
export function backendCpus(pg: LocalPostgres): number[] {
  const status = pg.psql("SELECT pg_read_file('/proc/self/status')");
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
  if (!list) throw new Error("a backend's /proc/self/status has no Cpus_allowed_list");
  return parseCpuList(list);
}

/** The CPUs that share a core with `cpu` (hyperthreads), where the kernel says. */
export function coreSiblings(cpu: number): number[] {
  try {
    return parseCpuList(readFileSync(`/sys/devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`, "utf8")).filter((c) => c !== cpu);
  } catch {
    return [];
  }
}
