// deps.mjs - make sure the npm packages pinned at the top of the repository
// (package.json + package-lock.json: esptool-js and its dependencies) are
// installed in <repo>/node_modules, running `npm ci` there when they are
// missing or not the locked version (CI starts from a fresh clone).
//
// As a module: ensureNodeModules(repoRoot) -> the installed esptool-js
// version; throws with the reason when npm fails. As a script (ctest fixture
// "integration.esptool_js.npm"): same, exit status 1 on failure.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE = "esptool-js";

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

// Every package the lock file pins, as [folder under the repo, version].
function lockedPackages(repoRoot) {
  const lock = readJson(path.join(repoRoot, "package-lock.json"));
  const packages = (lock && lock.packages) || {};
  const pinned = Object.entries(packages)
    .filter(([where, entry]) => where.startsWith("node_modules/") && entry && entry.version)
    .map(([where, entry]) => [where, entry.version]);
  if (!pinned.some(([where]) => where === `node_modules/${PACKAGE}`)) {
    throw new Error(`${repoRoot}/package-lock.json does not pin ${PACKAGE}`);
  }
  return pinned;
}

function installedVersion(repoRoot, where) {
  const pkg = readJson(path.join(repoRoot, where, "package.json"));
  return pkg ? pkg.version : null;
}

function firstMismatch(repoRoot, pinned) {
  for (const [where, want] of pinned) {
    const have = installedVersion(repoRoot, where);
    if (have !== want) return `${where} is ${have ? have : "missing"}, lock wants ${want}`;
  }
  return null;
}

export function ensureNodeModules(repoRoot) {
  const pinned = lockedPackages(repoRoot);
  const why = firstMismatch(repoRoot, pinned);
  if (why) {
    process.stderr.write(`${why}: running npm ci in ${repoRoot}\n`);
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    const r = spawnSync(npm, ["ci", "--no-audit", "--no-fund"], {
      cwd: repoRoot,
      stdio: ["ignore", "inherit", "inherit"],
      timeout: 240_000,
    });
    if (r.error) throw new Error(`npm ci could not run: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`npm ci failed (exit status ${r.status}, signal ${r.signal})`);
    const still = firstMismatch(repoRoot, pinned);
    if (still) throw new Error(`after npm ci, ${still}`);
  }
  return installedVersion(repoRoot, `node_modules/${PACKAGE}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
  try {
    console.log(`${PACKAGE} ${ensureNodeModules(repoRoot)} ready in ${repoRoot}/node_modules`);
  } catch (err) {
    console.error(`FAIL: ${err.message}`);
    process.exit(1);
  }
}
