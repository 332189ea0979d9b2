/**
 * EventBridge as documented, for the two things the alert rules rely on, and ECS task state change
 * events shaped as ECS sends them. A model, not an emulator: it implements the documented rules and
 * refuses (throws on) pattern syntax it does not implement.
 *
 * - Matching ("Amazon EventBridge event patterns",
 *   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html): "the event must
 *   contain all the field names listed in the event pattern", with the same nesting; a pattern's values
 *   are a list, any one of which may match; where the event holds an array, the pattern matches if any
 *   element does ("Arrays in Amazon EventBridge event patterns",
 *   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html); prefix and
 *   anything-but as in "Content filtering"; $or as any of its patterns.
 * - Input transformation ("Amazon EventBridge input transformation",
 *   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html): each input
 *   path names a value of the event; "if you specify a variable to match a JSON path that doesn't exist
 *   in the event, that variable isn't created and won't appear in the output"; "EventBridge doesn't
 *   escape values extracted by Input Path, when populating the Input Template".
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function leafMatches(rule: Json, value: Json): boolean {
  if (rule === null || typeof rule !== "object") return rule === value;
  if (Array.isArray(rule)) throw new Error("the model does not take nested value lists");
  const [op, arg] = Object.entries(rule)[0];
  if (Object.keys(rule).length !== 1) throw new Error(`the model takes one operator per value, not ${JSON.stringify(rule)}`);
  switch (op) {
    case "prefix":
      if (typeof arg !== "string") throw new Error("the model takes a plain string prefix only");
      return typeof value === "string" && value.startsWith(arg);
    case "anything-but":
      if (arg !== null && typeof arg === "object") throw new Error("the model takes a plain anything-but value only");
      return value !== arg;
    default:
      throw new Error(`the model does not know the pattern operator ${op}`);
  }
}

/** True when the event matches the pattern. */
export function patternMatches(pattern: Json, event: Json): boolean {
  if (pattern === null || typeof pattern !== "object" || Array.isArray(pattern)) throw new Error("a pattern is an object");
  return Object.entries(pattern).every(([key, rule]) => {
    if (key === "$or") {
      if (!Array.isArray(rule)) throw new Error("$or takes a list of patterns");
      return rule.some((p) => patternMatches(p, event));
    }
    if (event === null || typeof event !== "object" || Array.isArray(event) || !(key in event)) return false;
    const value = event[key];
    const candidates: Json[] = Array.isArray(value) ? value : [value];
    if (Array.isArray(rule)) return candidates.some((v) => rule.some((r) => leafMatches(r, v)));
    return candidates.some((v) => patternMatches(rule, v));
  });
}

/** The value at a JSON path of the dot-and-index form input paths use ($.detail.containers[0].exitCode). */
export function jsonPath(event: Json, path: string): Json | undefined {
  if (!path.startsWith("$")) throw new Error(`'${path}' is not a JSON path`);
  const steps = [...path.slice(1).matchAll(/\.([A-Za-z0-9_-]+)|\[(\d+)\]/g)];
  if (steps.map((m) => m[0]).join("") !== path.slice(1)) throw new Error(`the model does not read the path '${path}'`);
  let at: Json | undefined = event;
  for (const [, field, index] of steps) {
    if (at === null || typeof at !== "object") return undefined;
    at = field !== undefined ? (Array.isArray(at) ? undefined : at[field]) : Array.isArray(at) ? at[Number(index)] : undefined;
    if (at === undefined) return undefined;
  }
  return at;
}

export interface Transformed {
  /** What EventBridge hands the target. */
  output: string;
  /** Variables of inputPaths whose path the event does not have (not created). */
  missing: string[];
}

/**
 * A string template filled in: each created variable's value put in as it is, unescaped; a variable
 * that was not created leaves nothing. (Only string templates: the alert texts are strings.)
 */
export function transformString(inputPaths: Record<string, string>, template: string, event: Json): Transformed {
  if (!template.startsWith('"')) throw new Error("the model fills string templates only");
  const created = new Map<string, Json>();
  const missing: string[] = [];
  for (const [name, path] of Object.entries(inputPaths)) {
    const value = jsonPath(event, path);
    if (value === undefined) missing.push(name);
    else created.set(name, value);
  }
  const output = template.replace(/<([A-Za-z0-9_.-]+)>/g, (_all, name: string) => {
    if (!(name in inputPaths)) throw new Error(`the template uses <${name}>, which no input path defines`);
    const value = created.get(name);
    if (value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  });
  return { output, missing };
}

export type StopKind = "target-failed" | "oom-killed" | "succeeded" | "image-pull-failed" | "secrets-failed";

/**
 * An "ECS Task State Change" event for a stopped task, in the shape of the example in the Amazon ECS
 * Developer Guide ("Amazon ECS task state change events",
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html), with the fields a
 * stopped task adds (stopCode, stoppedReason, stoppedAt, the container's exitCode once it ran, per the
 * Task and Container objects of DescribeTasks, which the event's detail resembles). A task that failed
 * to start has a container that never ran: no exitCode. The reasons are ECS's own wording, quotes included.
 */
export function stoppedTaskEvent(i: { clusterArn: string; taskDefinitionArn: string; kind: StopKind }): Record<string, Json> {
  const [, , , region, account] = i.clusterArn.split(":");
  const cluster = i.clusterArn.split("/").pop()!;
  const taskArn = `arn:aws:ecs:${region}:${account}:task/${cluster}/c13b4cb40f1f4fe4a2971f76ae5a47ad`;
  const image = `${account}.dkr.ecr.${region}.amazonaws.com/db-backup@sha256:74b2c688c700ec95a93e478cdb959737c148df3fbf5ea706abe0318726e885e6`;
  const ran = i.kind === "target-failed" || i.kind === "oom-killed" || i.kind === "succeeded";
  const stop: Record<StopKind, { stopCode: string; stoppedReason: string; exitCode?: number; reason?: string }> = {
    "target-failed": { stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited", exitCode: 1 },
    "oom-killed": { stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited", exitCode: 137, reason: "OutOfMemoryError: Container killed due to memory usage" },
    succeeded: { stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited", exitCode: 0 },
    "image-pull-failed": {
      stopCode: "TaskFailedToStart",
      stoppedReason: `CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "${image}": not found`,
    },
    "secrets-failed": {
      stopCode: "TaskFailedToStart",
      stoppedReason: `ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: "arn:aws:sts::${account}:assumed-role/x" is not authorized \\ ssm:GetParameters`,
    },
  };
  const s = stop[i.kind];
  const container: Record<string, Json> = {
    containerArn: `arn:aws:ecs:${region}:${account}:container/${cluster}/c13b4cb40f1f4fe4a2971f76ae5a47ad/cf159fd6-3e3f-4a9e-84f9-66cbe726af01`,
    lastStatus: "STOPPED",
    name: "backup",
    image,
    taskArn,
    networkInterfaces: [{ attachmentId: "1789bcae-ddfb-4d10-8ebe-8ac87ddba5b8", privateIpv4Address: "10.0.0.139" }],
    cpu: "0",
  };
  if (ran) container.runtimeId = "ad64cbc71c7fb31c55507ec24c9f77947132b03d48d9961115cf24f3b7307e1e";
  if (s.exitCode !== undefined) container.exitCode = s.exitCode;
  if (s.reason) container.reason = s.reason;
  return {
    version: "0",
    id: "3317b2af-7005-947d-b652-f55e762e571a",
    "detail-type": "ECS Task State Change",
    source: "aws.ecs",
    account,
    time: "2026-11-30T03:05:58Z",
    region,
    resources: [taskArn],
    detail: {
      attachments: [{ id: "1789bcae-ddfb-4d10-8ebe-8ac87ddba5b8", type: "eni", status: "DELETED", details: [{ name: "subnetId", value: "subnet-abcd1234" }] }],
      availabilityZone: `${region}a`,
      clusterArn: i.clusterArn,
      containers: [container],
      createdAt: "2026-11-30T03:00:04.402Z",
      launchType: "FARGATE",
      cpu: "1024",
      memory: "2048",
      desiredStatus: "STOPPED",
      group: `family:${i.taskDefinitionArn.split("/").pop()!.split(":")[0]}`,
      lastStatus: "STOPPED",
      overrides: { containerOverrides: [{ name: "backup" }] },
      connectivity: "CONNECTED",
      ...(ran ? { startedAt: "2026-11-30T03:00:58.103Z", pullStartedAt: "2026-11-30T03:00:52.103Z", pullStoppedAt: "2026-11-30T03:00:55.103Z" } : {}),
      stopCode: s.stopCode,
      stoppedReason: s.stoppedReason,
      stoppingAt: "2026-11-30T03:05:50.103Z",
      stoppedAt: "2026-11-30T03:05:58.103Z",
      updatedAt: "2026-11-30T03:05:58.103Z",
      taskArn,
      taskDefinitionArn: i.taskDefinitionArn,
      version: 6,
      platformVersion: "1.4.0",
    },
  };
}

export const stopKinds: StopKind[] = ["image-pull-failed", "secrets-failed", "target-failed", "oom-killed", "succeeded"];
