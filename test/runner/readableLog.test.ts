/**
 * The log as a person reads it on a terminal: the readable line and the progress line (pure: a
 * record in, text out, redacted), the live display (checked on a small model of a terminal's screen),
 * when the readable form is chosen, and BACKUP_PROGRESS_SECONDS.
 */

import { main, readableOutput } from "../../image/src/cli";
import { addSecret, log, progressStatus, readableLine, setLogSink, useTerminal } from "../../image/src/log";
import { percentOf, progressFields, trackProgress } from "../../image/src/progress";
import { parseProgressSeconds, parseSettings, SettingsError } from "../../image/src/settings";
import { LiveDisplay } from "../../image/src/terminal";

const at = "2026-11-30T12:03:04.567Z";

describe("readableLine", () => {
  it("gives time, level, target and message, then the other fields as key=value", () => {
    const record = { time: at, level: "info", msg: "backup started", target: "app", engine: "postgres", key: "dev/postgres/app/2026-11-30T12-03-04Z.dump" };
    expect(readableLine(record, "UTC")).toBe("12:03:04 info  app  backup started  engine=postgres key=dev/postgres/app/2026-11-30T12-03-04Z.dump");
    expect(readableLine(record, "Asia/Singapore")).toMatch(/^20:03:04 /);
  });

  it("leaves out the metric format's bookkeeping and writes byte counts in binary units", () => {
    const summary = {
      time: at,
      level: "info",
      msg: "summary: backup complete",
      key: "dev/postgres/app/x.dump",
      _aws: { Timestamp: 1, CloudWatchMetrics: [{ Namespace: "DbBackup" }] },
      Stage: "dev",
      Target: "app",
      engine: "postgres",
      target: "app",
      BackupSuccess: 1,
      BackupBytes: 3 * 1024 ** 3 + 512 * 1024 ** 2,
      BackupDurationSeconds: 12.5,
    };
    expect(readableLine(summary, "UTC")).toBe(
      "12:03:04 info  app  summary: backup complete  key=dev/postgres/app/x.dump engine=postgres BackupSuccess=1 BackupBytes=3.5GiB BackupDurationSeconds=12.5",
    );
  });

  it("quotes a value with spaces, lists a list, skips empty fields, and has no target column without a target", () => {
    const line = readableLine(
      { time: at, level: "error", msg: "no backup found", stage: "dev", target: null, error: "bucket 'b' does not exist", targets: ["postgres/app", "mongodb/events"] },
      "UTC",
    );
    expect(line).toBe(`12:03:04 error no backup found  stage=dev error="bucket 'b' does not exist" targets=postgres/app,mongodb/events`);
  });

  it("redacts as the JSON form does: registered secrets (even with a quote in them), URI credentials, password assignments", () => {
    addSecret('Pa"ss-w0rd-1');
    const line = readableLine(
      {
        time: at,
        level: "error",
        msg: "backup failed, password=hunter2 given",
        target: "app",
        error: 'FATAL: password authentication failed; tried Pa"ss-w0rd-1',
        uri: "mongodb+srv://backup:Sup3r-Secret@cluster0.example.net/events",
      },
      "UTC",
    );
    expect(line).not.toContain("hunter2");
    expect(line).not.toContain("Pa");
    expect(line).not.toContain("Sup3r-Secret");
    expect(line).toContain("password=***");
    expect(line).toContain('error="FATAL: password authentication failed; tried ***"');
    expect(line).toContain("uri=mongodb+srv://backup:***@cluster0.example.net/events");
  });

  it("cannot be made to move the cursor: control characters from a tool's stderr are escaped", () => {
    const line = readableLine({ time: at, level: "error", msg: "failed\x1b[2J", target: "app", error: "pg_dump: error\x1b[1A\nsecond line" }, "UTC");
    expect(line).not.toMatch(/[\x00-\x1f]/);
    expect(line).toContain("failed\\u001b[2J");
    expect(line).toContain('error="pg_dump: error\\u001b[1A\\nsecond line"');
  });
});

describe("the JSON form", () => {
  it("redacts a secret with a quote or a backslash in it, which JSON writes escaped", () => {
    addSecret('Pa"ss\\w0rd-2');
    const lines: string[] = [];
    const restoreSink = setLogSink((line) => lines.push(line));
    try {
      log("error", "backup failed", { target: "app", error: 'auth failed for Pa"ss\\w0rd-2', detail: { tried: ['Pa"ss\\w0rd-2'] } });
    } finally {
      restoreSink();
    }
    expect(lines[0]).not.toContain("w0rd-2");
    expect(JSON.parse(lines[0])).toMatchObject({ error: "auth failed for ***", detail: { tried: ["***"] } });
  });
});

describe("progressStatus", () => {
  it("says how far a backup is: bytes, rate over the run and now, parts sent, elapsed", () => {
    const fields = { target: "app", engine: "postgres", bytes: 1.5 * 1024 ** 3, partsSent: 95, elapsedSeconds: 754.2, mibPerSecond: 2.04, intervalMibPerSecond: 3.5 };
    expect(progressStatus(fields)).toBe("app  postgres  1.5GiB  2.0 MiB/s (now 3.5)  95 parts sent  12:34");
    expect(progressStatus({ ...fields, partsSent: 1 })).toContain("  1 part sent  ");
  });

  it("says how far a download is against the manifest's total", () => {
    const fields = { target: "app", engine: "postgres", key: "k", bytes: 45 * 1024 ** 2, totalBytes: 100 * 1024 ** 2, percent: 45, elapsedSeconds: 3725, mibPerSecond: 12.3, intervalMibPerSecond: 0 };
    expect(progressStatus(fields)).toBe("app  download  45.0%  45.0MiB of 100.0MiB  12.3 MiB/s (now 0.0)  1:02:05");
  });
});

describe("progressFields", () => {
  it("gives bytes so far, elapsed seconds, and MiB/s over the whole run and over the last interval", () => {
    const MiB = 1024 * 1024;
    const start = { atMs: 1000, bytes: 0 };
    const previous = { atMs: 61_000, bytes: 600 * MiB };
    const now = { atMs: 121_000, bytes: 660 * MiB };
    expect(progressFields(start, previous, now)).toEqual({ bytes: 660 * MiB, elapsedSeconds: 120, mibPerSecond: 5.5, intervalMibPerSecond: 1 });
    expect(progressFields(start, start, start)).toEqual({ bytes: 0, elapsedSeconds: 0, mibPerSecond: 0, intervalMibPerSecond: 0 });
  });

  it("gives a download's percentage of the manifest's total, never rounded up to 100 before the end", () => {
    expect(percentOf(0, 1000)).toBe(0);
    expect(percentOf(999, 1000)).toBe(99.9);
    expect(percentOf(9999, 10000)).toBe(99.9);
    expect(percentOf(1000, 1000)).toBe(100);
    expect(percentOf(0, 0)).toBe(100);
  });
});

/**
 * What a terminal shows after `output`: rows of text, with the cursor moved by newlines (a terminal's
 * ONLCR turns "\n" into a carriage return and line feed), CUU (ESC [ n A: up n rows, same column) and
 * ED (ESC [ J: erase from the cursor to the end of the screen), the sequences the display uses. Any
 * other escape sequence is an error here, so a display that began using one would fail this test
 * until the model knows it.
 */
function screen(output: string): string[] {
  const rows: string[] = [""];
  let row = 0;
  let col = 0;
  for (const [token, n, op] of output.matchAll(/\x1b\[(\d*)([A-Za-z])|\n|[^\x1b\n]+/g)) {
    if (token === "\n") {
      row++;
      col = 0;
      rows[row] ??= "";
    } else if (op === "A") {
      row = Math.max(0, row - Number(n || 1));
    } else if (op === "J") {
      rows[row] = rows[row].slice(0, col);
      rows.length = row + 1;
    } else if (op !== undefined) {
      throw new Error(`the screen model does not know ESC [ ${n}${op}`);
    } else {
      rows[row] = rows[row].slice(0, col).padEnd(col) + token + rows[row].slice(col + token.length);
      col += token.length;
    }
  }
  return rows.slice(0, rows.at(-1) === "" ? -1 : undefined);
}

describe("LiveDisplay", () => {
  it("keeps one line per running transfer below the log, updated in place, and removes it when done", () => {
    let output = "";
    const display = new LiveDisplay((text) => (output += text), () => 80);
    display.print("backup run started");
    display.set("a", "app  postgres  1.0MiB");
    display.set("b", "events  mongodb  2.0MiB");
    expect(screen(output)).toEqual(["backup run started", "app  postgres  1.0MiB", "events  mongodb  2.0MiB"]);

    display.set("a", "app  postgres  9.0MiB");
    display.print("events  backup stored");
    display.delete("b");
    expect(screen(output)).toEqual(["backup run started", "events  backup stored", "app  postgres  9.0MiB"]);

    display.delete("a");
    display.print("backup run finished");
    expect(screen(output)).toEqual(["backup run started", "events  backup stored", "backup run finished"]);
  });

  it("cuts a live line to the terminal's width, so a redraw erases exactly the rows it drew", () => {
    let output = "";
    const display = new LiveDisplay((text) => (output += text), () => 20);
    display.set("a", "a-very-long-target-name  postgres  1.0MiB");
    display.set("a", "a-very-long-target-name  postgres  2.0MiB");
    expect(screen(output)).toEqual(["a-very-long-target-"]);
  });

  it("takes 80 columns when the terminal reports no width (a pseudo-terminal without a size says 0)", () => {
    let output = "";
    const display = new LiveDisplay((text) => (output += text), () => 0);
    display.set("a", "x".repeat(100));
    expect(screen(output)).toEqual(["x".repeat(79)]);
  });
});

describe("on a terminal", () => {
  function fakeTerminal(): { stream: NodeJS.WriteStream; output: () => string } {
    let text = "";
    const stream = { write: (chunk: string) => ((text += chunk), true), columns: 100 } as unknown as NodeJS.WriteStream;
    return { stream, output: () => text };
  }

  it("log() writes readable lines, redacted, and no JSON", () => {
    addSecret("terminal-s3cret");
    const json: string[] = [];
    const restoreSink = setLogSink((line) => json.push(line));
    const term = fakeTerminal();
    const restoreJson = useTerminal(term.stream);
    try {
      log("error", "backup failed", { target: "app", engine: "postgres", error: "auth failed for terminal-s3cret" });
    } finally {
      restoreJson();
      restoreSink();
    }
    expect(json).toEqual([]);
    expect(screen(term.output())).toEqual([expect.stringMatching(/^\d\d:\d\d:\d\d error app  backup failed  engine=postgres error="auth failed for \*\*\*"$/)]);
  });

  it("progress is a live line redrawn every second, not log lines, and gone when the transfer ends", async () => {
    const term = fakeTerminal();
    const restoreJson = useTerminal(term.stream);
    let bytes = 0;
    try {
      // An interval of an hour: on a terminal the live line is redrawn every second regardless.
      const end = trackProgress({ msg: "backup progress", fields: { target: "app", engine: "postgres" }, intervalSeconds: 3600, bytes: () => (bytes += 1024 ** 2) });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const shown = screen(term.output());
      end();
      expect(shown).toEqual([expect.stringMatching(/^app {2}postgres {2}3\.0MiB {2}[\d.]+ MiB\/s \(now [\d.]+\) {2}0 parts sent {2}0:02$/)]);
      expect(term.output()).not.toContain("backup progress");
      expect(screen(term.output())).toEqual([]);
    } finally {
      restoreJson();
    }
  });
});

describe("readableOutput: the log's form", () => {
  it("is readable only on a terminal, and JSON with --json there too", () => {
    expect(readableOutput(true, ["backup"])).toBe(true);
    expect(readableOutput(true, ["backup", "--json"])).toBe(false);
    expect(readableOutput(true, ["restore", "--json", "--database", "x"])).toBe(false);
    expect(readableOutput(false, ["backup"])).toBe(false);
    // ECS gives the container no terminal: process.stdout.isTTY is undefined there.
    expect(readableOutput(undefined, ["backup"])).toBe(false);
  });

  it("--json is taken by every command, before or after its own options", async () => {
    const lines: string[] = [];
    const restoreSink = setLogSink((line) => lines.push(line));
    try {
      // Bad settings stop both before S3 is reached; the complaint is the variable's, not "unknown option --json".
      const env = { STAGE: "dev", S3_BUCKET: "bucket-1", BACKUP_PROGRESS_SECONDS: "0" };
      expect(await main(["verify", "--json", "--deep"], env)).toBe(2);
      expect(await main(["restore", "--database", "x", "--json"], env)).toBe(2);
    } finally {
      restoreSink();
    }
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual([
      "invalid settings: BACKUP_PROGRESS_SECONDS='0' is not a positive whole number",
      "invalid settings: BACKUP_PROGRESS_SECONDS='0' is not a positive whole number",
    ]);
  });
});

describe("BACKUP_PROGRESS_SECONDS", () => {
  const env = { STAGE: "dev", S3_BUCKET: "bucket-1", PG_DB_HOST: "db", PG_DB_NAME: "app", PG_DB_USER: "u", PG_DB_PASSWORD: "pw-1234" };

  it("defaults to a line a minute, and is carried in the runner's settings", () => {
    expect(parseSettings(env).progressSeconds).toBe(60);
    expect(parseSettings({ ...env, BACKUP_PROGRESS_SECONDS: "5" }).progressSeconds).toBe(5);
    expect(parseProgressSeconds({ BACKUP_PROGRESS_SECONDS: " 300 " })).toBe(300);
  });

  it.each([
    ["0", "is not a positive whole number"],
    ["1.5", "is not a positive whole number"],
    ["-10", "is not a positive whole number"],
    ["1m", "is not a positive whole number"],
    ["2592000", "is more than a day (86400 seconds)"],
  ])("refuses %s, naming the variable", (value, why) => {
    expect(() => parseSettings({ ...env, BACKUP_PROGRESS_SECONDS: value })).toThrow(new SettingsError(`BACKUP_PROGRESS_SECONDS='${value}' ${why}`));
  });
});
