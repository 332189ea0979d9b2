/**
 * The one-CPU model of `npm run bench` holds only if a backend the server forks after pinning runs where
 * the postmaster was put: checked here against a real cluster, since Linux decides it, not our code.
 */
import { affinityOf, backendCpus, pin, serverProcesses, tasksetProblem } from "../../scripts/lib/cpuPinning";
import { startLocalPostgres, type LocalPostgres } from "../../scripts/lib/localPostgres";

const problem = tasksetProblem();
const cpus = problem ? [] : affinityOf(process.pid)!;
const reason = problem ?? (cpus.length < 2 ? `this process may run only on CPU ${cpus.join(",")}` : undefined);
if (reason) process.stderr.write(`cpuPinning: the pinning test is skipped: ${reason}\n`);
const maybe = reason ? test.skip : test;

describe("pinning the PostgreSQL server for the one-CPU model", () => {
  let pg: LocalPostgres | undefined;
  afterAll(() => pg?.stop());

  maybe("a backend started after the postmaster and its children are pinned runs only on the servers' CPU", async () => {
    pg = await startLocalPostgres();
    if (process.env.PGTEST_HOST) {
      // A service container: its processes are not this machine's to pin, and the bench must say so.
      process.stderr.write("cpuPinning: PGTEST_HOST names a server in a container; only the refusal to pin it is checked\n");
      expect(() => serverProcesses(pg!)).toThrow(/not a process on this machine/);
      return;
    }
    const servers = serverProcesses(pg);
    expect(servers.length).toBeGreaterThan(1); // the postmaster and its auxiliary processes
    const target = cpus[cpus.length - 1];
    expect(backendCpus(pg)).toContain(cpus[0]);
    pin(servers, [target]);
    expect(backendCpus(pg)).toEqual([target]);
    // The postmaster and its auxiliary processes; a backend of an earlier session may have exited since.
    const living = servers.filter((pid) => affinityOf(pid) !== undefined);
    expect(living).toContain(servers[0]);
    for (const pid of living) expect(affinityOf(pid)).toEqual([target]);
  });

  test("without taskset on PATH the model is refused with the reason", () => {
    expect(tasksetProblem({ PATH: "/nonexistent" })).toMatch(/taskset \(util-linux\) is not on PATH/);
  });
});
