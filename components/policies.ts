/**
 * The IAM and resource policy documents, as pure functions of ARNs, so each can be read and evaluated
 * in a test without any mock. Every grant names its resource; the only "*" resource is
 * ecr:GetAuthorizationToken, which AWS defines on no resource.
 */

import type { Engine } from "../image/src/contract";

export interface Statement {
  Sid: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  /** Absent only in trust policies, where IAM refuses a Resource. */
  Resource?: string | string[];
  Principal?: Record<string, string | string[]> | "*";
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

const doc = (...statements: Statement[]): PolicyDocument => ({ Version: "2012-10-17", Statement: statements });

/** Who may assume a role: one service, and only on behalf of this account (confused-deputy guard). */
export function assumeRolePolicy(service: string, accountId: string): PolicyDocument {
  return doc({
    Sid: "AssumedByService",
    Effect: "Allow",
    Principal: { Service: service },
    Action: "sts:AssumeRole",
    Condition: { StringEquals: { "aws:SourceAccount": accountId } },
  });
}

export interface ExecutionRoleInputs {
  repositoryArn: string;
  logGroupArn: string;
  /** The task's SSM parameters; none for the verifier task, whose role then reads no parameter at all. */
  parameterArns: string[];
}

/**
 * What ECS needs to start a task: pull its image, write its logs, read exactly its own secrets. The backup
 * and the verifier task each have their own execution role built here: the verifier has no secret, so
 * its role has no SSM grant (IAM also refuses a statement with an empty Resource).
 */
export function executionRolePolicy(i: ExecutionRoleInputs): PolicyDocument {
  const statements: Statement[] = [
    { Sid: "EcrLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    { Sid: "PullImage", Effect: "Allow", Action: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: i.repositoryArn },
    { Sid: "WriteLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${i.logGroupArn}:log-stream:*` },
  ];
  if (i.parameterArns.length > 0) statements.push({ Sid: "ReadOwnSecrets", Effect: "Allow", Action: "ssm:GetParameters", Resource: i.parameterArns });
  return doc(...statements);
}

/**
 * Whether S3 encrypts the stage's objects with an S3 Bucket Key, which decides the encryption context S3
 * sends to KMS: "enabled" (the bucket's ARN), "disabled" (the object's ARN), or "unknown" (an existing
 * bucket whose setting this stack does not manage: either).
 */
export type BucketKeySetting = "enabled" | "disabled" | "unknown";

export interface TaskRoleInputs {
  bucketArn: string;
  stage: string;
  /** The bucket's SSE-KMS key and its Bucket Key setting; absent for SSE-S3. */
  kms?: { keyArn: string; bucketKey: BucketKeySetting };
  /**
   * The backup's targets when it is one target's task (isolation per-target): it may then write only
   * `<stage>/<engine>/<name>/*` of these. Absent: the whole stage's engine prefixes.
   */
  targets?: { engine: Engine; name: string }[];
}

/** The region of a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>). */
export function kmsKeyRegion(keyArn: string): string {
  const region = keyArn.split(":")[3];
  if (!region) throw new Error(`'${keyArn}' is not a KMS key ARN`);
  return region;
}

/**
 * The values of aws:s3:arn that S3 puts in the encryption context when it asks KMS for the data keys of
 * the objects a role may touch (`objectArns`, ARN patterns: the stage's, or one target's prefix for a
 * per-target backup). Without a Bucket Key it is the object's ARN, with one the bucket's ARN ("Protecting Data
 * Using Server-Side Encryption with AWS KMS (SSE-KMS)", Encryption context,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context;
 * "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys", changes to note before enabling,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html#bucket-key-changes).
 *
 * For an existing bucket ("unknown") both are allowed: its owner may turn the Bucket Key on or off at any
 * time, and a config flag restating it would be one more thing to get wrong. This widens nothing the task
 * can do: kms:ViaService keeps every use of the key inside S3, and S3 only asks KMS for the requests the
 * role may make (the backup's PutObject under its engines' prefixes, the verifier's reads of its stage and
 * writes of drill records); the bucket's ARN is the only context S3 sends with a Bucket Key, whoever asks.
 * So with a Bucket Key a per-target backup's key grant is no narrower than its stage's: its S3 statement
 * alone keeps it to its prefix.
 */
export function s3EncryptionContexts(bucketArn: string, objectArns: string[], bucketKey: BucketKeySetting): string[] {
  if (bucketKey === "enabled") return [bucketArn];
  if (bucketKey === "disabled") return objectArns;
  return [bucketArn, ...objectArns];
}

/**
 * The prefixes the backup writes under, one per engine (image/src/keys.ts backupKey:
 * `<stage>/<engine>/<name>/…`). A record, so that a new engine fails the type check here until its
 * prefix is granted.
 */
const enginePrefixes: Record<Engine, string> = { postgres: "postgres", mongodb: "mongodb" };

/** Where the verifier writes its drill records (image/src/keys.ts drillKey: `<stage>/drills/<name>/…`). */
export const drillsPrefix = "drills";

/**
 * The KMS grant a role needs for the S3 requests it may make on an SSE-KMS bucket: only through S3 in the
 * key's region, which is the bucket's (S3 requires the key in the bucket's region, "Protecting Data Using
 * Server-Side Encryption with AWS KMS (SSE-KMS)"; kms:ViaService names S3 as s3.<region>.amazonaws.com,
 * AWS KMS Developer Guide, "AWS KMS condition keys",
 * https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service),
 * and only with the encryption context S3 sends for this stage's objects (s3EncryptionContexts). S3 asks
 * KMS only for requests the role's S3 statements allow, so those decide what is read or written.
 */
function encryptThroughS3(i: TaskRoleInputs, actions: string[], { sid = "EncryptThroughS3", objectArns = [`${i.bucketArn}/${i.stage}/*`] }: { sid?: string; objectArns?: string[] } = {}): Statement[] {
  if (!i.kms) return [];
  return [{
    Sid: sid,
    Effect: "Allow",
    Action: actions,
    Resource: i.kms.keyArn,
    Condition: {
      StringEquals: { "kms:ViaService": `s3.${kmsKeyRegion(i.kms.keyArn)}.amazonaws.com` },
      StringLike: { "kms:EncryptionContext:aws:s3:arn": s3EncryptionContexts(i.bucketArn, objectArns, i.kms.bucketKey) },
    },
  }];
}

/**
 * What the backup itself may do: write new objects under its own stage's engine prefixes, and abort the
 * multipart uploads it started. No read, no delete, no list, no other prefix (the verifier's drill
 * records under `<stage>/drills/` included: a backup cannot forge a proof of its own restore), no other
 * bucket. Multipart uploads to an SSE-KMS bucket need Decrypt too (S3 reads the data key back to join parts).
 * A per-target backup's role (`targets`) writes only its targets' own prefixes, and its key grant without
 * a Bucket Key takes only their objects' encryption context.
 */
export function taskRolePolicy(i: TaskRoleInputs): PolicyDocument {
  const writable = i.targets
    ? i.targets.map((t) => `${i.bucketArn}/${i.stage}/${enginePrefixes[t.engine]}/${t.name}/*`)
    : Object.values(enginePrefixes).map((engine) => `${i.bucketArn}/${i.stage}/${engine}/*`);
  return doc(
    { Sid: i.targets ? "WriteOwnTargetBackups" : "WriteOwnStageBackups", Effect: "Allow", Action: ["s3:PutObject", "s3:AbortMultipartUpload"], Resource: writable },
    ...encryptThroughS3(i, ["kms:GenerateDataKey", "kms:Decrypt"], { objectArns: i.targets ? writable : undefined }),
  );
}

/** The replica bucket (replicaRegion) and its own key, in the replica's region; absent without a replica. */
export interface ReplicaInputs {
  bucketArn: string;
  /** The replica's SSE-KMS key (in the replica's region) and its Bucket Key setting; absent for SSE-S3. */
  kms?: { keyArn: string; bucketKey: BucketKeySetting };
}

export interface VerifierRoleInputs extends TaskRoleInputs {
  /** The copy in another region, which `verify`, `restore` and `drill --replica` read instead of the bucket. */
  replica?: ReplicaInputs;
}

/**
 * What the verifier (the restore drill) may do: list and read its own stage's backups, and write its
 * drill records under `<stage>/drills/`. It may not write a backup, delete anything, or see another stage.
 * ListBucket is a bucket action, so the stage is enforced on the request's `prefix` through `s3:prefix`:
 * a listing without a prefix, or with another stage's, is refused (the IAM User Guide's home-directory
 * example grants the bucket's root listing only by allowing `""` explicitly: "Amazon S3: Allows IAM users
 * access to their S3 home directory, programmatically and in the console",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_s3_home-directory-console.html).
 * KMS: Decrypt to read SSE-KMS objects, GenerateDataKey to write a drill record (a single PutObject).
 * With a replica, the same on the replica bucket and its key (`drill --replica` reads the copy and
 * leaves its record there: when the primary's region is gone, the copy is all there is).
 */
export function verifierRolePolicy(i: VerifierRoleInputs): PolicyDocument {
  const grants = (b: TaskRoleInputs, suffix: string): Statement[] => [
    { Sid: `ListOwnStage${suffix}`, Effect: "Allow", Action: "s3:ListBucket", Resource: b.bucketArn, Condition: { StringLike: { "s3:prefix": `${b.stage}/*` } } },
    { Sid: `ReadOwnStage${suffix}`, Effect: "Allow", Action: "s3:GetObject", Resource: `${b.bucketArn}/${b.stage}/*` },
    { Sid: `WriteDrillRecords${suffix}`, Effect: "Allow", Action: "s3:PutObject", Resource: `${b.bucketArn}/${b.stage}/${drillsPrefix}/*` },
    ...encryptThroughS3(b, ["kms:Decrypt", "kms:GenerateDataKey"], { sid: `EncryptThroughS3${suffix}` }),
  ];
  return doc(...grants(i, ""), ...(i.replica ? grants({ ...i.replica, stage: i.stage }, "InReplica") : []));
}

export interface ReplicationRoleInputs {
  /** The primary bucket, replication's source. */
  sourceBucketArn: string;
  stage: string;
  /** The primary's SSE-KMS key; absent for SSE-S3. */
  sourceKms?: { keyArn: string; bucketKey: BucketKeySetting };
  replica: ReplicaInputs;
  /** The source bucket locks its objects (objectLock): S3 reads each version's retention to copy it. */
  objectLock: boolean;
}

/**
 * What S3 may do when it replicates this stage to the replica, as "Setting up permissions for live
 * replication" (S3 User Guide, https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html)
 * lists it, narrowed to the stage's prefix: read the replication configuration and list the source
 * bucket; read the versions to replicate (with their ACL and tags) under `<stage>/` only; write replicas
 * and their tags under the replica's `<stage>/` only. No s3:ReplicateDelete: delete markers are not
 * replicated (the rule's DeleteMarkerReplication is Disabled), so a delete on the primary, by an intruder
 * or a mistake, never reaches the copy, and the role could not carry one if the rule changed.
 * With Object Lock on the source, S3 also reads each version's retention and legal hold to copy them
 * (s3:GetObjectRetention, s3:GetObjectLegalHold; "Object Lock considerations", Using Object Lock with S3
 * Replication, https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html).
 * SSE-KMS: Decrypt with the source key through S3 in the source's region, Encrypt with the replica's key
 * through S3 in the replica's region, each only for its bucket's encryption context ("Replicating
 * encrypted objects", https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html).
 */
export function replicationRolePolicy(i: ReplicationRoleInputs): PolicyDocument {
  const lockReads = i.objectLock ? ["s3:GetObjectRetention", "s3:GetObjectLegalHold"] : [];
  return doc(
    { Sid: "ReadReplicationConfiguration", Effect: "Allow", Action: ["s3:GetReplicationConfiguration", "s3:ListBucket"], Resource: i.sourceBucketArn },
    {
      Sid: "ReadStageVersions",
      Effect: "Allow",
      Action: ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", ...lockReads],
      Resource: `${i.sourceBucketArn}/${i.stage}/*`,
    },
    { Sid: "ReplicateStage", Effect: "Allow", Action: ["s3:ReplicateObject", "s3:ReplicateTags"], Resource: `${i.replica.bucketArn}/${i.stage}/*` },
    ...encryptThroughS3({ bucketArn: i.sourceBucketArn, stage: i.stage, kms: i.sourceKms }, ["kms:Decrypt"], { sid: "DecryptSource" }),
    ...encryptThroughS3({ bucketArn: i.replica.bucketArn, stage: i.stage, kms: i.replica.kms }, ["kms:Encrypt"], { sid: "EncryptReplica" }),
  );
}

export interface SchedulerRoleInputs {
  region: string;
  accountId: string;
  partition: string;
  /** The one task family this schedule starts. */
  family: string;
  clusterArn: string;
  /** The roles of that family's task definition, the only ones the scheduler may pass. */
  executionRoleArn: string;
  taskRoleArn: string;
  deadLetterQueueArn: string;
}

/**
 * What EventBridge Scheduler may do for one schedule: run one task family on this cluster, pass that
 * family's two roles, use the dead-letter queue. The backup and the drill schedule each have a role of
 * their own built here, so neither can start the other's task or hand it the other's roles.
 */
export function schedulerRolePolicy(i: SchedulerRoleInputs): PolicyDocument {
  const family = `arn:${i.partition}:ecs:${i.region}:${i.accountId}:task-definition/${i.family}:*`;
  return doc(
    { Sid: "RunTask", Effect: "Allow", Action: "ecs:RunTask", Resource: family, Condition: { ArnEquals: { "ecs:cluster": i.clusterArn } } },
    {
      Sid: "TagStartedTask",
      Effect: "Allow",
      Action: "ecs:TagResource",
      Resource: `arn:${i.partition}:ecs:${i.region}:${i.accountId}:task/*`,
      Condition: { StringEquals: { "ecs:CreateAction": "RunTask" } },
    },
    {
      Sid: "PassTaskRoles",
      Effect: "Allow",
      Action: "iam:PassRole",
      Resource: [i.executionRoleArn, i.taskRoleArn],
      Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
    },
    { Sid: "DeadLetters", Effect: "Allow", Action: "sqs:SendMessage", Resource: i.deadLetterQueueArn },
  );
}

/** The bucket refuses every request that does not come over TLS. */
export function bucketPolicy(bucketArn: string): PolicyDocument {
  return doc({
    Sid: "DenyPlainHttp",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [bucketArn, `${bucketArn}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  });
}

/**
 * Only this stack's EventBridge rules, CloudWatch alarms and (with a replica) its bucket's replication
 * failure notifications may publish alerts. S3 publishes as `s3.amazonaws.com`, and AWS's topic policy
 * for it names the bucket and its owner ("aws:SourceArn" and "aws:SourceAccount": "Granting permissions
 * to publish event notification messages to a destination", S3 User Guide,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html). A
 * topic no rule or bucket sends to (the replica region's, for its alarm) has only the alarms' statement:
 * IAM takes no empty list of ARNs.
 */
export function alertTopicPolicy(topicArn: string, ruleArns: string[], accountId: string, notifyingBucketArns: string[] = []): PolicyDocument {
  const publisher = (Sid: string, service: string, Condition: Statement["Condition"]): Statement =>
    ({ Sid, Effect: "Allow", Principal: { Service: service }, Action: "sns:Publish", Resource: topicArn, Condition });
  return doc(
    ...(ruleArns.length === 0 ? [] : [publisher("TaskFailureRules", "events.amazonaws.com", { ArnEquals: { "aws:SourceArn": ruleArns } })]),
    ...(notifyingBucketArns.length === 0 ? [] : [
      publisher("ReplicationFailures", "s3.amazonaws.com", { ArnEquals: { "aws:SourceArn": notifyingBucketArns }, StringEquals: { "aws:SourceAccount": accountId } }),
    ]),
    publisher("Alarms", "cloudwatch.amazonaws.com", { StringEquals: { "aws:SourceAccount": accountId } }),
  );
}
