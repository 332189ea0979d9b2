/**
 * The rules every db-backup stack must pass, as pure functions of a resource's type and properties, so
 * that the tests run them over hand-made resources and over each stack's offline synth graph, and the
 * policy pack (index.ts) runs the same code in `pulumi preview` / `pulumi up`.
 */

export interface ResourceLike {
  type: string;
  name: string;
  props: Record<string, any>;
}

export interface ResourceRule {
  name: string;
  description: string;
  /** The violations of one resource; empty when it complies or the rule does not concern it. */
  check(resource: ResourceLike): string[];
}

export interface StackRule {
  name: string;
  description: string;
  /** `bucketOf` says which bucket a bucket-configuration resource configures (by the bucket's name). */
  check(resources: ResourceLike[], bucketOf: (config: ResourceLike) => ResourceLike | undefined): string[];
}

/** JSON-valued properties arrive as strings from the program and as objects from some providers. */
function json(value: unknown): any {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * The containers of a task definition; none for any other resource, or while a preview does not know them
 * yet (the image is built during the update). Each rule on containers checks every one of them, in every
 * task definition of the stack (the backup's and the verifier's).
 */
function taskContainers(r: ResourceLike): any[] {
  if (r.type !== "aws:ecs/taskDefinition:TaskDefinition") return [];
  const containers = json(r.props.containerDefinitions);
  return Array.isArray(containers) ? containers : [];
}

const credentialName = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|CONNECTION_STRING|_URI$|_URL$|DSN)/i;
const credentialValue = /([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*:[^@/\s]+@)|(AKIA[0-9A-Z]{16})|(-----BEGIN [A-Z ]*PRIVATE KEY-----)|SYNTH-SECRET\(/i;

export const noSecretsInTaskEnvironment: ResourceRule = {
  name: "no-secrets-in-task-environment",
  description: "A container's environment holds no credential: secrets go through the task definition's `secrets`, by ARN.",
  check(r) {
    const violations: string[] = [];
    for (const c of taskContainers(r)) {
      for (const e of list<{ name: string; value: string }>(c.environment)) {
        if (credentialName.test(e.name) || credentialValue.test(String(e.value))) {
          violations.push(`container '${c.name}' has '${e.name}' in its environment, which looks like a credential: move it to \`secrets\` (SSM or Secrets Manager ARN)`);
        }
      }
    }
    return violations;
  },
};

export const imagesPinnedByDigest: ResourceRule = {
  name: "images-pinned-by-digest",
  description: "Task definitions reference images by digest (`repo@sha256:…`), never by a mutable tag.",
  check(r) {
    return taskContainers(r)
      .filter((c) => typeof c.image === "string" && !/@sha256:[0-9a-f]{64}$/.test(c.image))
      .map((c) => `container '${c.name}' uses image '${c.image}', a mutable reference: pin it as <repository>@sha256:<digest>`);
  },
};

/** A container `user` that is root: absent (the image's, which the task definition cannot vouch for), `root` or uid 0. */
function runsAsRoot(user: unknown): boolean {
  if (typeof user !== "string" || user === "") return true;
  const [uid] = user.split(":");
  return uid === "root" || uid === "0";
}

export const taskContainersHardened: ResourceRule = {
  name: "task-containers-hardened",
  description: "Every container of every task definition runs as a non-root user (a uid other than 0, set in the task definition) on a read-only root filesystem.",
  check(r) {
    return taskContainers(r).flatMap((c) => [
      ...(runsAsRoot(c.user) ? [`container '${c.name}' of '${r.name}' runs as root: set \`user\` to a non-root uid:gid`] : []),
      ...(c.readonlyRootFilesystem !== true ? [`container '${c.name}' of '${r.name}' can write its root filesystem: set readonlyRootFilesystem to true and mount a volume where it must write`] : []),
    ]);
  },
};

export const logGroupsHaveRetention: ResourceRule = {
  name: "log-groups-have-retention",
  description: "Every CloudWatch log group has a retention period; none is kept forever.",
  check(r) {
    if (r.type !== "aws:cloudwatch/logGroup:LogGroup") return [];
    const days = r.props.retentionInDays;
    return typeof days === "number" && days > 0 ? [] : [`log group '${r.name}' keeps its logs forever: set retentionInDays`];
  },
};

export const publicAccessBlocked: ResourceRule = {
  name: "bucket-public-access-blocked",
  description: "A bucket's public access block turns on all four settings.",
  check(r) {
    if (r.type !== "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock") return [];
    const off = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].filter((k) => r.props[k] !== true);
    return off.length ? [`public access block '${r.name}' leaves ${off.join(", ")} off`] : [];
  },
};

export const bucketEncrypted: ResourceRule = {
  name: "bucket-encrypted",
  description: "Bucket default encryption is SSE-S3 or SSE-KMS.",
  check(r) {
    if (r.type !== "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration") return [];
    const algorithms = list<any>(r.props.rules).map((rule) => rule?.applyServerSideEncryptionByDefault?.sseAlgorithm);
    return algorithms.length > 0 && algorithms.every((a) => ["AES256", "aws:kms", "aws:kms:dsse"].includes(a)) ? [] : [`encryption configuration '${r.name}' does not set AES256 or aws:kms`];
  },
};

/** True when the policy denies every S3 action on the bucket and its objects without TLS. */
function deniesPlainHttp(policy: any): boolean {
  return list<any>(policy?.Statement).some(
    (s) =>
      s.Effect === "Deny" &&
      (s.Principal === "*" || list(s.Principal?.AWS).includes("*")) &&
      list<string>(s.Action).some((a) => a === "s3:*" || a === "*") &&
      list<string>(s.Resource).some((res) => res.endsWith("/*")) &&
      list<string>(s.Resource).some((res) => !res.includes("/")) &&
      String(s.Condition?.Bool?.["aws:SecureTransport"]) === "false",
  );
}

export const bucketRefusesPlainHttp: ResourceRule = {
  name: "bucket-refuses-plain-http",
  description: "A bucket policy denies every request that does not use TLS (aws:SecureTransport = false).",
  check(r) {
    if (r.type !== "aws:s3/bucketPolicy:BucketPolicy") return [];
    const policy = json(r.props.policy);
    if (policy === undefined) return [];
    return deniesPlainHttp(policy) ? [] : [`bucket policy '${r.name}' does not deny s3:* on the bucket and its objects when aws:SecureTransport is false`];
  },
};

export const schedulesRetryWithDeadLetters: ResourceRule = {
  name: "schedules-retry-with-dead-letters",
  description: "An EventBridge Scheduler schedule retries and has a dead-letter queue.",
  check(r) {
    if (r.type !== "aws:scheduler/schedule:Schedule") return [];
    const target = r.props.target ?? {};
    const violations: string[] = [];
    if (!(target.retryPolicy?.maximumRetryAttempts > 0)) violations.push(`schedule '${r.name}' does not retry: set target.retryPolicy.maximumRetryAttempts`);
    if (!target.deadLetterConfig?.arn) violations.push(`schedule '${r.name}' has no dead-letter queue: set target.deadLetterConfig.arn`);
    return violations;
  },
};

const guardedServices = ["s3", "secretsmanager", "iam"];

function wildcardGrants(document: any): string[] {
  return list<any>(document?.Statement)
    .filter((s) => s.Effect === "Allow")
    .flatMap((s) => {
      if (s.NotAction !== undefined) return [`an Allow with NotAction (${JSON.stringify(s.NotAction)}) grants everything else`];
      return list<string>(s.Action)
        .filter((a) => a === "*" || (a.includes("*") && guardedServices.includes(a.split(":")[0].toLowerCase())))
        .map((a) => `'${a}' is a wildcard action${a === "*" ? "" : ` on ${a.split(":")[0]}`}`);
    });
}

export const noWildcardIamActions: ResourceRule = {
  name: "no-wildcard-iam-actions",
  description: "No IAM statement allows '*' or wildcard actions on S3, Secrets Manager or IAM.",
  check(r) {
    const documents: unknown[] = [];
    if (r.type === "aws:iam/rolePolicy:RolePolicy" || r.type === "aws:iam/policy:Policy" || r.type === "aws:iam/userPolicy:UserPolicy") documents.push(r.props.policy);
    if (r.type === "aws:iam/role:Role") documents.push(...list<any>(r.props.inlinePolicies).map((p) => p?.policy));
    return documents.flatMap((d) => wildcardGrants(json(d)).map((v) => `${r.type.split(":").pop()} '${r.name}': ${v}`));
  },
};

const deleteActions = /^s3:(Delete|PutLifecycleConfiguration$|PutBucketVersioning$|PutBucketPolicy$)/i;

export const noBackupDeletion: ResourceRule = {
  name: "no-backup-deletion",
  description: "No IAM policy of the stack allows deleting objects or versions, or changing the bucket's lifecycle, versioning or policy: backups go only by the lifecycle rules.",
  check(r) {
    if (r.type !== "aws:iam/rolePolicy:RolePolicy" && r.type !== "aws:iam/policy:Policy") return [];
    return list<any>(json(r.props.policy)?.Statement)
      .filter((s) => s.Effect === "Allow")
      .flatMap((s) => list<string>(s.Action).filter((a) => deleteActions.test(a)))
      .map((a) => `${r.type.split(":").pop()} '${r.name}' allows ${a}: backups are removed by the bucket's lifecycle rules, never by a role of the stack`);
  },
};

export const everyBucketLockedDown: StackRule = {
  name: "every-bucket-locked-down",
  description: "Every bucket the stack creates has a public access block, default encryption and a TLS-only policy.",
  check(resources, bucketOf) {
    const buckets = resources.filter((r) => r.type === "aws:s3/bucket:Bucket");
    const configured = (type: string) => new Set(resources.filter((r) => r.type === type).map((r) => bucketOf(r)).filter(Boolean));
    const needs: [string, string][] = [
      ["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "public access block"],
      ["aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "default encryption"],
      ["aws:s3/bucketPolicy:BucketPolicy", "bucket policy"],
    ];
    return needs.flatMap(([type, what]) => {
      const have = configured(type);
      return buckets.filter((b) => !have.has(b)).map((b) => `bucket '${b.name}' has no ${what}`);
    });
  },
};

export const everyAlarmAlerts: StackRule = {
  name: "every-alarm-alerts",
  description: "Every metric alarm sends its ALARM state to an SNS topic of the stack: an alarm that notifies no one is no alert.",
  check(resources) {
    const topics = new Set(resources.filter((r) => r.type === "aws:sns/topic:Topic").map((t) => t.props.arn));
    return resources
      .filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm")
      .filter((a) => !list<string>(a.props.alarmActions).some((action) => topics.has(action)))
      .map((a) => `alarm '${a.name}' sends its ALARM state to no topic of this stack: add the alerts topic's ARN to alarmActions`);
  },
};

/** What is wrong with an Object Lock configuration's default retention, or undefined when every new object gets one. */
function defaultRetentionProblem(config: ResourceLike): string | undefined {
  if ((config.props.objectLockEnabled ?? "Enabled") !== "Enabled") return `its Object Lock configuration '${config.name}' does not enable Object Lock`;
  const retention = list<any>(config.props.rule)[0]?.defaultRetention;
  if (!["GOVERNANCE", "COMPLIANCE"].includes(retention?.mode)) return `its Object Lock configuration '${config.name}' sets no default retention mode`;
  if (!(retention.days > 0 || retention.years > 0)) return `its Object Lock configuration '${config.name}' sets no default retention period`;
  return undefined;
}

export const prodBucketsLocked: StackRule = {
  name: "prod-buckets-locked",
  description: "A bucket a prod stack creates (tagged db-backup:stage=prod) has S3 Object Lock with a default retention, so no one can erase its newest backups.",
  check(resources, bucketOf) {
    const prodBuckets = resources.filter((r) => r.type === "aws:s3/bucket:Bucket" && r.props.tags?.["db-backup:stage"] === "prod");
    const configs = resources.filter((r) => r.type === "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration");
    return prodBuckets.flatMap((bucket) => {
      const own = configs.filter((c) => bucketOf(c) === bucket);
      if (own.length === 0) return [`prod bucket '${bucket.name}' has no Object Lock: set objectLock (mode and days) in Pulumi.prod.yaml`];
      const problems = own.map(defaultRetentionProblem);
      return problems.includes(undefined) ? [] : problems.map((p) => `prod bucket '${bucket.name}': ${p}`);
    });
  },
};

/**
 * Every prod bucket that holds backups is copied to another region: the source of a replication
 * configuration with an enabled rule whose destination is another bucket of the stack, in another region
 * where both report theirs (a bucket's `region` output). A bucket that is such a destination is the copy
 * and needs none of its own.
 */
export const prodBucketsReplicated: StackRule = {
  name: "prod-buckets-replicated",
  description: "A bucket a prod stack creates (tagged db-backup:stage=prod) is replicated by an enabled rule to a bucket of the stack in another region, so the backups outlive the region.",
  check(resources, bucketOf) {
    const buckets = resources.filter((r) => r.type === "aws:s3/bucket:Bucket");
    const replications = resources.filter((r) => r.type === "aws:s3/bucketReplicationConfig:BucketReplicationConfig");
    const destinationsOf = (source: ResourceLike) =>
      replications
        .filter((c) => bucketOf(c) === source)
        .flatMap((c) => list<any>(c.props.rules).filter((rule) => rule?.status === "Enabled"))
        .map((rule) => buckets.find((b) => b !== source && b.props.arn !== undefined && b.props.arn === rule.destination?.bucket));
    const copies = new Set(buckets.flatMap(destinationsOf));
    return buckets
      .filter((b) => b.props.tags?.["db-backup:stage"] === "prod" && !copies.has(b))
      .flatMap((bucket) => {
        const destinations = destinationsOf(bucket).filter((d): d is ResourceLike => d !== undefined);
        if (destinations.length === 0) return [`prod bucket '${bucket.name}' is not replicated to another region: set replicaRegion in Pulumi.prod.yaml`];
        const elsewhere = destinations.filter((d) => d.props.region === undefined || bucket.props.region === undefined || d.props.region !== bucket.props.region);
        return elsewhere.length > 0 ? [] : [`prod bucket '${bucket.name}' is replicated only within its own region (${bucket.props.region}): set replicaRegion to another region`];
      });
  },
};

export const resourceRules: ResourceRule[] = [
  noSecretsInTaskEnvironment,
  imagesPinnedByDigest,
  taskContainersHardened,
  logGroupsHaveRetention,
  publicAccessBlocked,
  bucketEncrypted,
  bucketRefusesPlainHttp,
  schedulesRetryWithDeadLetters,
  noWildcardIamActions,
  noBackupDeletion,
];

export const stackRules: StackRule[] = [everyBucketLockedDown, everyAlarmAlerts, prodBucketsLocked, prodBucketsReplicated];
