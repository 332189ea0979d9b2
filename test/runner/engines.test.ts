import { rmSync } from "node:fs";
import { join } from "node:path";
import { defaultPgCompression, explainPgError, mongodumpArgs, pgDumpArgs, pgDumpLauncher, pgEnv, pgMajor, pgRootCert } from "../../image/src/engines";
import type { PostgresTarget } from "../../image/src/settings";
import { fakeBin } from "../support/runner";

const target: PostgresTarget = {
  engine: "postgres",
  name: "billie",
  host: "ep-aged-morning-26453078.ap-southeast-1.aws.neon.tech",
  port: 5432,
  database: "billie",
  user: "billie_owner",
  passwordEnv: "PG_DB_PASSWORD",
  options: "endpoint=ep-aged-morning-26453078",
  sslmode: "require",
};

it("hands the connection to pg_dump through libpq's environment, not argv", () => {
  const env = pgEnv(target, { PATH: "/bin" }, { PG_DB_PASSWORD: "pw" });
  expect(env).toMatchObject({
    PATH: "/bin",
    PGHOST: target.host,
    PGPORT: "5432",
    PGDATABASE: "billie",
    PGUSER: "billie_owner",
    PGPASSWORD: "pw",
    PGOPTIONS: "endpoint=ep-aged-morning-26453078",
    PGSSLMODE: "require",
  });
  const args = pgDumpArgs("zstd:1");
  expect(args).toEqual(["--format=custom", "--compress=zstd:1", "--no-password"]);
  expect(args.join(" ")).not.toMatch(/pw|billie|neon/);
});

it("runs pg_dump under stdbuf with a 64 KiB output buffer where stdbuf is on PATH, and as it is otherwise", () => {
  const withStdbuf = fakeBin({ stdbuf: "#!/bin/sh\nexit 0\n" });
  const without = fakeBin({ other: "#!/bin/sh\nexit 0\n" });
  try {
    const stdbuf = join(withStdbuf.dir, "stdbuf");
    expect(pgDumpLauncher({ PATH: `/nonexistent:${without.dir}:${withStdbuf.dir}` }, true)).toEqual([stdbuf, "-o", "64K"]);
    expect(pgDumpLauncher({ PATH: without.dir }, true)).toEqual([]);
    expect(pgDumpLauncher({}, true)).toEqual([]);
    // pg_dump itself not found: run it bare, so the error says so instead of stdbuf's exit status 127.
    expect(pgDumpLauncher({ PATH: withStdbuf.dir }, false)).toEqual([]);
  } finally {
    rmSync(withStdbuf.dir, { recursive: true, force: true });
    rmSync(without.dir, { recursive: true, force: true });
  }
});

it("chooses compression by pg_dump's version", () => {
  expect(pgMajor("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")).toBe(15);
  expect(pgMajor("pg_dump (PostgreSQL) 17.2")).toBe(17);
  expect(pgMajor("garbage")).toBeUndefined();
  expect(pgMajor(null)).toBeUndefined();
  expect(defaultPgCompression(15)).toBe("1");
  expect(defaultPgCompression(16)).toBe("zstd:1");
  expect(defaultPgCompression(undefined)).toBe("1");
});

it("gives mongodump its connection string through a file", () => {
  expect(mongodumpArgs("/tmp/x/mongo.yaml", "events")).toEqual(["--archive", "--gzip", "--config=/tmp/x/mongo.yaml", "--db=events"]);
  expect(mongodumpArgs("/tmp/x/mongo.yaml")).toEqual(["--archive", "--gzip", "--config=/tmp/x/mongo.yaml"]);
});

it.each([
  ['FATAL:  password authentication failed for user "billie_owner"', /wrong password for user 'billie_owner'.*PG_DB_PASSWORD/],
  ["ERROR: Endpoint ID is not specified. Either please upgrade the postgres client library", /NEON_DB_ENDPOINT_OPTION=endpoint%3D/],
  ['could not translate host name "nope" to address', /could not be resolved/],
  ["connection to server at \"127.0.0.1\", port 1 failed: Connection refused", /is unreachable/],
  ['FATAL:  database "billie" does not exist', /database 'billie' does not exist/],
  ["pg_dump: error: aborting because of server version mismatch", /older than the server/],
])("explains %s", (stderr, message) => {
  expect(explainPgError(stderr, target)).toMatch(message);
});

describe("the root certificate of sslmode verify-ca and verify-full", () => {
  const verifying = (sslmode: string, extra: Partial<PostgresTarget> = {}, base: NodeJS.ProcessEnv = {}) => pgEnv({ ...target, sslmode, ...extra }, base, {});

  it("is the target's sslrootcert, handed to libpq as PGSSLROOTCERT, whatever pg_dump's version", () => {
    const env = verifying("verify-full", { sslrootcert: "/etc/ssl/rds-global-bundle.pem" });
    expect(env.PGSSLROOTCERT).toBe("/etc/ssl/rds-global-bundle.pem");
    expect(pgRootCert(env, 15, false)).toBeUndefined();
    expect(pgRootCert(verifying("verify-ca", { sslrootcert: "/ca.pem" }), 18, false)).toBeUndefined();
  });

  it("is the system CA bundle for verify-full with pg_dump 16 or later when nothing names one", () => {
    expect(pgRootCert(verifying("verify-full"), 16, false)).toBe("system");
    expect(pgRootCert(verifying("verify-full"), 18, false)).toBe("system");
  });

  it("keeps a PGSSLROOTCERT from the environment (the blog's variables) and a ~/.postgresql/root.crt", () => {
    const env = verifying("verify-full", {}, { PGSSLROOTCERT: "/certs/ca.pem" });
    expect(env.PGSSLROOTCERT).toBe("/certs/ca.pem");
    expect(pgRootCert(env, 18, false)).toBeUndefined();
    expect(pgRootCert(verifying("verify-full"), 18, true)).toBeUndefined();
    // PGSSLMODE from the environment counts as the target's.
    expect(pgRootCert(pgEnv({ ...target, sslmode: undefined }, { PGSSLMODE: "verify-full" }, {}), 17, false)).toBe("system");
  });

  it("is not touched for the modes that do not verify, nor when pg_dump's version is unknown", () => {
    for (const mode of ["disable", "allow", "prefer", "require"]) expect(pgRootCert(verifying(mode), 18, false)).toBeUndefined();
    expect(pgRootCert(pgEnv({ ...target, sslmode: undefined }, {}, {}), 18, false)).toBeUndefined();
    expect(pgRootCert(verifying("verify-full"), undefined, false)).toBeUndefined();
  });

  it("fails before connecting, naming the setting, where libpq could not verify", () => {
    expect(() => pgRootCert(verifying("verify-full"), 15, false)).toThrow(
      /sslmode=verify-full needs a root certificate.*"sslrootcert" on the target in BACKUP_TARGETS \(or set PGSSLROOTCERT\), or use pg_dump 16 or later.*this pg_dump is 15/,
    );
    // libpq refuses sslrootcert=system with verify-ca, so the system bundle is no way out there.
    expect(() => pgRootCert(verifying("verify-ca"), 18, false)).toThrow(/sslmode=verify-ca needs the CA that signed the server's certificate.*"sslrootcert"/);
  });

  it("explains libpq's own root certificate errors", () => {
    expect(explainPgError('root certificate file "/root/.postgresql/root.crt" does not exist', target)).toMatch(/"sslrootcert" on the target/);
    expect(explainPgError("could not get home directory to locate root certificate file", target)).toMatch(/"sslrootcert" on the target/);
    expect(explainPgError("SSL error: certificate verify failed", target)).toMatch(/not signed by the root certificate in use/);
  });
});
