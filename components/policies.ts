/**
 * The IAM and resource policy documents, as pure functions of ARNs, so each can be read and evaluated
 * in a test without any mock. Every grant names its resource; the only "*" resource is
 * ecr:GetAuthorizationToken, which AWS defines on no resource.
 */

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
  parameterArns: string[];
}

/** What ECS needs to start the task: pull its image, write its logs, read exactly its own secrets. */
export function executionRolePolicy(i: ExecutionRoleInputs): PolicyDocument {
  return doc(
    { Sid: "EcrLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
    { Sid: "PullImage", Effect: "Allow", Action: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: i.repositoryArn },
    { Sid: "WriteLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${i.logGroupArn}:log-stream:*` },
    { Sid: "ReadOwnSecrets", Effect: "Allow", Action: "ssm:GetParameters", Resource: i.parameterArns },
  );
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
}

/** The region of a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>). */
export function kmsKeyRegion(keyArn: string): string {
  const region = keyArn.split(":")[3];
  if (!region) throw new Error(`'${keyArn}' is not a KMS key ARN`);
  return region;
}

/**
 * The values of aws:s3:arn that S3 puts in the encryption context when it asks KMS for this stage's
 * data keys. Without a Bucket Key it is the object's ARN, with one the bucket's ARN ("Protecting Data
 * Using Server-Side Encryption with AWS KMS (SSE-KMS)", Encryption context,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context;
 * "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys", changes to note before enabling,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html#bucket-key-changes).
 *
 * For an existing bucket ("unknown") both are allowed: its owner may turn the Bucket Key on or off at any
 * time, and a config flag restating it would be one more thing to get wrong. This widens nothing the task
 * can do: kms:ViaService keeps every use of the key inside S3, and S3 only asks KMS for the requests the
 * task role may make (PutObject under its stage's prefix); the bucket's ARN is the only context S3 sends
 * with a Bucket Key, whoever asks.
 */
export function s3EncryptionContexts(bucketArn: string, stage: string, bucketKey: BucketKeySetting): string[] {
  const objects = `${bucketArn}/${stage}/*`;
  if (bucketKey === "enabled") return [bucketArn];
  if (bucketKey === "disabled") return [objects];
  return [bucketArn, objects];
}

/**
 * What the backup itself may do: write new objects under its own stage's prefix, and abort the
 * multipart uploads it started. No read, no delete, no list, no other prefix, no other bucket.
 */
export function taskRolePolicy(i: TaskRoleInputs): PolicyDocument {
  const statements: Statement[] = [
    { Sid: "WriteOwnStageBackups", Effect: "Allow", Action: ["s3:PutObject", "s3:AbortMultipartUpload"], Resource: `${i.bucketArn}/${i.stage}/*` },
  ];
  if (i.kms) {
    // Multipart uploads to an SSE-KMS bucket need Decrypt too (S3 reads the data key back to join parts).
    // Only through S3 in the key's region, which is the bucket's: S3 requires the key in the bucket's
    // region ("Protecting Data Using Server-Side Encryption with AWS KMS (SSE-KMS)"), and kms:ViaService
    // names S3 as s3.<region>.amazonaws.com (AWS KMS Developer Guide, "AWS KMS condition keys",
    // https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
    statements.push({
      Sid: "EncryptThroughS3",
      Effect: "Allow",
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: i.kms.keyArn,
      Condition: {
        StringEquals: { "kms:ViaService": `s3.${kmsKeyRegion(i.kms.keyArn)}.amazonaws.com` },
        StringLike: { "kms:EncryptionContext:aws:s3:arn": s3EncryptionContexts(i.bucketArn, i.stage, i.kms.bucketKey) },
      },
    });
  }
  return doc(...statements);
}

export interface SchedulerRoleInputs {
  region: string;
  accountId: string;
  partition: string;
  family: string;
  clusterArn: string;
  executionRoleArn: string;
  taskRoleArn: string;
  deadLetterQueueArn: string;
}

/** What EventBridge Scheduler may do: run this task family on this cluster, pass its two roles, use its DLQ. */
export function schedulerRolePolicy(i: SchedulerRoleInputs): PolicyDocument {
  const family = `arn:${i.partition}:ecs:${i.region}:${i.accountId}:task-definition/${i.family}:*`;
  return doc(
    { Sid: "RunBackupTask", Effect: "Allow", Action: "ecs:RunTask", Resource: family, Condition: { ArnEquals: { "ecs:cluster": i.clusterArn } } },
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

/** Only this stack's EventBridge rules and CloudWatch alarms may publish alerts. */
export function alertTopicPolicy(topicArn: string, ruleArns: string[], accountId: string): PolicyDocument {
  return doc(
    {
      Sid: "TaskFailureRules",
      Effect: "Allow",
      Principal: { Service: "events.amazonaws.com" },
      Action: "sns:Publish",
      Resource: topicArn,
      Condition: { ArnEquals: { "aws:SourceArn": ruleArns } },
    },
    {
      Sid: "Alarms",
      Effect: "Allow",
      Principal: { Service: "cloudwatch.amazonaws.com" },
      Action: "sns:Publish",
      Resource: topicArn,
      Condition: { StringEquals: { "aws:SourceAccount": accountId } },
    },
  );
}
