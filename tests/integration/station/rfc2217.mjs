// rfc2217.mjs - a station on ports that stay present and can reset: espsim's
// boards behind RFC 2217 (DTR/RTS drive each board's auto-reset circuit),
// before: default_reset, after: hard_reset. A seated board is found by a
// probe that resets it into its loader; a finished board (hard-reset into
// its application) is recognised by its MAC on the next probes (reset into
// the loader, MAC read, reset back); a pulled board (connections refused) is
// noticed, and the next one seated there is flashed.
//
// usage: node rfc2217.mjs BUILD_DIR SOURCE_DIR
import {
  setup, makeImages, writeManifest, startEspsim, startStation, control, stopChild, query, fail, check, eq,
} from './lib.mjs';

const [buildDir, srcDir] = process.argv.slice(2);
if (!buildDir || !srcDir) fail('usage: rfc2217.mjs BUILD_DIR SOURCE_DIR');
const env = setup(buildDir, srcDir, 'station-rfc2217');
const images = makeImages(env, 12000, 2);

const sim = await startEspsim(env, ['--fast', '-n', '2', '--tcp', '0', '--flash-dir', 'flash', '--control', 'ctl',
  '--seed', '3', '--event-log', 'events']);
const urls = sim.devices.map(d => d.rfc2217);
writeManifest(`${env.work}/net.yaml`, {
  station: 'net-line',
  slots: urls.map((u, i) => ({ slot: `N${i + 1}`, url: u })),
  images,
  stub: env.stubDir,
});
// The shared manifest writer says no_reset; this rack resets.
const { readFileSync, writeFileSync } = await import('node:fs');
writeFileSync(`${env.work}/net.yaml`, readFileSync(`${env.work}/net.yaml`, 'utf8')
  .replace('before: no_reset', 'before: default_reset').replace('after: no_reset', 'after: hard_reset'));

const station = startStation(env, ['net.yaml', '--probe-ms', '200']);
const state = (i, st, what) => station.waitFor(e => e.event === 'slot_state' && e.index === i && e.state === st, 20000,
  what, 0);
const doneOf = (i, k) => {
  let n = 0;
  return station.waitFor(e => e.event === 'unit_done' && e.index === i && !e.will_retry && n++ === k, 20000,
    `unit ${k + 1} of N${i + 1}`);
};

// Both boards are on the rack from the start: found, flashed, reset into
// their application, then seen again (by MAC) as boards to take out.
const first = await Promise.all([doneOf(0, 0), doneOf(1, 0)]);
eq(first.map(u => [u.result, u.mac]), sim.devices.map(d => ['pass', d.mac]), 'the first two units');
await state(0, 'removal', 'N1 to wait for its removal');
await state(1, 'removal', 'N2 to wait for its removal');
// Several probe periods later the finished boards are still not re-flashed.
await new Promise(r => setTimeout(r, 1000));
eq(station.events.filter(e => e.event === 'unit_start').length, 2, 'units started while the boards sat there');

// Pull N1 (its port refuses connections) and seat a new board.
const ctl = await control(`${env.work}/ctl`);
await ctl.ok('remove slot01');
await station.waitFor(e => e.event === 'slot_state' && e.index === 0 && e.state === 'waiting' && e.note === 'no port',
  20000, 'N1 to see its board gone', station.events.length);
const seated = await ctl.ok('seat slot01');
const third = await doneOf(0, 1);
eq([third.result, third.mac], ['pass', seated.mac], 'the board seated in N1');
ctl.close();

eq(await stopChild(station.child, 'SIGINT'), 0, `station exit (stderr: ${station.stderr})`);
await stopChild(sim.child, 'SIGTERM');
const rows = query(`${env.work}/espgang.db`, 'select slot, mac, result, stub from units order by id');
eq(rows.map(r => [r.slot, r.mac, r.result]).sort(), [
  ['N1', sim.devices[0].mac, 'pass'], ['N1', seated.mac, 'pass'], ['N2', sim.devices[1].mac, 'pass'],
].sort(), 'the log');
// N2's board sat there all along: after its own hard reset, each probe
// reset it into its loader (to read its MAC) and back into its app.
const straps = readFileSync(`${env.work}/events/slot02.log`, 'utf8').split('\n').filter(l => / straps: /.test(l));
const apps = straps.filter(l => /app boots/.test(l)).length, loaders = straps.filter(l => /download mode/.test(l)).length;
check(apps >= 3 && loaders >= apps, () => `N2's strap samples: ${apps} app boots, ${loaders} into the loader`);
const summary = station.events.find(e => e.event === 'summary');
check(summary && summary.passed === 3 && summary.probes > 4, () => `summary ${JSON.stringify(summary)}`);
console.log(`station over RFC 2217: 3 units, resets into the loader and back; ${summary.probes} probes`);
