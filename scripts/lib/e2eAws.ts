/**
 * The AWS half of `npm run test:aws`: who the caller is, starting a task and waiting for it,
 * the bucket's keys, emptying the stack's bucket, and the resources an e2e stack tagged. Each call uses
 * the caller's own credentials (the standard chain), never the task's.
 */

import { CloudWatchClient, GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeImagesCommand, ECRClient, GetLifecyclePolicyPreviewCommand, StartLifecyclePolicyPreviewCommand } from "@aws-sdk/client-ecr";
import { DescribeTasksCommand, ECSClient, RunTaskCommand, StopTaskCommand, waitUntilTasksStopped } from "@aws-sdk/client-ecs";
import { paginateGetResources, ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { deletionBatches, stageTagKey, type MetricQuery, type RunTaskSettings, type TaggedResource, type TaskOutcome } from "./e2e";

/**
 * The caller's identity, or why there is none. Time-boxed: without credentials the SDK's chain ends at
 * the EC2 instance metadata endpoint, which off EC2 can take seconds per attempt to give up.
 */
export async function callerIdentity(region: string | undefined, timeoutMs = 15_000): Promise<{ arn: string; account: string } | { error: string }> {
  const client = new STSClient({ region: region ?? "us-east-1", maxAttempts: 1 });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const out = await client.send(new GetCallerIdentityCommand({}), { abortSignal: abort.signal });
    return { arn: out.Arn ?? "?", account: out.Account ?? "?" };
  } catch (err) {
    return { error: abort.signal.aborted ? `no answer within ${timeoutMs / 1000} s` : (err as Error).message };
  } finally {
    clearTimeout(timer);
    client.destroy();
  }
}

/**
 * Starts one task (the backup, the restore drill) with its schedule's network settings and waits until
 * ECS reports it STOPPED; the outcome's exit code is `containerName`'s.
 * When `interrupted` fires, the task is stopped first: ECS will not delete a cluster with a task in it.
 */
export async function runTaskAndWait(
  s: RunTaskSettings,
  containerName: string,
  maxWaitSeconds: number,
  interrupted: AbortSignal,
  say: (text: string) => void,
): Promise<TaskOutcome> {
  const ecs = new ECSClient({ region: s.region });
  try {
    const started = await ecs.send(
      new RunTaskCommand({
        cluster: s.cluster,
        taskDefinition: s.taskDefinition,
        launchType: "FARGATE",
        count: 1,
        networkConfiguration: { awsvpcConfiguration: { subnets: s.subnets, securityGroups: s.securityGroups, assignPublicIp: s.assignPublicIp } },
        startedBy: "db-backup-e2e",
      }),
    );
    const taskArn = started.tasks?.[0]?.taskArn;
    if (!taskArn) {
      const failures = (started.failures ?? []).map((f) => `${f.arn ?? ""} ${f.reason ?? ""} ${f.detail ?? ""}`.trim()).join("; ");
      throw new Error(`ECS started no task: ${failures || "no reason given"}`);
    }
    say(`task ${taskArn} started; waiting for it to stop (up to ${Math.round(maxWaitSeconds / 60)} min)`);
    const tasks = { cluster: s.cluster, tasks: [taskArn] };
    try {
      await waitUntilTasksStopped({ client: ecs, maxWaitTime: maxWaitSeconds, minDelay: 10, maxDelay: 30, abortSignal: interrupted }, tasks);
    } catch (err) {
      say(`stopping task ${taskArn}: ${interrupted.aborted ? "interrupted" : (err as Error).message}`);
      await ecs.send(new StopTaskCommand({ cluster: s.cluster, task: taskArn, reason: "db-backup e2e test interrupted or timed out" }));
      await waitUntilTasksStopped({ client: ecs, maxWaitTime: 300, minDelay: 10, maxDelay: 30 }, tasks);
      throw err;
    }
    const described = await ecs.send(new DescribeTasksCommand({ cluster: s.cluster, tasks: [taskArn] }));
    const task = described.tasks?.[0];
    const container = task?.containers?.find((c) => c.name === containerName);
    return { taskArn, exitCode: container?.exitCode, containerReason: container?.reason, stopCode: task?.stopCode, stoppedReason: task?.stoppedReason };
  } finally {
    ecs.destroy();
  }
}


/**
 * Deletes every version and delete marker under `prefix` and aborts its open multipart uploads. The
 * bucket is versioned: deleting keys alone would leave versions behind, and Pulumi cannot delete a
 * bucket that holds any (`forceDestroy` is off). Returns how many versions and markers were deleted.
 */
export async function emptyPrefix(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  const entries: { Key: string; VersionId?: string }[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) if (v.Key) entries.push({ Key: v.Key, VersionId: v.VersionId });
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
  } while (keyMarker !== undefined);
  for (const batch of deletionBatches(entries)) {
    const out = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
    if (out.Errors?.length) throw new Error(`could not delete ${out.Errors.length} object version(s) in ${bucket}: ${out.Errors.map((e) => `${e.Key}: ${e.Code}`).join(", ")}`);
  }
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  for (const u of uploads.Uploads ?? []) {
    if (u.Key && u.UploadId) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  return entries.length;
}

/** Every resource in the region carrying the stack's stage tag, whatever its value (the tag API cannot match a prefix). */
export async function resourcesWithStageTag(region: string): Promise<TaggedResource[]> {
  const client = new ResourceGroupsTaggingAPIClient({ region });
  const found: TaggedResource[] = [];
  try {
    for await (const page of paginateGetResources({ client }, { TagFilters: [{ Key: stageTagKey }] })) found.push(...(page.ResourceTagMappingList ?? []));
  } finally {
    client.destroy();
  }
  return found;
}

/**
 * Polls CloudWatch until the metric has a datapoint since `since`, and returns its Sum, or undefined
 * after `maxWaitSeconds`. Metrics extracted from logs appear a minute or more after the log line.
 */
export async function waitForMetric(region: string, query: MetricQuery, since: Date, maxWaitSeconds: number, interrupted: AbortSignal): Promise<number | undefined> {
  const cw = new CloudWatchClient({ region });
  try {
    const deadline = Date.now() + maxWaitSeconds * 1000;
    while (!interrupted.aborted) {
      const out = await cw.send(new GetMetricStatisticsCommand({ ...query, StartTime: new Date(since.getTime() - 60_000), EndTime: new Date(), Period: 60, Statistics: ["Sum"] }));
      const points = out.Datapoints ?? [];
      if (points.length > 0) return points.reduce((sum, p) => sum + (p.Sum ?? 0), 0);
      if (Date.now() > deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 30_000));
    }
    return undefined;
  } finally {
    cw.destroy();
  }
}

export interface RepositoryImages {
  /** Every image ECR lists in the repository: the pushed index, its platform images and attestations. */
  images: { digest: string; tags: string[]; mediaType?: string; artifactMediaType?: string }[];
  /** What the repository's lifecycle rule would expire now, by digest (its preview). */
  wouldExpire?: string[];
}

/**
 * What one push left in the repository and what the lifecycle rule would make of it: whether buildx's
 * image index and attestation manifests count as several images is not documented (docs/aws-behaviors.md).
 */
export async function repositoryImages(region: string, repository: string, interrupted: AbortSignal): Promise<RepositoryImages> {
  const ecr = new ECRClient({ region });
  try {
    const described = await ecr.send(new DescribeImagesCommand({ repositoryName: repository }));
    const images = (described.imageDetails ?? []).map((d) => ({
      digest: d.imageDigest ?? "?",
      tags: d.imageTags ?? [],
      mediaType: d.imageManifestMediaType,
      artifactMediaType: d.artifactMediaType,
    }));
    let wouldExpire: string[] | undefined;
    try {
      await ecr.send(new StartLifecyclePolicyPreviewCommand({ repositoryName: repository }));
      for (let i = 0; i < 20 && !interrupted.aborted; i++) {
        const preview = await ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName: repository }));
        if (preview.status === "COMPLETE") {
          wouldExpire = (preview.previewResults ?? []).map((r) => r.imageDigest ?? "?");
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 5_000));
      }
    } catch {
      // The preview is a report; the images are listed either way.
    }
    return { images, wouldExpire };
  } finally {
    ecr.destroy();
  }
}
