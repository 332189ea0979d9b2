/**
 * The preview workflow's comment step (.github/workflows/preview.yml), run as actions/github-script runs
 * it (an async function given `github`, `context` and `require`) against a stand-in for GitHub's API:
 * one comment per stack, holding the synth summary beside Pulumi's preview, edited in place on the next
 * push rather than added again.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { repoRoot } from "../support/runner";

interface Step {
  name?: string;
  uses?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}
const workflow = parse(readFileSync(join(repoRoot, ".github/workflows/preview.yml"), "utf8")) as { jobs: { preview: { steps: Step[] } } };
const steps = workflow.jobs.preview.steps;
const commentStep = steps.find((s) => s.name === "comment")!;

/** GitHub's issue comments API for one pull request, as far as the script uses it. */
function fakeGitHub(existing: { id: number; body: string }[]) {
  const comments = [...existing];
  const listComments = async () => comments;
  return {
    comments,
    github: {
      paginate: async (list: () => Promise<unknown[]>) => list(),
      rest: {
        issues: {
          listComments,
          createComment: async ({ body }: { body: string }) => void comments.push({ id: comments.length + 100, body }),
          updateComment: async ({ comment_id, body }: { comment_id: number; body: string }) => void (comments.find((c) => c.id === comment_id)!.body = body),
        },
      },
    },
  };
}

async function runComment(github: unknown, env: Record<string, string>): Promise<void> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const script = new Function("require", "github", "context", `return (async () => {\n${commentStep.with!.script}\n})();`);
    await script(require, github, { repo: { owner: "o", repo: "r" }, issue: { number: 7 } });
  } finally {
    for (const key of Object.keys(env)) if (saved[key] === undefined) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

it("makes the summary with the synth, runs the preview without the action's own comment, and comments always", () => {
  const summary = steps.find((s) => s.name === "summary");
  expect((summary as { run?: string }).run).toContain("npm run --silent synth -- ${{ matrix.stack }} --summary");
  const preview = steps.find((s) => s.uses?.startsWith("pulumi/actions@"))!;
  expect(preview.with).toMatchObject({ command: "preview", "comment-on-pr": false, color: "never" });
  expect(steps.indexOf(summary!)).toBeLessThan(steps.indexOf(preview));
  expect(commentStep).toMatchObject({ if: "always()", uses: "actions/github-script@v7", env: { PREVIEW: "${{ steps.preview.outputs.output }}" } });
});

it("posts one comment per stack with the summary and the preview, and edits it on the next run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "db-backup-preview-"));
  try {
    writeFileSync(join(dir, "summary.md"), "### Stack `dev`\n\n**Resources** (36)\n");
    const env = { RUNNER_TEMP: dir, STACK: "dev", PREVIEW: "Previewing update (dev)\n+ 36 to create", PREVIEW_OUTCOME: "success" };
    const { github, comments } = fakeGitHub([{ id: 1, body: "<!-- db-backup preview: uat -->\nuat's" }, { id: 2, body: "a person's comment" }]);
    await runComment(github, env);
    expect(comments).toHaveLength(3);
    const [posted] = comments.slice(-1);
    expect(posted.body.startsWith("<!-- db-backup preview: dev -->\n### Stack `dev`")).toBe(true);
    expect(posted.body).toContain("<details><summary>pulumi preview (success)</summary>\n\n```\nPreviewing update (dev)\n+ 36 to create\n```");

    await runComment(github, { ...env, PREVIEW: "+ 1 to update", PREVIEW_OUTCOME: "failure" });
    expect(comments).toHaveLength(3);
    expect(comments.map((c) => c.body.split("\n")[0])).toEqual(["<!-- db-backup preview: uat -->", "a person's comment", "<!-- db-backup preview: dev -->"]);
    expect(comments[2].body).toContain("pulumi preview (failure)</summary>\n\n```\n+ 1 to update\n```");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
