/**
 * The AWS SDK's S3 module, loaded on first use instead of at start-up. Loading it takes about 0.2 s;
 * `backup` starts the dump tool first, so that time overlaps the tool's own connecting and planning
 * instead of delaying the dump (README, "Performance").
 */

import type * as S3 from "@aws-sdk/client-s3";

let loaded: typeof S3 | undefined;

export function s3Sdk(): typeof S3 {
  return (loaded ??= require("@aws-sdk/client-s3") as typeof S3);
}
