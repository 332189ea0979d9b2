/**
 * A throwaway PostgreSQL cluster on loopback for the demo, the tests and the benchmark, made with the
 * machine's own initdb and pg_ctl, found where the platform installs them (findServerBinaries).
 * Password authentication over TCP (scram-sha-256), so a wrong password fails the way it does against
 * a real server.
 */

import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, chmodSync, chownSync, constants, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export interface LocalPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  /** libpq environment for this cluster (PGHOST, PGPORT, PGUSER, PGPASSWORD), optionally for a database. */
  env(database?: string): Record<string, string>;
  /** Runs SQL through psql and returns its unaligned, tuples-only output. */
  psql(sql: string, database?: string): string;
  /** The cluster's directory (data, socket, log), which stop removes; absent for a server that is not ours (PGTEST_HOST). */
  directory?: string;
  stop(): void;
}

/** The server's programs, which must sit in one directory: initdb finds postgres next to itself. */
const SERVER_PROGRAMS = ["initdb", "pg_ctl", "postgres"];

/**
 * What the search for the server's programs looks at. postgresSearchHere() reads it from this machine;
 * the tests write it down for machines they are not running on.
 */
export interface PostgresSearch {
  platform: NodeJS.Platform;
  /** PG_BIN_DIR (an explicit choice), PATH, and HOMEBREW_PREFIX (where Homebrew keeps its kegs). */
  env: { PG_BIN_DIR?: string; PATH?: string; HOMEBREW_PREFIX?: string };
  /** What `pg_config --bindir` printed, where a pg_config on PATH ran. */
  pgConfigBindir?: string;
  /** The text of /etc/os-release, where there is one: it names the package manager for the error. */
  osRelease?: string;
  /** Whether an executable file is at this path. */
  isExecutable(path: string): boolean;
  /** A directory's entries; none where it does not exist. */
  list(dir: string): string[];
}

export type ServerBinaries = { binDir: string; foundBy: string } | { error: string };

/**
 * Where the PostgreSQL server's programs are, the way each platform installs them: PG_BIN_DIR if set (and
 * then only there), `pg_config --bindir`, the first directory on PATH that holds initdb (Fedora, Arch,
 * a linked Homebrew formula), then the versioned layouts that keep several majors side by side, newest
 * first: Debian's /usr/lib/postgresql/<major>/bin, and Homebrew's <prefix>/opt/postgresql@<major>/bin
 * (versioned formulae are keg-only: Homebrew puts them on no PATH).
 */
export function findServerBinaries(search: PostgresSearch): ServerBinaries {
  const missingIn = (dir: string) => SERVER_PROGRAMS.filter((p) => !search.isExecutable(join(dir, p)));
  const complete = (dir: string | undefined): dir is string => !!dir && missingIn(dir).length === 0;

  const explicit = search.env.PG_BIN_DIR;
  if (explicit) {
    if (complete(explicit)) return { binDir: explicit, foundBy: "PG_BIN_DIR" };
    return { error: `PG_BIN_DIR is ${explicit}, which has no ${missingIn(explicit).join(", ")}: set it to the directory that holds initdb, pg_ctl and postgres` };
  }
  if (complete(search.pgConfigBindir)) return { binDir: search.pgConfigBindir, foundBy: "pg_config --bindir" };
  const onPath = (search.env.PATH ?? "").split(delimiter).filter((d) => d && search.isExecutable(join(d, "initdb")));
  const pathDir = onPath.find(complete);
  if (pathDir) return { binDir: pathDir, foundBy: "PATH" };

  const versioned: { major: number; dir: string }[] = [];
  for (const entry of search.list("/usr/lib/postgresql")) {
    if (/^\d+$/.test(entry)) versioned.push({ major: Number(entry), dir: join("/usr/lib/postgresql", entry, "bin") });
  }
  const brewPrefixes = [...new Set([search.env.HOMEBREW_PREFIX, "/opt/homebrew", "/usr/local"].filter((p): p is string => !!p))];
  for (const prefix of brewPrefixes) {
    for (const entry of search.list(join(prefix, "opt"))) {
      const major = /^postgresql@(\d+)$/.exec(entry)?.[1];
      if (major) versioned.push({ major: Number(major), dir: join(prefix, "opt", entry, "bin") });
    }
  }
  const newest = versioned.filter((v) => complete(v.dir)).sort((a, b) => b.major - a.major)[0];
  if (newest) return { binDir: newest.dir, foundBy: "the versioned layout" };

  const looked = [
    "PG_BIN_DIR (not set)",
    search.pgConfigBindir ? `pg_config --bindir (${search.pgConfigBindir}, which has no ${missingIn(search.pgConfigBindir).join(", ")})` : "pg_config (not on PATH)",
    onPath.length > 0 ? `PATH (initdb in ${onPath.join(", ")}, without pg_ctl or postgres beside it)` : "PATH (no initdb)",
    "/usr/lib/postgresql/<major>/bin",
    ...brewPrefixes.map((p) => join(p, "opt", "postgresql@<major>", "bin")),
  ];
  return {
    error:
      `no PostgreSQL server (initdb, pg_ctl, postgres) found; looked at ${looked.join("; ")}. ` +
      `${installAdvice(search.platform, search.osRelease)}, or set PG_BIN_DIR to the directory that holds them`,
  };
}

/** How this platform installs the PostgreSQL server: the package manager named by /etc/os-release's ID and ID_LIKE. */
export function installAdvice(platform: NodeJS.Platform, osRelease?: string): string {
  if (platform === "darwin") return "Install it with `brew install postgresql@17`";
  const field = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(osRelease ?? "")?.[1].replace(/^["']|["']$/g, "") ?? "";
  const ids = [field("ID"), ...field("ID_LIKE").split(/\s+/)].filter(Boolean);
  if (ids.some((id) => id === "debian" || id === "ubuntu")) return "Install it with `apt-get install postgresql`";
  if (ids.some((id) => id === "fedora" || id === "rhel" || id === "centos")) return "Install it with `dnf install postgresql-server`";
  if (ids.some((id) => id === "arch")) return "Install it with `pacman -S postgresql`";
  return "Install the PostgreSQL server (any version from 15) with this system's package manager";
}

/** This machine's answers to the questions findServerBinaries asks. */
export function postgresSearchHere(env: NodeJS.ProcessEnv = process.env): PostgresSearch {
  const pgConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8", env });
  const osRelease = ["/etc/os-release", "/usr/lib/os-release"].find((f) => existsSync(f));
  return {
    platform: process.platform,
    env: { PG_BIN_DIR: env.PG_BIN_DIR, PATH: env.PATH, HOMEBREW_PREFIX: env.HOMEBREW_PREFIX },
    pgConfigBindir: pgConfig.status === 0 ? pgConfig.stdout.trim() || undefined : undefined,
    osRelease: osRelease ? readFileSync(osRelease, "utf8") : undefined,
    isExecutable: (path) => {
      try {
        accessSync(path, constants.X_OK);
        return statSync(path).isFile();
      } catch {
        return false;
      }
    },
    list: (dir) => {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    },
  };
}

/** The directory of the server's programs on this machine; throws, naming the install command, where there is none. */
export function postgresBinDir(search: PostgresSearch = postgresSearchHere()): string {
  const found = findServerBinaries(search);
  if ("error" in found) throw new Error(found.error);
  return found.binDir;
}

/**
 * initdb's locale: C.UTF-8 (byte order, UTF-8 character classes) where the C library has it; macOS has no
 * C.UTF-8, and its equivalent is the C locale with a UTF-8 LC_CTYPE (pgrx, "Set locale to C.UTF-8 when
 * creating database clusters": https://github.com/pgcentralfoundation/pgrx/pull/746).
 */
export function initdbLocaleArgs(platform: NodeJS.Platform): string[] {
  return platform === "darwin" ? ["--locale=C", "--lc-ctype=UTF-8"] : ["--locale=C.UTF-8"];
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function connection(host: string, port: number, user: string, password: string, stop: () => void, psql = "psql", directory?: string): LocalPostgres {
  const env = (database = "postgres") => ({ PGHOST: host, PGPORT: String(port), PGUSER: user, PGPASSWORD: password, PGDATABASE: database });
  return {
    host,
    port,
    user,
    password,
    env,
    psql: (sql, database) =>
      execFileSync(psql, ["-X", "-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-c", sql], {
        env: { ...process.env, ...env(database) },
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
      }).trim(),
    directory,
    stop,
  };
}

export interface LocalPostgresOptions {
  /**
   * Serve TLS with this certificate and key (PEM files; copied into the cluster's directory). Always a
   * cluster of its own, even where PGTEST_HOST names a server: that one's TLS is not ours to set.
   */
  ssl?: { certFile: string; keyFile: string };
  /** A cluster of its own even where PGTEST_HOST names a server (the sandbox: its databases are no test's). */
  ownCluster?: boolean;
}

/**
 * A throwaway cluster; or, where PGTEST_HOST is set (a PostgreSQL service container in GitHub Actions),
 * that server, reached as PGTEST_USER (postgres) with PGTEST_PASSWORD on PGTEST_PORT (5432). It must be
 * a fresh server: the tests create databases with fixed names.
 */
export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  if (process.env.PGTEST_HOST && !options.ssl && !options.ownCluster) {
    const { PGTEST_HOST, PGTEST_PORT, PGTEST_USER, PGTEST_PASSWORD } = process.env;
    if (!PGTEST_PASSWORD) throw new Error("PGTEST_PASSWORD is not set: it goes with PGTEST_HOST");
    return connection(PGTEST_HOST, Number(PGTEST_PORT ?? 5432), PGTEST_USER ?? "postgres", PGTEST_PASSWORD, () => {});
  }
  const bin = postgresBinDir();
  // The psql that goes with this server; a keg-only Homebrew PostgreSQL has none on PATH.
  const psql = existsSync(join(bin, "psql")) ? join(bin, "psql") : "psql";
  const dir = mkdtempSync(join(tmpdir(), "db-backup-pg-"));
  const data = join(dir, "data");
  const password = "demo-Secret-" + Math.random().toString(36).slice(2, 10);
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, password + "\n", { mode: 0o600 });
  // initdb and postgres refuse to run as root: run them as the postgres user, who must own the directory.
  // Anyone else runs them as themselves.
  const asRoot = process.getuid?.() === 0;
  const runAs = (cmd: string, args: string[]) => (asRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args]) as [string, string[]];
  const owner = asRoot ? postgresUser() : undefined;
  if (owner) for (const f of [dir, pwfile]) chownSync(f, owner.uid, owner.gid);
  chmodSync(dir, 0o700);
  const sslSettings: string[] = [];
  if (options.ssl) {
    // The server refuses a key that others can read; it must be the server's user's own.
    const cert = join(dir, "server.crt");
    const key = join(dir, "server.key");
    copyFileSync(options.ssl.certFile, cert);
    copyFileSync(options.ssl.keyFile, key);
    chmodSync(key, 0o600);
    if (owner) for (const f of [cert, key]) chownSync(f, owner.uid, owner.gid);
    sslSettings.push("-c ssl=on", `-c ssl_cert_file=${cert}`, `-c ssl_key_file=${key}`);
  }
  const port = await freePort();
  const sh = (cmd: string, args: string[]) => {
    const [c, a] = runAs(cmd, args);
    const res = spawnSync(c, a, { encoding: "utf8" });
    if (res.status !== 0) throw new Error(`${cmd} failed (${res.status}): ${res.stderr || res.stdout}`);
  };
  sh(join(bin, "initdb"), ["-D", data, "-U", "postgres", `--pwfile=${pwfile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", ...initdbLocaleArgs(process.platform)]);
  sh(join(bin, "pg_ctl"), [
    "-D", data, "-l", join(dir, "server.log"), "-w", "-t", "60",
    "-o", [`-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`, ...sslSettings].join(" "),
    "start",
  ]);

  return connection("127.0.0.1", port, "postgres", password, () => {
    const [c, a] = runAs(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]);
    spawnSync(c, a);
    rmSync(dir, { recursive: true, force: true });
  }, psql, dir);
}

/** The postgres user's ids, which a server started by root runs as. */
function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  const [uid, gid] = [id("-u"), id("-g")];
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error("running as root, where initdb and postgres refuse to run, and there is no postgres user to run them as: run as an ordinary user, or create the user (`useradd --system postgres`)");
  }
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}
