/**
 * The image's account step, run for real: the Dockerfile's RUN that creates the runner's user and its
 * scratch directory, as root against this Debian 12's own account files in a sandbox. Debian's
 * base-passwd already has a user and a group named "backup" (34), so `groupadd backup` exits 9 and
 * the image never builds; that is what this test catches.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runnerUser, scratchPath } from "../../components/taskDefinition";
import { fileMode, runAccountStep, sandboxUnavailable, type AccountStep } from "../support/image";
import { repoRoot } from "../support/runner";

const unavailable = sandboxUnavailable();
if (unavailable) process.stderr.write(`test/image/accounts.test.ts skipped: ${unavailable}\n`);
const maybe = unavailable ? describe.skip : describe;

it("models Debian 12's base accounts: base-passwd has a group and a user named backup", () => {
  expect(readFileSync("/usr/share/base-passwd/group.master", "utf8")).toMatch(/^backup:\*:34:/m);
  expect(readFileSync("/usr/share/base-passwd/passwd.master", "utf8")).toMatch(/^backup:\*:34:34:/m);
});

maybe("the Dockerfile's account step against Debian 12's accounts", () => {
  let step: AccountStep;
  const [uid, gid] = runnerUser.split(":").map(Number);

  beforeAll(() => {
    step = runAccountStep(readFileSync(join(repoRoot, "image/Dockerfile"), "utf8"));
  });
  afterAll(() => step?.remove());

  it("succeeds", () => {
    expect({ status: step.status, stderr: step.stderr }).toEqual({ status: 0, stderr: expect.not.stringMatching(/already exists|error/i) });
  });

  it("creates the user and group the task definition runs as, without a login shell", () => {
    const user = readFileSync(join(step.etc, "passwd"), "utf8").split("\n").find((l) => l.split(":")[2] === String(uid));
    expect(user?.split(":")).toEqual([expect.any(String), "x", String(uid), String(gid), "", expect.any(String), "/usr/sbin/nologin"]);
    expect(readFileSync(join(step.etc, "group"), "utf8").split("\n").some((l) => l.split(":")[2] === String(gid))).toBe(true);
  });

  it("leaves the scratch volume owned by the runner's user, private to it", () => {
    expect(Object.keys(step.volumes)).toEqual([scratchPath]);
    expect(fileMode(step.volumes[scratchPath])).toEqual({ uid, gid, mode: 0o700 });
  });
});
