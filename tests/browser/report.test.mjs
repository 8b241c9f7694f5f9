// report.test.mjs - `espgang report --html` rendered in headless Chromium:
// the page's numbers (runs table, yield chart, failure Pareto, stage
// histograms, unit table) against the database, and no request leaves the
// page. A full-page screenshot is kept as a test artifact.
//
// usage: node report.test.mjs ESPGANG WORKDIR ARTIFACT_DIR
// WORKDIR holds shared.db (see tests/integration/reports.sh).

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { launchChromium } from "./chromium.mjs";
import { sql, runYields, pct, pareto, percentiles, stageValues } from "../integration/report_expect.mjs";

const [espgang, work, artifacts] = process.argv.slice(2);
const db = path.join(work, "shared.db");
fs.mkdirSync(artifacts, { recursive: true });
const html = path.join(artifacts, "report.html");
let checks = 0;

function fail(msg) {
  throw new Error(msg);
}
function eq(got, want, what) {
  checks++;
  if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
function near(got, want, what) {
  checks++;
  if (want === null ? got !== null : !(Math.abs(Number(got) - want) <= 0.051)) fail(`${what}: got ${got}, want ${want}`);
}

const gen = spawnSync(espgang, ["report", db, "--last", "100", "--html", html], { encoding: "utf8", timeout: 30000 });
if (gen.status !== 0) fail(`espgang report --html: exit ${gen.status}: ${gen.stderr}`);

const browser = await launchChromium();
let ok = false;
try {
  const page = await browser.context.newPage();
  const url = pathToFileURL(html).href;
  const requests = [];
  page.on("request", (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url, { waitUntil: "load", timeout: 30000 });
  await page.screenshot({ path: path.join(artifacts, "report.png"), fullPage: true });

  // Runs table.
  const runs = await page.$$eval("table.runs tbody tr", (trs) =>
    trs.map((tr) => Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [td.dataset.k, td.dataset.v ?? td.textContent]))),
  );
  const expected = runYields(db);
  eq(runs.length, expected.length, "runs in the page");
  for (const want of expected) {
    const row = runs.find((r) => Number(r.run) === want.run);
    if (!row) fail(`run ${want.run} missing from the page`);
    eq([Number(row.units), Number(row.first), Number(row.passed)], [want.units, want.first, want.passed], `run ${want.run} counts`);
    near(row.fpy_pct, pct(want.first, want.units), `run ${want.run} first-pass yield`);
    near(row.final_pct, pct(want.passed, want.units), `run ${want.run} final yield`);
  }

  // Yield chart: one group per day, units as in the database.
  const days = await page.$$eval("#yield-chart g.day", (gs) => gs.map((g) => [g.dataset.day, Number(g.dataset.units)]));
  const wantDays = sql(db, `SELECT substr(f.started_at, 1, 10) AS d, COUNT(*) AS n FROM latest_units l
    JOIN units f ON f.run_id = l.run_id AND f.slot = l.slot AND f.attempt = 1
    WHERE l.result IN ('pass','fail','aborted') GROUP BY d ORDER BY d`).map((r) => [r.d, r.n]);
  eq(days, wantDays, "yield chart days");

  // Pareto bars, most frequent first.
  const bars = await page.$$eval("#pareto-chart rect.bar", (rs) =>
    rs.map((r) => [r.dataset.stage, r.dataset.error, r.dataset.status, Number(r.dataset.count)]),
  );
  eq(bars, pareto(db).map((p) => [p.stage ?? "-", p.error ?? "-", p.status ?? "-", p.attempts]), "Pareto bars");

  // Stage histograms: n, median, p95 per stage; bins add up to n.
  const stages = await page.$$eval("svg.stage", (ss) =>
    ss.map((s) => ({
      stage: s.dataset.stage,
      n: Number(s.dataset.n),
      median: Number(s.dataset.median),
      p95: Number(s.dataset.p95),
      bins: [...s.querySelectorAll("rect.hist")].reduce((a, r) => a + Number(r.dataset.count), 0),
    })),
  );
  if (!stages.some((s) => s.stage === "write")) fail("no write-stage histogram");
  for (const s of stages) {
    const want = percentiles(stageValues(db, s.stage));
    eq([s.n, s.median, s.p95, s.bins], [want.n, want.median, want.p95, want.n], `stage ${s.stage}`);
  }

  // Unit table: one row per unit of the runs shown, MACs as recorded.
  const units = await page.$$eval("table.units tbody tr", (trs) =>
    trs.map((tr) => [tr.querySelector('td[data-k="slot"]').textContent, tr.querySelector('td[data-k="mac"]').textContent]),
  );
  eq(units.length, sql(db, "SELECT COUNT(*) AS n FROM latest_units")[0].n, "unit rows");
  const macs = sql(db, "SELECT DISTINCT mac FROM units WHERE mac IS NOT NULL").map((r) => r.mac);
  eq(units.filter(([, m]) => m !== "-").every(([, m]) => macs.includes(m)), true, "unit MACs are recorded MACs");

  eq(requests, [], "requests leaving the page");
  eq((await page.content()).includes("default-src 'none'"), true, "Content-Security-Policy");
  ok = true;
} finally {
  await browser.close();
}
console.log(`report.test: ${checks} checks passed; screenshot ${path.join(artifacts, "report.png")}`);
process.exit(ok ? 0 : 1);
