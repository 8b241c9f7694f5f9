// gang.mjs - one measured espgang run on a simulated rack of n boards:
// start espsim (shards processes), flash every board with `espgang flash`,
// stop espsim, and read back what happened: wall time, each unit's time and
// stage times (the log database), espgang's and espsim's CPU, espgang's peak
// memory and, with `attrib`, the split of each unit's time (attrib.mjs).

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { LEGS, PARTS, STAGES, attribute, parseEventLog, parseTiming } from "./attrib.mjs";
import { HZ, cpuTicks, manifestPorts, runTimed, startRack, writeManifest } from "./rack.mjs";

function sql(db, q) {
  const r = spawnSync("sqlite3", ["-batch", "-noheader", "-separator", "|", db, q], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => l.split("|"));
}

function mean(a) {
  return a.length ? a.reduce((x, y) => x + y, 0) / a.length : 0;
}

export async function gangRun({ build, images, stub, n, shards = 1, work, attrib = false, tcp = false, simArgs = [], gangArgs = [] }) {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const espgang = path.join(build, "src", "espgang");
  const espsim = path.join(build, "tools", "espsim", "espsim");
  const rack = await startRack({ espsim, n, shards, work, tcp, eventLog: attrib, extra: simArgs });
  const manifest = path.join(work, "rack.yaml");
  writeManifest(manifest, { images, ports: manifestPorts(rack, work), stub });
  const sim0 = rack.pids.map(cpuTicks);
  const argv = [espgang, "flash", manifest, "--json", ...gangArgs];
  if (attrib) argv.push("--timing-log", path.join(work, "timing.jsonl"));
  const g = await runTimed(argv, { cwd: work, timeFile: path.join(work, "time") });
  const sim1 = rack.pids.map(cpuTicks);
  await rack.stop();
  if (g.code !== 0) throw new Error(`espgang exited ${g.code} with ${n} boards:\n${g.out.split("\n").slice(-8).join("\n")}`);
  const stageCols = STAGES.map((s) => `${s}_ms`);
  const rows = sql(path.join(work, "espgang.db"), `select slot, duration_ms, result, ${stageCols.join(", ")} from units`);
  const failed = rows.filter((r) => r[2] !== "pass");
  if (rows.length !== n || failed.length) throw new Error(`${n} boards: ${rows.length} units, ${failed.length} not passed`);
  const unit = rows.map((r) => Number(r[1]) / 1000);
  const stageMs = {};
  STAGES.forEach((s, i) => (stageMs[s] = mean(rows.map((r) => Number(r[3 + i])))));
  const simCpu = sim1.reduce((a, t, i) => a + t - sim0[i], 0) / HZ;
  // espgang's share of a core while the units run: from 1 s after its start
  // (images compressed, log open) to the last sample.
  const s = g.samples.filter((x) => x.t >= g.t0 + 1e6);
  const busyCpu = s.length >= 2 ? (s[s.length - 1].ticks - s[0].ticks) / HZ / ((s[s.length - 1].t - s[0].t) / 1e6) : NaN;
  const res = {
    n,
    shards: rack.shards,
    wall: g.wall,
    unitMean: mean(unit),
    unitMax: Math.max(...unit),
    stageMs,
    gangCpu: g.user + g.sys,
    gangBusyShare: busyCpu,
    gangRssMb: g.rssKb / 1024,
    simCpu,
    attrib: null,
  };
  if (attrib) res.attrib = attributeRun(work, rack, g);
  return res;
}

// Per stage, the mean over units of each part (ms); plus what lies outside
// the exchanges: process start to the first request, last reply to exit.
function attributeRun(work, rack, g) {
  const timing = parseTiming(fs.readFileSync(path.join(work, "timing.jsonl"), "utf8"));
  const sum = {};
  let before = 0, afterLast = 0, units = 0;
  for (const d of rack.devices) {
    const recs = timing.get(d.label);
    if (!recs) continue;
    const ev = parseEventLog(fs.readFileSync(d.log, "utf8"));
    const a = attribute(recs, ev);
    units++;
    before += a.first - g.t0;
    afterLast += g.t1 - a.last;
    for (const [s, v] of Object.entries(a.stages)) {
      sum[s] ||= Object.fromEntries([...PARTS, ...LEGS, "n"].map((p) => [p, 0]));
      for (const p of [...PARTS, ...LEGS, "n"]) sum[s][p] += v[p];
    }
  }
  const stages = {};
  for (const [s, v] of Object.entries(sum)) stages[s] = Object.fromEntries(Object.entries(v).map(([p, x]) => [p, p === "n" ? x / units : x / units / 1000]));
  return { units, stages, beforeMs: before / units / 1000, afterMs: afterLast / units / 1000 };
}
