/**
 * Restore drills: the latest backup of each target restored for real into a throwaway server, counted,
 * and compared with the previous drill. (Being written: the engines' shared shape comes first.)
 */

import type { Downloaded } from "./restore";

/** What a drill's restore found in the throwaway server. */
export interface DrillRestore {
  /** Rows per table (`schema.table`) or documents per collection (`database.collection`). */
  counts: Record<string, number>;
  /** Bytes per schema (PostgreSQL) or per database (MongoDB), as the throwaway server reports them. */
  sizes: Record<string, number>;
  /** The throwaway server's version. */
  serverVersion: string | null;
}

export interface DrillContext {
  /** A fresh private directory on the scratch volume; the server's files live under it and nothing is written elsewhere. */
  scratch: string;
  /** The environment the tools inherit (no secrets). */
  env: NodeJS.ProcessEnv;
  /** SIGTERM from ECS: the restore tool and the server are stopped, and the server's files removed. */
  stop: AbortSignal;
  /** Parallel restore jobs (pg_restore --jobs, mongorestore --numParallelCollections). */
  jobs: number;
}

/**
 * Restores a downloaded, verified backup into a throwaway server started under `ctx.scratch`, counts
 * what it holds, and stops the server and removes its files, whether the restore succeeded, failed or
 * was stopped.
 */
export type RestoreForDrill = (d: Downloaded, ctx: DrillContext) => Promise<DrillRestore>;
