/** Where each backup lives in the bucket, and how to read that back. */

import type { Engine } from "./settings";

const extensions: Record<Engine, string> = { postgres: ".dump", mongodb: ".archive.gz" };

/** `2024-10-27T10-30-00Z`: UTC, sortable as text, and free of characters that need escaping. */
export function keyTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/:/g, "-");
}

/** What an age-encrypted backup's key ends with, after the engine's own extension. */
export const encryptedExtension = ".age";

export function backupKey(stage: string, engine: Engine, name: string, date: Date, encrypted = false): string {
  return `${stage}/${engine}/${name}/${keyTimestamp(date)}${extensions[engine]}${encrypted ? encryptedExtension : ""}`;
}

/** Where the restore drills' records are: a target's (`<stage>/drills/<target>/`), or all of the stage's. */
export function drillsPrefix(stage: string, name?: string): string {
  return `${stage}/drills/${name === undefined ? "" : `${name}/`}`;
}

/** A restore drill's record of one target: `<stage>/drills/<target>/<timestamp>.json`, beside (not among) the backups. */
export function drillKey(stage: string, name: string, date: Date): string {
  return `${drillsPrefix(stage, name)}${keyTimestamp(date)}.json`;
}

export function manifestKey(key: string): string {
  return `${key}.manifest.json`;
}

export interface BackupRef {
  stage: string;
  engine: Engine;
  name: string;
  key: string;
  /** The backup's start, from its key. */
  time: Date;
  /** Whether it is encrypted with age (its key ends in .age): restoring it needs an identity. */
  encrypted: boolean;
}

const manifestPattern = /^([^/]+)\/(postgres|mongodb)\/([^/]+)\/(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})Z(\.dump|\.archive\.gz)(\.age)?\.manifest\.json$/;

/** Reads a manifest key back into the backup it describes; undefined for any other key. */
export function parseManifestKey(manifest: string): BackupRef | undefined {
  const m = manifestPattern.exec(manifest);
  if (!m) return undefined;
  const engine = m[2] as Engine;
  if (extensions[engine] !== m[8]) return undefined;
  return {
    stage: m[1],
    engine,
    name: m[3],
    key: manifest.slice(0, -".manifest.json".length),
    time: new Date(`${m[4]}T${m[5]}:${m[6]}:${m[7]}Z`),
    encrypted: m[9] !== undefined,
  };
}

/** The newest backup of each target, or the newest at or before `at`. */
export function latestPerTarget(refs: BackupRef[], at?: Date): BackupRef[] {
  const latest = new Map<string, BackupRef>();
  for (const ref of refs) {
    if (at && ref.time.getTime() > at.getTime()) continue;
    const id = `${ref.engine}/${ref.name}`;
    const current = latest.get(id);
    if (!current || current.time < ref.time) latest.set(id, ref);
  }
  return [...latest.values()].sort((a, b) => `${a.engine}/${a.name}`.localeCompare(`${b.engine}/${b.name}`));
}

/** An ISO 8601 local time with its offset, for people who read times in their own zone (the blog used UTC+8). */
export function localTime(date: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      timeZoneName: "longOffset",
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  const offset = parts.timeZoneName === "GMT" ? "+00:00" : parts.timeZoneName.replace("GMT", "");
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
}
