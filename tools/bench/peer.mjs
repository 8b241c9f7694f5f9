// peer.mjs - the peer side by side: the same TCP rack flashed by N parallel
// esptool-js processes (peer_esptool_js.mjs, one board each) and by one
// espgang process, with wall time, CPU (user + system of every process) and
// peak memory (the sum of the processes' peak RSS) for each.

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { gangRun } from "./gang.mjs";
import { HZ, cpuTicks, monoUs, startRack } from "./rack.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));

function timedNode(args, timeFile) {
  return new Promise((resolve) => {
    const child = spawn("/usr/bin/time", ["-f", "%U %S %M", "-o", timeFile, process.execPath, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", () => {});
    child.on("exit", (code) => {
      const [user, sys, rssKb] = fs.readFileSync(timeFile, "utf8").trim().split("\n").pop().split(" ").map(Number);
      const line = out.trim().split("\n").pop();
      const j = line.slice(line.lastIndexOf("{"));
      let res = { ok: false, error: out.trim().slice(-300) };
      try {
        res = JSON.parse(j);
      } catch {}
      resolve({ code, user, sys, rssKb, ...res });
    });
  });
}

export async function peerRun({ build, images, n, work, baud = 921600 }) {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const espsim = path.join(build, "tools", "espsim", "espsim");
  const rack = await startRack({ espsim, n, work, tcp: true });
  const sim0 = rack.pids.map(cpuTicks);
  const files = images.map((i) => `0x${i.offset.toString(16)}=${i.file}`);
  const t0 = monoUs();
  const runs = await Promise.all(
    rack.devices.map((d, i) =>
      timedNode([path.join(HERE, "peer_esptool_js.mjs"), d.url, String(baud), ...files], path.join(work, `time${i}`)),
    ),
  );
  const wall = (monoUs() - t0) / 1e6;
  const sim1 = rack.pids.map(cpuTicks);
  await rack.stop();
  const bad = runs.filter((r) => !r.ok || r.code !== 0);
  if (bad.length) throw new Error(`esptool-js: ${bad.length} of ${n} boards failed: ${bad[0].error}`);
  return {
    n,
    wall,
    unitMean: runs.reduce((a, r) => a + r.ms, 0) / n / 1000,
    cpu: runs.reduce((a, r) => a + r.user + r.sys, 0),
    rssMb: runs.reduce((a, r) => a + r.rssKb, 0) / 1024,
    simCpu: sim1.reduce((a, t, i) => a + t - sim0[i], 0) / HZ,
  };
}

// espgang on the same kind of rack (TCP), for the ratios.
export function gangTcpRun(opts) {
  return gangRun({ ...opts, tcp: true });
}
