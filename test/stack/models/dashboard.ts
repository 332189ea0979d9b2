/**
 * What "Dashboard Body Structure and Syntax" (CloudWatch API Reference,
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html)
 * requires of a dashboard body, as checks: a `widgets` array (0-500); each widget a `type`, `x` (0-23),
 * `y`, `width` (1-24), `height` (1-1000) on a 24-column grid, and `properties`; a metric widget names its
 * `region` and lists `metrics`, each an array of namespace, metric name and dimension name/value pairs
 * with an optional options object last, or an `expression` object; an alarm widget lists 1-100 alarm
 * ARNs; a text widget has `markdown`. Ids are "a short name ... The first character must be a lowercase
 * letter" (MetricDataQuery Id).
 */

export interface ShownMetric {
  widget: string;
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
  options: Record<string, any>;
}

const widgetTypes = ["metric", "text", "log", "alarm", "explorer"];
const isInt = (v: unknown, min: number, max: number) => typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
const idPattern = /^[a-z][a-zA-Z0-9_]*$/;
const alarmArn = /^arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:.+$/;

/** Everything in `body` the documented syntax does not allow; empty when it is a valid dashboard body. */
export function dashboardProblems(body: any): string[] {
  const problems: string[] = [];
  if (!body || !Array.isArray(body.widgets)) return ["no widgets array"];
  if (body.widgets.length > 500) problems.push(`${body.widgets.length} widgets, over 500`);
  body.widgets.forEach((w: any, n: number) => {
    const at = `widget ${n} (${w?.properties?.title ?? w?.type})`;
    if (!widgetTypes.includes(w.type)) problems.push(`${at}: type '${w.type}'`);
    if (!isInt(w.x, 0, 23)) problems.push(`${at}: x ${w.x}`);
    if (!isInt(w.y, 0, Number.MAX_SAFE_INTEGER)) problems.push(`${at}: y ${w.y}`);
    if (!isInt(w.width, 1, 24)) problems.push(`${at}: width ${w.width}`);
    if (!isInt(w.height, 1, 1000)) problems.push(`${at}: height ${w.height}`);
    if (w.x + w.width > 24) problems.push(`${at}: reaches column ${w.x + w.width}, past the grid's 24`);
    if (!w.properties || typeof w.properties !== "object") return problems.push(`${at}: no properties`);
    const p = w.properties;
    if (w.type === "text" && typeof p.markdown !== "string") problems.push(`${at}: no markdown`);
    if (w.type === "alarm") {
      if (!Array.isArray(p.alarms) || p.alarms.length < 1 || p.alarms.length > 100) problems.push(`${at}: ${p.alarms?.length} alarms, not 1-100`);
      for (const arn of p.alarms ?? []) if (!alarmArn.test(arn)) problems.push(`${at}: '${arn}' is not an alarm ARN`);
    }
    if (w.type === "metric") {
      if (typeof p.region !== "string" || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(p.region)) problems.push(`${at}: region '${p.region}'`);
      if (!Array.isArray(p.metrics) || p.metrics.length === 0) return problems.push(`${at}: no metrics`);
      const ids = new Set<string>();
      for (const entry of p.metrics) {
        if (!Array.isArray(entry) || entry.length === 0) { problems.push(`${at}: metric ${JSON.stringify(entry)} is not an array`); continue; }
        const last = entry[entry.length - 1];
        const options = typeof last === "object" && last !== null ? last : undefined;
        if (options?.id !== undefined) {
          if (!idPattern.test(options.id)) problems.push(`${at}: id '${options.id}'`);
          ids.add(options.id);
        }
        if (options?.expression !== undefined) {
          if (entry.length !== 1 || typeof options.expression !== "string") problems.push(`${at}: expression entry ${JSON.stringify(entry)}`);
          continue;
        }
        const names = options ? entry.slice(0, -1) : entry;
        if (names.length < 2 || names.length % 2 !== 0 || !names.every((s: unknown) => typeof s === "string" && s !== "")) {
          problems.push(`${at}: ${JSON.stringify(entry)} is not namespace, name and dimension pairs`);
        }
      }
      // An expression may use only ids given in the same widget.
      for (const entry of p.metrics) {
        const expression = entry?.[0]?.expression;
        if (typeof expression !== "string") continue;
        const used = expression.replace(/[A-Z_]+\(/g, "(").match(/\b[a-z][a-zA-Z0-9_]*\b/g) ?? [];
        for (const id of used) if (!ids.has(id)) problems.push(`${at}: expression '${expression}' uses '${id}', which no metric of the widget has as id`);
      }
    }
  });
  return problems;
}

/** The metrics (not expressions) a dashboard body shows, with the widget each is in. */
export function shownMetrics(body: any): ShownMetric[] {
  return body.widgets
    .filter((w: any) => w.type === "metric")
    .flatMap((w: any) =>
      w.properties.metrics
        .filter((entry: any[]) => typeof entry[0] === "string")
        .map((entry: any[]) => {
          const options = typeof entry[entry.length - 1] === "object" ? entry[entry.length - 1] : {};
          const names = typeof entry[entry.length - 1] === "object" ? entry.slice(0, -1) : entry;
          const dimensions: Record<string, string> = {};
          for (let k = 2; k < names.length; k += 2) dimensions[names[k]] = names[k + 1];
          return { widget: w.properties.title, namespace: names[0], name: names[1], dimensions, options: { period: w.properties.period, ...options } };
        }),
    );
}

/** Pairs of widgets that cover the same grid cell. */
export function overlaps(body: any): string[] {
  const cells = new Map<string, number>();
  const found: string[] = [];
  body.widgets.forEach((w: any, n: number) => {
    for (let x = w.x; x < w.x + w.width; x++) {
      for (let y = w.y; y < w.y + w.height; y++) {
        const cell = `${x},${y}`;
        if (cells.has(cell)) found.push(`widgets ${cells.get(cell)} and ${n} at ${cell}`);
        cells.set(cell, n);
      }
    }
  });
  return found;
}
