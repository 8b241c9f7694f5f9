// report_expect.mjs - what the reports should say, computed here from the
// database with plain SQL and arithmetic of our own (not espgang's code), for
// report_check.mjs (CSV/JSON) and tests/browser/report.test.mjs (HTML).
//
// These logs hold flash runs only (no station sessions), so a unit is a
// (run, slot) pair; definitions as in README "Reading the log".

import { spawnSync } from "node:child_process";

// Immutable: a plain read-only open of a WAL database would leave -wal and
// -shm files behind, and the checks assert that reading leaves nothing.
export function sql(db, query) {
  const uri = `file:${db.replaceAll("%", "%25").replaceAll("?", "%3f").replaceAll("#", "%23")}?immutable=1`;
  const r = spawnSync("sqlite3", ["-readonly", "-json", uri, query], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`sqlite3 ${db}: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

const COUNTED = "('pass','fail','aborted')";

// Per run: counted units, first-pass, final-pass, attempts of counted units.
export function runYields(db) {
  return sql(
    db,
    `SELECT r.id AS run, r.station AS station,
       (SELECT COUNT(*) FROM latest_units l WHERE l.run_id = r.id AND l.result IN ${COUNTED}) AS units,
       (SELECT COUNT(*) FROM latest_units l WHERE l.run_id = r.id AND l.result IN ${COUNTED}
          AND (SELECT f.result FROM units f WHERE f.run_id = l.run_id AND f.slot = l.slot ORDER BY f.attempt, f.id LIMIT 1) = 'pass') AS first,
       (SELECT COUNT(*) FROM latest_units l WHERE l.run_id = r.id AND l.result = 'pass') AS passed,
       (SELECT COUNT(*) FROM units a WHERE a.run_id = r.id AND EXISTS (SELECT 1 FROM latest_units l WHERE l.run_id = a.run_id
          AND l.slot = a.slot AND l.result IN ${COUNTED})) AS attempts
     FROM runs r ORDER BY r.id`,
  );
}

export function pooled(rows) {
  const y = { units: 0, first: 0, passed: 0, attempts: 0 };
  for (const r of rows) for (const k of Object.keys(y)) y[k] += r[k];
  return y;
}

export const pct = (n, d) => (d ? Math.round((1000 * n) / d) / 10 : null);

// Failed and aborted attempts by (stage, error, status), most first.
export function pareto(db) {
  return sql(
    db,
    `SELECT fail_stage AS stage, error_code AS error, status_bytes AS status, COUNT(*) AS attempts,
       COUNT(DISTINCT run_id || '/' || slot) AS units
     FROM units WHERE result IN ('fail','aborted') GROUP BY 1, 2, 3
     ORDER BY attempts DESC, ifnull(stage,''), ifnull(error,''), ifnull(status,'')`,
  );
}

// Median (mean of the middle two for an even count) and nearest-rank p95.
export function percentiles(values) {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  const median = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return { n, median, p95: v[Math.ceil(0.95 * n) - 1], max: v[n - 1] };
}

export function stageValues(db, stage) {
  const col = stage === "total" ? "duration_ms" : `${stage}_ms`;
  return sql(db, `SELECT ${col} AS v FROM units WHERE result = 'pass' AND ${col} > 0`).map((r) => r.v);
}

// RFC 4180: quoted fields, doubled quotes, CRLF line ends (checked strictly).
export function parseCsv(text) {
  if (!text.endsWith("\r\n")) throw new Error("CSV does not end in CRLF");
  const rows = [];
  let row = [], field = "", i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
      else if (c === '"') (quoted = false), i++;
      else (field += c), i++;
    } else if (c === '"' && field === "") (quoted = true), i++;
    else if (c === ",") row.push(field), (field = ""), i++;
    else if (c === "\r" && text[i + 1] === "\n") row.push(field), rows.push(row), (row = []), (field = ""), (i += 2);
    else if (c === "\n") throw new Error(`bare LF in CSV at ${i}`);
    else (field += c), i++;
  }
  const [head, ...body] = rows;
  return body.map((r) => {
    if (r.length !== head.length) throw new Error(`CSV row of ${r.length} fields, header has ${head.length}: ${r}`);
    return Object.fromEntries(head.map((h, k) => [h, r[k]]));
  });
}
