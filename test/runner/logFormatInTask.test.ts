/**
 * The runner chooses its log's form from whether stdout is a terminal (cli.ts readableOutput). In the
 * task it must be JSON, one object per line, which the awslogs driver sends to CloudWatch and which
 * CloudWatch parses (and turns into metrics). ECS gives a container a terminal only when its
 * definition asks for one: "pseudoTerminal: When this parameter is true, a TTY is allocated. This
 * parameter maps to Tty in the docker container create command and the --tty option to docker run"
 * (ContainerDefinition, AWS SDK for Kotlin API reference,
 * https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ecs/aws.sdk.kotlin.services.ecs.model/-container-definition/-builder/pseudo-terminal.html;
 * "Task definition parameters", https://docs.aws.amazon.com/AmazonECS/latest/userguide/task_definition_parameters.html).
 * So no committed stack may ask for one.
 */

import { readableOutput } from "../../image/src/cli";
import { committedStacks, readStackFile } from "../../scripts/lib/stackFiles";
import type { SynthResult } from "../../scripts/lib/synth";

async function synth(stack: string): Promise<SynthResult> {
  jest.resetModules();
  const { synthesize } = await import("../../scripts/lib/synth");
  return synthesize(stack);
}

it.each(committedStacks())("stack %s: the runner's containers (backup and restore drill) get no terminal, so they log JSON", async (stack) => {
  const graph = await synth(stack);
  const taskDefinitions = graph.resources.filter((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition");
  // The verifier's and the backup's: the stage's one, or one per target (isolation per-target).
  const file = readStackFile(stack);
  const backups = file["db-backup:isolation"] === "per-target" ? (JSON.parse(file["db-backup:targets"]) as { name: string }[]).map((t) => `db-backup-${stack}-${t.name}-task`) : [`db-backup-${stack}-task`];
  expect(taskDefinitions.map((t) => t.name).sort()).toEqual([`db-backup-${stack}-drill`, ...backups].sort());
  for (const taskDefinition of taskDefinitions) {
    const [container] = JSON.parse(taskDefinition.inputs.containerDefinitions as string) as Record<string, unknown>[];
    expect(container.logConfiguration).toMatchObject({ logDriver: "awslogs" });
    expect(container.pseudoTerminal).not.toBe(true);
    // Without a TTY Node leaves process.stdout.isTTY undefined; a container runs its command, or the image's `backup`.
    const isTTY = container.pseudoTerminal === true ? true : undefined;
    expect(readableOutput(isTTY, (container.command as string[] | undefined) ?? ["backup"])).toBe(false);
  }
});
