/**
 * Where the demo, the tests and the benchmark find the PostgreSQL server (scripts/lib/localPostgres.ts),
 * on the machines users have. Each machine is written down as the files its packages install; the
 * layouts come from the packagers: Debian's postgresql-<major> under /usr/lib/postgresql/<major>/bin with
 * only pg_wrapper's client links in /usr/bin; Fedora's postgresql-server and Arch's postgresql in
 * /usr/bin; Homebrew's postgresql@<major>, keg-only, under <prefix>/opt/postgresql@<major>/bin and on no
 * PATH ("postgresql@16 is keg-only, which means it was not symlinked into /opt/homebrew", brew info
 * quoted in https://github.com/machupicchubeta/dotfiles/pull/433).
 */

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findServerBinaries, initdbLocaleArgs, installAdvice, postgresSearchHere, type PostgresSearch } from "../../image/src/postgresServer";

const server = (dir: string) => ["initdb", "pg_ctl", "postgres", "psql", "pg_dump"].map((p) => `${dir}/${p}`);
const clientOnly = (dir: string) => ["psql", "pg_dump", "pg_restore"].map((p) => `${dir}/${p}`);

/** A machine whose only executables are `files`. */
function machine(files: string[], facts: Partial<PostgresSearch> = {}): PostgresSearch {
  const executables = new Set(files);
  return {
    platform: "linux",
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
    isExecutable: (path) => executables.has(path),
    list: (dir) => [...new Set(files.filter((f) => f.startsWith(`${dir}/`)).map((f) => f.slice(dir.length + 1).split("/")[0]))],
    ...facts,
  };
}

const osRelease = {
  debian: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
  ubuntu: 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
  fedora: 'NAME="Fedora Linux"\nVERSION_ID=41\nID=fedora\n',
  rocky: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.5"\n',
  arch: 'NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n',
  manjaro: 'NAME="Manjaro Linux"\nID=manjaro\nID_LIKE=arch\n',
  alpine: 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.21.0\n',
};

describe("finding the PostgreSQL server's programs", () => {
  it("Debian and Ubuntu: the newest major under /usr/lib/postgresql that has a server, not one with only the client", () => {
    const debian = machine([...server("/usr/lib/postgresql/15/bin"), ...server("/usr/lib/postgresql/17/bin"), ...clientOnly("/usr/lib/postgresql/18/bin"), ...clientOnly("/usr/bin")], {
      osRelease: osRelease.debian,
    });
    expect(findServerBinaries(debian)).toEqual({ binDir: "/usr/lib/postgresql/17/bin", foundBy: "the versioned layout" });
  });

  it("Debian with libpq-dev newer than the server: pg_config's bindir has no server, so the layout's does", () => {
    const debian = machine([...server("/usr/lib/postgresql/15/bin"), ...clientOnly("/usr/lib/postgresql/17/bin"), "/usr/bin/pg_config"], {
      pgConfigBindir: "/usr/lib/postgresql/17/bin",
      osRelease: osRelease.debian,
    });
    expect(findServerBinaries(debian)).toEqual({ binDir: "/usr/lib/postgresql/15/bin", foundBy: "the versioned layout" });
  });

  it("Fedora (postgresql-server) and Arch (postgresql): initdb, pg_ctl and postgres in /usr/bin, on PATH", () => {
    for (const release of [osRelease.fedora, osRelease.arch]) {
      expect(findServerBinaries(machine(server("/usr/bin"), { osRelease: release }))).toEqual({ binDir: "/usr/bin", foundBy: "PATH" });
    }
  });

  it("PATH: skips a directory with a stray initdb and no postgres beside it", () => {
    const found = findServerBinaries(machine(["/usr/local/bin/initdb", ...server("/usr/bin")]));
    expect(found).toEqual({ binDir: "/usr/bin", foundBy: "PATH" });
  });

  it("macOS with Homebrew: the newest keg-only postgresql@<major>, which is on no PATH, under /opt/homebrew or HOMEBREW_PREFIX", () => {
    const appleSilicon = machine([...server("/opt/homebrew/opt/postgresql@16/bin"), ...server("/opt/homebrew/opt/postgresql@17/bin"), "/opt/homebrew/bin/brew"], {
      platform: "darwin",
      env: { PATH: "/opt/homebrew/bin:/usr/bin:/bin" },
    });
    expect(findServerBinaries(appleSilicon)).toEqual({ binDir: "/opt/homebrew/opt/postgresql@17/bin", foundBy: "the versioned layout" });

    const elsewhere = machine(server("/Users/me/brew/opt/postgresql@17/bin"), { platform: "darwin", env: { PATH: "/usr/bin", HOMEBREW_PREFIX: "/Users/me/brew" } });
    expect(findServerBinaries(elsewhere)).toEqual({ binDir: "/Users/me/brew/opt/postgresql@17/bin", foundBy: "the versioned layout" });
  });

  it("pg_config --bindir before PATH and the layouts (a PGDG package under /usr/pgsql-17, say)", () => {
    const rhel = machine([...server("/usr/pgsql-17/bin"), ...server("/usr/bin"), ...server("/usr/lib/postgresql/18/bin")], {
      pgConfigBindir: "/usr/pgsql-17/bin",
      osRelease: osRelease.rocky,
    });
    expect(findServerBinaries(rhel)).toEqual({ binDir: "/usr/pgsql-17/bin", foundBy: "pg_config --bindir" });
  });

  it("PG_BIN_DIR first, and only there: a wrong one is an error naming what it lacks, not a silent fallback", () => {
    const files = [...server("/opt/pg16/bin"), ...server("/usr/bin"), "/opt/half/bin/initdb", "/opt/half/bin/pg_ctl"];
    expect(findServerBinaries(machine(files, { env: { PG_BIN_DIR: "/opt/pg16/bin", PATH: "/usr/bin" }, pgConfigBindir: "/usr/bin" }))).toEqual({
      binDir: "/opt/pg16/bin",
      foundBy: "PG_BIN_DIR",
    });
    expect(findServerBinaries(machine(files, { env: { PG_BIN_DIR: "/opt/half/bin", PATH: "/usr/bin" } }))).toEqual({
      error: "PG_BIN_DIR is /opt/half/bin, which has no postgres: set it to the directory that holds initdb, pg_ctl and postgres",
    });
  });

  it("nothing found: says where it looked and names this platform's install command", () => {
    const nothing = (facts: Partial<PostgresSearch>) => {
      const found = findServerBinaries(machine(clientOnly("/usr/bin"), facts));
      if (!("error" in found)) throw new Error(`expected an error, found ${found.binDir}`);
      return found.error;
    };
    const debian = nothing({ osRelease: osRelease.debian });
    expect(debian).toMatch(/^no PostgreSQL server \(initdb, pg_ctl, postgres\) found; looked at PG_BIN_DIR \(not set\); pg_config \(not on PATH\); PATH \(no initdb\); \/usr\/lib\/postgresql\/<major>\/bin; \/opt\/homebrew\/opt\/postgresql@<major>\/bin; \/usr\/local\/opt\/postgresql@<major>\/bin\. /);
    expect(debian).toMatch(/Install it with `apt-get install postgresql`, or set PG_BIN_DIR to the directory that holds them$/);
    expect(nothing({ osRelease: osRelease.ubuntu })).toContain("`apt-get install postgresql`");
    expect(nothing({ osRelease: osRelease.fedora })).toContain("`dnf install postgresql-server`");
    expect(nothing({ osRelease: osRelease.rocky })).toContain("`dnf install postgresql-server`");
    expect(nothing({ osRelease: osRelease.arch })).toContain("`pacman -S postgresql`");
    expect(nothing({ osRelease: osRelease.manjaro })).toContain("`pacman -S postgresql`");
    expect(nothing({ platform: "darwin" })).toContain("`brew install postgresql@17`");
    expect(nothing({ osRelease: osRelease.alpine })).toContain("Install the PostgreSQL server (any version from 15) with this system's package manager");
    expect(nothing({ pgConfigBindir: "/usr/bin", osRelease: osRelease.fedora })).toContain("pg_config --bindir (/usr/bin, which has no initdb, pg_ctl, postgres)");
  });

  it("reads the platform from os-release's ID and ID_LIKE, quoted or not", () => {
    expect(installAdvice("linux", 'ID="ubuntu"\nID_LIKE="debian"\n')).toBe("Install it with `apt-get install postgresql`");
    expect(installAdvice("linux", "ID=opensuse-tumbleweed\nID_LIKE=\"opensuse suse\"\n")).toMatch(/package manager/);
    expect(installAdvice("linux", undefined)).toMatch(/package manager/);
  });

  it("initdb's locale: C.UTF-8, which macOS lacks; there the C locale with a UTF-8 LC_CTYPE", () => {
    expect(initdbLocaleArgs("linux")).toEqual(["--locale=C.UTF-8"]);
    expect(initdbLocaleArgs("darwin")).toEqual(["--locale=C", "--lc-ctype=UTF-8"]);
  });
});

describe("this machine's answers (postgresSearchHere)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "db-backup-pgbin-"));
    for (const p of ["initdb", "pg_ctl", "postgres"]) writeFileSync(join(dir, p), "#!/bin/sh\n", { mode: 0o755 });
    writeFileSync(join(dir, "notes.txt"), "");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes PG_BIN_DIR from the environment and sees which files are executable", () => {
    const here = postgresSearchHere({ PG_BIN_DIR: dir, PATH: "" });
    expect(here.env.PG_BIN_DIR).toBe(dir);
    expect(here.platform).toBe(process.platform);
    expect(findServerBinaries(here)).toEqual({ binDir: dir, foundBy: "PG_BIN_DIR" });
    expect(here.isExecutable(join(dir, "notes.txt"))).toBe(false);
    expect(here.isExecutable(join(dir, "absent"))).toBe(false);
    expect(here.isExecutable(dir)).toBe(false);
    expect(here.list(dir).sort()).toEqual(["initdb", "notes.txt", "pg_ctl", "postgres"]);
    expect(here.list(join(dir, "absent"))).toEqual([]);

    chmodSync(join(dir, "postgres"), 0o644);
    try {
      expect(findServerBinaries(postgresSearchHere({ PG_BIN_DIR: dir, PATH: "" }))).toEqual({ error: expect.stringMatching(/which has no postgres/) });
    } finally {
      chmodSync(join(dir, "postgres"), 0o755);
    }
  });

  it("asks the pg_config on PATH for its bindir, and has none where PATH has no pg_config", () => {
    const bin = join(dir, "with-pg-config");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "pg_config"), "#!/bin/sh\n[ \"$1\" = --bindir ] && echo /somewhere/bin\n", { mode: 0o755 });
    expect(postgresSearchHere({ PATH: bin }).pgConfigBindir).toBe("/somewhere/bin");
    expect(postgresSearchHere({ PATH: join(dir, "absent") }).pgConfigBindir).toBeUndefined();
  });
});
