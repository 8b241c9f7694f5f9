// chromium.mjs - the one way espgang's browser tests start Chromium (the HTML
// report test and the station-dashboard test share it).
//
// Debian's /usr/bin/chromium (tools/install-deps), headless, driven by
// playwright-core (npm, pinned in package.json). Every launch gets a fresh
// profile folder, removed on close, and the flags that keep Chromium from
// talking to anyone on its own (no background networking, component
// updates, sync, QUIC or first-run work). EG_CHROMIUM overrides the path.
//
//   import { launchChromium } from "../browser/chromium.mjs";
//   const browser = await launchChromium();
//   const page = await browser.context.newPage();
//   ...
//   await browser.close();

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export async function launchChromium() {
  const require = createRequire(path.join(repoRoot, "package.json"));
  const { chromium } = require("playwright-core");
  const executablePath = process.env.EG_CHROMIUM || "/usr/bin/chromium";
  if (!fs.existsSync(executablePath)) throw new Error(`${executablePath} not found (tools/install-deps installs chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "eg-chromium-"));
  let context;
  try {
    // A persistent context is how playwright takes a --user-data-dir of ours.
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60000,
    });
  } catch (e) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async close() {
      try {
        await context.close();
      } finally {
        fs.rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
