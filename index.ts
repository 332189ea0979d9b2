/** The program: read this stack's config, build one ScheduledBackup, export what operators need. */

import * as pulumi from "@pulumi/pulumi";
import { ConfigError, drillIdentityKey, needsDrillIdentity, parseStackConfig, secretKeyOf } from "./components/config";
import { ScheduledBackup } from "./components/scheduledBackup";

const config = new pulumi.Config();

function load() {
  try {
    return parseStackConfig(config, pulumi.getStack(), new pulumi.Config("aws").get("region"));
  } catch (err) {
    // A RunError is printed as its message alone, without a stack trace.
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

const stack = load();
// Missing secrets fail here with Pulumi's own message and the `pulumi config set --secret …` command.
const secrets = Object.fromEntries(stack.targets.map((t) => [t.name, config.requireSecret(secretKeyOf(t))]));
const drillAgeIdentity = needsDrillIdentity(stack) ? config.requireSecret(drillIdentityKey) : undefined;
const backup = new ScheduledBackup(`db-backup-${stack.stage}`, { config: stack, secrets, drillAgeIdentity });

export const bucketName = backup.bucketName;
export const clusterName = backup.clusterName;
export const taskDefinitionArn = backup.taskDefinitionArn;
export const logGroupName = backup.logGroupName;
export const scheduleName = backup.scheduleName;
export const imageRef = backup.imageRef;
export const alertTopicArn = backup.alertTopicArn;
export const runTaskCommand = backup.runTaskCommand;
export const targetTasks = backup.targetTasks;
export const drillTaskDefinitionArn = backup.drillTaskDefinitionArn;
export const drillScheduleName = backup.drillScheduleName;
export const drillRunTaskCommand = backup.drillRunTaskCommand;
export const dashboardUrl = backup.dashboardUrl;
