#!/usr/bin/env node
// check.js - keeps schema/manifest.schema.json and the C loader
// (src/manifest.c) in agreement.
//
//   node check.js --root SOURCE_DIR --checker PATH_TO_manifest_check
//
// 1. Every config/*.yaml and tests/data/manifest/valid/*.yaml is valid for
//    the schema (ajv, draft 2020-12, strict) AND loads with eg_manifest_load.
// 2. Every tests/data/manifest/invalid/*.yaml is rejected by the schema AND
//    by eg_manifest_load, and the C diagnostics contain the text given on
//    the file's "# expect: ..." line (so it is rejected for that reason, not
//    for another).
// Manifests are copied into a temporary folder beside generated images
// (images/bootloader.bin, partitions.bin, app.bin): no binaries are committed.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const cp = require('child_process');
const Ajv2020 = require('ajv/dist/2020').default;
const YAML = require('yaml');

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`usage: check.js --root DIR --checker PATH (missing ${name})`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const root = path.resolve(arg('--root'));
const checker = path.resolve(arg('--checker'));
const schema = JSON.parse(fs.readFileSync(path.join(root, 'schema/manifest.schema.json'), 'utf8'));
// strictRequired would ask every oneOf branch ({required: [path]}) to
// repeat the property's definition; everything else is strict.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
const validate = ajv.compile(schema);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'eg-schema-'));
fs.mkdirSync(path.join(work, 'images'));
function image(name, size, first) {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + 3) & 0xff;
  b[0] = first;
  fs.writeFileSync(path.join(work, 'images', name), b);
}
image('bootloader.bin', 4096, 0xe9);
image('partitions.bin', 3072, 0xaa);
image('app.bin', 65536, 0xe9);

// Schema verdict: [ok, reason]. A YAML error (duplicate key, two documents)
// is a rejection too: the schema never sees such a file.
function schemaVerdict(text) {
  let doc;
  try {
    doc = YAML.parse(text, { uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    return [false, `YAML: ${e.message.split('\n')[0]}`];
  }
  if (validate(doc)) return [true, ''];
  return [false, validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')];
}

// C verdict: [exit status, diagnostics].
function cVerdict(text, name) {
  const file = path.join(work, name);
  fs.writeFileSync(file, text);
  const r = cp.spawnSync(checker, [file], { encoding: 'utf8' });
  fs.unlinkSync(file);
  if (r.error) throw r.error;
  return [r.status, (r.stdout + r.stderr).trim()];
}

let passed = 0;
let failed = 0;
function report(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`ok    ${what}`);
  } else {
    failed++;
    console.log(`FAIL  ${what}\n      ${detail.split('\n').join('\n      ')}`);
  }
}

function list(dir) {
  const d = path.join(root, dir);
  return fs.readdirSync(d).filter((f) => f.endsWith('.yaml')).sort().map((f) => path.join(d, f));
}

const valid = [...list('config'), ...list('tests/data/manifest/valid')];
const invalid = list('tests/data/manifest/invalid');
if (valid.length < 3 || invalid.length < 5) {
  console.error(`too few manifests found under ${root} (${valid.length} valid, ${invalid.length} invalid)`);
  process.exit(1);
}

try {
  for (const f of valid) {
    const rel = path.relative(root, f);
    const text = fs.readFileSync(f, 'utf8');
    const [sok, sreason] = schemaVerdict(text);
    const [cstatus, cdiags] = cVerdict(text, path.basename(f));
    report(sok && cstatus === 0, `valid   ${rel}`,
      `schema: ${sok ? 'valid' : sreason}\nC: exit ${cstatus}${cdiags ? `\n${cdiags}` : ''}`);
  }
  for (const f of invalid) {
    const rel = path.relative(root, f);
    const text = fs.readFileSync(f, 'utf8');
    const m = /^# expect: (.+)$/m.exec(text);
    const [sok, sreason] = schemaVerdict(text);
    const [cstatus, cdiags] = cVerdict(text, path.basename(f));
    const reasonOk = m !== null && cdiags.includes(m[1].trim());
    report(!sok && cstatus === 1 && reasonOk, `invalid ${rel}`,
      `schema: ${sok ? 'ACCEPTED' : `rejected (${sreason})`}\nC: exit ${cstatus}, expected "${m ? m[1] : '(no # expect: line)'}" in:\n${cdiags}`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
