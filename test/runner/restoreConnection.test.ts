/**
 * Restore's own connection (restoreTarget): each part the backup's unless restore gives its own, its
 * own password only by variable, and errors that name the option or variable to give.
 */

import { explainRestoreError, type RestoreOptions } from "../../image/src/restore";
import { parseTargets, restoreTarget, secretValues, withoutSecrets, type MongoTarget, type PostgresTarget } from "../../image/src/settings";

const neon: PostgresTarget = {
  engine: "postgres",
  name: "app",
  host: "ep-aged-morning-26453078.ap-southeast-1.aws.neon.tech",
  port: 5432,
  database: "app",
  user: "backup_ro",
  passwordEnv: "PG_PASSWORD_APP",
  options: "endpoint=ep-aged-morning-26453078",
  sslmode: "verify-full",
  sslrootcert: "system",
};
const events: MongoTarget = { engine: "mongodb", name: "events", uriEnv: "MONGO_URI_EVENTS", database: "events" };

describe("restoreTarget", () => {
  it("is the backup's connection when restore gives nothing of its own", () => {
    expect(restoreTarget(neon, {}, { PG_PASSWORD_APP: "pw" })).toEqual(neon);
    expect(restoreTarget(events, {}, { MONGO_URI_EVENTS: "mongodb://h/" })).toEqual(events);
  });

  it("takes restore's user with RESTORE_PG_PASSWORD, and needs no backup secret then", () => {
    expect(restoreTarget(neon, { user: "admin" }, { RESTORE_PG_PASSWORD: "admin-pw" })).toEqual({ ...neon, user: "admin", passwordEnv: "RESTORE_PG_PASSWORD" });
    // The backup's user with a password of restore's own: RESTORE_PG_PASSWORD wins whenever it is set.
    expect(restoreTarget(neon, {}, { RESTORE_PG_PASSWORD: "x", PG_PASSWORD_APP: "pw" })).toMatchObject({ user: "backup_ro", passwordEnv: "RESTORE_PG_PASSWORD" });
  });

  it("a host of its own drops the target's libpq options and sslrootcert, which belong to the target's server", () => {
    const t = restoreTarget(neon, { host: "localhost", port: "5433", sslmode: "disable", user: "postgres" }, { RESTORE_PG_PASSWORD: "pw" });
    expect(t).toEqual({ ...neon, host: "localhost", port: 5433, sslmode: "disable", user: "postgres", passwordEnv: "RESTORE_PG_PASSWORD", options: undefined, sslrootcert: undefined });
    // The same host keeps them, and the target's sslmode unless --sslmode says otherwise.
    expect(restoreTarget(neon, { host: neon.host, user: "owner" }, { RESTORE_PG_PASSWORD: "pw" })).toMatchObject({ options: neon.options, sslrootcert: "system", sslmode: "verify-full" });
  });

  it("refuses another user with the backup user's password, naming RESTORE_PG_PASSWORD", () => {
    expect(() => restoreTarget(neon, { user: "admin" }, { PG_PASSWORD_APP: "pw" })).toThrow(
      "--user 'admin' needs its password in RESTORE_PG_PASSWORD (PG_PASSWORD_APP holds the backup user's, backup_ro's)",
    );
  });

  it("names both password variables when neither is set", () => {
    expect(() => restoreTarget(neon, {}, {})).toThrow("RESTORE_PG_PASSWORD is not set, nor the target's PG_PASSWORD_APP: give the password of user 'backup_ro' in RESTORE_PG_PASSWORD");
    expect(() => restoreTarget(events, {}, {})).toThrow("RESTORE_MONGO_URI is not set, nor the target's MONGO_URI_EVENTS: give the connection string to restore with in RESTORE_MONGO_URI");
  });

  it("checks its own port and sslmode, and an sslmode that does not go with the target's sslrootcert", () => {
    const env = { PG_PASSWORD_APP: "pw" };
    expect(() => restoreTarget(neon, { port: "70000" }, env)).toThrow("--port '70000' is not a port");
    expect(() => restoreTarget(neon, { sslmode: "strict" }, env)).toThrow("--sslmode='strict' is not a libpq sslmode");
    expect(() => restoreTarget(neon, { sslmode: "require" }, env)).toThrow(/--sslmode 'require' does not go with the target's sslrootcert='system' needs sslmode 'verify-full'/);
  });

  it("takes MongoDB's connection from RESTORE_MONGO_URI, and refuses PostgreSQL's options for it", () => {
    expect(restoreTarget(events, {}, { RESTORE_MONGO_URI: "mongodb://r/" })).toEqual({ ...events, uriEnv: "RESTORE_MONGO_URI" });
    expect(() => restoreTarget(events, { host: "h" }, { RESTORE_MONGO_URI: "mongodb://r/" })).toThrow("--host is for PostgreSQL: a MongoDB restore takes its whole connection from RESTORE_MONGO_URI");
  });
});

describe("the targets a restore reads", () => {
  const env = {
    PG_DB_HOST: "db",
    PG_DB_NAME: "app",
    PG_DB_USER: "backup_ro",
    BACKUP_TARGETS: JSON.stringify([{ name: "events", engine: "mongodb", uriEnv: "MONGO_URI_EVENTS" }]),
  };

  it("may leave out every backup secret, which a backup may not", () => {
    expect(parseTargets(env, "optional").map((t) => t.name)).toEqual(["app", "events"]);
    expect(() => parseTargets(env)).toThrow("PG_DB_PASSWORD is not set");
    expect(() => parseTargets({ BACKUP_TARGETS: env.BACKUP_TARGETS })).toThrow("MONGO_URI_EVENTS is not set");
  });

  it("restore's secrets are redacted and kept from child processes, like the targets'", () => {
    const targets = parseTargets(env, "optional");
    const withSecrets = { ...env, RESTORE_PG_PASSWORD: "pg-secret", RESTORE_MONGO_URI: "mongodb://u:mongo-secret@h/" };
    expect(secretValues(targets, withSecrets)).toEqual(["pg-secret", "mongodb://u:mongo-secret@h/"]);
    expect(withoutSecrets(withSecrets, targets)).toEqual(env);
  });
});

describe("explainRestoreError", () => {
  const opts: RestoreOptions = { into: "app_copy", create: true, noOwner: false, jobs: 1, backupUser: true };

  it("a user without CREATEDB: give one that has it, or create the database first", () => {
    // createdb's words for a role without CREATEDB (PostgreSQL 15, test/runner/restoreOwnConnection.integration.test.ts)
    const stderr = "createdb: error: database creation failed: ERROR:  permission denied to create database";
    expect(explainRestoreError(stderr, neon, opts)).toBe(
      "the backup user 'backup_ro' may not create databases: give a user that may, with --user and RESTORE_PG_PASSWORD, or create the database 'app_copy' first and leave out --create",
    );
    expect(explainRestoreError(stderr, { ...neon, user: "admin" }, { ...opts, backupUser: false })).toMatch(/^user 'admin' may not create databases/);
  });

  it("a user that may not own what the backup owns: another user, or --no-owner", () => {
    const stderr = 'pg_restore: error: could not execute query: ERROR:  must be member of role "postgres"';
    expect(explainRestoreError(stderr, neon, opts)).toBe(
      "the backup user 'backup_ro' lacks a privilege in 'app_copy': give a user that owns it or may create in it, with --user and RESTORE_PG_PASSWORD, or add --no-owner so the restoring user owns what it restores",
    );
    expect(explainRestoreError(stderr, neon, { ...opts, noOwner: true })).not.toMatch(/--no-owner/);
  });

  it("a database that is not there: --create", () => {
    expect(explainRestoreError('pg_restore: error: connection to server failed: FATAL:  database "app_copy" does not exist', neon, { ...opts, create: false })).toBe(
      `database 'app_copy' does not exist on ${neon.host}:5432: create it first, or give --create`,
    );
  });

  it("a connection failure is the backup's explanation, and offers restore's own connection when it used the backup's", () => {
    const stderr = 'FATAL:  password authentication failed for user "backup_ro"';
    expect(explainRestoreError(stderr, neon, opts)).toBe(
      `wrong password for user 'backup_ro' on ${neon.host}:5432 (check PG_PASSWORD_APP); or give restore a connection of its own (--host, --port, --user, RESTORE_PG_PASSWORD)`,
    );
    expect(explainRestoreError(stderr, { ...neon, passwordEnv: "RESTORE_PG_PASSWORD" }, { ...opts, backupUser: false })).toBe(`wrong password for user 'backup_ro' on ${neon.host}:5432 (check RESTORE_PG_PASSWORD)`);
  });
});
