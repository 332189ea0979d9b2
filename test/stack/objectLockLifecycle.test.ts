/**
 * The objectLock key against the lifecycle S3 applies (models/s3ObjectLock.ts): what the config accepts
 * is locked while it is a backup and removed on schedule; what it refuses would outlive its expiry.
 */

import { ConfigError, parseStackConfig } from "../../components/config";
import { committedStacks, readStackFile } from "../../scripts/lib/stackFiles";
import { versionLife } from "./models/s3ObjectLock";

const parse = (expirationDays: number, noncurrentDays: number, lockDays: number) =>
  parseStackConfig(
    {
      get: (key) =>
        ({
          targets: '[{"name":"app","engine":"mongodb"}]',
          schedule: "rate(1 hour)",
          backupRetentionDays: String(expirationDays),
          noncurrentRetentionDays: String(noncurrentDays),
          objectLock: JSON.stringify({ mode: "COMPLIANCE", days: lockDays }),
        })[key],
    },
    "prod",
  );

it("each committed stack's backups are locked only while a restore can list them, and removed on schedule", () => {
  for (const stage of committedStacks()) {
    const file = readStackFile(stage);
    const config = parseStackConfig({ get: (key) => file[`db-backup:${key}`] }, stage);
    const life = versionLife({ expirationDays: config.backupRetentionDays, noncurrentDays: config.noncurrentRetentionDays }, config.objectLock?.days);
    expect(life.lockedUntil).toBeLessThanOrEqual(life.hiddenOn);
    expect(life.removedOn).toBe(config.backupRetentionDays + config.noncurrentRetentionDays);
    if (stage === "prod") expect(life).toEqual({ hiddenOn: 365, lockedUntil: 30, removedOn: 395 });
  }
});

it("accepts a lock exactly when it ends by the expiry, so S3 never refuses the lifecycle's removal of an accepted one", () => {
  for (const expirationDays of [1, 7, 30, 365]) {
    for (const noncurrentDays of [1, 7, 30]) {
      for (const lockDays of [1, expirationDays - 1, expirationDays, expirationDays + 1, expirationDays + noncurrentDays, expirationDays + noncurrentDays + 1].filter((d) => d >= 1)) {
        const life = versionLife({ expirationDays, noncurrentDays }, lockDays);
        const accepted = (() => {
          try {
            return parse(expirationDays, noncurrentDays, lockDays).objectLock !== undefined;
          } catch (err) {
            if (!(err instanceof ConfigError)) throw err;
            return false;
          }
        })();
        expect({ lockDays, accepted }).toEqual({ lockDays, accepted: life.lockedUntil <= life.hiddenOn });
        if (life.removedOn === undefined) expect(accepted).toBe(false);
      }
    }
  }
});
