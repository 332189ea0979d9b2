import { backupKey, keyTimestamp, latestPerTarget, localTime, manifestKey, parseManifestKey } from "../../image/src/keys";

const at = new Date("2024-10-27T10:30:05.123Z");

it("names backups by stage, engine, target and UTC time", () => {
  expect(keyTimestamp(at)).toBe("2024-10-27T10-30-05Z");
  expect(backupKey("dev", "postgres", "billie", at)).toBe("dev/postgres/billie/2024-10-27T10-30-05Z.dump");
  expect(backupKey("dev", "mongodb", "billie", at)).toBe("dev/mongodb/billie/2024-10-27T10-30-05Z.archive.gz");
  expect(backupKey("dev", "postgres", "billie", at, true)).toBe("dev/postgres/billie/2024-10-27T10-30-05Z.dump.age");
});

it("reads a manifest key back, and ignores everything else", () => {
  const key = backupKey("prod", "mongodb", "events", at);
  expect(parseManifestKey(manifestKey(key))).toEqual({ stage: "prod", engine: "mongodb", name: "events", key, time: new Date("2024-10-27T10:30:05Z"), encrypted: false });
  expect(parseManifestKey(key)).toBeUndefined();
  expect(parseManifestKey("prod/postgres/events/2024-10-27T10-30-05Z.archive.gz.manifest.json")).toBeUndefined();
});

it("picks the newest backup per target, or the newest at or before a time", () => {
  const refs = ["2024-10-01T00-00-00Z", "2024-10-03T00-00-00Z", "2024-10-02T00-00-00Z"].flatMap((ts) => [
    parseManifestKey(`dev/postgres/a/${ts}.dump.manifest.json`)!,
    parseManifestKey(`dev/mongodb/a/${ts}.archive.gz.manifest.json`)!,
  ]);
  expect(latestPerTarget(refs).map((r) => r.key)).toEqual(["dev/mongodb/a/2024-10-03T00-00-00Z.archive.gz", "dev/postgres/a/2024-10-03T00-00-00Z.dump"]);
  // 2024-10-02 08:00 in Singapore is midnight UTC: that backup is the last one at or before it.
  expect(latestPerTarget(refs, new Date("2024-10-02T08:00:00+08:00")).map((r) => r.key)).toEqual([
    "dev/mongodb/a/2024-10-02T00-00-00Z.archive.gz",
    "dev/postgres/a/2024-10-02T00-00-00Z.dump",
  ]);
  expect(latestPerTarget(refs, new Date("2024-09-01T00:00:00Z"))).toEqual([]);
});

it("writes the local time people read, with its offset, across DST", () => {
  expect(localTime(at, "Asia/Singapore")).toBe("2024-10-27T18:30:05+08:00");
  expect(localTime(new Date("2024-07-01T12:00:00Z"), "Europe/Berlin")).toBe("2024-07-01T14:00:00+02:00");
  expect(localTime(new Date("2024-12-01T12:00:00Z"), "Europe/Berlin")).toBe("2024-12-01T13:00:00+01:00");
  expect(localTime(at, "UTC")).toBe("2024-10-27T10:30:05+00:00");
});

it("reads an encrypted backup's key back, and knows it is encrypted", () => {
  const key = backupKey("prod", "postgres", "app", new Date("2024-10-27T10:30:05Z"), true);
  expect(parseManifestKey(manifestKey(key))).toMatchObject({ key, engine: "postgres", name: "app", encrypted: true });
  expect(parseManifestKey("prod/postgres/app/2024-10-27T10-30-05Z.dump.gpg.manifest.json")).toBeUndefined();
});
