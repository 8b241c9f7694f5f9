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
  setup, makeImages, writeManifest, startEspsim, startStation, control, stopChild, query, fail, check, eq,
} from './lib.mjs';
import { shift, slotName } from './driver.mjs';

const [buildDir, srcDir] = process.argv.slice(2);
if (!buildDir || !srcDir) fail('usage: shift.mjs BUILD_DIR SOURCE_DIR');
const env = setup(buildDir, srcDir, 'station-shift');
const SLOTS = 16;
const TARGET = 208; /* units: 13 per slot */
const t0 = Date.now();

const images = makeImages(env, 16000, 3);
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

const ctls = [];
for (let i = 0; i < SLOTS; i++) ctls.push(await control(`${env.work}/ctl`));
const play = shift({ env, station, ctls, slots: SLOTS, target: TARGET, images });
await play.done;
for (const c of ctls) c.close();
const { plays, flashProblems } = play;
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
// The session's stored counts: every board seated is a unit (not one per slot).
const stored = query(db, 'select units, passed, failed, aborted, skipped, attempts from runs')[0];
const n = res => rows.filter(r => r.result === res).length;
eq([stored.units, stored.passed, stored.failed, stored.aborted, stored.skipped, stored.attempts],
  [rows.length, n('pass'), n('fail'), n('aborted'), n('skipped'), rows.length], 'the run\'s stored counts');

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
    // A board pulled mid-unit may go before its MAC is read.
    if (p.kind === 'pulled') check(r.mac === null || r.mac === p.mac, () => `${where}: MAC ${r.mac}`);
    else eq(r.mac, p.noMac ? null : p.mac, `${where}: MAC`);
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
