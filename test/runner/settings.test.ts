import { parseAgeRecipients, parseHostPort, parseIdentityFile, parseSettings, parseTargets, SettingsError, type PostgresTarget } from "../../image/src/settings";

const blog = {
  STAGE: "dev",
  S3_BUCKET: "billie-db-backup",
  PG_DB_HOST: "ep-aged-morning-26453078.ap-southeast-1.aws.neon.tech",
  NEON_DB_ENDPOINT_OPTION: "endpoint%3Dep-aged-morning-26453078",
  PG_DB_NAME: "billie",
  PG_DB_USER: "billie_owner",
  PG_DB_PASSWORD: "s3cret-pw",
  MONGO_CONNECTION_STRING: "mongodb+srv://app:pw@cluster0.example.mongodb.net/",
  MONGO_DB_NAME: "billie",
};

describe("the blog's variables", () => {
  it("configure one PostgreSQL and one MongoDB target, Neon's endpoint decoded for libpq", () => {
    const s = parseSettings(blog);
    expect(s.stage).toBe("dev");
    expect(s.s3.bucket).toBe("billie-db-backup");
    expect(s.targets).toEqual([
      {
        engine: "postgres",
        name: "billie",
        host: "ep-aged-morning-26453078.ap-southeast-1.aws.neon.tech",
        port: 5432,
        database: "billie",
        user: "billie_owner",
        passwordEnv: "PG_DB_PASSWORD",
        options: "endpoint=ep-aged-morning-26453078",
        sslmode: undefined,
        compression: undefined,
      },
      { engine: "mongodb", name: "billie", uriEnv: "MONGO_CONNECTION_STRING", database: "billie" },
    ]);
    expect(s.concurrency).toBe(2);
  });

  it("back up only PostgreSQL when MongoDB is not configured, and the reverse", () => {
    const { MONGO_CONNECTION_STRING, MONGO_DB_NAME, ...pgOnly } = blog;
    expect(parseTargets(pgOnly).map((t) => t.engine)).toEqual(["postgres"]);
    expect(parseTargets({ MONGO_CONNECTION_STRING, MONGO_DB_NAME }).map((t) => t.engine)).toEqual(["mongodb"]);
  });

  it("name the missing variable", () => {
    const { PG_DB_PASSWORD, ...noPassword } = blog;
    expect(() => parseSettings(noPassword)).toThrow(/^PG_DB_PASSWORD is not set/);
    const { STAGE, ...noStage } = blog;
    expect(() => parseSettings(noStage)).toThrow(/^STAGE is not set/);
    expect(() => parseSettings({ ...blog, S3_BUCKET: "s3://billie" })).toThrow(/S3_BUCKET='s3:\/\/billie' is not a bucket name/);
    expect(() => parseSettings({ STAGE: "dev", S3_BUCKET: "b-1" })).toThrow(/no database to back up/);
  });

  it("check PG_SSLMODE by the contract's sslmode rule", () => {
    expect(parseSettings({ ...blog, PG_SSLMODE: "require" }).targets[0]).toMatchObject({ sslmode: "require" });
    expect(() => parseSettings({ ...blog, PG_SSLMODE: "on" })).toThrow(/^PG_SSLMODE='on' is not a libpq sslmode: use one of disable, allow/);
  });
});

describe("BACKUP_TARGETS", () => {
  const env = {
    STAGE: "prod",
    S3_BUCKET: "backups",
    PG_PASSWORD_MAIN: "pw1",
    MONGO_URI_EVENTS: "mongodb://u:p@h/",
    BACKUP_TARGETS: JSON.stringify([
      { name: "main", engine: "postgres", host: "db.internal", port: 6543, database: "app", user: "backup", passwordEnv: "PG_PASSWORD_MAIN", sslmode: "require", compression: "zstd:3" },
      { name: "events", engine: "mongodb", uriEnv: "MONGO_URI_EVENTS", database: "events" },
    ]),
  };

  it("lists any number of targets whose secrets are named, not given", () => {
    const targets = parseSettings(env).targets;
    expect(targets.map((t) => `${t.engine}/${t.name}`)).toEqual(["postgres/main", "mongodb/events"]);
    expect(targets[0]).toMatchObject({ port: 6543, passwordEnv: "PG_PASSWORD_MAIN", sslmode: "require", compression: "zstd:3" });
  });

  it("reads a MongoDB target's pointInTime, and MONGO_POINT_IN_TIME beside the blog's MONGO_CONNECTION_STRING", () => {
    const targets = parseSettings({ ...env, BACKUP_TARGETS: '[{"engine":"mongodb","name":"all","uriEnv":"MONGO_URI_EVENTS","pointInTime":false}]' }).targets;
    expect(targets).toEqual([{ engine: "mongodb", name: "all", uriEnv: "MONGO_URI_EVENTS", pointInTime: false }]);
    expect(parseTargets({ MONGO_CONNECTION_STRING: "mongodb://h/", MONGO_POINT_IN_TIME: "false" })).toEqual([{ engine: "mongodb", name: "mongodb", uriEnv: "MONGO_CONNECTION_STRING", pointInTime: false }]);
    expect(() => parseTargets({ MONGO_CONNECTION_STRING: "mongodb://h/", MONGO_POINT_IN_TIME: "no" })).toThrow(/^MONGO_POINT_IN_TIME='no' must be true or false$/);
    expect(() => parseTargets({ MONGO_CONNECTION_STRING: "mongodb://h/", MONGO_DB_NAME: "d", MONGO_POINT_IN_TIME: "true" })).toThrow(/^MONGO_POINT_IN_TIME: pointInTime needs a dump of the whole deployment/);
  });

  it.each([
    ["not JSON", "[{", /BACKUP_TARGETS is not valid JSON/],
    ["not a list", "{}", /must be a JSON list/],
    ["an unknown engine", '[{"engine":"mysql"}]', /engine='mysql' is not supported/],
    ["a password instead of a variable name", '[{"engine":"postgres","host":"h","database":"d","user":"u","passwordEnv":"hunter2!"}]', /is not an environment variable name/],
    ["a variable that is not set", '[{"engine":"postgres","host":"h","database":"d","user":"u","passwordEnv":"NOPE"}]', /^NOPE is not set/],
    ["a bad port", '[{"engine":"postgres","host":"h","port":"5432","database":"d","user":"u","passwordEnv":"PG_PASSWORD_MAIN"}]', /port must be a whole number/],
    ["a port out of range", '[{"engine":"postgres","host":"h","port":70000,"database":"d","user":"u","passwordEnv":"PG_PASSWORD_MAIN"}]', /^BACKUP_TARGETS\[0\]\.port must be a whole number from 1 to 65535$/],
    ["a bad compression", '[{"engine":"postgres","host":"h","database":"d","user":"u","passwordEnv":"PG_PASSWORD_MAIN","compression":"brotli"}]', /^BACKUP_TARGETS\[0\]\.compression='brotli' is not a pg_dump compression: use 0-9, none, gzip\[:N\], lz4\[:N\] or zstd\[:N\]$/],
    ["an sslmode libpq does not know", '[{"engine":"postgres","host":"h","database":"d","user":"u","passwordEnv":"PG_PASSWORD_MAIN","sslmode":"required"}]', /^BACKUP_TARGETS\[0\]\.sslmode='required' is not a libpq sslmode: use one of disable, allow, prefer, require, verify-ca, verify-full$/],
    ["two targets with one name", '[{"engine":"mongodb","name":"a","uriEnv":"MONGO_URI_EVENTS"},{"engine":"mongodb","name":"a","uriEnv":"MONGO_URI_EVENTS"}]', /two mongodb targets are named 'a'/],
    ["a name that breaks the key", '[{"engine":"mongodb","name":"a/b","uriEnv":"MONGO_URI_EVENTS"}]', /cannot be part of an S3 key/],
    ["a pointInTime that is not a boolean", '[{"engine":"mongodb","uriEnv":"MONGO_URI_EVENTS","pointInTime":"false"}]', /^BACKUP_TARGETS\[0\]\.pointInTime must be true or false$/],
    ["pointInTime with one database", '[{"engine":"mongodb","uriEnv":"MONGO_URI_EVENTS","database":"d","pointInTime":true}]', /^BACKUP_TARGETS\[0\]\.pointInTime: pointInTime needs a dump of the whole deployment/],
  ])("refuses %s", (_case, value, message) => {
    expect(() => parseSettings({ ...env, BACKUP_TARGETS: value })).toThrow(message);
    expect(() => parseSettings({ ...env, BACKUP_TARGETS: value })).toThrow(SettingsError);
  });
});

describe("other settings", () => {
  it("reads host:port and IPv6 literals", () => {
    expect(parseHostPort("db:6543", "K")).toEqual({ host: "db", port: 6543 });
    expect(parseHostPort("[::1]:5433", "K")).toEqual({ host: "::1", port: 5433 });
    expect(parseHostPort("db.example.com", "K")).toEqual({ host: "db.example.com", port: 5432 });
    expect(() => parseHostPort("db:99999", "PG_DB_HOST")).toThrow(/PG_DB_HOST='db:99999' has a port outside/);
  });

  it("reads the S3 endpoint, path style and part size", () => {
    const s = parseSettings({ ...blog, AWS_ENDPOINT_URL: "http://127.0.0.1:9000", S3_FORCE_PATH_STYLE: "true", S3_PART_SIZE_MB: "8" });
    expect(s.s3).toMatchObject({ endpoint: "http://127.0.0.1:9000", forcePathStyle: true, partSizeBytes: 8 * 1024 * 1024 });
    expect(parseSettings({ ...blog, AWS_ENDPOINT_URL_S3: "http://s3", AWS_ENDPOINT_URL: "http://other" }).s3.endpoint).toBe("http://s3");
    expect(() => parseSettings({ ...blog, S3_PART_SIZE_MB: "4" })).toThrow(/below S3's 5 MiB minimum/);
    expect(() => parseSettings({ ...blog, S3_FORCE_PATH_STYLE: "yes" })).toThrow(/S3_FORCE_PATH_STYLE='yes' must be true or false/);
  });

  it("applies PG_DUMP_COMPRESSION to targets that set none, and checks BACKUP_TIMEZONE", () => {
    expect(parseSettings({ ...blog, PG_DUMP_COMPRESSION: "gzip:1" }).targets[0]).toMatchObject({ compression: "gzip:1" });
    expect(parseSettings({ ...blog, BACKUP_TIMEZONE: "Asia/Singapore" }).timeZone).toBe("Asia/Singapore");
    expect(() => parseSettings({ ...blog, BACKUP_TIMEZONE: "UTC+8" })).toThrow(/BACKUP_TIMEZONE='UTC\+8' is not an IANA time zone/);
  });
});

describe("age encryption", () => {
  const a = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
  const b = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg";

  it("reads the recipients, one per line or separated by commas, without repeats", () => {
    expect(parseAgeRecipients({ BACKUP_AGE_RECIPIENTS: `${a}\n${b}, ${a}\n` })).toEqual([a, b]);
    expect(parseAgeRecipients({})).toEqual([]);
    expect(parseSettings({ ...blog, BACKUP_AGE_RECIPIENTS: a }).ageRecipients).toEqual([a]);
  });

  it("refuses what is not a recipient, and an identity given where its public key belongs", () => {
    expect(() => parseAgeRecipients({ BACKUP_AGE_RECIPIENTS: "ssh-ed25519 AAAA" })).toThrow(/BACKUP_AGE_RECIPIENTS: 'ssh-ed25519' is not an age public key/);
    expect(() => parseAgeRecipients({ BACKUP_AGE_RECIPIENTS: a.slice(0, -1) })).toThrow(/is not an age public key/);
    const identity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    expect(() => parseAgeRecipients({ BACKUP_AGE_RECIPIENTS: identity })).toThrow(/holds an age identity .* give its public key instead/);
  });

  it("takes the identity as a file's path only", () => {
    expect(parseIdentityFile({ AGE_IDENTITY_FILE: "/run/secrets/age.txt" })).toBe("/run/secrets/age.txt");
    expect(parseIdentityFile({})).toBeUndefined();
    expect(() => parseIdentityFile({ AGE_IDENTITY_FILE: "AGE-SECRET-KEY-1XYZ" })).toThrow(/must be the path of a file holding it/);
  });
});

describe("a PostgreSQL target's sslrootcert", () => {
  const env = { STAGE: "dev", S3_BUCKET: "b-1", PW: "pw-1234" };
  const targets = (extra: Record<string, unknown>) =>
    parseTargets({ ...env, BACKUP_TARGETS: JSON.stringify([{ name: "app", engine: "postgres", host: "db", database: "app", user: "u", passwordEnv: "PW", ...extra }]) });

  it("is a CA file's absolute path, or system with verify-full", () => {
    expect(targets({ sslmode: "verify-full", sslrootcert: "/etc/ssl/rds.pem" })[0]).toMatchObject({ sslmode: "verify-full", sslrootcert: "/etc/ssl/rds.pem" });
    expect(targets({ sslmode: "verify-ca", sslrootcert: "/etc/ssl/rds.pem" })[0]).toMatchObject({ sslrootcert: "/etc/ssl/rds.pem" });
    expect(targets({ sslmode: "verify-full", sslrootcert: "system" })[0]).toMatchObject({ sslrootcert: "system" });
    expect((targets({})[0] as PostgresTarget).sslrootcert).toBeUndefined();
  });

  it("is refused, naming the key, when relative or system with a weaker sslmode", () => {
    expect(() => targets({ sslrootcert: "certs/ca.pem" })).toThrow(/BACKUP_TARGETS\[0\]\.sslrootcert='certs\/ca\.pem' must be the absolute path/);
    expect(() => targets({ sslmode: "require", sslrootcert: "system" })).toThrow(/BACKUP_TARGETS\[0\]\.sslrootcert='system' needs sslmode 'verify-full'/);
    expect(() => targets({ sslrootcert: 42 })).toThrow(/sslrootcert must be a string/);
  });
});
