/**
 * Pulumi runtime mocks that answer like AWS: IDs, ARNs and physical names shaped as AWS makes them
 * (account 123456789012, the stack's region), so references between resources can be followed.
 * Used by the offline synth and the tests; every resource registered is recorded.
 */

import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export const mockAccountId = "123456789012";

export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** The region it is created in: its provider's (an explicit aws.Provider, e.g. the replica's) or the stack's. */
  region?: string;
}

// How the Pulumi runtime marks a secret value on the wire.
const secretSig = "4dabf18193072939515e22adb298388d";
const secretSigValue = "1b47061264138c4ac30d75fd1eb44270";

/** Replaces each wire-format secret with its value (in the synth, a SYNTH-SECRET(<key>) placeholder). */
export function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[secretSig] === secretSigValue) return unwrapSecrets(obj.value);
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

function hex(seed: string, length: number): string {
  return createHash("sha256").update(seed).digest("hex").slice(0, length);
}

/**
 * Pulumi's auto-naming: the logical name, `-` and 7 random characters (here derived from the name, so runs
 * repeat), at most `max` long (pulumi-aws's limit for the type: 64 for a role, 80 for a topic, 255 by
 * default). A name that would not fit is refused, not shortened, with the bridge's own words
 * (pulumi-terraform-bridge `info/autonaming.go` `AutoName` and `ComputeAutoNameDefault`, pulumi
 * `sdk/go/common/resource/resource_id.go` `NewUniqueName`; components/config.ts cites them).
 */
function physicalName(name: string, max: number, type: string): string {
  const prefix = `${name}-`;
  if (prefix.length + 7 > max) throw new Error(`could not make instance of '${type}': name '${prefix}' plus 7 random chars is longer than maximum length ${max}`);
  return `${prefix}${hex(name, 7)}`;
}

export class AwsMocks implements pulumi.runtime.Mocks {
  readonly resources: RecordedResource[] = [];
  /** The region of each explicit aws provider, by its ID (a resource names its provider as `<urn>::<id>`). */
  private readonly providerRegions = new Map<string, string>();

  constructor(readonly region: string) {}

  /** Where a resource or call goes: its explicit provider's region, or the stack's (aws:region). */
  private regionOf(provider: string | undefined): string {
    return (provider && this.providerRegions.get(provider.slice(provider.lastIndexOf("::") + 2))) || this.region;
  }

  newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
    const region = this.regionOf(args.provider);
    const { id, computed } = this.shape(args.type, args.name, args.inputs, region);
    const state = { ...args.inputs, ...computed };
    if (args.type === "pulumi:providers:aws") {
      if (typeof args.inputs.region === "string") this.providerRegions.set(id, args.inputs.region);
    } else if (!args.type.startsWith("pulumi:providers:")) {
      const inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
      this.resources.push({ type: args.type, name: args.name, inputs, outputs: { id, ...computed }, region });
    }
    return { id, state };
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    const region = this.regionOf(args.provider);
    switch (args.token) {
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return { accountId: mockAccountId, arn: `arn:aws:iam::${mockAccountId}:user/synth`, userId: "AIDASYNTH", id: mockAccountId };
      case "aws:index/getRegion:getRegion":
        return { name: region, region, id: region, description: region, endpoint: `ec2.${region}.amazonaws.com` };
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws", id: "aws" };
      case "aws:ec2/getVpc:getVpc":
        return { id: "vpc-0d3fa017d3fa017d3", arn: `arn:aws:ec2:${region}:${mockAccountId}:vpc/vpc-0d3fa017d3fa017d3`, cidrBlock: "172.31.0.0/16", default: true };
      case "aws:ec2/getSubnets:getSubnets":
        return { id: region, ids: ["a", "b", "c"].map((az) => `subnet-0${hex(region + az, 16)}`) };
      case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        return { id: region, userName: "AWS", password: "SYNTH-ECR-TOKEN", authorizationToken: "QVdTOlNZTlRILUVDUi1UT0tFTg==", proxyEndpoint: `https://${mockAccountId}.dkr.ecr.${region}.amazonaws.com`, expiresAt: "2030-01-01T00:00:00Z" };
      default:
        throw new Error(`the mocks do not answer ${args.token}: add it to scripts/lib/mocks.ts`);
    }
  }

  /** The ID and the outputs AWS would compute for a resource. */
  private shape(type: string, name: string, inputs: Record<string, any>, region: string): { id: string; computed: Record<string, unknown> } {
    const account = mockAccountId;
    const arn = (service: string, resource: string, withRegion = true) => `arn:aws:${service}:${withRegion ? region : ""}:${account}:${resource}`;
    switch (type) {
      case "aws:s3/bucket:Bucket": {
        const bucket = inputs.bucket ?? physicalName(name, 63, type).toLowerCase();
        return { id: bucket, computed: { bucket, arn: `arn:aws:s3:::${bucket}`, bucketDomainName: `${bucket}.s3.amazonaws.com`, region } };
      }
      case "aws:ecr/repository:Repository": {
        const repo = inputs.name ?? physicalName(name, 255, type).toLowerCase();
        return { id: repo, computed: { name: repo, arn: arn("ecr", `repository/${repo}`), registryId: account, repositoryUrl: `${account}.dkr.ecr.${region}.amazonaws.com/${repo}` } };
      }
      case "docker-build:index:Image": {
        const digest = `sha256:${hex(JSON.stringify(inputs), 64)}`;
        const tag = (inputs.tags as string[] | undefined)?.[0] ?? name;
        return { id: digest, computed: { digest, ref: `${tag}@${digest}`, contextHash: hex(name, 64) } };
      }
      case "aws:ecs/cluster:Cluster": {
        const cluster = inputs.name ?? physicalName(name, 255, type);
        return { id: arn("ecs", `cluster/${cluster}`), computed: { name: cluster, arn: arn("ecs", `cluster/${cluster}`) } };
      }
      case "aws:ecs/taskDefinition:TaskDefinition": {
        const family = inputs.family ?? physicalName(name, 255, type);
        return { id: family, computed: { revision: 1, arn: arn("ecs", `task-definition/${family}:1`), arnWithoutRevision: arn("ecs", `task-definition/${family}`) } };
      }
      case "aws:cloudwatch/logGroup:LogGroup": {
        const group = inputs.name ?? physicalName(name, 255, type);
        return { id: group, computed: { name: group, arn: arn("logs", `log-group:${group}`) } };
      }
      case "aws:ssm/parameter:Parameter":
        return { id: inputs.name, computed: { arn: arn("ssm", `parameter${inputs.name}`), version: 1, tier: "Standard" } };
      case "aws:iam/role:Role": {
        const role = inputs.name ?? physicalName(name, 64, type);
        return { id: role, computed: { name: role, arn: `arn:aws:iam::${account}:role/${role}`, uniqueId: `AROA${hex(role, 16).toUpperCase()}` } };
      }
      case "aws:iam/rolePolicy:RolePolicy": {
        const policy = inputs.name ?? physicalName(name, 128, type);
        return { id: `${inputs.role}:${policy}`, computed: { name: policy } };
      }
      case "aws:sqs/queue:Queue": {
        const queue = inputs.name ?? physicalName(name, 80, type);
        return { id: `https://sqs.${region}.amazonaws.com/${account}/${queue}`, computed: { name: queue, arn: arn("sqs", queue), url: `https://sqs.${region}.amazonaws.com/${account}/${queue}` } };
      }
      case "aws:sns/topic:Topic": {
        const topic = inputs.name ?? physicalName(name, 80, type);
        return { id: arn("sns", topic), computed: { name: topic, arn: arn("sns", topic) } };
      }
      case "aws:cloudwatch/eventRule:EventRule": {
        const rule = inputs.name ?? physicalName(name, 64, type);
        return { id: rule, computed: { name: rule, arn: arn("events", `rule/${rule}`) } };
      }
      case "aws:scheduler/schedule:Schedule": {
        // pulumi-aws auto-names a schedule up to its default 255; EventBridge Scheduler takes 64.
        const schedule = inputs.name ?? physicalName(name, 255, type);
        if (schedule.length > 64) throw new Error(`ValidationException: schedule name '${schedule}' is longer than 64 characters`);
        return { id: `default/${schedule}`, computed: { name: schedule, groupName: "default", arn: arn("scheduler", `schedule/default/${schedule}`) } };
      }
      case "aws:ec2/securityGroup:SecurityGroup": {
        const id = `sg-0${hex(name, 16)}`;
        return { id, computed: { name: inputs.name ?? physicalName(name, 255, type), arn: arn("ec2", `security-group/${id}`), ownerId: account } };
      }
      case "aws:kms/key:Key": {
        const id = [8, 4, 4, 4, 12].map((n, i) => hex(`${name}${i}`, n)).join("-");
        return { id, computed: { keyId: id, arn: arn("kms", `key/${id}`) } };
      }
      case "aws:cloudwatch/dashboard:Dashboard": {
        // Dashboards are global to the account: no region in the ARN.
        const dashboard = inputs.dashboardName ?? physicalName(name, 255, type);
        return { id: dashboard, computed: { dashboardName: dashboard, dashboardArn: `arn:aws:cloudwatch::${account}:dashboard/${dashboard}` } };
      }
      case "aws:cloudwatch/metricAlarm:MetricAlarm": {
        const alarm = inputs.name ?? physicalName(name, 255, type);
        return { id: alarm, computed: { name: alarm, arn: arn("cloudwatch", `alarm:${alarm}`) } };
      }
      default: {
        const id = physicalName(name, 255, type);
        const [pkg, module] = type.split(":");
        // Components (this project's own types) have no ARN; other AWS resources get a generic one.
        return { id, computed: pkg === "aws" ? { arn: arn(module.split("/")[0], id) } : {} };
      }
    }
  }
}

/** Resolves an Output in a test or the synth (mocks make every value known). */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}
