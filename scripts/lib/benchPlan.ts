/**
 * For `npm run bench` only: what a run measures, decided from its environment and the machine, kept
 * apart from the measuring so it can be checked without running anything.
 */

/** Which CPU layouts a run measures: the machine as it is, the model of a 1-vCPU Fargate task, or both. */
export type CpuModel = "all" | "1vcpu";

/** BENCH_CPU_MODEL: `all`, `1vcpu` or `both` (the default). */
export function cpuModels(value: string | undefined): CpuModel[] {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "" || v === "both") return ["all", "1vcpu"];
  if (v === "all" || v === "1vcpu") return [v];
  throw new Error(`BENCH_CPU_MODEL='${value}' is not a CPU model: use all (every CPU), 1vcpu (the dump side pinned to one CPU) or both`);
}

/** The default database sizes, in rows: about 440 and 170 MiB of ordinary text. */
export const fullRows = { large: 2_600_000, small: 1_000_000 };

/** BENCH_SCALE: a factor on both databases' sizes (default 1); below 1 for a quick check that the bench works. */
export function databaseRows(value: string | undefined): { scale: number; large: number; small: number } {
  const scale = value === undefined || value.trim() === "" ? 1 : Number(value);
  if (!Number.isFinite(scale) || scale <= 0 || scale > 10) throw new Error(`BENCH_SCALE='${value}' must be a number above 0 and at most 10 (1 is the full size)`);
  return { scale, large: Math.max(1000, Math.round(fullRows.large * scale)), small: Math.max(1000, Math.round(fullRows.small * scale)) };
}

/**
 * The compressions measured by default, as PG_DUMP_COMPRESSION and `pg_dump --compress` take them: the
 * runner's default first, gzip at level 1 and at pg_dump's own default level 6, and none; pg_dump 16
 * and later also lz4. pg_dump before 16 takes only a level (gzip), so `0` is its "none".
 */
export function defaultCompressions(major: number | undefined): string[] {
  return major !== undefined && major >= 16 ? ["zstd:1", "lz4", "1", "6", "none"] : ["1", "6", "0"];
}

/** BENCH_COMPRESSIONS: a comma-separated list (`zstd:1,1`), or every default for this pg_dump when unset. */
export function requestedCompressions(value: string | undefined, major: number | undefined): string[] {
  const list = (value ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  return list.length > 0 ? [...new Set(list)] : defaultCompressions(major);
}

/** What a `--compress` value means, for a table: a bare level is gzip's, 0 is none. */
export function describeCompression(value: string): string {
  if (value === "0" || value === "none") return "none";
  if (/^\d$/.test(value)) return `gzip:${value}`;
  return value;
}

/** `taskset -cp`'s "0,2-3" as [0, 2, 3]. */
export function parseCpuList(list: string): number[] {
  const cpus = new Set<number>();
  for (const part of list.trim().split(",").filter(Boolean)) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!range) throw new Error(`'${list}' is not a CPU list (like 0,2-3)`);
    const from = Number(range[1]);
    const to = range[2] === undefined ? from : Number(range[2]);
    for (let cpu = from; cpu <= to; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/**
 * The one-CPU model's layout: the first CPU this process may use carries the dump side (pg_dump, the
 * runner and the pg_dump it starts), the others PostgreSQL and the S3 endpoint; or, where there is
 * only one, the reason the model cannot be measured here.
 */
export function splitCpus(allowed: number[]): { dump: number; servers: number[] } | { reason: string } {
  if (allowed.length < 2) {
    return { reason: `this process may run only on CPU ${allowed.join(",") || "(none)"}: the one-CPU model needs one CPU for the dump and another for PostgreSQL and the S3 endpoint` };
  }
  return { dump: allowed[0], servers: allowed.slice(1) };
}

/** The item whose key is the median (the lower of the middle two for an even count): one round stands for the run, so its figures belong together. */
export function medianBy<T>(items: T[], key: (item: T) => number): T {
  if (items.length === 0) throw new Error("no rounds to take a median of");
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
