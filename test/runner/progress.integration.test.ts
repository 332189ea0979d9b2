/**
 * Progress lines from real transfers against the local S3: a dump that takes seconds logs one every
 * BACKUP_PROGRESS_SECONDS with growing counts, a quick one logs none, and the timer neither outlives
 * the target (a stopped run included) nor keeps the process from exiting. The dump tool is a
 * stand-in mongodump (MongoDB cannot be installed here) whose only job is to write at a known, slow
 * pace; restore and verify downloads are slowed by a throttling proxy in front of the local S3.
 */

import { once } from "node:events";
import { rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { main } from "../../image/src/cli";
import { setLogSink } from "../../image/src/log";
import { startLocalS3, type LocalS3 } from "../../scripts/lib/localS3";
import { fakeBin, runCli } from "../support/runner";
import { compileRunner, startRunner, waitUntil, type CompiledRunner } from "../support/runnerProcess";

let s3: LocalS3;
let bin: { dir: string; path: string };

/**
 * `--db=slow`: a first burst of 6 MB (more than one 5 MiB part), then 64 KiB every 0.2 s for `SLOW_SECONDS`;
 * `--db=big`: a 3 MB gzip stream at once (for the download tests); anything else: a few bytes at once.
 */
const mongodump = `#!/bin/bash
if [ "$1" = "--version" ]; then echo "mongodump version: 100.10.0 (stand-in)"; exit 0; fi
case "$4" in
  --db=slow)
    head -c 6000000 /dev/urandom
    for i in $(seq 1 $((SLOW_SECONDS * 5))); do head -c 65536 /dev/urandom; sleep 0.2; done;;
  --db=big) head -c 3000000 /dev/urandom | gzip -1;;
  *) printf 'quick\\n' | gzip -c;;
esac
`;

beforeAll(async () => {
  s3 = await startLocalS3();
  // mongorestore: restore's last step, after the download this test is about.
  bin = fakeBin({ mongodump, mongorestore: "#!/bin/bash\nexit 0\n" });
});

afterAll(async () => {
  await s3?.stop();
  if (bin) rmSync(bin.dir, { recursive: true, force: true });
});

const mongoTarget = (name: string) => ({ name, engine: "mongodb", uriEnv: "MONGO_URI", database: name });

function env(stage: string, targets: string[], more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...s3.env,
    PATH: bin.path,
    STAGE: stage,
    S3_PART_SIZE_MB: "5",
    MONGO_URI: "mongodb://backup:progress-Secret-9@127.0.0.1:1/x",
    BACKUP_TARGETS: JSON.stringify(targets.map(mongoTarget)),
    SLOW_SECONDS: "4",
    ...more,
  };
}

const progressOf = (lines: Record<string, unknown>[], target: string) => lines.filter((l) => l.msg === "backup progress" && l.target === target);

describe("a backup that runs for seconds, beside one that takes less than the interval", () => {
  let lines: Record<string, unknown>[];

  beforeAll(async () => {
    const run = await runCli(["backup"], env("prog", ["slow", "quick"], { BACKUP_PROGRESS_SECONDS: "1" }));
    expect(run.code).toBe(0);
    expect(run.text).not.toContain("progress-Secret-9");
    lines = run.lines;
  });

  it("logs a progress line about every interval while the dump runs, between 'backup started' and 'backup stored'", () => {
    const progress = progressOf(lines, "slow");
    // About 4.5 s of dump and upload at one line a second; fewer on a machine too busy to keep time.
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const started = lines.findIndex((l) => l.msg === "backup started" && l.target === "slow");
    const stored = lines.findIndex((l) => l.msg === "backup stored" && l.target === "slow");
    for (const line of progress) {
      expect(lines.indexOf(line)).toBeGreaterThan(started);
      expect(lines.indexOf(line)).toBeLessThan(stored);
      expect(line).toMatchObject({ level: "info", msg: "backup progress", target: "slow", engine: "mongodb" });
      expect(Object.keys(line).sort()).toEqual(["bytes", "elapsedSeconds", "engine", "intervalMibPerSecond", "level", "mibPerSecond", "msg", "partsSent", "target", "time"]);
    }
    const elapsed = progress.map((l) => l.elapsedSeconds as number);
    expect(elapsed[0]).toBeGreaterThanOrEqual(1);
    expect(elapsed[0]).toBeLessThan(2);
    for (let i = 1; i < elapsed.length; i++) expect(elapsed[i] - elapsed[i - 1]).toBeGreaterThanOrEqual(0.9);
  });

  it("counts growing bytes and parts, at a rate that matches them", () => {
    const progress = progressOf(lines, "slow");
    const bytes = progress.map((l) => l.bytes as number);
    for (let i = 1; i < bytes.length; i++) expect(bytes[i]).toBeGreaterThan(bytes[i - 1]);
    // The 6 MB burst fills the first 5 MiB part at once; S3 has acknowledged it by the second line.
    expect(progress[1].partsSent).toBeGreaterThanOrEqual(1);
    const parts = progress.map((l) => l.partsSent as number);
    for (let i = 1; i < parts.length; i++) expect(parts[i]).toBeGreaterThanOrEqual(parts[i - 1]);
    const stored = lines.find((l) => l.msg === "backup stored" && l.target === "slow")!;
    expect(bytes.at(-1)).toBeLessThanOrEqual(stored.bytes as number);
    for (const line of progress) {
      const overRun = (line.bytes as number) / 2 ** 20 / (line.elapsedSeconds as number);
      expect(line.mibPerSecond as number).toBeCloseTo(overRun, 0);
    }
    // The trickle after the burst: 64 KiB every 0.2 s, 0.3 MiB/s, well below the run's average then.
    const last = progress.at(-1)!;
    expect(last.intervalMibPerSecond as number).toBeGreaterThan(0.1);
    expect(last.intervalMibPerSecond as number).toBeLessThan(last.mibPerSecond as number);
  });

  it("logs none for a target that ends before the first interval", () => {
    expect(lines.some((l) => l.msg === "backup stored" && l.target === "quick")).toBe(true);
    expect(progressOf(lines, "quick")).toEqual([]);
  });
});

describe("a stop (SIGTERM) while the dump runs", () => {
  it("ends the progress lines with the target: none is written once the run has returned", async () => {
    const lines: Record<string, unknown>[] = [];
    // Kept after main() returns, to catch a timer that outlived the run.
    const restoreSink = setLogSink((line) => lines.push(JSON.parse(line)));
    const stop = new AbortController();
    try {
      const running = main(["backup"], env("progstop", ["slow"], { BACKUP_PROGRESS_SECONDS: "1", SLOW_SECONDS: "60" }), stop.signal);
      await waitUntil("a progress line", () => progressOf(lines, "slow").length >= 1);
      stop.abort("SIGTERM");
      expect(await running).toBe(143);
      const written = lines.length;
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(lines.length).toBe(written);
      expect(lines.at(-1)).toMatchObject({ msg: "backup run finished", stoppedBy: "SIGTERM" });
    } finally {
      restoreSink();
    }
  });
});

describe("the runner's process, compiled as in the image", () => {
  let runner: CompiledRunner;
  beforeAll(async () => {
    runner = await compileRunner();
  }, 180_000);
  afterAll(() => runner?.remove());

  it("exits as soon as the run is over: a progress timer does not keep it alive", async () => {
    // With lines every second, the timer is certainly running when the dump ends.
    const run = startRunner(runner, ["backup"], env("progexit", ["slow"], { BACKUP_PROGRESS_SECONDS: "1", SLOW_SECONDS: "2" }));
    await waitUntil("the run is over", () => run.lines.some((l) => l.msg === "backup run finished"));
    const finished = Date.now();
    const exited = await Promise.race([run.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref())]);
    if (!exited) run.kill("SIGKILL"); // kept alive: the failure below, without leaving the process behind
    expect(exited).toMatchObject({ code: 0, signal: null });
    expect(Date.now() - finished).toBeLessThan(5000);
    expect(progressOf(run.lines, "slow").length).toBeGreaterThanOrEqual(1);
  });
});

/**
 * An HTTP proxy in front of the local S3 that sends response bodies at about `bytesPerSecond`, so a
 * download of a few MB takes seconds, as a large one from S3 takes minutes. Requests pass unchanged
 * (the Host header too, so their signatures still hold).
 */
async function slowS3(target: string, bytesPerSecond: number): Promise<{ endpoint: string; server: Server }> {
  const upstream = new URL(target);
  const slice = 64 * 1024;
  const server = createServer((req, res) => {
    const forwarded = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, async (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      for await (const chunk of answer as AsyncIterable<Buffer>) {
        for (let at = 0; at < chunk.length; at += slice) {
          res.write(chunk.subarray(at, at + slice));
          await new Promise((resolve) => setTimeout(resolve, (slice / bytesPerSecond) * 1000));
        }
      }
      res.end();
    });
    forwarded.on("error", () => res.destroy());
    req.pipe(forwarded);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe("restore and verify downloads", () => {
  let proxy: { endpoint: string; server: Server };
  const stage = "progdl";

  beforeAll(async () => {
    const stored = await runCli(["backup"], env(stage, ["big"]));
    expect(stored.code).toBe(0);
    proxy = await slowS3(s3.endpoint, 1024 * 1024);
  });

  afterAll(() => proxy?.server.close());

  it("log the bytes downloaded of the manifest's total, and the percentage, every interval", async () => {
    const run = await runCli(["verify"], env(stage, ["big"], { AWS_ENDPOINT_URL_S3: proxy.endpoint, BACKUP_PROGRESS_SECONDS: "1" }));
    expect(run.code).toBe(0);
    const verified = run.lines.find((l) => l.msg === "verified")!;
    const total = verified.bytes as number;
    expect(total).toBeGreaterThan(2_900_000);
    const progress = run.lines.filter((l) => l.msg === "download progress");
    // About 3 s at 1 MiB/s.
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const line of progress) {
      expect(line).toMatchObject({ level: "info", target: "big", engine: "mongodb", key: verified.key, totalBytes: total });
      expect(line.percent).toBe(Math.floor(((line.bytes as number) / total) * 1000) / 10);
      expect(line.bytes as number).toBeLessThan(total);
    }
    const percents = progress.map((l) => l.percent as number);
    for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThan(percents[i - 1]);
    expect(run.lines.indexOf(progress.at(-1)!)).toBeLessThan(run.lines.indexOf(verified));
  });

  it("restore's download logs them too, before the restore itself", async () => {
    const run = await runCli(["restore", "--database", "big_restored"], env(stage, ["big"], { AWS_ENDPOINT_URL_S3: proxy.endpoint, BACKUP_PROGRESS_SECONDS: "1" }));
    expect(run.code).toBe(0);
    const progress = run.lines.filter((l) => l.msg === "download progress");
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toMatchObject({ level: "info", target: "big", engine: "mongodb" });
    expect(progress.at(-1)!.percent as number).toBeGreaterThan(progress[0].percent as number);
    expect(run.lines.at(-1)).toMatchObject({ msg: "restore finished" });
  });

  it("log none for a download that ends before the first interval", async () => {
    const run = await runCli(["verify"], env(stage, ["big"], { BACKUP_PROGRESS_SECONDS: "30" }));
    expect(run.code).toBe(0);
    expect(run.lines.filter((l) => l.msg === "download progress")).toEqual([]);
  });
});
