/**
 * The summary line's embedded metric format, read as CloudWatch reads it ("Specification: Embedded metric
 * format", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
 * only the members a directive's Metrics name become metrics, each a number on the root, each
 * dimension a string member of the root. The names are the contract's, which the stack's alarms and
 * dashboard read.
 */

import { backupMetrics, metricDimensions, metricNamespace } from "../../image/src/contract";
import { logMetrics, setLogSink } from "../../image/src/log";

/** The metrics CloudWatch extracts from one log line: name -> value, with the dimensions they carry. */
function extracted(line: Record<string, any>): { metrics: Record<string, number>; dimensions: Record<string, string>; namespace: string }[] {
  return (line._aws?.CloudWatchMetrics ?? []).map((d: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }) => {
    const dimensions = Object.fromEntries(d.Dimensions.flat().map((k) => [k, line[k]]));
    for (const value of Object.values(dimensions)) expect(typeof value).toBe("string");
    const metrics = Object.fromEntries(d.Metrics.map((m) => [m.Name, line[m.Name]]));
    for (const value of Object.values(metrics)) expect(typeof value).toBe("number");
    return { metrics, dimensions, namespace: d.Namespace };
  });
}

function summary(success: boolean): Record<string, any> {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  try {
    logMetrics("summary", { stage: "dev", target: "app", engine: "postgres", success, bytes: success ? 123456 : 0, durationSeconds: 4.5 });
  } finally {
    restore();
  }
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]);
}

it("a stored backup yields every backup metric of the contract, under the contract's namespace and dimensions", () => {
  const [directive] = extracted(summary(true));
  expect(directive.namespace).toBe(metricNamespace);
  expect(Object.keys(directive.dimensions)).toEqual([...metricDimensions]);
  expect(directive.dimensions).toEqual({ Stage: "dev", Target: "app" });
  expect(directive.metrics).toEqual({ [backupMetrics.success]: 1, [backupMetrics.bytes]: 123456, [backupMetrics.durationSeconds]: 4.5 });
});

it("a failed backup yields no size, so the size-anomaly alarm neither fires on it nor learns 0 as a size", () => {
  const line = summary(false);
  const [directive] = extracted(line);
  expect(directive.metrics).toEqual({ [backupMetrics.success]: 0, [backupMetrics.durationSeconds]: 4.5 });
  // The reader still sees the field on the line.
  expect(line[backupMetrics.bytes]).toBe(0);
});
