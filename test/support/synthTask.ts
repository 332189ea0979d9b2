/**
 * The stack's two tasks as the offline synth renders them, each with what a faithful run of it needs:
 * its container definition, its task role and that role's policy. The backup and the verifier (restore
 * drill) task are told apart by the stack's own outputs (taskDefinitionArn, drillTaskDefinitionArn).
 */

import type { RecordedResource } from "../../scripts/lib/mocks";
import type { SynthResult } from "../../scripts/lib/synth";

export type TaskKind = "backup" | "drill";

/** The fields of a container definition a run of it depends on. */
export interface ContainerDefinition {
  name: string;
  user: string;
  readonlyRootFilesystem: boolean;
  command?: string[];
  entryPoint?: string[];
  environment: { name: string; value: string }[];
  secrets: { name: string; valueFrom: string }[];
  mountPoints: { sourceVolume: string; containerPath: string; readOnly: boolean }[];
  linuxParameters?: { initProcessEnabled?: boolean };
}

export interface SynthTask {
  taskDefinition: RecordedResource;
  /** Its one container. */
  container: ContainerDefinition;
  taskRole: RecordedResource;
  /** The task role's policy document, as synthesized (JSON). */
  taskPolicy: string;
}

const arnOutput: Record<TaskKind, string> = { backup: "taskDefinitionArn", drill: "drillTaskDefinitionArn" };

/**
 * One task of the synth: the stage's backup or verifier task, or with `target` (isolation per-target)
 * that target's own backup task, found by the stack's outputs (targetTasks for a target's).
 */
export function synthTask(graph: SynthResult, kind: TaskKind, target?: string): SynthTask {
  const what = target ? `${kind} task of ${target}` : `${kind} task`;
  const find = (thing: string, test: (r: RecordedResource) => boolean) => {
    const found = graph.resources.filter(test);
    if (found.length !== 1) throw new Error(`the ${what}: expected one ${thing} in the synth of ${graph.stack}, found ${found.length}`);
    return found[0];
  };
  const arn = target ? (graph.outputs.targetTasks as Record<string, { taskDefinitionArn: string }>)[target]?.taskDefinitionArn : graph.outputs[arnOutput[kind]];
  const taskDefinition = find("task definition", (r) => r.type === "aws:ecs/taskDefinition:TaskDefinition" && r.outputs.arn === arn);
  const containers = JSON.parse(taskDefinition.inputs.containerDefinitions as string) as ContainerDefinition[];
  if (containers.length !== 1) throw new Error(`the ${what} has ${containers.length} containers; the failure alerts read containers[0]'s exit code`);
  const taskRole = find("task role", (r) => r.type === "aws:iam/role:Role" && r.outputs.arn === taskDefinition.inputs.taskRoleArn);
  const taskPolicy = find("task role policy", (r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.inputs.role === taskRole.outputs.id).inputs.policy as string;
  return { taskDefinition, container: containers[0], taskRole, taskPolicy };
}

/** The container's environment as the task definition sets it (secrets not included). */
export function environmentOf(container: ContainerDefinition): Record<string, string> {
  return Object.fromEntries(container.environment.map((e) => [e.name, e.value]));
}
