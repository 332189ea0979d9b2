/**
 * A throwaway PostgreSQL cluster on loopback for the demo, the tests and the benchmark, made with the
 * machine's own initdb and pg_ctl, found where the platform installs them (findServerBinaries).
 * Password authentication over TCP (scram-sha-256), so a wrong password fails the way it does against
 * a real server.
 */

import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asServerUser, initdbLocaleArgs, postgresBinDir, postgresUser } from "../../image/src/postgresServer";

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
    const [c, a] = asServerUser(cmd, args);
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
    const [c, a] = asServerUser(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]);
    spawnSync(c, a);
    rmSync(dir, { recursive: true, force: true });
  }, psql, dir);
}
