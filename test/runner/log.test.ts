import { addSecret, log, redact, setLogSink } from "../../image/src/log";

it("redacts registered secrets, URI credentials and password assignments", () => {
  addSecret("Tr0ub4dor&3");
  expect(redact("auth failed for Tr0ub4dor&3")).toBe("auth failed for ***");
  expect(redact("mongodb+srv://app:hunter22@cluster0.example.net/db")).toBe("mongodb+srv://app:***@cluster0.example.net/db");
  expect(redact("postgresql://u:p%40ss@host/db?options=endpoint%3Dep-1")).toBe("postgresql://u:***@host/db?options=endpoint%3Dep-1");
  expect(redact("host=h password=abc123 user=u")).toBe("host=h password=*** user=u");
});

it("writes one JSON object per line, redacted", () => {
  addSecret("very-secret-value");
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  log("error", "failed", { target: "main", error: "said very-secret-value" });
  restore();
  expect(lines).toHaveLength(1);
  const parsed = JSON.parse(lines[0]);
  expect(parsed).toMatchObject({ level: "error", msg: "failed", target: "main", error: "said ***" });
});
