/**
 * sslmode verify-full against a real PostgreSQL serving TLS with a certificate from a CA made here
 * with openssl. libpq verifies the server against a root certificate: the one named by sslrootcert
 * (PGSSLROOTCERT), else ~/.postgresql/root.crt, which the image's user does not have; libpq 16 and
 * later also take sslrootcert=system, the SSL library's trusted roots (libpq, "Parameter Key Words",
 * sslrootcert: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-SSLROOTCERT).
 *
 * "system" itself cannot succeed here: the test's CA is in no system bundle, and trusting it there
 * would change the machine. With a PostgreSQL 16+ client the test checks that "system" is what was
 * used (the certificate is then refused as unknown); with an older client, that the runner refuses
 * before connecting.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pgMajor } from "../../image/src/engines";
import { postgresBinDir } from "../../image/src/postgresServer";
import { startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { runCli, storedKeys } from "../support/runner";

/** A CA, and a server certificate it signed for 127.0.0.1; `other` is a CA that signed nothing here. */
function makeCertificates(dir: string): { ca: string; other: string; cert: string; key: string } {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  for (const name of ["ca", "other"]) {
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=db-backup test ${name}`);
  }
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext");
  return { ca: join(dir, "ca.crt"), other: join(dir, "other.crt"), cert: join(dir, "server.crt"), key: join(dir, "server.key") };
}

/** This machine's PostgreSQL server, which the TLS cluster needs (CI reaches a service container instead). */
const serverMissing = (() => {
  try {
    postgresBinDir();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
})();
if (serverMissing) console.warn(`Skipping the TLS tests: they start a cluster of their own, and ${serverMissing}`);

(serverMissing ? describe.skip : describe)("sslmode verify-full", () => {
  let dir: string;
  let home: string;
  let certs: ReturnType<typeof makeCertificates>;
  let pg: LocalPostgres;
  let s3: LocalS3;
  let stageNo = 0;
  const pgDumpMajor = pgMajor(execFileSync("pg_dump", ["--version"]).toString());

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "db-backup-tls-"));
    home = mkdtempSync(join(tmpdir(), "db-backup-home-")); // no ~/.postgresql/root.crt
    certs = makeCertificates(dir);
    [pg, s3] = await Promise.all([startLocalPostgres({ ssl: { certFile: certs.cert, keyFile: certs.key } }), startLocalS3()]);
    pg.psql("CREATE DATABASE app");
    pg.psql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g", "app");
  }, 120_000);

  afterAll(async () => {
    await s3?.stop();
    pg?.stop();
    for (const d of [dir, home]) if (d) rmSync(d, { recursive: true, force: true });
  });

  function env(tls: Record<string, string>): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: home,
      ...s3.env,
      STAGE: `tls${++stageNo}`,
      PG_PW: pg.password,
      BACKUP_TARGETS: JSON.stringify([{ name: "app", engine: "postgres", host: pg.host, port: pg.port, database: "app", user: pg.user, passwordEnv: "PG_PW", ...tls }]),
    };
  }

  it("backs up and restores with sslrootcert naming the CA that signed the server's certificate", async () => {
    const e = env({ sslmode: "verify-full", sslrootcert: certs.ca });
    const run = await runCli(["backup"], e);
    expect(run.lines.find((l) => String(l.msg).startsWith("summary"))).toMatchObject({ BackupSuccess: 1 });
    expect(run.code).toBe(0);
    expect(await storedKeys(e, `${e.STAGE}/`)).toHaveLength(2);
    const restore = await runCli(["restore", "--database", "app_copy", "--create"], e);
    expect(restore.code).toBe(0);
    expect(pg.psql("SELECT count(*) FROM t", "app_copy")).toBe("100");
  });

  it("refuses a server whose certificate another CA signed: the verification is real", async () => {
    const run = await runCli(["backup"], env({ sslmode: "verify-full", sslrootcert: certs.other }));
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg === "backup failed")?.error).toMatch(/not signed by the root certificate in use/);
  });

  it("without sslrootcert, uses the system CA bundle with pg_dump 16+, and refuses before connecting with an older one", async () => {
    const run = await runCli(["backup"], env({ sslmode: "verify-full" }));
    expect(run.code).toBe(1);
    const error = String(run.lines.find((l) => l.msg === "backup failed")?.error);
    if (pgDumpMajor !== undefined && pgDumpMajor >= 16) {
      // The test CA is in no system bundle: refused by the system's roots, not for a missing root.crt.
      expect(error).toMatch(/not signed by the root certificate in use/);
    } else {
      expect(error).toMatch(
        new RegExp(`^sslmode=verify-full needs a root certificate, and none is named: name the CA certificate file with "sslrootcert" on the target in BACKUP_TARGETS \\(or set PGSSLROOTCERT\\), or use pg_dump 16 or later.*this pg_dump is ${pgDumpMajor}$`),
      );
    }
  });
});
