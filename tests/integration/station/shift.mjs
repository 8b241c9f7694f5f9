// shift.mjs - a production shift against `espgang station`: 16 simulated
// slots (espsim --fast, ptys), boards seated and pulled through espsim's
// control socket, at least 208 units: healthy boards, boards with injected
// faults (MD5 mismatch, a bad flash cell, not in download mode, a board
// that goes silent and is pulled mid-flash), boards swapped without a
// pause, boards that passed seated again (skipped: not re-flashed), boards
// that failed seated again without their fault (flashed, pass).
//
// Checked: every row of the log against the plays (one row per unit, in
// order per slot: MAC, result, failing stage and error), no row left in
// progress, the session run (station, finished), every counter of the
// summary and of the last counters event against the log, every unit_done
// event against its row, and every passed board's flash file against the
// images at the moment it passed.
//
// usage: node shift.mjs BUILD_DIR SOURCE_DIR
import {
  setup, makeImages, writeManifest, startEspsim, startStation, control, stopChild, query, flashHolds,
  prng, sleep, fail, check, eq,
} from './lib.mjs';

const [buildDir, srcDir] = process.argv.slice(2);
if (!buildDir || !srcDir) fail('usage: shift.mjs BUILD_DIR SOURCE_DIR');
const env = setup(buildDir, srcDir, 'station-shift');
const SLOTS = 16;
const TARGET = 208; /* units: 13 per slot */
const t0 = Date.now();

const images = makeImages(env, 16000, 3);
const slotName = i => `slot${String(i + 1).padStart(2, '0')}`;
writeManifest(`${env.work}/shift.yaml`, {
  station: 'shift-A',
  slots: Array.from({ length: SLOTS }, (_, i) => ({ slot: `S${i + 1}`, path: `rack/${slotName(i)}` })),
  images,
  stub: env.stubDir,
});

// The rack starts empty: every board is seated during the shift.
const sim = await startEspsim(env, ['--fast', '-n', String(SLOTS), '--pty', 'rack', '--flash-dir', 'flash',
  '--control', 'ctl', '--empty', 'all', '--replug-ms', '0', '--seed', '7']);
const station = startStation(env, ['shift.yaml', '--probe-ms', '100']);
const hello = await station.waitFor(e => e.event === 'station', 10000, 'the station event');
eq(hello.slots, SLOTS, 'slots in the station event');

// ---------------------------------------------------------------- the plays
// Each play is one board seated in one slot: what it is and what the log
// must say about it.
const plays = [];
const passedBoards = [];   // MACs that passed and are on the shelf (reseatable)
const fixableBoards = [];  // MACs that failed from an injected fault, fixed now
const seatedMacs = new Set();
let started = 0, finished = 0;
const flashProblems = [];

function choose(rand) {
  const r = rand();
  if (r < 0.12 && passedBoards.length) return { kind: 'reseat-passed', mac: passedBoards.shift(), expect: 'skipped' };
  if (r < 0.17 && fixableBoards.length) return { kind: 'reseat-fixed', mac: fixableBoards.shift(), expect: 'pass' };
  if (r < 0.24) return { kind: 'md5', fault: 'md5_mismatch', expect: 'fail', stage: 'verify', error: 'MD5_MISMATCH' };
  if (r < 0.29) return { kind: 'badcell', fault: 'flash_write_error_at=0x11000', expect: 'fail', stage: 'write', error: 'DEVICE_STATUS' };
  if (r < 0.33) return { kind: 'nodl', fault: 'not_in_download_mode', expect: 'fail', stage: 'sync', error: 'NOT_DOWNLOAD_MODE', noMac: true };
  if (r < 0.38) return { kind: 'pulled', fault: 'stall_after_bytes=9000', expect: 'fail', errors: ['PORT_GONE', 'TIMEOUT'] };
  return { kind: 'new', expect: 'pass' };
}

/* A board's unit_done for slot i, the k-th final one of that slot. */
function unitDone(i, k) {
  let n = 0;
  return station.waitFor(e => e.event === 'unit_done' && e.index === i && !e.will_retry && n++ === k, 30000,
    `unit #${k + 1} of ${slotName(i)} to end`);
}

function stateIs(i, pred) {
  // The latest slot_state of slot i, now or when it comes.
  let last = null;
  for (const e of station.events) if (e.event === 'slot_state' && e.index === i) last = e;
  if (last && pred(last)) return Promise.resolve(last);
  return station.waitFor(e => e.event === 'slot_state' && e.index === i && pred(e), 30000,
    `${slotName(i)} to reach a state`, station.events.length);
}

async function slotLoop(i, ctl) {
  const rand = prng(1000 + i);
  let k = 0;
  await sleep(rand() * 300);
  while (started < TARGET) {
    started++;
    const play = { slot: i, ...choose(rand) };
    if (play.mac && seatedMacs.has(play.mac)) play.kind = 'new', delete play.mac, play.expect = 'pass';
    plays.push(play);
    const seatCmd = [`seat ${slotName(i)}`];
    if (play.mac) seatCmd.push(`mac=${play.mac}`, 'flash=keep');
    if (play.fault) seatCmd.push(`fault=${play.fault}`);
    const seated = await ctl.ok(seatCmd.join(' '));
    play.mac = seated.mac;
    seatedMacs.add(play.mac);
    if (play.kind === 'pulled') {
      // Pulled while the unit runs: once it has started (its row exists).
      await station.waitFor(e => e.event === 'unit_start' && e.index === i, 20000, `${slotName(i)} pulled unit to start`,
        station.events.length - 50 > 0 ? station.events.length - 50 : 0);
      await sleep(30);
      await ctl.ok(`remove ${slotName(i)}`);
    }
    const done = await unitDone(i, k++);
    play.got = done;
    finished++;
    if (done.result === 'pass' && !images.every(img => flashHolds(`${env.work}/flash/${slotName(i)}.bin`, img)))
      flashProblems.push(`${slotName(i)} ${play.mac}: flash does not hold the images after its pass`);
    if (play.expect === 'pass' && done.result === 'pass') passedBoards.push(play.mac);
    if (play.expect === 'skipped') passedBoards.push(play.mac);
    if ((play.kind === 'md5' || play.kind === 'badcell') && rand() < 0.5) fixableBoards.push(play.mac);
    if (play.kind !== 'pulled') {
      await sleep(rand() * 60);
      // Now and then a swap: out and the next one in at once.
      if (rand() < 0.08 && started < TARGET) {
        started++;
        const swap = { slot: i, kind: 'swap', expect: 'pass' };
        plays.push(swap);
        const r = await ctl.send(`remove ${slotName(i)}`);
        check(r.ok, () => `swap remove: ${r.error}`);
        seatedMacs.delete(play.mac);
        const s2 = await ctl.ok(`seat ${slotName(i)}`);
        swap.mac = s2.mac;
        seatedMacs.add(swap.mac);
        swap.got = await unitDone(i, k++);
        finished++;
        if (swap.got.result === 'pass') passedBoards.push(swap.mac);
        await ctl.ok(`remove ${slotName(i)}`);
        seatedMacs.delete(swap.mac);
      } else {
        await ctl.ok(`remove ${slotName(i)}`);
        seatedMacs.delete(play.mac);
      }
    } else {
      seatedMacs.delete(play.mac);
    }
    // The station must notice the board is gone before the next one comes.
    await stateIs(i, e => e.state === 'waiting' && e.note === 'no port');
    await sleep(rand() * 80);
  }
}

const ctls = [];
for (let i = 0; i < SLOTS; i++) ctls.push(await control(`${env.work}/ctl`));
await Promise.all(ctls.map((c, i) => slotLoop(i, c)));
for (const c of ctls) c.close();
const played = Date.now() - t0;

// End of the shift: Ctrl-C.
const rc = await stopChild(station.child, 'SIGINT');
eq(rc, 0, `station exit status (stderr: ${station.stderr})`);
await stopChild(sim.child, 'SIGTERM');

// ---------------------------------------------------------------- checks
check(plays.length >= TARGET, () => `only ${plays.length} units played`);
for (const kind of ['new', 'md5', 'badcell', 'nodl', 'pulled', 'reseat-passed', 'reseat-fixed', 'swap'])
  check(plays.some(p => p.kind === kind), () => `the shift played no '${kind}' board`);
check(flashProblems.length === 0, () => flashProblems.join('; '));

const db = `${env.work}/espgang.db`;
const runs = query(db, 'select id, station, status from runs');
eq(runs.map(r => [r.station, r.status]), [['shift-A', 'finished']], 'the session run');
const rows = query(db, 'select id, slot, attempt, mac, result, fail_stage, error_code, message from units order by id');
eq(rows.length, plays.length, 'rows in the log (one per unit)');
eq(rows.filter(r => r.result === 'in_progress').length, 0, 'rows left in progress');

// Per slot, the rows in order are the plays in order.
for (let i = 0; i < SLOTS; i++) {
  const mine = plays.filter(p => p.slot === i);
  const got = rows.filter(r => r.slot === `S${i + 1}`);
  eq(got.length, mine.length, `rows of S${i + 1}`);
  mine.forEach((p, k) => {
    const r = got[k];
    const where = `S${i + 1} unit ${k + 1} (${p.kind}, ${p.mac})`;
    eq(r.attempt, 1, `${where}: attempt`);
    eq(r.result, p.expect, `${where}: result (${r.message})`);
    eq(r.mac, p.noMac ? null : p.mac, `${where}: MAC`);
    if (p.expect === 'fail' && p.error) eq([r.fail_stage, r.error_code], [p.stage, p.error], `${where}: failure`);
    if (p.errors) check(p.errors.includes(r.error_code), () => `${where}: error ${r.error_code} (${r.message})`);
    if (p.expect === 'skipped') check(/already passed/.test(r.message), () => `${where}: skip message ${r.message}`);
    // The event stream said the same.
    eq([p.got.result, p.got.mac ?? null, p.got.slot], [r.result, r.mac, r.slot], `${where}: unit_done event vs row`);
  });
}

// Counters: the summary and the last counters event against the log.
const count = res => rows.filter(r => r.result === res).length;
const want = {
  seated: rows.length, units: count('pass') + count('fail'), passed: count('pass'), failed: count('fail'),
  skipped: count('skipped'), aborted: count('aborted'), first_pass: count('pass'), attempts: rows.length,
};
const summary = station.events.find(e => e.event === 'summary');
check(summary, () => 'no summary event');
const counters = station.events.filter(e => e.event === 'counters').at(-1);
for (const [k, v] of Object.entries(want)) {
  eq(summary[k], v, `summary ${k}`);
  eq(counters[k], v, `last counters event ${k}`);
}
check(Math.abs(summary.first_pass_yield - want.first_pass / want.units) < 0.001,
  () => `first-pass yield ${summary.first_pass_yield} vs ${want.first_pass}/${want.units}`);
eq(summary.db_error, false, 'db_error');
check(summary.probes > 0, () => 'no probes');

console.log(`station shift: ${rows.length} units over ${SLOTS} slots in ${(played / 1000).toFixed(1)} s ` +
  `(${want.passed} passed, ${want.failed} failed, ${want.skipped} skipped; ${summary.probes} probes, ` +
  `${summary.probe_bytes} bytes); every row, event and counter matches`);
