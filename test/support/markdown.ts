/** Reading the README's tables, for the tests that hold it to the code. */

import { readFileSync } from "node:fs";
import { join } from "node:path";

export const readme = (): string => readFileSync(join(__dirname, "../../README.md"), "utf8");

export interface TableRow {
  /** The row's cells, as written (backticks kept). */
  cells: string[];
  /** The row as written, for failure messages. */
  line: string;
}

/** Splits a Markdown table line into cells; a `|` inside backticks is part of its cell. */
export function tableCells(line: string): string[] {
  const cells: string[] = [];
  let cell = "";
  let inCode = false;
  for (const ch of line.trim().replace(/^\|/, "").replace(/\|$/, "")) {
    if (ch === "`") inCode = !inCode;
    if (ch === "|" && !inCode) {
      cells.push(cell.trim());
      cell = "";
    } else {
      cell += ch;
    }
  }
  return [...cells, cell.trim()];
}

/** The rows of the first table whose header line is `header` (e.g. "| key | default | meaning |"). */
export function tableAfterHeader(markdown: string, header: string): TableRow[] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === header);
  if (start < 0) throw new Error(`README has no table with the header '${header}'`);
  const rows: TableRow[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith("|")) break;
    rows.push({ cells: tableCells(line), line: line.trim() });
  }
  return rows;
}

/** The backticked parts of a cell, in order: "`cpu` / `memory`" gives ["cpu", "memory"]. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
}
