/**
 * Progress of a long transfer (a dump into S3, a download for restore or verify), so that a backup
 * that runs for hours says how far it has got: a JSON line every BACKUP_PROGRESS_SECONDS in the log
 * CloudWatch keeps, or, on a terminal, a live line redrawn every second.
 */

import { endProgress, hasLiveDisplay, logProgress, type Fields } from "./log";

/** Bytes counted at a moment (milliseconds of a monotonic clock). */
export interface Sample {
  atMs: number;
  bytes: number;
}

const MiB = 1024 * 1024;

function mibPerSecond(from: Sample, to: Sample): number {
  const seconds = (to.atMs - from.atMs) / 1000;
  return seconds > 0 ? Math.round(((to.bytes - from.bytes) / MiB / seconds) * 100) / 100 : 0;
}

/**
 * What a progress line says, from the first sample, the previous line's and this one's: bytes so
 * far, elapsed seconds, and the rate in MiB/s over the whole transfer and over the last interval (the
 * one shows whether it will finish in time, the other whether it is stalling now).
 */
export function progressFields(start: Sample, previous: Sample, now: Sample): Fields {
  return {
    bytes: now.bytes,
    elapsedSeconds: Math.round((now.atMs - start.atMs) / 100) / 10,
    mibPerSecond: mibPerSecond(start, now),
    intervalMibPerSecond: mibPerSecond(previous, now),
  };
}

/** `bytes` as a percentage of `total`, to a tenth; an empty total is complete. */
export function percentOf(bytes: number, total: number): number {
  return total > 0 ? Math.floor((bytes / total) * 1000) / 10 : 100;
}

export interface ProgressOptions {
  /** The line's message, e.g. "backup progress". */
  msg: string;
  /** Fields every line carries: target, engine, key. */
  fields: Fields;
  /** Seconds between JSON lines (BACKUP_PROGRESS_SECONDS); a terminal's live line is redrawn every second. */
  intervalSeconds: number;
  /** The byte count so far. */
  bytes: () => number;
  /** More fields from the same moment, e.g. parts sent or the percentage of a known total. */
  extra?: (bytes: number) => Fields;
}

let nextId = 0;

/**
 * Reports progress until the returned function is called, which the caller does however the transfer
 * ends (a `finally`). The first report comes one interval after the start, so a transfer shorter than
 * that reports none. The timer is unref'd: it never keeps the process alive on its own.
 */
export function trackProgress(opts: ProgressOptions): () => void {
  const id = `progress-${nextId++}`;
  const start: Sample = { atMs: performance.now(), bytes: opts.bytes() };
  let previous = start;
  const timer = setInterval(
    () => {
      const now: Sample = { atMs: performance.now(), bytes: opts.bytes() };
      logProgress(id, opts.msg, { ...opts.fields, ...progressFields(start, previous, now), ...opts.extra?.(now.bytes) });
      previous = now;
    },
    (hasLiveDisplay() ? 1 : opts.intervalSeconds) * 1000,
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    endProgress(id);
  };
}
