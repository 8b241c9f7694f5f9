// chromium.mjs - the one launcher of headless Chromium for the browser tests (the station
// dashboard, the HTML report): Debian's chromium (tools/install-deps), driven
// by playwright-core from npm (pinned in the top-level package.json), with a
// fresh profile that is deleted afterwards and the flags that keep a test
// browser from talking to anything but the page under test.
//
//   import { launchChromium } from "./chromium.mjs";
//   const b = await launchChromium({ viewport: { width: 1600, height: 900 } });
//   const page = await b.context.newPage(); ... await b.close();
//
// EG_CHROMIUM overrides the executable (default /usr/bin/chromium).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

// --headless comes from playwright (headless: true); --user-data-dir from
// launchPersistentContext (a new temporary folder per launch).
export const CHROMIUM_ARGS = [
  "--no-sandbox", // tests run as root in CI containers, where the sandbox cannot start
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function chromiumPath() {
  return process.env.EG_CHROMIUM || "/usr/bin/chromium";
}

export async function launchChromium({ viewport = { width: 1600, height: 900 } } = {}) {
  const exe = chromiumPath();
  if (!fs.existsSync(exe)) throw new Error(`${exe} not found: run tools/install-deps (Debian package chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "eg-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: exe,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
      timeout: 60_000,
    });
  } catch (e) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
