// report_check.mjs - every report view of real espsim runs, in CSV and JSON
// parsed back, against numbers computed from the database by
// report_expect.mjs; text tables within 100 columns; filters; several
// databases at once; read-only behaviour (files untouched, bad sources
// refused with exit 2 and one line).
//
// usage: node report_check.mjs ESPGANG WORKDIR
// WORKDIR holds shared.db (stations line-a and line-b, manifests a.yaml and
// b.yaml), a.db and b.db (one station each), and the manifests.

import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { sql, runYields, pooled, pct, pareto, percentiles, stageValues, parseCsv } from "./report_expect.mjs";

const [espgang, work] = process.argv.slice(2);
const shared = path.join(work, "shared.db");
let checks = 0;

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function eq(got, want, what) {
  checks++;
  if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

function near(got, want, what) {
  checks++;
  if (want === null ? got !== null : !(Math.abs(Number(got) - want) <= 0.051))
    fail(`${what}: got ${got}, want ${want}`);
}

function run(args, { status = 0, timeout = 30000 } = {}) {
  const r = spawnSync(espgang, args, { encoding: "utf8", timeout, cwd: work });
  if (r.error) fail(`espgang ${args.join(" ")}: ${r.error.message}`);
  if (r.status !== status) fail(`espgang ${args.join(" ")}: exit ${r.status}, want ${status}\n${r.stderr}${r.stdout.slice(0, 2000)}`);
  return r;
}

const json = (args) => JSON.parse(run([...args, "--json"]).stdout);
const csv = (args) => parseCsv(run([...args, "--csv"]).stdout);

function checkYieldRow(row, want, what) {
  eq(Number(row.units), want.units, `${what} units`);
  eq(Number(row.first), want.first, `${what} first`);
  eq(Number(row.passed), want.passed, `${what} passed`);
  near(row.fpy_pct, pct(want.first, want.units), `${what} fpy_pct`);
  near(row.final_pct, pct(want.passed, want.units), `${what} final_pct`);
  if (want.units) near(row.tries, Math.round((100 * want.attempts) / want.units) / 100, `${what} tries`);
}

function snapshot(dir) {
  return fs
    .readdirSync(dir)
    .filter((n) => (n.endsWith(".db") || n.includes(".db-")) && fs.lstatSync(path.join(dir, n)).isFile())
    .filter((n) => n !== "junk.db")
    .sort()
    .map((n) => {
      const p = path.join(dir, n);
      return `${n} ${crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`;
    })
    .join("\n");
}

const before = snapshot(work);
const expected = runYields(shared);
if (expected.length < 3) fail(`expected at least 3 runs in shared.db, found ${expected.length}`);
if (!pareto(shared).length) fail("the runs have no failures: the faults did not happen");

// runs: one row per run, CSV and JSON agree with the database.
const runsCsv = csv(["runs", "shared.db", "--last", "100"]);
eq(runsCsv.length, expected.length, "runs: number of rows");
for (const want of expected) {
  const row = runsCsv.find((r) => Number(r.run) === want.run);
  if (!row) fail(`runs: run ${want.run} missing`);
  eq(row.station, want.station, `run ${want.run} station`);
  checkYieldRow(row, want, `runs CSV run ${want.run}`);
}
const runsJson = json(["runs", "shared.db", "--last", "100"]);
eq(runsJson.report, "runs", "runs JSON report");
for (const want of expected) checkYieldRow(runsJson.runs.find((r) => r.run === want.run), want, `runs JSON run ${want.run}`);
// Newest first; --last 1 keeps the newest.
eq(runsJson.runs.map((r) => r.run), expected.map((r) => r.run).reverse(), "runs: newest first");
eq(json(["runs", "shared.db", "--last", "1"]).runs.map((r) => r.run), [expected.at(-1).run], "runs --last 1");

// yield: per run, station and day; Pareto; stage times; attempts per unit.
const y = json(["yield", "shared.db"]);
for (const want of expected) checkYieldRow(y.run.find((r) => r.run === want.run), want, `yield run ${want.run}`);
for (const station of ["line-a", "line-b"]) {
  const want = pooled(expected.filter((r) => r.station === station));
  checkYieldRow(y.station.find((r) => r.station === station), want, `yield station ${station}`);
}
const days = sql(shared, "SELECT DISTINCT substr(started_at, 1, 10) AS d FROM units").map((r) => r.d);
eq(y.day.map((r) => r.day), days.sort(), "yield days");
if (days.length === 1) checkYieldRow(y.day[0], pooled(expected), "yield day");
const wantPareto = pareto(shared);
eq(y.failures.length, wantPareto.length, "Pareto: groups");
let total = wantPareto.reduce((s, r) => s + r.attempts, 0), cum = 0;
wantPareto.forEach((want, i) => {
  const got = y.failures[i];
  cum += want.attempts;
  eq([got.stage, got.error, got.status, got.attempts, got.units], [want.stage, want.error, want.status, want.attempts, want.units], `Pareto row ${i}`);
  near(got.share_pct, pct(want.attempts, total), `Pareto row ${i} share`);
  near(got.cumulative_pct, pct(cum, total), `Pareto row ${i} cumulative`);
});
for (const st of y.stages) {
  const want = percentiles(stageValues(shared, st.stage));
  eq([st.n, st.median_ms, st.p95_ms, st.max_ms], [want.n, want.median, want.p95, want.max], `stage ${st.stage}`);
}
eq(y.stages.some((s) => s.stage === "write") && y.stages.some((s) => s.stage === "total"), true, "stages write and total present");
const hist = sql(shared, `SELECT n AS attempts, COUNT(*) AS units FROM (SELECT COUNT(*) AS n FROM units u WHERE EXISTS
  (SELECT 1 FROM latest_units l WHERE l.run_id = u.run_id AND l.slot = u.slot AND l.result IN ('pass','fail','aborted'))
  GROUP BY run_id, slot) GROUP BY n ORDER BY n`);
eq(y.attempts.map((r) => [r.attempts, r.units]), hist.map((r) => [r.attempts, r.units]), "attempts per unit");
// CSV of one yield table; CSV of all is refused.
const pCsv = csv(["yield", "shared.db", "--by", "failures"]);
eq(pCsv.map((r) => [r.error, Number(r.attempts)]), wantPareto.map((r) => [r.error, r.attempts]), "Pareto CSV");
const refused = run(["yield", "shared.db", "--csv"], { status: 2 });
eq(refused.stderr.trim().split("\n").length, 1, "yield --csv: one line");

// report: the latest run of the manifest's station only (not any station's).
const latestA = sql(shared, "SELECT MAX(id) AS id FROM runs WHERE station = 'line-a'")[0].id;
const repA = json(["report", "a.yaml"]);
eq(repA.runs.map((r) => r.run), [latestA], "report a.yaml: the latest run of line-a");
const unitsA = sql(shared, `SELECT slot, mac, result, (SELECT COUNT(*) FROM units x WHERE x.run_id = l.run_id AND x.slot = l.slot) AS tries
  FROM latest_units l WHERE run_id = ${latestA} ORDER BY slot`);
eq(repA.units.map((u) => [u.slot, u.mac, u.result, u.tries]).sort(), unitsA.map((u) => [u.slot, u.mac, u.result, u.tries]).sort(), "report a.yaml units");
for (const want of expected.filter((r) => r.run === 1)) {
  const rows = csv(["report", "shared.db", "--run", "1"]);
  eq(rows.length, sql(shared, "SELECT COUNT(*) AS n FROM latest_units WHERE run_id = 1")[0].n, "report --run 1 CSV rows");
  eq(rows.filter((r) => r.first === "yes").length, want.first, "report --run 1 first-pass units");
}
// Filters: slot as typed in any case, station, manifest by path and prefix, result, chip, time.
const slotRows = csv(["report", "shared.db", "--last", "10", "--slot", "a1"]);
eq([...new Set(slotRows.map((r) => r.slot))], ["A1"], "--slot a1 matches A1");
eq(slotRows.length, sql(shared, "SELECT COUNT(DISTINCT run_id) AS n FROM units WHERE slot = 'A1'")[0].n, "--slot: one unit per run");
const bRuns = json(["runs", "shared.db", "--station", "LINE-B"]).runs.map((r) => r.run);
eq(bRuns, sql(shared, "SELECT id FROM runs WHERE station = 'line-b' ORDER BY id DESC").map((r) => r.id), "--station");
const shaB = crypto.createHash("sha256").update(fs.readFileSync(path.join(work, "b.yaml"))).digest("hex");
eq(json(["runs", "shared.db", "--manifest", "b.yaml"]).runs.map((r) => r.run), bRuns, "--manifest PATH");
eq(json(["runs", "shared.db", "--manifest", shaB.slice(0, 10).toUpperCase()]).runs.map((r) => r.run), bRuns, "--manifest PREFIX");
const failRows = csv(["report", "shared.db", "--last", "100", "--result", "fail"]);
eq(failRows.length, sql(shared, "SELECT COUNT(*) AS n FROM latest_units WHERE result = 'fail'")[0].n, "--result fail");
eq(csv(["report", "shared.db", "--last", "100", "--chip", "esp32"]).length,
   sql(shared, "SELECT COUNT(*) AS n FROM latest_units WHERE (SELECT COUNT(*) FROM units x WHERE x.run_id = latest_units.run_id AND x.slot = latest_units.slot AND x.chip = 'ESP32') > 0")[0].n,
   "--chip esp32");
eq(csv(["report", "shared.db", "--since", "1h"]).length, sql(shared, "SELECT COUNT(*) AS n FROM latest_units")[0].n, "--since 1h: every unit");
const none = run(["report", "shared.db", "--until", "2000-01-01"], { status: 2 });
eq(none.stderr.trim(), "espgang: no run matches the filters", "--until 2000");

// history: every attempt on a MAC, including the retries.
const retried = sql(shared, "SELECT mac, COUNT(*) AS n FROM units WHERE mac IS NOT NULL GROUP BY mac ORDER BY n DESC, mac LIMIT 1")[0];
const h = json(["history", "shared.db", retried.mac.toUpperCase().replaceAll(":", "-")]);
eq(h.attempts.length, retried.n, `history ${retried.mac}`);
eq(h.attempts.map((a) => a.started), [...h.attempts.map((a) => a.started)].sort().reverse(), "history newest first");

// Text tables fit 100 columns; --wide shows more.
for (const args of [["report", "shared.db"], ["runs", "shared.db"], ["history", "shared.db", retried.mac], ["yield", "shared.db"]]) {
  const out = run(args).stdout;
  for (const line of out.split("\n")) if ([...line].length > 100) fail(`${args.join(" ")}: line of ${[...line].length} columns:\n${line}`);
  checks++;
}
eq(run(["report", "shared.db", "--wide"]).stdout.includes("baud_requested"), true, "--wide columns");

// Several databases at once, keyed by station.
const yAB = json(["yield", "--db", "a.db", "--db", "b.db", "--by", "station"]);
for (const [file, station] of [["a.db", "line-a"], ["b.db", "line-b"]]) {
  const want = pooled(runYields(path.join(work, file)));
  checkYieldRow(yAB.station.find((r) => r.station === station), want, `--db a --db b: ${station}`);
}
const runsAB = json(["runs", "--db", "a.db", "--db", "b.db"]).runs;
eq(runsAB.length, sql(path.join(work, "a.db"), "SELECT COUNT(*) AS n FROM runs")[0].n + sql(path.join(work, "b.db"), "SELECT COUNT(*) AS n FROM runs")[0].n, "--db a --db b: runs");
eq(runsAB.every((r) => /^[12]:\d+$/.test(r.run)), true, "--db a --db b: runs carry their file");

// Read-only: bad sources are one line and exit 2, and never hang.
fs.mkdirSync(path.join(work, "adir.db"), { recursive: true });
spawnSync("mkfifo", [path.join(work, "fifo.db")]);
fs.writeFileSync(path.join(work, "junk.db"), "not a database at all, just some text\n".repeat(10));
for (const bad of ["missing.db", "adir.db", "fifo.db", "junk.db"]) {
  const r = run(["report", bad], { status: 2, timeout: 10000 });
  eq(r.stderr.trim().split("\n").length, 1, `${bad}: one line`);
  eq(r.stderr.includes(bad), true, `${bad}: names the file`);
}
eq(fs.existsSync(path.join(work, "missing.db")), false, "missing.db not created");
// A manifest whose images are gone still finds its database and station.
fs.mkdirSync(path.join(work, "elsewhere"), { recursive: true });
fs.writeFileSync(path.join(work, "elsewhere", "m.yaml"),
  `station: line-b\ndatabase: ${shared}\nchip: esp32\nimages:\n  - {offset: 0x10000, file: gone/app.bin}\nports:\n  - {slot: X, path: /nonexistent}\n`);
eq(json(["report", "elsewhere/m.yaml"]).runs.map((r) => r.run), [bRuns[0]], "manifest without its images");
eq(snapshot(work), before, "the databases are byte for byte unchanged");
console.log(`report_check: ${checks} checks passed`);
