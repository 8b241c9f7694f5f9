// dashboard.mjs - `espgang station --http` in headless Chromium while a shift
// is played (driver.mjs): 16 slots, 96 units. At three moments the shift
// pauses with a finished board in every slot; the page must then show, for
// every tile, the state the station reported and the result and MAC of that
// slot's latest row in the log, and the counters (passed, failed, skipped,
// first-pass yield) the log gives; GET /api/state too. A screenshot is kept
// at each moment. Throughout: no request leaves the station's origin, no
// script error, no CSP violation. At the end the station stops cleanly
// (Ctrl-C, exit 0) and every row of the log matches its play.
//
// usage: node dashboard.mjs BUILD_DIR SOURCE_DIR SCREENSHOT_DIR
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import {
  setup, makeImages, writeManifest, startEspsim, startStation, control, stopChild, query, fail, check, eq, sleep,
} from './lib.mjs';
import { shift } from './driver.mjs';
import { launchChromium } from '../../browser/chromium.mjs';

const [buildDir, srcDir, shotDir] = process.argv.slice(2);
if (!buildDir || !srcDir || !shotDir) fail('usage: dashboard.mjs BUILD_DIR SOURCE_DIR SCREENSHOT_DIR');
mkdirSync(shotDir, { recursive: true });
const env = setup(buildDir, srcDir, 'station-dash');
const SLOTS = 16, TARGET = 96, PAUSES = [20, 50, 80];

const images = makeImages(env, 16000, 5);
writeManifest(`${env.work}/dash.yaml`, {
  station: 'dash-line',
  slots: Array.from({ length: SLOTS }, (_, i) => ({ slot: `S${i + 1}`, path: `rack/slot${String(i + 1).padStart(2, '0')}` })),
  images,
  stub: env.stubDir,
});
const sim = await startEspsim(env, ['--fast', '-n', String(SLOTS), '--pty', 'rack', '--flash-dir', 'flash',
  '--control', 'ctl', '--empty', 'all', '--replug-ms', '0', '--seed', '9']);
const station = startStation(env, ['dash.yaml', '--probe-ms', '100', '--http', '0']);
const hello = await station.waitFor(e => e.event === 'station', 10000, 'the station event');
check(/^http:\/\/127\.0\.0\.1:\d+\/$/.test(hello.url || ''), () => `dashboard URL ${hello.url}`);
const origin = hello.url.replace(/\/$/, '');
const db = `${env.work}/espgang.db`;

let browser;
try {
  browser = await launchChromium({ viewport: { width: 1600, height: 900 } });
} catch (e) {
  fail(`cannot start Chromium: ${e.message}`);
}
const seen = { outside: [], errors: [] };
browser.context.on('request', r => { if (!r.url().startsWith(origin + '/')) seen.outside.push(r.url()); });
const page = await browser.context.newPage();
page.on('pageerror', e => seen.errors.push(`pageerror: ${e.message}`));
page.on('console', m => { if (m.type() === 'error') seen.errors.push(`console: ${m.text()}`); });
eq((await page.goto(hello.url)).status(), 200, 'the page');
await page.waitForSelector('#conn[data-conn="live"]', { timeout: 10000 });

function latestStates() {
  const st = new Array(SLOTS).fill(null);
  for (const e of station.events) if (e.event === 'slot_state') st[e.index] = e.state;
  return st;
}

/* What the page must show now, from the log and the station's states. */
function expected() {
  const rows = query(db, 'select slot, mac, result from units order by id');
  const states = latestStates();
  const tiles = Array.from({ length: SLOTS }, (_, i) => {
    const mine = rows.filter(r => r.slot === `S${i + 1}`);
    const last = mine.at(-1);
    return { slot: `S${i + 1}`, state: states[i], result: last ? last.result : '', mac: last?.mac ?? '' };
  });
  const n = res => rows.filter(r => r.result === res).length;
  const units = n('pass') + n('fail');
  return {
    tiles,
    passed: String(n('pass')), failed: String(n('fail')), skipped: String(n('skipped')),
    fpy: units ? ((100 * n('pass')) / units).toFixed(1) + '%' : '\u2013', // retries: 0, so every pass is a first pass
  };
}

async function shown() {
  return page.evaluate(() => {
    const txt = sel => document.querySelector(sel).textContent;
    return {
      tiles: [...document.querySelectorAll('#grid .tile')].map(t => ({
        slot: t.querySelector('.label').textContent,
        state: t.dataset.state,
        result: t.dataset.result,
        mac: (t.querySelector('.ident').textContent.match(/[0-9a-f]{2}(:[0-9a-f]{2}){5}/) || [''])[0],
      })),
      passed: txt('#c-passed'),
      failed: txt('#c-failed'),
      skipped: document.querySelector('#skipbox').hidden ? '0' : txt('#c-skipped'),
      fpy: txt('#c-fpy'),
    };
  });
}

/* A quiet moment: every slot shows a finished board waiting to be taken
 * out, or is empty. */
async function settle() {
  const deadline = Date.now() + 10000;
  while (!latestStates().every(s => s === 'removal' || s === 'waiting')) {
    if (Date.now() > deadline) fail(`the station did not settle: ${JSON.stringify(latestStates())}`);
    await sleep(50);
  }
  await sleep(300); /* the last events reach the page */
}

async function moment(k) {
  await settle();
  const want = expected();
  let got;
  for (const deadline = Date.now() + 8000; ;) {
    got = await shown();
    if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > deadline) break;
    await sleep(100);
  }
  eq([got.passed, got.failed, got.skipped, got.fpy], [want.passed, want.failed, want.skipped, want.fpy],
    `moment ${k}: counters on the page`);
  eq(got.tiles.length, SLOTS, `moment ${k}: tiles`);
  for (let i = 0; i < SLOTS; i++) eq(got.tiles[i], want.tiles[i], `moment ${k}: tile ${i + 1}`);
  const api = await page.evaluate(() => fetch('/api/state').then(r => r.json()));
  eq([api.counters.passed, api.counters.failed, api.counters.skipped].map(String), [want.passed, want.failed, want.skipped],
    `moment ${k}: /api/state counters`);
  eq(api.slots.map(s => [s.slot, s.state, s.last_result, s.mac]), want.tiles.map(t => [t.slot, t.state, t.result, t.mac]),
    `moment ${k}: /api/state slots`);
  check(want.tiles.some(t => t.state === 'removal'), () => `moment ${k}: no finished board on the rack`);
  await page.screenshot({ path: path.join(shotDir, `station-dashboard-${k}.png`), fullPage: true });
  return want;
}

const ctls = [];
for (let i = 0; i < SLOTS; i++) ctls.push(await control(`${env.work}/ctl`));
const play = shift({ env, station, ctls, slots: SLOTS, target: TARGET, images, pauseAt: PAUSES });
const seenAt = [];
for (let k = 0; k < PAUSES.length; k++) {
  await play.paused(k);
  seenAt.push(await moment(k + 1));
  play.resume();
}
await play.done;
for (const c of ctls) c.close();

const rc = await stopChild(station.child, 'SIGINT');
eq(rc, 0, `station exit status (stderr: ${station.stderr})`);
await stopChild(sim.child, 'SIGTERM');
await browser.close();

// The log against the plays, as in shift.mjs (one row per unit, in order).
const rows = query(db, 'select slot, mac, result, error_code from units order by id');
eq(rows.length, play.plays.length, 'rows in the log');
for (let i = 0; i < SLOTS; i++) {
  const mine = play.plays.filter(p => p.slot === i), got = rows.filter(r => r.slot === `S${i + 1}`);
  // A board pulled mid-unit may go before its MAC is read.
  eq(got.map((r, k) => [r.result, mine[k]?.kind === 'pulled' && r.mac === null ? mine[k].mac : r.mac]),
    mine.map(p => [p.expect, p.noMac ? null : p.mac]), `S${i + 1}: results and MACs`);
}
eq(seen.outside, [], 'requests outside the station');
eq(seen.errors, [], 'script errors or CSP violations');
console.log(`station dashboard: ${rows.length} units; at three moments (${seenAt.map(w => `${w.passed}/${w.failed}/${w.skipped}`).join(', ')} ` +
  `passed/failed/skipped) every tile and counter matched the log; screenshots in ${shotDir}`);
