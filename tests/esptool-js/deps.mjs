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

function lockedVersion(repoRoot) {
  const lock = readJson(path.join(repoRoot, "package-lock.json"));
  const entry = lock && lock.packages && lock.packages[`node_modules/${PACKAGE}`];
  if (!entry || !entry.version) {
    throw new Error(`${repoRoot}/package-lock.json does not pin ${PACKAGE}`);
  }
  return entry.version;
}

function installedVersion(repoRoot) {
  const pkg = readJson(path.join(repoRoot, "node_modules", PACKAGE, "package.json"));
  return pkg ? pkg.version : null;
}

export function ensureNodeModules(repoRoot) {
  const want = lockedVersion(repoRoot);
  const have = installedVersion(repoRoot);
  if (have === want) return have;
  process.stderr.write(
    `${PACKAGE} ${have ? have + " installed" : "not installed"}, lock wants ${want}: ` +
      `running npm ci in ${repoRoot}\n`,
  );
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["ci", "--no-audit", "--no-fund"], {
    cwd: repoRoot,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 240_000,
  });
  if (r.error) throw new Error(`npm ci could not run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`npm ci failed (exit status ${r.status}, signal ${r.signal})`);
  const now = installedVersion(repoRoot);
  if (now !== want) throw new Error(`after npm ci, ${PACKAGE} is ${now}, lock wants ${want}`);
  return now;
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
