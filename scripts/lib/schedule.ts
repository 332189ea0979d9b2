/**
 * An EventBridge Scheduler expression in words, for a reviewer: `cron(0 9-18 ? * MON-FRI *)` is "every
 * hour from 09:00 to 18:00, Monday to Friday". The fields are Scheduler's six (minutes, hours,
 * day-of-month, month, day-of-week, year; day-of-week 1-7 is SUN-SAT), as AWS documents them in
 * "Cron expressions reference", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html.
 * Anything this does not put into words is shown field by field, never guessed.
 */

const dayNames: Record<string, string> = { SUN: "Sunday", MON: "Monday", TUE: "Tuesday", WED: "Wednesday", THU: "Thursday", FRI: "Friday", SAT: "Saturday" };
const dayByNumber = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const monthNames = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const monthByAbbreviation = Object.fromEntries(monthNames.map((m) => [m.slice(0, 3).toUpperCase(), m]));

const two = (n: string) => n.padStart(2, "0");
const isNumber = (field: string) => /^\d+$/.test(field);
const any = (field: string) => field === "*" || field === "?";

/** "a, b and c". */
function list(items: string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** A list or range of day-of-week or month values in words, or undefined when it uses L, # or steps. */
function named(field: string, name: (value: string) => string | undefined, range: string): string | undefined {
  const parts = field.split(",").map((part) => {
    const [from, to, extra] = part.split("-");
    if (extra !== undefined) return undefined;
    const a = name(from);
    const b = to === undefined ? undefined : name(to);
    if (!a || (to !== undefined && !b)) return undefined;
    return b ? `${a}${range}${b}` : a;
  });
  return parts.every((p): p is string => p !== undefined) ? list(parts) : undefined;
}

const dayName = (value: string) => dayNames[isNumber(value) ? (dayByNumber[Number(value) - 1] ?? "") : value.toUpperCase()];
const monthName = (value: string) => (isNumber(value) ? monthNames[Number(value) - 1] : monthByAbbreviation[value.toUpperCase()]);

/** The time-of-day fields in words, or undefined. */
function timeOfDay(minutes: string, hours: string): string | undefined {
  const step = /^(?:\*|0)\/(\d+)$/;
  if (isNumber(minutes)) {
    const minute = two(minutes);
    if (isNumber(hours)) return `at ${two(hours)}:${minute}`;
    if (/^\d+(,\d+)+$/.test(hours)) return `at ${list(hours.split(",").map((h) => `${two(h)}:${minute}`))}`;
    const past = minutes === "0" ? "every hour" : `every hour at minute ${Number(minutes)}`;
    if (hours === "*") return past;
    const range = /^(\d+)-(\d+)$/.exec(hours);
    if (range) return `${past} from ${two(range[1])}:${minute} to ${two(range[2])}:${minute}`;
    const hourStep = step.exec(hours);
    if (hourStep) return minutes === "0" ? `every ${hourStep[1]} hours` : `every ${hourStep[1]} hours at minute ${Number(minutes)}`;
    return undefined;
  }
  const minuteStep = step.exec(minutes);
  if (minuteStep && hours === "*") return `every ${minuteStep[1]} minutes`;
  if (minutes === "*" && hours === "*") return "every minute";
  return undefined;
}

/** The day fields in words ("daily", "Monday to Friday", "on day 1 of the month"), or undefined. */
function days(dayOfMonth: string, month: string, dayOfWeek: string, year: string): string | undefined {
  let when: string | undefined;
  if (any(dayOfMonth) && any(dayOfWeek)) when = "daily";
  else if (any(dayOfMonth)) {
    const weekdays = named(dayOfWeek, dayName, " to ");
    when = weekdays && (dayOfWeek.includes("-") && !dayOfWeek.includes(",") ? weekdays : `on ${weekdays}`);
  } else if (any(dayOfWeek)) {
    if (dayOfMonth === "L") when = "on the last day of the month";
    else if (/^\d+(,\d+)*$/.test(dayOfMonth)) when = `on day ${list(dayOfMonth.split(","))} of the month`;
  }
  if (!when) return undefined;
  if (month !== "*") {
    const months = named(month, monthName, " to ");
    if (!months) return undefined;
    when += ` in ${months}`;
  }
  if (year !== "*") {
    if (!/^\d{4}(-\d{4})?$/.test(year)) return undefined;
    when += ` in ${year.replace("-", " to ")}`;
  }
  return when;
}

/** A Scheduler expression in words; `zone` is the schedule's time zone, which only a cron is read in. */
export function describeSchedule(expression: string, zone = "UTC"): string {
  const rate = /^rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)$/.exec(expression.trim());
  if (rate) return Number(rate[1]) === 1 ? `every ${rate[2]}` : `every ${rate[1]} ${rate[2]}s`;
  const cron = /^cron\((.*)\)$/.exec(expression.trim());
  const fields = cron?.[1].trim().split(/\s+/);
  if (!fields || fields.length !== 6) return `\`${expression}\` (not a rate or cron expression)`;
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields;
  const time = timeOfDay(minutes, hours);
  const day = days(dayOfMonth, month, dayOfWeek, year);
  if (time && day) return `${time}${/^(daily|on|in) /.test(day + " ") ? " " : ", "}${day}`.replace(/^(every (?:minute|hour|\d+ \w+)) daily$/, "$1") + ` (${zone})`;
  const names = ["minutes", "hours", "day-of-month", "month", "day-of-week", "year"];
  return `${fields.map((f, i) => `${names[i]} \`${f}\``).join(", ")} (${zone})`;
}
