/** The replicaRegion key: a region's name, only for the bucket the stack creates, never the stack's own region. */

import { parseStackConfig, type ConfigSource } from "../../components/config";
import { readStackFile } from "../../scripts/lib/stackFiles";

const base: Record<string, string> = {
  targets: JSON.stringify([{ name: "app", engine: "postgres", host: "h", database: "d", user: "u" }]),
  schedule: "rate(1 hour)",
};
const parse = (over: Record<string, string | undefined>, stackRegion: string | null = "ap-southeast-1") =>
  parseStackConfig({ get: (key) => ({ ...base, ...over })[key] } as ConfigSource, "prod", stackRegion ?? undefined);

it("is off unless set", () => {
  expect(parse({}).replicaRegion).toBeUndefined();
});

it("takes another region's name", () => {
  expect(parse({ replicaRegion: "ap-northeast-1" }).replicaRegion).toBe("ap-northeast-1");
  expect(parse({ replicaRegion: "us-gov-west-1" }).replicaRegion).toBe("us-gov-west-1");
});

it("refuses what is not a region's name", () => {
  for (const bad of ["tokyo", "ap-northeast", "AP-NORTHEAST-1", "ap-northeast-1a", "arn:aws:s3:::x"]) {
    expect(() => parse({ replicaRegion: bad })).toThrow(`db-backup:replicaRegion: '${bad}' is not an AWS region name`);
  }
});

it("refuses the stack's own region: the copy is there to outlive it", () => {
  expect(() => parse({ replicaRegion: "ap-southeast-1" })).toThrow(/replicaRegion: 'ap-southeast-1' is this stack's own region \(aws:region\).*choose another region/);
  // Unknown stack region (a test's config without aws:region): only the name is checked.
  expect(parse({ replicaRegion: "ap-southeast-1" }, null).replicaRegion).toBe("ap-southeast-1");
});

it("refuses an existing bucket, saying where its replication is set up instead", () => {
  expect(() => parse({ replicaRegion: "ap-northeast-1", bucketName: "their-bucket" })).toThrow(
    /replicaRegion: replicates only the bucket this stack creates; bucket 'their-bucket' keeps its owner's settings.*Replication rules\), or unset bucketName/,
  );
});

it("prod's committed stack file replicates to another region; dev and uat, which pay for no copy, do not", () => {
  const prod = readStackFile("prod");
  const config = parseStackConfig({ get: (key) => prod[`db-backup:${key}`] }, "prod", prod["aws:region"]);
  expect(config.replicaRegion).toBeDefined();
  expect(config.replicaRegion).not.toBe(prod["aws:region"]);
  for (const stage of ["dev", "uat"]) {
    const file = readStackFile(stage);
    expect(parseStackConfig({ get: (key) => file[`db-backup:${key}`] }, stage, file["aws:region"]).replicaRegion).toBeUndefined();
  }
});
