// driver.mjs - plays a production shift into espsim's control socket while
// `espgang station --json` runs (lib.mjs), and remembers every play: which
// board was seated where and what the log must say about it.
//
// One loop per slot, each with its own seeded PRNG (the same kinds of board
// in the same order for the same seed): seat a board, wait for its unit to
// end (a pulled board is removed while it runs), check the flash of a board
// that passed, remove it (now and then swapped at once for the next), wait
// until the station has seen the slot empty, and go on until `target`
// units were started.
//
// Pauses: with pauseAt = [n1, n2, ...], once n units have ended every slot
// loop stops after its current unit ends (the board still seated) and the
// returned promise from `paused(k)` resolves; `resume()` lets them go on.
import { flashHolds, check, sleep, prng } from './lib.mjs';

const slotName = i => `slot${String(i + 1).padStart(2, '0')}`;

/* What the next board is, from the slot's PRNG and the shelf of boards seen. */
function choose(rand, shelf) {
  const r = rand();
  if (r < 0.12 && shelf.passed.length) return { kind: 'reseat-passed', mac: shelf.passed.shift(), expect: 'skipped' };
  if (r < 0.17 && shelf.fixable.length) return { kind: 'reseat-fixed', mac: shelf.fixable.shift(), expect: 'pass' };
  if (r < 0.24) return { kind: 'md5', fault: 'md5_mismatch', expect: 'fail', stage: 'verify', error: 'MD5_MISMATCH' };
  if (r < 0.29)
    return { kind: 'badcell', fault: 'flash_write_error_at=0x11000', expect: 'fail', stage: 'write', error: 'DEVICE_STATUS' };
  if (r < 0.33)
    return { kind: 'nodl', fault: 'not_in_download_mode', expect: 'fail', stage: 'sync', error: 'NOT_DOWNLOAD_MODE', noMac: true };
  // Pulled mid-unit (it stalls there, so the pull comes first): PORT_GONE.
  if (r < 0.38) return { kind: 'pulled', fault: 'stall_after_bytes=9000', expect: 'fail', errors: ['PORT_GONE'] };
  return { kind: 'new', expect: 'pass' };
}

export function shift({ env, station, ctls, slots, target, images, pauseAt = [] }) {
  const plays = [];
  const shelf = { passed: [], fixable: [] }; // boards off the rack that may come back
  const seated = new Set();
  const flashProblems = [];
  let started = 0, ended = 0;
  const pauses = pauseAt.map(n => ({ n, waiting: 0, reached: null, go: null }));
  for (const p of pauses) {
    p.reached = new Promise(r => { p.reachedResolve = r; });
    p.go = new Promise(r => { p.goResolve = r; });
  }
  let pauseIdx = 0;

  /* The k-th final unit_done of slot i. */
  function unitDone(i, k) {
    let n = 0;
    return station.waitFor(e => e.event === 'unit_done' && e.index === i && !e.will_retry && n++ === k, 30000,
      `unit #${k + 1} of ${slotName(i)} to end`);
  }

  function stateIs(i, pred) {
    let last = null;
    for (const e of station.events) if (e.event === 'slot_state' && e.index === i) last = e;
    if (last && pred(last)) return Promise.resolve(last);
    return station.waitFor(e => e.event === 'slot_state' && e.index === i && pred(e), 30000,
      `${slotName(i)} to reach a state`, station.events.length);
  }

  /* After a unit ended: wait here while a pause is due. */
  async function maybePause() {
    const p = pauses[pauseIdx];
    if (!p || ended < p.n) return;
    if (++p.waiting === activeLoops) p.reachedResolve();
    await p.go;
  }

  let activeLoops = slots;
  async function slotLoop(i, ctl) {
    const rand = prng(1000 + i);
    let k = 0;
    await sleep(rand() * 300);
    const record = (play, done) => {
      play.got = done;
      ended++;
      if (done.result === 'pass' && !images.every(img => flashHolds(`${env.work}/flash/${slotName(i)}.bin`, img)))
        flashProblems.push(`${slotName(i)} ${play.mac}: flash does not hold the images after its pass`);
    };
    while (started < target) {
      started++;
      const play = { slot: i, ...choose(rand, shelf) };
      if (play.mac && seated.has(play.mac)) play.kind = 'new', delete play.mac, play.expect = 'pass';
      plays.push(play);
      const seatCmd = [`seat ${slotName(i)}`];
      if (play.mac) seatCmd.push(`mac=${play.mac}`, 'flash=keep');
      if (play.fault) seatCmd.push(`fault=${play.fault}`);
      const from = station.events.length;
      const s = await ctl.ok(seatCmd.join(' '));
      play.mac = s.mac;
      seated.add(play.mac);
      if (play.kind === 'pulled') {
        // Pulled while its unit runs, once the chip has answered (a port
        // gone before that is waited for by the device, as a USB chip
        // re-enumerating would be).
        await station.waitFor(e => e.event === 'stage' && e.index === i && !['open', 'reset', 'sync'].includes(e.stage),
          20000, `${slotName(i)}'s pulled unit to reach its chip`, from);
        await ctl.ok(`remove ${slotName(i)}`);
        seated.delete(play.mac);
      }
      record(play, await unitDone(i, k++));
      if (play.expect === 'pass' && play.got.result === 'pass') shelf.passed.push(play.mac);
      if (play.expect === 'skipped') shelf.passed.push(play.mac);
      if ((play.kind === 'md5' || play.kind === 'badcell') && rand() < 0.5) shelf.fixable.push(play.mac);
      await maybePause();
      if (play.kind !== 'pulled') {
        await sleep(rand() * 60);
        if (rand() < 0.08 && started < target) {
          // A swap: out and the next one in at once.
          started++;
          const swap = { slot: i, kind: 'swap', expect: 'pass' };
          plays.push(swap);
          check((await ctl.send(`remove ${slotName(i)}`)).ok, () => 'swap remove');
          seated.delete(play.mac);
          swap.mac = (await ctl.ok(`seat ${slotName(i)}`)).mac;
          seated.add(swap.mac);
          record(swap, await unitDone(i, k++));
          if (swap.got.result === 'pass') shelf.passed.push(swap.mac);
          await maybePause();
          await ctl.ok(`remove ${slotName(i)}`);
          seated.delete(swap.mac);
        } else {
          await ctl.ok(`remove ${slotName(i)}`);
          seated.delete(play.mac);
        }
      }
      // The station must see the slot empty before the next board comes.
      await stateIs(i, e => e.state === 'waiting' && e.note === 'no port');
      await sleep(rand() * 80);
    }
    activeLoops--;
    const p = pauses[pauseIdx];
    if (p && p.waiting === activeLoops && activeLoops > 0) p.reachedResolve();
  }

  const done = Promise.all(ctls.map((c, i) => slotLoop(i, c)));
  return {
    plays,
    flashProblems,
    done,
    /* Resolves when every running slot loop waits at pause k (0-based). */
    paused(k) { return pauses[k].reached; },
    resume() {
      const p = pauses[pauseIdx++];
      p.goResolve();
    },
    slotName,
  };
}

export { slotName };
