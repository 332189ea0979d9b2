import { rmSync } from "node:fs";
import { join } from "node:path";
import { defaultPgCompression, explainPgError, mongodumpArgs, pgDumpArgs, pgDumpLauncher, pgEnv, pgMajor } from "../../image/src/engines";
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
