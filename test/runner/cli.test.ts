import { signalExitCode } from "../../image/src/cli";

it("exits a stopped command with what a shell reports for a process killed by the signal", () => {
  expect(signalExitCode("SIGTERM")).toBe(143);
  expect(signalExitCode("SIGINT")).toBe(130);
  // An abort that came from no signal still fails the command.
  expect(signalExitCode(new Error("stopped"))).toBe(1);
});
