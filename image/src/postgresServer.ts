/**
 * Where the PostgreSQL server's programs are (initdb, pg_ctl, postgres), the way each platform installs
 * them, and who runs them when the caller is root (initdb and postgres refuse root). Used by the restore
 * drill's throwaway server (drillPostgres.ts) and by the scripts' local clusters (scripts/lib/localPostgres.ts).
 */

import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { localUser, runAs, type LocalUser } from "./proc";

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

/** The postgres user's ids, which a server started by root runs as. */
export function postgresUser(): LocalUser {
  const user = localUser(["postgres"]);
  if (!user) {
    throw new Error("running as root, where initdb and postgres refuse to run, and there is no postgres user to run them as: run as an ordinary user, or create the user (`useradd --system postgres`)");
  }
  return user;
}

/**
 * The command and arguments that run one of the server's programs: as they are, or, for a caller that is
 * root, under `runuser -u postgres` (initdb: "cannot be run as root"), as the demo's cluster does.
 */
export function asServerUser(command: string, args: string[], root = process.getuid?.() === 0): [string, string[]] {
  return runAs(root ? "postgres" : undefined, command, args);
}
