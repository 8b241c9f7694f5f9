// lib.mjs - what the station tests share: a scratch folder, espsim with its
// control socket, `espgang station --json` with its events, the log.
//
// Every helper process is started here and always stopped (stopAll runs on
// exit, on a failure and on a signal).
import { spawn, execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import path from 'node:path';

const children = new Set();

export function stopAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  children.clear();
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopAll(); process.exit(1); });

export function fail(msg) {
  console.error(`FAIL: ${msg}`);
  stopAll();
  process.exit(1);
}

export function check(cond, msg) { if (!cond) fail(msg()); }

export function eq(got, want, what) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) fail(`${what}: got ${g}, expected ${w}`);
}

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/* A seeded PRNG (mulberry32): the same plays for the same seed. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function setup(buildDir, srcDir, name) {
  buildDir = path.resolve(buildDir);
  srcDir = path.resolve(srcDir);
  const work = mkdtempSync(`/tmp/${name}-`);
  const env = {
    build: buildDir,
    src: srcDir,
    work,
    espgang: path.join(buildDir, 'src/espgang'),
    espsim: path.join(buildDir, 'tools/espsim/espsim'),
    mkimage: path.join(buildDir, 'mkimage'),
    stubDir: path.join(srcDir, 'node_modules/esptool-js/lib/targets/stub_flasher'),
  };
  process.on('exit', code => {
    if (code === 0 && !process.env.KEEP) rmSync(work, { recursive: true, force: true });
    else console.error(`scratch folder kept: ${work}`);
  });
  return env;
}

/* Images small enough that a unit takes tens of milliseconds on --fast. */
export function makeImages(env, appSize = 16000, seed = 1) {
  mkdirSync(`${env.work}/images`, { recursive: true });
  execFileSync(env.mkimage, ['bootloader', `${env.work}/images/bootloader.bin`]);
  execFileSync(env.mkimage, ['partitions', `${env.work}/images/partitions.bin`]);
  execFileSync(env.mkimage, ['app', `${env.work}/images/app.bin`, String(appSize), String(seed)]);
  return [
    { offset: 0x1000, file: `${env.work}/images/bootloader.bin` },
    { offset: 0x8000, file: `${env.work}/images/partitions.bin` },
    { offset: 0x10000, file: `${env.work}/images/app.bin` },
  ];
}

export function writeManifest(file, { station, slots, images, stub, extra = '' }) {
  const lines = [
    `station: ${station}`,
    'chip: esp32',
    'images:',
    ...images.map(i => `  - {offset: 0x${i.offset.toString(16)}, file: ${i.file}}`),
    'baud: 921600',
    'before: no_reset',
    'after: no_reset',
    `stub: ${stub}`,
    'retries: 0',
    'timeouts: {command: 0.5, sync: 0.02}',
    extra,
    'ports:',
    ...slots.map(s => `  - {slot: ${s.slot}, ${s.url ? `url: "${s.url}"` : `path: ${s.path}`}}`),
  ];
  writeFileSync(file, lines.filter(l => l !== '').join('\n') + '\n');
}

/* espsim in the background; resolves with its device lines once ready. */
export async function startEspsim(env, args) {
  const child = spawn(env.espsim, args, { cwd: env.work, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr.on('data', d => { err += d; if (err.length > 65536) err = err.slice(-32768); });
  const devices = [];
  const rl = readline.createInterface({ input: child.stdout });
  await new Promise((resolve, reject) => {
    rl.on('line', line => {
      const j = JSON.parse(line);
      if (j.ready) resolve();
      else devices.push(j);
    });
    child.on('exit', code => reject(new Error(`espsim exited ${code}: ${err}`)));
    setTimeout(() => reject(new Error('espsim did not start')), 10000);
  }).catch(e => fail(e.message));
  return { child, devices, stderr: () => err };
}

export async function stopChild(child, signal = 'SIGTERM', ms = 20000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return child.exitCode;
  }
  const code = await new Promise(resolve => {
    const t = setTimeout(() => { child.kill('SIGKILL'); }, ms);
    child.once('exit', (c, s) => { clearTimeout(t); resolve(c === null ? s : c); });
    child.kill(signal);
  });
  children.delete(child);
  return code;
}

/* espsim's control socket: one JSON line back per line sent, in order. */
export async function control(sockPath) {
  const s = net.createConnection(sockPath);
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  const waiting = [];
  let buf = '';
  s.on('data', d => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(JSON.parse(line));
    }
  });
  return {
    send(cmd) {
      return new Promise(resolve => { waiting.push(resolve); s.write(cmd + '\n'); });
    },
    async ok(cmd) {
      const r = await this.send(cmd);
      if (!r.ok) fail(`espsim control '${cmd}': ${r.error}`);
      return r;
    },
    close() { s.end(); },
  };
}

/* `espgang station --json`: every event kept, and waiters for the next ones. */
export function startStation(env, args, opts = {}) {
  const child = spawn(env.espgang, ['station', ...args, '--json'], {
    cwd: env.work, stdio: ['ignore', 'pipe', 'pipe'], ...opts,
  });
  children.add(child);
  const st = { child, events: [], stderr: '', waiters: [], exit: null };
  child.stderr.on('data', d => { st.stderr += d; });
  const rl = readline.createInterface({ input: child.stdout });
  const log = `${env.work}/station-events.jsonl`; /* kept with the scratch folder on a failure */
  rl.on('line', line => {
    appendFileSync(log, line + '\n');
    let e;
    try { e = JSON.parse(line); } catch { fail(`station printed a line that is not JSON: ${line}`); }
    st.events.push(e);
    for (const w of [...st.waiters]) w(e);
  });
  st.exited = new Promise(resolve => child.on('exit', (c, s) => { st.exit = c === null ? s : c; resolve(st.exit); }));
  /* Resolve with the first event (from index `from` on) that pred accepts. */
  st.waitFor = (pred, ms, what, from = 0) => new Promise(resolve => {
    for (let k = from; k < st.events.length; k++) if (pred(st.events[k])) return resolve(st.events[k]);
    const t = setTimeout(() => fail(`timed out after ${ms} ms waiting for ${what}; station stderr: ${st.stderr}`), ms);
    const w = e => {
      if (!pred(e)) return;
      clearTimeout(t);
      st.waiters.splice(st.waiters.indexOf(w), 1);
      resolve(e);
    };
    st.waiters.push(w);
  });
  return st;
}

/* Rows from the log (sqlite3 -json; [] for none). */
export function query(db, sql) {
  const out = execFileSync('sqlite3', ['-json', db, sql], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

/* Does the flash file hold the image at its offset? */
export function flashHolds(flashFile, image) {
  if (!existsSync(flashFile)) return false;
  const flash = readFileSync(flashFile);
  const img = readFileSync(image.file);
  return flash.subarray(image.offset, image.offset + img.length).equals(img);
}
