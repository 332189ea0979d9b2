/**
 * The image cannot be built on a machine without a Docker engine, so what can be checked without one
 * is checked here: the Dockerfile lints clean, it copies only what its ignore file lets in, and it
 * agrees with the task definition (user, entrypoint) and the runner's build output.
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { validate } from "dockerfile-utils";
import { runnerUser, scratchPath } from "../../components/taskDefinition";
import { declaredVolumes, finalStage } from "../support/image";

const root = join(__dirname, "../..");
const dockerfile = readFileSync(join(root, "image/Dockerfile"), "utf8");
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .filter((l) => /^[A-Z]+\s/.test(l));

it("lints clean", () => {
  expect(validate(dockerfile).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
});

it("copies from the build context only files that exist and that its ignore file lets in", () => {
  const allowed = readFileSync(join(root, "image/Dockerfile.dockerignore"), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("!"))
    .map((l) => l.slice(1).replace(/\/\*\*$/, ""));
  const sources = instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from=")).flatMap((l) => l.split(/\s+/).slice(1, -1));
  expect(sources.length).toBeGreaterThan(0);
  for (const source of sources) {
    expect(existsSync(join(root, source))).toBe(true);
    expect(allowed).toContain(source);
  }
});

it("runs as the non-root user the task definition names, entering the compiled runner", () => {
  const users = instructions.filter((l) => l.startsWith("USER "));
  expect(users.at(-1)).toBe(`USER ${runnerUser}`);
  expect(dockerfile).toContain('ENTRYPOINT ["node", "/app/dist/cli.js"]');
  const tsconfig = JSON.parse(readFileSync(join(root, "image/tsconfig.json"), "utf8"));
  expect(tsconfig.compilerOptions).toMatchObject({ rootDir: "src", outDir: "dist" });
  expect(existsSync(join(root, "image/src/cli.ts"))).toBe(true);
});

it("installs a PostgreSQL client from the PostgreSQL project's repository and pinned MongoDB tools for amd64 and arm64", () => {
  expect(dockerfile).toMatch(/^ARG PG_MAJOR=\d+$/m);
  expect(dockerfile).toContain("https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main");
  expect(dockerfile).toContain('"postgresql-client-${PG_MAJOR}"');
  expect(dockerfile).toMatch(/^ARG MONGO_TOOLS_VERSION=\d+\.\d+\.\d+$/m);
  expect(dockerfile).toMatch(/amd64\) MONGO_PLATFORM=/);
  expect(dockerfile).toMatch(/arm64\) MONGO_PLATFORM=/);
  expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22-bookworm-slim$/m);
});

it("installs the drills' servers: PostgreSQL's of PG_MAJOR without a cluster of its own, and a pinned mongod and mongosh from MongoDB's signed repository", () => {
  const install = instructions.find((l) => l.startsWith("RUN ") && l.includes('"postgresql-${PG_MAJOR}"'));
  expect(install).toBeDefined();
  // postgresql-common's setting is changed after it is installed and before the server package, whose install would create the cluster.
  const [common, noCluster, server] = ["install -y --no-install-recommends postgresql-common", "s/#(create_main_cluster) .*$/\\1 = false/", '"postgresql-${PG_MAJOR}"'].map((part) => install!.indexOf(part));
  expect(common).toBeGreaterThan(-1);
  expect(noCluster).toBeGreaterThan(common);
  expect(server).toBeGreaterThan(noCluster);
  expect(install).toContain('test ! -e "/var/lib/postgresql/${PG_MAJOR}/main"');

  expect(dockerfile).toMatch(/^ARG MONGOD_VERSION=\d+\.\d+\.\d+$/m);
  expect(dockerfile).toMatch(/^ARG MONGOSH_VERSION=\d+\.\d+\.\d+$/m);
  expect(install).toContain('"mongodb-org-server=${MONGOD_VERSION}" "mongodb-mongosh=${MONGOSH_VERSION}"');
  // apt checks the repository's signature against MongoDB's key, for both architectures' repositories.
  expect(install).toContain('echo "deb [signed-by=/usr/share/keyrings/mongodb-server-${MONGO_SERIES}.asc] https://repo.mongodb.org/apt/${MONGO_REPO}"');
  expect(install).toMatch(/amd64\) .*MONGO_REPO="debian bookworm\/mongodb-org\/\$\{MONGO_SERIES\} main"/);
  expect(install).toMatch(/arm64\) .*MONGO_REPO="ubuntu jammy\/mongodb-org\/\$\{MONGO_SERIES\} multiverse"/);
  expect(install).toContain("mongod --version && mongosh --version");
});

it("declares the task's scratch path as a volume, after the step that prepares it", () => {
  const stage = finalStage(dockerfile);
  expect(declaredVolumes(stage)).toEqual([scratchPath]);
  // Docker discards what a later build step writes under a declared volume, so it is prepared first.
  const prepares = stage.findIndex((i) => i.keyword === "RUN" && i.args.includes(`install -d -o ${runnerUser.split(":")[0]}`) && i.args.endsWith(` ${scratchPath}`));
  const volume = stage.findIndex((i) => i.keyword === "VOLUME");
  expect(prepares).toBeGreaterThan(-1);
  expect(volume).toBeGreaterThan(prepares);
});
