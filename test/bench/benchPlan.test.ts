import { cpuModels, databaseRows, defaultCompressions, describeCompression, fullRows, medianBy, parseCpuList, requestedCompressions, splitCpus } from "../../scripts/lib/benchPlan";
import { defaultPgCompression } from "../../image/src/engines";

describe("what npm run bench measures", () => {
  test("both CPU models unless BENCH_CPU_MODEL picks one; anything else is refused by name", () => {
    expect(cpuModels(undefined)).toEqual(["all", "1vcpu"]);
    expect(cpuModels("both")).toEqual(["all", "1vcpu"]);
    expect(cpuModels("1VCPU")).toEqual(["1vcpu"]);
    expect(cpuModels("all")).toEqual(["all"]);
    expect(() => cpuModels("2vcpu")).toThrow(/BENCH_CPU_MODEL='2vcpu'.*all.*1vcpu.*both/);
  });

  test("BENCH_SCALE scales both databases and refuses what is not a size", () => {
    expect(databaseRows(undefined)).toEqual({ scale: 1, ...fullRows });
    expect(databaseRows("0.1")).toEqual({ scale: 0.1, large: 260_000, small: 100_000 });
    for (const bad of ["0", "-1", "many", "11"]) expect(() => databaseRows(bad)).toThrow(/BENCH_SCALE/);
  });

  test("pg_dump 15 is measured with gzip levels and none; 16 and later with zstd:1 and lz4 as well; the runner's own default first", () => {
    expect(defaultCompressions(15)).toEqual(["1", "6", "0"]);
    for (const major of [16, 17, 18]) {
      expect(defaultCompressions(major)).toEqual(expect.arrayContaining(["zstd:1", "lz4", "1", "6", "none"]));
    }
    for (const major of [14, 15, 16, 17, undefined]) expect(defaultCompressions(major)[0]).toBe(defaultPgCompression(major));
    // pg_dump before 16 takes only a level: no method name may reach it by default.
    expect(defaultCompressions(15).every((c) => /^\d$/.test(c))).toBe(true);
  });

  test("BENCH_COMPRESSIONS picks from the list, in its order, without repeats", () => {
    expect(requestedCompressions(" zstd:1, 1 ,zstd:1,", 17)).toEqual(["zstd:1", "1"]);
    expect(requestedCompressions("", 15)).toEqual(defaultCompressions(15));
    expect(requestedCompressions(undefined, 17)).toEqual(defaultCompressions(17));
  });

  test("a bare level is gzip's, 0 and none are none, methods stay as written", () => {
    expect(["1", "6", "0", "none", "zstd:1", "lz4"].map(describeCompression)).toEqual(["gzip:1", "gzip:6", "none", "none", "zstd:1", "lz4"]);
  });

  test("taskset's CPU lists, ranges included", () => {
    expect(parseCpuList("0,2-3\n")).toEqual([0, 2, 3]);
    expect(parseCpuList("1")).toEqual([1]);
    expect(() => parseCpuList("0-")).toThrow(/not a CPU list/);
  });

  test("the dump gets the first CPU and the servers the rest; one CPU is a reason, not a layout", () => {
    expect(splitCpus([0, 1, 2, 3])).toEqual({ dump: 0, servers: [1, 2, 3] });
    expect(splitCpus([2, 5])).toEqual({ dump: 2, servers: [5] });
    expect(splitCpus([1])).toEqual({ reason: expect.stringMatching(/only on CPU 1.*another/) });
  });

  test("the median round is one of the rounds, the lower middle for an even count", () => {
    const rounds = [{ r: 1.4 }, { r: 1.1 }, { r: 1.9 }, { r: 1.2 }];
    expect(medianBy(rounds, (x) => x.r)).toBe(rounds[3]);
    expect(medianBy(rounds.slice(0, 3), (x) => x.r)).toBe(rounds[0]);
    expect(() => medianBy([], (x: number) => x)).toThrow();
  });
});
