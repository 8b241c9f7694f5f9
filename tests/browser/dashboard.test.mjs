// dashboard.test.mjs - the station dashboard in headless Chromium.
//
//   node tests/browser/dashboard.test.mjs <fakestation> <screenshot dir>
//
// Part 1, 16 slots behind a token: the page refuses a visit without it
// (401), takes ?token= once (a cookie, a redirect to /), then follows a
// seeded shift played by tests/tools/fakestation. At three checkpoints the
// fake station pauses and prints its own tally of what it sent; every tile
// (state, last result, MAC), the counters (passed, failed, first-pass yield,
// units per hour) and the latest failures on the page, and GET /api/state,
// must match it (skipped boards, already flashed, counted apart). A
// screenshot is kept at each checkpoint.
// Part 2, 120 slots: the grid holds every tile without overlap or sideways
// scrolling, tiles and counters match the tally; one screenshot.
// Throughout: no request leaves the server's origin, no script error, no
// CSP violation.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { launchChromium } from "./chromium.mjs";

const [fakestation, shotDir] = process.argv.slice(2);
if (!fakestation || !shotDir) {
  console.error("usage: dashboard.test.mjs FAKESTATION SCREENSHOT_DIR");
  process.exit(2);
}
fs.mkdirSync(shotDir, { recursive: true });

let failures = 0;
function check(what, got, want) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g === w) return true;
  failures++;
  console.error(`FAIL ${what}\n  got  ${g}\n  want ${w}`);
  return false;
}

// ---- the fake station as a child process: JSON lines out, commands in

function startStation(args) {
  const child = spawn(fakestation, args, { stdio: ["pipe", "pipe", "inherit"] });
  const queue = [], waiters = [];
  const rl = readline.createInterface({ input: child.stdout });
  rl.on("line", (line) => {
    let ev;
    try {
      ev = JSON.parse(line);
    } catch {
      console.error(`fakestation said: ${line}`);
      return;
    }
    const w = waiters.shift();
    if (w) w.resolve(ev);
    else queue.push(ev);
  });
  const exited = new Promise((resolve) => child.on("exit", (code, sig) => resolve({ code, sig })));
  child.on("exit", () => {
    for (const w of waiters.splice(0)) w.reject(new Error("fakestation exited"));
  });
  return {
    child,
    exited,
    next(event, ms = 20_000) {
      const got = queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve, reject) => waiters.push({ resolve, reject }));
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no "${event}" from fakestation within ${ms} ms`)), ms);
      });
      return Promise.race([got, timeout]).then((ev) => {
        clearTimeout(timer);
        if (ev.event !== event) throw new Error(`fakestation: expected "${event}", got ${JSON.stringify(ev)}`);
        return ev;
      });
    },
    say(line) {
      child.stdin.write(line + "\n");
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end("quit\n");
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    },
  };
}

// ---- what the page shows

async function pageView(page) {
  return page.evaluate(() => {
    const txt = (sel) => document.querySelector(sel).textContent;
    return {
      conn: document.querySelector("#conn").dataset.conn,
      tiles: [...document.querySelectorAll("#grid .tile")].map((t) => ({
        slot: t.querySelector(".label").textContent,
        state: t.dataset.state,
        result: t.dataset.result,
        ident: t.querySelector(".ident").textContent,
        norec: !t.querySelector(".norec").hidden,
        words: t.querySelector(".result").textContent,
      })),
      passed: txt("#c-passed"),
      skipped: document.querySelector("#skipbox").hidden ? "0" : txt("#c-skipped"),
      failed: txt("#c-failed"),
      fpy: txt("#c-fpy"),
      uph: txt("#c-uph"),
      failures: [...document.querySelectorAll("#failures li")].map((li) => li.textContent),
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
    };
  });
}

// The page's tiles and counters in the terms of the fake station's tally.
function asExpected(view) {
  return {
    tiles: view.tiles.map((t) => ({
      slot: t.slot,
      state: t.state,
      last_result: t.result,
      mac: (t.ident.match(/[0-9a-f]{2}(:[0-9a-f]{2}){5}/) || [""])[0],
      recorded: !t.norec,
    })),
    passed: view.passed,
    failed: view.failed,
    skipped: view.skipped,
    fpy: view.fpy,
  };
}

function wanted(expect) {
  const c = expect.counters;
  return {
    tiles: expect.slots.map((s) => ({
      slot: s.slot, state: s.state, last_result: s.last_result, mac: s.mac, recorded: s.recorded,
    })),
    passed: String(c.passed),
    failed: String(c.failed),
    skipped: String(c.skipped),
    fpy: c.units ? ((100 * c.first_pass) / c.units).toFixed(1) + "%" : "\u2013",
  };
}

// Poll until the page shows the tally (events are in flight), then compare
// once more with both sides printed.
async function pageMatches(page, expect, what) {
  const want = wanted(expect);
  const deadline = Date.now() + 8000;
  let view;
  for (;;) {
    view = await pageView(page);
    if (JSON.stringify(asExpected(view)) === JSON.stringify(want) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const got = asExpected(view);
  check(`${what}: counters on the page`, [got.passed, got.failed, got.skipped, got.fpy],
        [want.passed, want.failed, want.skipped, want.fpy]);
  check(`${what}: number of tiles`, got.tiles.length, want.tiles.length);
  for (let i = 0; i < want.tiles.length; i++) check(`${what}: tile ${i}`, got.tiles[i], want.tiles[i]);
  // The latest failures, newest first: slot, MAC (or "no MAC"), error code.
  const n = Math.min(5, expect.failures.length);
  check(`${what}: failures listed (at least)`, Math.min(view.failures.length, n), n);
  for (let k = 0; k < n; k++) {
    const f = expect.failures[k], li = view.failures[k] || "";
    const ok = li.includes(`  ${f.slot}  `) && li.includes(f.mac || "no MAC") && li.includes(f.error) &&
      (!f.status || li.includes(`chip status ${f.status}`));
    check(`${what}: failure ${k} "${li}" shows ${f.slot}, ${f.mac || "no MAC"}, ${f.error}, status "${f.status}"`, ok, true);
  }
  return view;
}

// GET /api/state (with the page's cookie) against the tally.
async function apiMatches(page, expect, what) {
  const snap = await page.evaluate(() => fetch("/api/state").then((r) => r.json()));
  const c = expect.counters;
  check(`${what}: /api/state counters`,
        [snap.counters.units, snap.counters.passed, snap.counters.failed, snap.counters.first_pass, snap.counters.skipped],
        [c.units, c.passed, c.failed, c.first_pass, c.skipped]);
  check(`${what}: /api/state slots`,
        snap.slots.map((s) => [s.slot, s.state, s.last_result, s.mac, s.recorded]),
        expect.slots.map((s) => [s.slot, s.state, s.last_result, s.mac, s.recorded]));
  check(`${what}: /api/state failures`,
        snap.failures.slice(0, expect.failures.length).map((f) => [f.slot, f.mac, f.error, f.stage, f.status]),
        expect.failures.map((f) => [f.slot, f.mac, f.error, f.stage, f.status]));
  return snap;
}

function watch(context, origin) {
  const seen = { outside: [], errors: [] };
  context.on("request", (r) => {
    if (!r.url().startsWith(origin + "/")) seen.outside.push(r.url());
  });
  context.on("page", (p) => {
    p.on("pageerror", (e) => seen.errors.push(`pageerror: ${e.message}`));
    p.on("console", (m) => {
      if (m.type() === "error" && !/401/.test(m.text())) seen.errors.push(`console: ${m.text()}`);
    });
  });
  return seen;
}

// ---- part 1: 16 slots, a token, three moments

async function part1(browser) {
  const token = crypto.randomBytes(16).toString("hex");
  const st = startStation(["--slots", "16", "--units", "90", "--seed", "5", "--pause-at", "12,40,75", "--token", token]);
  try {
    const hello = await st.next("listening", 10_000);
    const origin = hello.url.replace(/\/$/, "");
    const seen = watch(browser.context, origin);
    const page = await browser.context.newPage();

    const denied = await page.goto(hello.url);
    check("part 1: the page without the token", denied.status(), 401);
    const wrong = await page.goto(hello.url + "?token=" + "0".repeat(32));
    check("part 1: the page with a wrong token", wrong.status(), 401);
    const ok = await page.goto(hello.url + "?token=" + token);
    check("part 1: ?token= leads to the page at / (cookie set, token gone from the address)",
          [ok.status(), page.url()], [200, hello.url]);
    await page.waitForSelector('#conn[data-conn="live"]', { timeout: 10_000 });

    for (let k = 1; k <= 3; k++) {
      const cp = await st.next("checkpoint");
      check(`checkpoint ${k} number`, cp.n, k);
      const view = await pageMatches(page, cp.expect, `checkpoint ${k}`);
      await apiMatches(page, cp.expect, `checkpoint ${k}`);
      // units per hour: the server's formula on the page's clock (src/dash.h).
      const c = cp.expect.counters;
      const elapsed = Math.max(Date.now() - hello.started_ms, 60000);
      const uph = (c.units * 3600000) / elapsed, shown = Number(view.uph);
      check(`checkpoint ${k}: units per hour ${shown} within 10 % of ${uph.toFixed(1)}`,
            Math.abs(shown - uph) <= 0.1 * uph, true);
      await page.screenshot({ path: path.join(shotDir, `dashboard-16-slots-${k}.png`), fullPage: true });
      st.say("continue");
    }
    const fin = await st.next("finished");
    await pageMatches(page, fin.expect, "end of shift");
    await apiMatches(page, fin.expect, "end of shift");
    const norec = fin.expect.slots.filter((s) => !s.recorded).length;
    console.log(`part 1: ${fin.expect.counters.units} units, ${fin.expect.counters.failed} failed; ${norec} tile(s) say NOT RECORDED`);
    check("part 1: no request outside the server", seen.outside, []);
    check("part 1: no script error or CSP violation", seen.errors, []);
    await page.close();
  } finally {
    const r = await st.stop();
    check("part 1: fakestation exit", r, { code: 0, sig: null });
  }
}

// ---- part 2: 120 slots

async function part2(browser) {
  const st = startStation(["--slots", "120", "--units", "70", "--seed", "11", "--pause-at", "60"]);
  try {
    const hello = await st.next("listening", 10_000);
    const seen = watch(browser.context, hello.url.replace(/\/$/, ""));
    const page = await browser.context.newPage();
    check("part 2: the page", (await page.goto(hello.url)).status(), 200);
    const cp = await st.next("checkpoint");
    const view = await pageMatches(page, cp.expect, "120 slots");
    check("part 2: no sideways scrolling", view.scrollWidth <= view.innerWidth, true);
    const overlaps = await page.evaluate(() => {
      const r = [...document.querySelectorAll("#grid .tile")].map((t) => t.getBoundingClientRect());
      let n = 0;
      for (let i = 0; i < r.length; i++)
        for (let j = i + 1; j < r.length; j++)
          if (r[i].left < r[j].right && r[j].left < r[i].right && r[i].top < r[j].bottom && r[j].top < r[i].bottom) n++;
      return { n, width: Math.round(r[0].width), height: Math.round(r[0].height) };
    });
    check("part 2: tiles overlapping", overlaps.n, 0);
    console.log(`part 2: 120 tiles of ${overlaps.width}x${overlaps.height} px`);
    await page.screenshot({ path: path.join(shotDir, "dashboard-120-slots.png"), fullPage: true });
    check("part 2: no request outside the server", seen.outside, []);
    check("part 2: no script error or CSP violation", seen.errors, []);
    await page.close();
  } finally {
    const r = await st.stop();
    check("part 2: fakestation exit", r, { code: 0, sig: null });
  }
}

const t0 = Date.now();
let browser;
try {
  browser = await launchChromium({ viewport: { width: 1600, height: 900 } });
  await part1(browser);
  await browser.close();
  browser = await launchChromium({ viewport: { width: 1920, height: 1080 } });
  await part2(browser);
} catch (e) {
  failures++;
  console.error(`FAIL ${e.stack || e}`);
} finally {
  if (browser) await browser.close();
}
console.log(`dashboard browser test: ${failures ? failures + " failure(s)" : "ok"} in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${shotDir}`);
process.exit(failures ? 1 : 0);
