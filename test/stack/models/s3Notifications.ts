/**
 * S3 Event Notifications to an SNS topic as the S3 User Guide documents them, for the replication
 * failure alert. A model, not an emulator: it implements the documented rules and throws on what it does
 * not implement (filters, queues, functions, EventBridge).
 *
 * - Setting the configuration: "The Amazon SNS topic must be in the same region as your Amazon S3
 *   bucket"; standard topics only ("SNS FIFO is not allowed"); and S3 publishes an `s3:TestEvent` "to
 *   ensure that the topic exists and that the bucket owner has permission to publish the specified topic.
 *   If enabling the notification fails, you do not receive test notification" ("Amazon S3 Event
 *   Notifications", event types and destinations,
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-event-types-and-destinations.html,
 *   2023 copy). The permission is the topic policy's answer to `s3.amazonaws.com` publishing with the
 *   bucket as `aws:SourceArn` and its owner as `aws:SourceAccount` ("Granting permissions to publish
 *   event notification messages to a destination",
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html),
 *   asked of the IAM simulator (test/support/iam.ts).
 * - Which events: a configuration lists event types, a `*` ending one matching the family; a record's
 *   `eventName` is the type without its `s3:` prefix ("Event message structure",
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html, 2023 copy).
 * - Replication failures: "To receive replication failure event notifications
 *   (s3:Replication:OperationFailedReplication), you must enable S3 Replication metrics on your
 *   replication rule" ("Receiving replication failure events with Amazon S3 Event Notifications",
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-metrics-events.html); the record is
 *   event version 2.2, from S3 itself, with `replicationEventData` (rule, destination bucket, operation,
 *   `failureReason`) as that page's example and the SDKs' S3EventNotification type show it.
 */

import { allows } from "../../support/iam";

export interface TopicConfiguration {
  id?: string;
  topicArn: string;
  events: string[];
  filterPrefix?: string;
  filterSuffix?: string;
}

export interface Bucket {
  name: string;
  arn: string;
  region: string;
  owner: string;
}

export interface Topic {
  arn: string;
  policy: string;
}

const regionOf = (arn: string) => arn.split(":")[3];

/** Why S3 would refuse the bucket's notification configuration, or undefined when it takes it (and sends each topic its test message). */
export async function configurationProblem(bucket: Bucket, configurations: TopicConfiguration[], topics: Topic[]): Promise<string | undefined> {
  for (const c of configurations) {
    if (c.filterPrefix !== undefined || c.filterSuffix !== undefined) throw new Error("the model does not take key filters");
    const topic = topics.find((t) => t.arn === c.topicArn);
    if (!topic) return `topic ${c.topicArn} does not exist`;
    if (regionOf(topic.arn) !== bucket.region) return `topic ${topic.arn} is not in the bucket's region ${bucket.region}`;
    if (topic.arn.endsWith(".fifo")) return `topic ${topic.arn} is a FIFO topic`;
    const publishes = await allows(topic.policy, {
      principal: "s3.amazonaws.com",
      action: "sns:Publish",
      resource: topic.arn,
      context: { "aws:SourceArn": bucket.arn, "aws:SourceAccount": bucket.owner },
    });
    if (!publishes) return `the policy of topic ${topic.arn} does not let S3 publish for ${bucket.arn}`;
  }
  return undefined;
}

function typeMatches(configured: string, eventName: string): boolean {
  const type = `s3:${eventName}`;
  return configured.endsWith("*") ? type.startsWith(configured.slice(0, -1)) : type === configured;
}

/** The topics S3 publishes a record to: one message per matching configuration. */
export function recipients(configurations: TopicConfiguration[], record: { eventName: string }): string[] {
  return configurations.filter((c) => c.events.some((e) => typeMatches(e, record.eventName))).map((c) => c.topicArn);
}

/** One record of a notification message's `Records`. */
export type S3Record = { eventName: string } & Record<string, unknown>;

export interface ReplicationRule {
  id: string;
  destination: { bucket: string; metrics?: { status: string } };
}

/**
 * The record S3 sends when an object of the rule fails to replicate, or none when the rule has no
 * replication metrics (S3 then reports no failure event).
 */
export function replicationFailureRecord(i: { bucket: Bucket; rule: ReplicationRule; key: string; versionId: string; failureReason: string; at: string }): S3Record | undefined {
  if (i.rule.destination.metrics?.status !== "Enabled") return undefined;
  return {
    eventVersion: "2.2",
    eventSource: "aws:s3",
    awsRegion: i.bucket.region,
    eventTime: i.at,
    eventName: "Replication:OperationFailedReplication",
    userIdentity: { principalId: "s3.amazonaws.com" },
    requestParameters: { sourceIPAddress: "s3.amazonaws.com" },
    responseElements: { "x-amz-request-id": "123bf045-2b4b-4ca8-a211-c44e2EXAMPLE", "x-amz-id-2": "EXAMPLE" },
    s3: {
      s3SchemaVersion: "1.0",
      configurationId: "",
      bucket: { name: i.bucket.name, ownerIdentity: { principalId: "A3NL1KOZZKExample" }, arn: i.bucket.arn },
      object: { key: i.key, size: 1024, eTag: "d41d8cd98f00b204e9800998ecf8427e", versionId: i.versionId, sequencer: "0055AED6DCD90281E5" },
    },
    replicationEventData: {
      replicationRuleId: i.rule.id,
      destinationBucket: i.rule.destination.bucket,
      s3Operation: "OBJECT_PUT",
      requestTime: i.at,
      failureReason: i.failureReason,
    },
  };
}

/** An object created in the bucket, as S3 reports an upload. */
export function objectCreatedRecord(bucket: Bucket, key: string): S3Record {
  return { eventVersion: "2.1", eventSource: "aws:s3", awsRegion: bucket.region, eventName: "ObjectCreated:Put", s3: { bucket: { name: bucket.name, arn: bucket.arn }, object: { key } } };
}
