/**
 * The MongoDB drill: a throwaway mongod under the drill's scratch directory, listening on a Unix socket
 * there and on no TCP port, the backup restored into it with mongorestore (its oplog replayed when it
 * is a point-in-time backup), documents counted per collection, and the server stopped and its files
 * removed, whether the restore succeeded, failed or was stopped.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { checkSocketPath, handToServerUser, type DrillContext, type DrillRestore, type RestoreForDrill } from "./drill";
import { mongoshArgs, mongoshUriEnv } from "./engines";
import { describeExit, exitOf, localUser, onPath, run, runAs, runChecked, StderrTail, succeeded, type Exit, type LocalUser } from "./proc";
import type { Downloaded } from "./restore";

/** Where the throwaway server lives: its data, its socket, nothing else. */
export interface MongodLayout {
  dir: string;
  dbpath: string;
  socket: string;
}

export function mongodLayout(scratch: string): MongodLayout {
  const dir = join(scratch, "mongod");
  return { dir, dbpath: join(dir, "data"), socket: join(dir, "mongod.sock") };
}

/**
 * The throwaway server's arguments. `--bind_ip` takes "IP addresses and/or full Unix domain socket
 * paths" (mongod, --bind_ip: https://www.mongodb.com/docs/manual/reference/program/mongod/): given only
 * a socket path, mongod opens no TCP port. Its default socket (`<prefix>/mongodb-<port>.sock`) goes in
 * the same private directory (--unixSocketPrefix) instead of /tmp, so nothing is written outside it.
 */
export function mongodArgs(layout: MongodLayout): string[] {
  return ["--dbpath", layout.dbpath, "--bind_ip", layout.socket, "--unixSocketPrefix", layout.dir, "--port", "27017", "--setParameter", "diagnosticDataCollectionEnabled=false"];
}

/** The connection string of a server on a Unix socket: the path percent-encoded as the host (it must end in .sock). */
export function socketUri(socket: string): string {
  return `mongodb://${encodeURIComponent(socket)}/`;
}

/**
 * mongorestore into the throwaway server: the whole archive under its own names, its oplog replayed
 * when the backup is point in time (mongorestore, --oplogReplay, --stopOnError:
 * https://www.mongodb.com/docs/database-tools/mongorestore/). --stopOnError, because by default a
 * document that fails to insert is logged and skipped, and a drill must not pass over one.
 */
export function drillRestoreArgs(d: Pick<Downloaded, "manifest" | "path">, socket: string, jobs: number): string[] {
  return [
    `--uri=${socketUri(socket)}`,
    `--archive=${d.path}`,
    "--gzip",
    "--stopOnError",
    `--numParallelCollections=${jobs}`,
    ...(d.manifest.pointInTime ? ["--oplogReplay"] : []),
  ];
}

const pingScript = `connect(process.env.${mongoshUriEnv}).adminCommand({ ping: 1 }); print("ok");`;

/**
 * Exact counts (countDocuments, not the collection's metadata estimate) of every collection outside
 * admin, config and local, whose contents are the server's own; sizes as listDatabases's sizeOnDisk.
 */
const countScript = `
const conn = connect(process.env.${mongoshUriEnv});
const counts = {}, sizes = {};
for (const d of conn.adminCommand({ listDatabases: 1 }).databases) {
  if (["admin", "config", "local"].includes(d.name)) continue;
  const sdb = conn.getSiblingDB(d.name);
  sizes[d.name] = Number(d.sizeOnDisk);
  for (const c of sdb.getCollectionInfos({ type: { $in: ["collection", "timeseries"] } }, { nameOnly: true })) {
    if (c.name.startsWith("system.")) continue;
    counts[d.name + "." + c.name] = Number(sdb.getCollection(c.name).countDocuments({}));
  }
}
print(JSON.stringify({ version: conn.version(), counts, sizes }));
`;

/** The count script's output: its last line, JSON; anything else is an error naming what was printed. */
export function parseDrillCounts(stdout: string): DrillRestore {
  const last = stdout.trim().split("\n").pop() ?? "";
  let parsed: { version?: unknown; counts?: unknown; sizes?: unknown };
  try {
    parsed = JSON.parse(last);
  } catch {
    throw new Error(`mongosh printed no counts: ${last.slice(0, 200) || "(nothing)"}`);
  }
  const numbers = (value: unknown, what: string): Record<string, number> => {
    if (typeof value !== "object" || value === null) throw new Error(`mongosh printed no ${what}: ${last.slice(0, 200)}`);
    const entries = Object.entries(value);
    const bad = entries.find(([, n]) => typeof n !== "number" || !Number.isFinite(n) || n < 0);
    if (bad) throw new Error(`mongosh printed ${what} that are not counts: ${bad[0]}=${JSON.stringify(bad[1])}`);
    return Object.fromEntries(entries) as Record<string, number>;
  };
  return {
    counts: numbers(parsed.counts, "counts"),
    sizes: numbers(parsed.sizes, "sizes"),
    serverVersion: typeof parsed.version === "string" ? parsed.version : null,
  };
}

/**
 * Who runs mongod: the runner's own user; started as root (locally), an unprivileged one, as
 * scripts/lib/localPostgres.ts does for initdb: the `mongodb` user the server package creates, else nobody.
 */
function serverUser(): LocalUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = localUser(["mongodb", "nobody"]);
  if (user) return user;
  throw new Error("started as root, the drill runs mongod as an unprivileged user, and there is neither a mongodb nor a nobody user here: run it as an ordinary user");
}

interface RunningServer {
  child: ChildProcess;
  log: StderrTail;
  exited: Promise<Exit>;
  /** Set once the server has exited. */
  exit?: Exit;
}

/** How long mongod gets to shut down cleanly after SIGTERM before SIGKILL; its files are thrown away either way. */
const shutdownGraceMs = 10_000;

/** Starts mongod in its own process group (runuser and mongod both), so that stopping it stops everything it started. */
async function startMongod(layout: MongodLayout, env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const mongod = onPath("mongod", env);
  if (!mongod) throw new Error("mongod was not found on PATH: the MongoDB drill restores into a throwaway mongod (the image has one; elsewhere install the MongoDB server, mongodb-org-server)");
  checkSocketPath(layout.socket);
  const user = serverUser();
  await mkdir(layout.dbpath, { recursive: true, mode: 0o700 });
  if (user) await handToServerUser(user, join(layout.dir, ".."), [layout.dir, layout.dbpath]);
  const [command, args] = runAs(user?.name, mongod, mongodArgs(layout));
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const log = new StderrTail(8 * 1024);
  child.stdout?.on("data", (d: Buffer) => log.push(d));
  child.stderr?.on("data", (d: Buffer) => log.push(d));
  const server: RunningServer = { child, log, exited: exitOf(child) };
  void server.exited.then((exit) => (server.exit = exit));
  return server;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM to the server's process group, SIGKILL after the grace period; resolves once its output has closed (every process gone). */
async function stopMongod(server: RunningServer): Promise<void> {
  if (server.exit) return;
  signalGroup(server.child, "SIGTERM");
  const kill = setTimeout(() => signalGroup(server.child, "SIGKILL"), shutdownGraceMs);
  await server.exited;
  clearTimeout(kill);
}

/** Asks the server to answer until it does; fails at once when it exits, the drill is stopped, or after `timeoutMs`. */
async function waitUntilAnswering(server: RunningServer, env: NodeJS.ProcessEnv, stop: AbortSignal, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    if (stop.aborted) throw new Error(`the drill was stopped by ${String(stop.reason)} while mongod was starting`);
    if (server.exit) throw new Error(`mongod did not start: ${describeExit("mongod", server.exit)}: ${server.log.toString()}`);
    const res = await run("mongosh", mongoshArgs(pingScript), env, 30_000, stop);
    if (res.exit.spawnError?.code === "ENOENT") throw new Error("mongosh was not found on PATH: the MongoDB drill counts the restored documents with it");
    if (succeeded(res.exit)) return;
    last = res.stderr;
    if (Date.now() > deadline) throw new Error(`mongod did not answer within ${timeoutMs / 1000} s: ${last}; its log: ${server.log.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export const restoreMongoForDrill: RestoreForDrill = async (d: Downloaded, ctx: DrillContext): Promise<DrillRestore> => {
  const layout = mongodLayout(ctx.scratch);
  // mongosh keeps logs and config under $HOME; the image's user has none, and nothing goes outside scratch.
  const env = { ...ctx.env, HOME: layout.dir, [mongoshUriEnv]: socketUri(layout.socket) };
  let server: RunningServer | undefined;
  try {
    server = await startMongod(layout, ctx.env);
    await waitUntilAnswering(server, env, ctx.stop);
    await runChecked("mongorestore into the throwaway mongod failed", "mongorestore", drillRestoreArgs(d, layout.socket, ctx.jobs), env, 24 * 3600_000, ctx.stop);
    const counted = await runChecked("counting the restored documents failed", "mongosh", mongoshArgs(countScript), env, 24 * 3600_000, ctx.stop);
    return parseDrillCounts(counted.stdout);
  } finally {
    if (server) await stopMongod(server);
    await rm(layout.dir, { recursive: true, force: true });
  }
};
