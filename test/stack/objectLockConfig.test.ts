/** The objectLock key: its shape, the bucket it may lock, and the lifecycle it must fit in. */

import { parseStackConfig, type ConfigSource } from "../../components/config";
import { readStackFile } from "../../scripts/lib/stackFiles";

const base: Record<string, string> = {
  targets: JSON.stringify([{ name: "app", engine: "postgres", host: "h", database: "d", user: "u" }]),
  schedule: "rate(1 hour)",
  backupRetentionDays: "30",
  noncurrentRetentionDays: "7",
};
const parse = (over: Record<string, string | undefined>) => parseStackConfig({ get: (key) => ({ ...base, ...over })[key] } as ConfigSource, "prod");

it("is off unless set", () => {
  expect(parse({}).objectLock).toBeUndefined();
});

it("reads a YAML object, as Pulumi hands it over (JSON), with days as a number or as the string `config set --path` stores", () => {
  expect(parse({ objectLock: '{"mode":"COMPLIANCE","days":30}' }).objectLock).toEqual({ mode: "COMPLIANCE", days: 30 });
  expect(parse({ objectLock: '{"mode":"GOVERNANCE","days":"14"}' }).objectLock).toEqual({ mode: "GOVERNANCE", days: 14 });
});

it("prod's committed stack file locks in COMPLIANCE mode, for no longer than it keeps backups", () => {
  const prod = readStackFile("prod");
  const config = parseStackConfig({ get: (key) => prod[`db-backup:${key}`] }, "prod");
  expect(config.objectLock).toEqual({ mode: "COMPLIANCE", days: 30 });
  expect(config.objectLock!.days).toBeLessThanOrEqual(config.backupRetentionDays);
  for (const stage of ["dev", "uat"]) {
    const file = readStackFile(stage);
    expect(parseStackConfig({ get: (key) => file[`db-backup:${key}`] }, stage).objectLock).toBeUndefined();
  }
});

it("accepts a lock exactly as long as the retention: the lock ends the day the backup expires", () => {
  expect(parse({ objectLock: '{"mode":"COMPLIANCE","days":30}', backupRetentionDays: "30" }).objectLock?.days).toBe(30);
});

describe("refuses a lock longer than backupRetentionDays, saying what would happen", () => {
  it("within the noncurrent period: the backup stays locked and billed after no restore lists it", () => {
    expect(() => parse({ objectLock: '{"mode":"COMPLIANCE","days":35}' })).toThrow(
      "db-backup:objectLock: locks each backup for 35 days but backupRetentionDays expires it after 30: expiry only puts a delete marker on top of the locked version, " +
        "and it stays locked and billed until day 35 though no restore lists it after day 30. Lock for at most 30 days, or raise backupRetentionDays to at least 35",
    );
  });
  it("past it: the lifecycle's noncurrent expiration comes while the lock holds, and S3 refuses it", () => {
    expect(() => parse({ objectLock: '{"mode":"GOVERNANCE","days":90}' })).toThrow(
      "the lifecycle's removal of the hidden version on day 37 (noncurrentRetentionDays 7 after expiry) comes while the lock still holds, and S3 refuses it",
    );
  });
});

it.each([
  [{ objectLock: "COMPLIANCE" }, "db-backup:objectLock: must be an object with mode and days, e.g. `objectLock: { mode: COMPLIANCE, days: 30 }`"],
  [{ objectLock: '{"mode":"compliance","days":30}' }, "db-backup:objectLock: 'mode' must be GOVERNANCE (an IAM principal allowed s3:BypassGovernanceRetention can still delete) or COMPLIANCE"],
  [{ objectLock: '{"mode":"COMPLIANCE"}' }, "db-backup:objectLock: 'days' must be a whole number of days, at least 1, not 'undefined'"],
  [{ objectLock: '{"mode":"COMPLIANCE","days":0}' }, "'days' must be a whole number of days, at least 1, not '0'"],
  [{ objectLock: '{"mode":"COMPLIANCE","days":1.5}' }, "'days' must be a whole number of days, at least 1, not '1.5'"],
  [{ objectLock: '{"mode":"COMPLIANCE","years":1}' }, "db-backup:objectLock: has unknown field 'years': only mode and days"],
  [
    { objectLock: '{"mode":"COMPLIANCE","days":30}', bucketName: "acme-db-backups" },
    "db-backup:objectLock: only locks the bucket this stack creates; bucket 'acme-db-backups' keeps its owner's settings: turn Object Lock on there " +
      `(\`aws s3api put-object-lock-configuration --bucket acme-db-backups --object-lock-configuration '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":30}}}'\`, versioning first), or unset bucketName`,
  ],
])("refuses %j", (over, message) => {
  expect(() => parse(over)).toThrow(message);
});
