// rack.mjs - a simulated rack for the benchmarks: espsim processes (one, or
// one per shard so the rack's simulation can use every core), the images,
// espgang's manifest for them, and the measurements taken around a run
// (wall time, CPU from /proc, peak memory from GNU time).
//
// startRack({espsim, n, shards, work, tcp, eventLog}) -> rack with .devices
// (per device: shard, slot, pty or url, log path, label espgang will give it)
// and .stop(); cpuTicks(pid); runTimed(argv, opts) -> {wall, user, sys, rssKb,
// t0, t1 (CLOCK_MONOTONIC us), code, out}.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

export const HZ = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

// CLOCK_MONOTONIC in microseconds (Node's hrtime is libuv's, the same clock
// espgang's timing log and espsim's event log use).
export function monoUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

export function cpuTicks(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]); // utime stime
  } catch {
    return 0;
  }
}

export function makeImages(mkimage, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const run = (...a) => {
    const r = spawnSync(mkimage, a, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`mkimage ${a.join(" ")}: ${r.stderr}`);
  };
  run("bootloader", path.join(dir, "bootloader.bin"));
  run("partitions", path.join(dir, "partitions.bin"));
  run("app", path.join(dir, "app.bin"), "1388912");
  return [
    { offset: 0x1000, file: path.join(dir, "bootloader.bin") },
    { offset: 0x8000, file: path.join(dir, "partitions.bin") },
    { offset: 0x10000, file: path.join(dir, "app.bin") },
  ];
}

function startOne(espsim, args, stderrPath) {
  const child = spawn(espsim, args, { stdio: ["ignore", "pipe", fs.openSync(stderrPath, "w")] });
  const devices = [];
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`espsim not ready after 20 s: ${args.join(" ")}`)), 20000);
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        return;
      }
      if (o.ready) {
        clearTimeout(timer);
        resolve(devices);
      } else if (o.slot) devices.push(o);
    });
    exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`espsim exited before ready (${e.code ?? e.signal}): ${fs.readFileSync(stderrPath, "utf8").trim()}`));
    });
  });
  return { child, ready, exited };
}

// Devices split over `shards` espsim processes as evenly as possible.
export async function startRack({ espsim, n, shards = 1, work, tcp = false, eventLog = false, extra = [] }) {
  shards = Math.max(1, Math.min(shards, n));
  const procs = [];
  const rack = { devices: [], procs, shards };
  try {
    for (let s = 0; s < shards; s++) {
      const count = Math.floor(n / shards) + (s < n % shards ? 1 : 0);
      const name = shards === 1 ? "" : String.fromCharCode(97 + s);
      const dir = path.join(work, "rack", name);
      const args = ["--count", String(count), "--flash-dir", path.join(work, "flash", name)];
      args.push(...(tcp ? ["--tcp", "0"] : ["--pty", dir]));
      if (eventLog) {
        const ev = path.join(work, "ev", name);
        fs.mkdirSync(ev, { recursive: true });
        args.push("--event-log", ev);
      }
      args.push(...extra);
      const p = startOne(espsim, args, path.join(work, `sim${name}.err`));
      p.shard = name;
      procs.push(p);
    }
    for (const p of procs) {
      const devs = await p.ready;
      devs.forEach((d, i) => {
        d.shard = p.shard;
        d.pid = p.child.pid;
        // espgang's label: the glob's file name, or "<shard>-<i>" for a shard's entry.
        d.label = p.shard ? `${p.shard}-${i + 1}` : d.slot;
        d.log = eventLog ? path.join(work, "ev", p.shard, `${d.slot}.log`) : null;
        rack.devices.push(d);
      });
    }
  } catch (e) {
    for (const p of procs) p.child.kill("SIGTERM");
    throw e;
  }
  rack.pids = procs.map((p) => p.child.pid);
  rack.stop = async () => {
    for (const p of procs) p.child.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
  };
  return rack;
}

// The manifest's ports: a glob per shard (pty), or one URL per device (TCP).
export function manifestPorts(rack, work) {
  if (rack.devices[0].url) return rack.devices.map((d) => `  - {slot: "${d.label}", url: "${d.url}"}`).join("\n");
  if (rack.shards === 1) return `  - {glob: "${path.join(work, "rack")}/slot*"}`;
  const names = [...new Set(rack.devices.map((d) => d.shard))];
  return names.map((s) => `  - {glob: "${path.join(work, "rack", s)}/slot*", slot: "${s}"}`).join("\n");
}

export function writeManifest(file, { images, ports, stub, baud = 921600 }) {
  const text = `station: bench
chip: esp32
images:
${images.map((i) => `  - {offset: 0x${i.offset.toString(16)}, file: "${i.file}"}`).join("\n")}
flash: {mode: dio, freq: 40m, size: detect}
baud: ${baud}
before: no_reset
after: no_reset
stub: "${stub}"
retries: 0
ports:
${ports}
`;
  fs.writeFileSync(file, text);
}

// Run argv under GNU time; resolves with wall/CPU/RSS, the monotonic start
// and end (for the attribution's "before the first request") and CPU
// samples every 250 ms ({t, ticks}).
export function runTimed(argv, { cwd, timeFile }) {
  return new Promise((resolve) => {
    const t0 = monoUs();
    const child = spawn("/usr/bin/time", ["-f", "%U %S %M", "-o", timeFile, ...argv], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (out += b));
    // The program's CPU over time (it is GNU time's child): the share of a
    // core while it works, without its start-up, comes from these.
    const samples = [];
    let pid = 0;
    const poll = setInterval(() => {
      if (!pid) {
        try {
          pid = Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ")[0]) || 0;
        } catch {}
      }
      if (pid) samples.push({ t: monoUs(), ticks: cpuTicks(pid) });
    }, 250);
    child.on("exit", (code) => {
      clearInterval(poll);
      const t1 = monoUs();
      let user = 0, sys = 0, rssKb = 0;
      try {
        const last = fs.readFileSync(timeFile, "utf8").trim().split("\n").pop();
        [user, sys, rssKb] = last.split(" ").map(Number);
      } catch {}
      resolve({ code, out, t0, t1, wall: (t1 - t0) / 1e6, user, sys, rssKb, samples: samples.filter((x) => x.ticks > 0) });
    });
  });
}

export function loadAvg() {
  return fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
}
