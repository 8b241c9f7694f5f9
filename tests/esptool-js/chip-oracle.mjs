// chip-oracle.mjs CHIPDECODE - the chip table (src/chips.c) against an oracle
// we did not write: esptool-js 0.7.0's target classes (lib/targets/*.js).
//
// For every chip espgang knows, register value sets (the genuine ROM's from
// the traces, then deterministic pseudo-random ones: dense, sparse and very
// sparse words, so that small eFuse fields take every value) are fed both
//   - to esptool-js's readReg-based methods through a fake loader that
//     answers READ_REG from the set (getChipDescription,
//     getMajorChipVersion / getMinorChipVersion, getChipRevision, readMac,
//     getCrystalFreq, getCrystalFreqRomExpect, P4's getStubJsonPath and
//     getUartdevBufNo), and
//   - to tests/tools/chipdecode (eg_chip_decode of the same values),
// and the results must agree. Every register esptool-js read for a compared
// result must be one the device reads (eg_chip_ident_regs). The row's
// constants esptool-js also has (chip id, bootloader offset, SPI registers,
// MAC register, header codes, magic values, USB facts) are compared too.
//
// Where esptool-js 0.7.0 and esptool v5.3.1 disagree, the table follows
// esptool: DISAGREEMENTS below lists each case with both sources, when it
// applies and what espgang must print instead; NOT_COMPARED lists the
// esptool-js methods that decode another chip's layout. Every disagreement
// must be met by at least one register set (else it is stale).
//
// Exit 0 when everything agrees; 1 with both sides printed otherwise.

import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensureNodeModules } from "./deps.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const chipdecode = process.argv[2];
if (!chipdecode) {
  console.error("usage: chip-oracle.mjs CHIPDECODE");
  process.exit(2);
}

const version = ensureNodeModules(root);
if (version !== "0.7.0") {
  console.error(`FAIL: esptool-js ${version} installed; this oracle is written for 0.7.0`);
  process.exit(1);
}
const targets = path.join(root, "node_modules", "esptool-js", "lib", "targets");
const load = async (file, cls) => (await import(pathToFileURL(path.join(targets, file)).href))[cls];

// The chips, their esptool-js class, and how esptool-js prints the revision
// in getChipDescription: "v" = "(revision vMAJ.MIN)" as esptool, "n" =
// "(revision N)" with N from its getChipRevision, "none" = no revision.
const CHIPS = [
  { arg: "esp8266", file: "esp8266.js", cls: "ESP8266ROM", rev: "none" },
  { arg: "esp32", file: "esp32.js", cls: "ESP32ROM", rev: "n" },
  { arg: "esp32s2", file: "esp32s2.js", cls: "ESP32S2ROM", rev: "v" },
  { arg: "esp32s3", file: "esp32s3.js", cls: "ESP32S3ROM", rev: "v" },
  { arg: "esp32c3", file: "esp32c3.js", cls: "ESP32C3ROM", rev: "v" },
  { arg: "esp32c6", file: "esp32c6.js", cls: "ESP32C6ROM", rev: "n" },
  { arg: "esp32h2", file: "esp32h2.js", cls: "ESP32H2ROM", rev: "v" },
  { arg: "esp32c2", file: "esp32c2.js", cls: "ESP32C2ROM", rev: "n" },
  { arg: "esp32c5", file: "esp32c5.js", cls: "ESP32C5ROM", rev: "v" },
  { arg: "esp32c61", file: "esp32c61.js", cls: "ESP32C61ROM", rev: "v" },
  { arg: "esp32p4", file: "esp32p4.js", cls: "ESP32P4ROM", rev: "v" },
];

// The methods compared: each must be the chip's class's own, or inherited
// where esptool inherits the same code (INHERITED_OK), or be listed in
// NOT_COMPARED with the reason (an inherited method that is neither fails).
const METHODS = ["getChipDescription", "getMajorChipVersion", "getMinorChipVersion", "getChipRevision", "readMac",
  "getCrystalFreq", "getCrystalFreqRomExpect"];
const INHERITED_OK = [
  { chip: "esp32c5", method: "readMac", why: "esptool's C5 inherits read_mac from the C6 too (esptool/targets/esp32c5.py:16,22-24)" },
  { chip: "esp32c61", method: "getCrystalFreq", why: "esptool's C61 inherits the C6's fixed 40 MHz (esptool/targets/esp32c6.py:148-150)" },
];
// esptool-js methods that decode a layout other than the chip's: their
// results say nothing about the table.
const NOT_COMPARED = [
  {
    chip: "esp32c2", what: ["getMajorChipVersion", "getMinorChipVersion"],
    why: "ESP32C2ROM inherits getMajorChipVersion/getMinorChipVersion from ESP32C3ROM (C3's BLOCK1 words 3/5, " +
      "esptool-js 0.7.0 lib/targets/esp32c3.js:54-66); the C2 keeps them in BLOCK2 word 1 " +
      "(esptool v5.3.1 esptool/targets/esp32c2.py:99-105). Its own getChipRevision (the major) is compared.",
  },
  {
    chip: "esp32c6", what: ["getMajorChipVersion", "getMinorChipVersion", "getChipDescription", "getChipRevision"],
    why: "ESP32C6ROM reads the package from word 3 [23:21] and prints word 3 [20:18] as the revision " +
      "(esptool-js 0.7.0 lib/targets/esp32c6.js:38-65) and inherits the C3's getMajor/MinorChipVersion; " +
      "esptool reads package [26:24] (+ flash_cap), major [23:22], minor [21:18] and prints " +
      "\"ESP32-C6 (QFN40)\", \"ESP32-C6FH4 (QFN32)\", \"ESP32-C6FH8 (QFN32)\" (esptool v5.3.1 " +
      "esptool/targets/esp32c6.py:99-131). test_chips.c test_decode_c6_h2 checks the C6 against esptool.",
  },
  {
    chip: "esp32c3", what: ["getChipRevision"],
    why: "ESP32C3ROM.getChipRevision returns word 3 [20:18] (esptool-js 0.7.0 lib/targets/esp32c3.js:46-53), " +
      "the low bits of the minor revision, not esptool's major * 100 + minor; getMajor/MinorChipVersion are compared.",
  },
  ...["esp32s2", "esp32s3"].map((chip) => ({
    chip, what: ["getChipRevision"],
    why: `the ${chip} class inherits ESP32ROM.getChipRevision, which reads the ESP32's eFuse words ` +
      "(esptool-js 0.7.0 lib/targets/esp32.js:72-93); its own getMajor/MinorChipVersion are compared.",
  })),
  ...["esp32h2", "esp32c5", "esp32c61"].map((chip) => ({
    chip, what: ["getChipRevision"],
    why: `the ${chip} class inherits ESP32C6ROM.getChipRevision (word 3 [20:18] of the C6 layout, ` +
      "esptool-js 0.7.0 lib/targets/esp32c6.js:46-53); its own getMajor/MinorChipVersion are compared.",
  })),
];

// Header frequency codes esptool-js does not override, so it has the ESP32's
// (lib/targets/rom.js:17-22); esptool has the chip's own.
const FREQ_DISAGREEMENTS = {
  esp32c6: "esptool/targets/esp32c6.py:77-81 (80m and 40m both 0: ROM MSPI divider workaround)",
  esp32h2: "esptool/targets/esp32h2.py:26-31 (48m/24m/16m/12m)",
  esp32c2: "esptool/targets/esp32c2.py:45-50 (60m/30m/20m/15m)",
};

// Register values: every word of the set as a Map addr -> value.
const bits = (v, shift, width) => (v >>> shift) & ((1 << width) - 1);
const popcount = (v) => { let n = 0; for (; v; v &= v - 1) n++; return n; };

// esptool's crystal estimate (esptool v5.3.1 esptool/loader.py:2055-2076).
const estimate = (baud, clkdiv, div) => (baud * (clkdiv & 0xfffff)) / 1e6 / div;

// ESP32 package/revision helpers (esptool v5.3.1 esptool/targets/esp32.py:199-240).
const esp32 = {
  pkg: (r) => bits(r(0x3ff5a00c), 9, 3) + (bits(r(0x3ff5a00c), 2, 1) << 3),
  sc: (r) => bits(r(0x3ff5a00c), 0, 1),
  combo: (r) => (bits(r(0x3ff6607c), 31, 1) << 2) | (bits(r(0x3ff5a014), 20, 1) << 1) | bits(r(0x3ff5a00c), 15, 1),
};

// ESP8266 / ESP8285 name from the 128 OTP bits (esptool v5.3.1 esptool/targets/esp8266.py:72-106).
function esp8266Name(r) {
  const w0 = r(0x3ff00050), w2 = r(0x3ff00058), w3 = r(0x3ff0005c);
  const r0_4 = bits(w0, 4, 1), r3_25 = bits(w3, 25, 1), r3_26 = bits(w3, 26, 1), r3_27 = bits(w3, 27, 1);
  if (!r0_4 && !bits(w2, 16, 1)) return "ESP8266EX";
  let size = -1;
  if (r0_4 && !r3_25) { if (!r3_27 && !r3_26) size = 1; else if (!r3_27 && r3_26) size = 2; }
  if (!r0_4 && r3_25) { if (!r3_27 && !r3_26) size = 2; else if (!r3_27 && r3_26) size = 4; }
  const hot = bits(w0, 5, 1);
  return { 1: hot ? "ESP8285H08" : "ESP8285N08", 2: hot ? "ESP8285H16" : "ESP8285N16" }[size] || "ESP8285";
}

// Where esptool-js 0.7.0 and esptool v5.3.1 disagree. applies(ctx) says the
// case is this one (ctx: r = register reader, js = esptool-js results, c =
// chipdecode's, baud); expect(ctx) is what espgang must produce for `field`.
// name = the description without its "(revision ...)" suffix.
const DISAGREEMENTS = [
  {
    chip: "esp32", field: "name",
    why: "package 3 is \"\" in esptool-js (lib/targets/esp32.js:94-124); esptool: \"Unknown ESP32\" " +
      "(esptool/targets/esp32.py:230-238)",
    applies: ({ r }) => esp32.pkg(r) === 3,
    expect: () => "Unknown ESP32",
  },
  {
    chip: "esp32", field: "name",
    why: "package 7 (ESP32-D0WDR2-V3) is missing in esptool-js (lib/targets/esp32.js:95-103); esptool: " +
      "esptool/targets/esp32.py:237",
    applies: ({ r }) => esp32.pkg(r) === 7,
    expect: () => "ESP32-D0WDR2-V3",
  },
  {
    chip: "esp32", field: "name",
    why: "single-core packages 0/1 get \"-V3\" on revision 3 in esptool-js (lib/targets/esp32.js:110-124); " +
      "esptool names them ESP32-S0WDQ6 / ESP32-S0WD without it (esptool/targets/esp32.py:231-232)",
    applies: ({ r, c }) => esp32.sc(r) && c.major === 3 && esp32.pkg(r) <= 1,
    expect: ({ js }) => js.name.replace(/-V3$/, ""),
  },
  {
    chip: "esp32", field: "major",
    why: "esptool-js's getChipRevision (lib/targets/esp32.js:72-93) gives 1 for bits b0+b2 (APB_CTL_DATE without " +
      "the eFuse word 5 bit); esptool maps that combination to 0 (esptool/targets/esp32.py:208-221)",
    applies: ({ r }) => esp32.combo(r) === 5,
    expect: () => 0,
  },
  ...["esp8266", "esp32", "esp32c2"].map((chip) => ({
    chip, field: "crystal",
    why: `esptool-js's getCrystalFreq has no 48 MHz bucket (lib/targets/${chip}.js getCrystalFreq); esptool: ` +
      "above 45 MHz it is 48 (esptool/loader.py:2069-2072)",
    applies: ({ c, est }) => est > 45,
    expect: () => 48,
  })),
  {
    chip: "esp8266", field: "name",
    why: "esptool-js says \"ESP8285\" for every ESP8285 (lib/targets/esp8266.js:58-63); esptool names the " +
      "variant from the flash-size and temperature bits (esptool/targets/esp8266.py:72-106)",
    applies: ({ js }) => js.name === "ESP8285",
    expect: ({ r }) => esp8266Name(r),
  },
  {
    chip: "esp8266", field: "mac",
    why: "with an unknown OUI esptool-js logs an error and returns 00:00:00:... (lib/targets/esp8266.js:87-121); " +
      "esptool raises \"Unknown OUI\" (esptool/targets/esp8266.py:142-149): espgang reports no MAC",
    applies: ({ r }) => r(0x3ff0005c) === 0 && bits(r(0x3ff00054), 16, 8) > 1,
    expect: () => null,
  },
  {
    chip: "esp32c2", field: "name",
    why: "esptool-js names package 1 \"ESP32-C2\" (lib/targets/esp32c2.js:51-63); esptool: \"ESP8684H\" " +
      "(esptool/targets/esp32c2.py:77-81)",
    applies: ({ c }) => c.pkg === 1,
    expect: () => "ESP8684H",
  },
  ...[
    ["esp32s2", "ESP32-S2", "lib/targets/esp32s2.js:137", "esp32s2.py:171"],
    ["esp32s3", "ESP32-S3", "lib/targets/esp32s3.js:52", "esp32s3.py:191"],
    ["esp32c2", "ESP32-C2", "lib/targets/esp32c2.js:58", "esp32c2.py:81"],
    ["esp32c5", "ESP32-C5", "lib/targets/esp32c5.js:103", "esp32c5.py:118"],
    ["esp32c61", "ESP32-C61", "lib/targets/esp32c61.js:91", "esp32c61.py:93"],
    ["esp32h2", "ESP32-H2", "lib/targets/esp32h2.js:60", "esp32h2.py:65"],
  ].map(([chip, name, ejs, et]) => ({
    chip, field: "name",
    why: `esptool-js writes "unknown ${name}" (${ejs}); esptool "Unknown ${name}" (esptool/targets/${et})`,
    applies: ({ js }) => js.name === `unknown ${name}`,
    expect: () => `Unknown ${name}`,
  })),
];

// ---------------------------------------------------------------- C side

function runDecoder(lines) {
  const r = spawnSync(chipdecode, [], { input: lines.join("\n") + "\n", encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new Error(`chipdecode failed: ${r.error ? r.error.message : r.stderr}`);
  const out = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  if (out.length !== lines.length) throw new Error(`chipdecode answered ${out.length} lines for ${lines.length}`);
  for (let i = 0; i < out.length; i++) if (out[i].error) throw new Error(`chipdecode: ${out[i].error} (line "${lines[i]}")`);
  return out;
}

// ---------------------------------------------------------------- register sets

// Deterministic PRNG (mulberry32), so a failure names a reproducible set.
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

// Dividers a real ROM shows at 115200 / 230400 (26, 40, 48 MHz crystals),
// a few between the buckets, and the ones either side of the 33 and 45 MHz
// thresholds (at 115200: 286/287, 390/391; at 230400: 143/144, 195/196;
// the ESP8266's UART runs at twice its crystal: 573/574, 781/782).
const CLKDIVS = [226, 0x15a, 417, 694, 451, 833, 113, 174, 209, 300, 400, 0,
  286, 287, 390, 391, 143, 144, 195, 196, 573, 574, 781, 782];

function registerSets(chip, list, rnd) {
  const regs = list.regs.split(" ").map((a) => parseInt(a, 16));
  const clkdiv = list.clkdiv ? parseInt(list.clkdiv, 16) : null;
  const sets = [];
  const make = (word, baud) => {
    const m = new Map();
    for (const a of regs) m.set(a, word() >>> 0);
    if (clkdiv !== null) m.set(clkdiv, CLKDIVS[rnd() % CLKDIVS.length] | (rnd() & 0xfff00000));
    sets.push({ regs: m, baud });
  };
  for (let i = 0; i < 30; i++) make(() => rnd(), i % 2 ? 230400 : 115200);
  for (let i = 0; i < 40; i++) make(() => rnd() & rnd() & rnd(), 115200);
  for (let i = 0; i < 40; i++) make(() => rnd() & rnd() & rnd() & rnd() & rnd() & rnd(), 115200);
  return sets;
}

// Chosen sets: the genuine ROMs' answers (rom-traces) and one set per
// disagreement so that each is met.
function chosenSets(arg) {
  const S = (pairs, baud = 115200) => ({ regs: new Map(pairs), baud });
  switch (arg) {
    case "esp32": return [
      // rom-traces/rom-flash-id.trace: ESP32-D0WDQ6-V3 (revision v3.0), 24:0a:c4:00:00:01, 40 MHz.
      S([[0x3ff5a00c, 0x00008000], [0x3ff5a014, 0x00100000], [0x3ff6607c, 0x96042000], [0x3ff5a010, 0x50],
        [0x3ff40014, 0x15a], [0x3ff5a008, 0x00be240a], [0x3ff5a004, 0xc4000001]]),
      S([[0x3ff5a00c, 7 << 9 | 1 << 15], [0x3ff5a014, 1 << 20], [0x3ff6607c, 1 << 31]]),
      S([[0x3ff5a00c, 3 << 9]]),
      S([[0x3ff5a00c, 1 | 1 << 15], [0x3ff5a014, 1 << 20], [0x3ff6607c, 1 << 31]]),
      S([[0x3ff5a00c, 1 << 15], [0x3ff6607c, 1 << 31]]),
      S([[0x3ff40014, 417]]),
    ];
    case "esp32c3": return [
      // rom-traces/esp32c3/rom-flash-id.trace: ESP32-C3 (QFN32) (revision v0.3), 24:0a:c4:00:00:01.
      S([[0x60008850, 0x000c0000], [0x60008858, 0], [0x60008844, 0xc4000001], [0x60008848, 0x0000240a]]),
    ];
    case "esp8266": return [
      S([[0x3ff00050, 1 << 4], [0x3ff00054, 0x1234]]),
      S([[0x3ff00054, 0x00021234]]),
      S([[0x3ff00050, 0xab000000], [0x3ff00054, 0x00015678], [0x60000014, 694]]),
      S([[0x60000014, 833]]),
    ];
    case "esp32c2": return [
      S([[0x60008844, 1 << 22 | 1 << 20 | 0x240a], [0x60008840, 0xc4000001], [0x60000014, 226]]),
      S([[0x60008844, 5 << 22], [0x60000014, 417]]),
    ];
    case "esp32s2": return [S([[0x3f41a050, 5 << 21]]), S([[0x3f41a050, 2 << 21 | 1 << 28]])];
    case "esp32s3": return [S([[0x60007050, 1 << 24], [0x60007058, 1 << 24], [0x6000706c, 1]]), S([[0x60007050, 2 << 21]])];
    case "esp32c5": return [
      S([[0x600b484c, 1 << 26]]),
      S([[0x600b484c, 0x12], [0x60000014, 417], [0x60096110, 40 << 24]]),
    ];
    case "esp32c61": return [S([[0x600b484c, 1 << 26]])];
    case "esp32h2": return [S([[0x600b0854, 3]])];
    case "esp32p4": return [S([[0x5012d04c, 0x31]]), S([[0x5012d04c, 0x10]])];
    default: return [];
  }
}

// ---------------------------------------------------------------- esptool-js side

function fakeLoader(regs, baud, reads) {
  const quiet = () => {};
  return {
    transport: { baudrate: baud },
    IS_STUB: false,
    secureDownloadMode: false,
    readReg: async (addr) => {
      addr >>>= 0;
      reads.add(addr);
      return regs.has(addr) ? regs.get(addr) : 0;
    },
    debug: quiet, info: quiet, error: quiet, log: quiet, write: quiet,
  };
}

// Call one method with its own read log; null when the class has no such method.
async function call(rom, method, regs, baud, ...args) {
  if (typeof rom[method] !== "function") return null;
  const reads = new Set();
  const value = await rom[method](fakeLoader(regs, baud, reads), ...args);
  return { value, reads };
}

function splitDesc(desc, style) {
  if (style === "none") return { name: desc, rev: null };
  const m = /^(.*) \(revision (v?)(\d+)(?:\.(\d+))?\)$/.exec(desc);
  if (!m) return { name: desc, rev: undefined };
  return { name: m[1], rev: m[2] ? { major: +m[3], minor: +m[4] } : { n: +m[3] } };
}

// ---------------------------------------------------------------- compare

let failures = 0, compared = 0;
const met = new Map(DISAGREEMENTS.map((d) => [d, 0]));
const fail = (msg) => { failures++; if (failures <= 40) console.error(`FAIL: ${msg}`); };
const hex = (v) => "0x" + (v >>> 0).toString(16).padStart(8, "0");
const show = (regs) => [...regs].filter(([, v]) => v).map(([a, v]) => `${hex(a)}=${hex(v)}`).join(" ") || "(all 0)";
const notCompared = (chip, what) => NOT_COMPARED.some((n) => n.chip === chip && n.what.includes(what));

// Which class defines `method` for this chip's class (null: none).
function definer(Rom, method) {
  for (let p = Rom.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p))
    if (Object.prototype.hasOwnProperty.call(p, method)) return p.constructor;
  return null;
}

// "compare", "skip" (not defined, or listed in NOT_COMPARED), or fail for an
// inherited method nobody has looked at.
function policy(chip, Rom, method) {
  const d = definer(Rom, method);
  if (!d) return "skip";
  if (notCompared(chip, method)) return "skip";
  if (d === Rom || INHERITED_OK.some((o) => o.chip === chip && o.method === method)) return "compare";
  fail(`${chip}: ${method} is inherited from ${d.name}; list it in INHERITED_OK or NOT_COMPARED`);
  return "skip";
}

// Compare one field: a disagreement that applies decides what C must say.
function check(chip, field, jsValue, cValue, ctx, label) {
  const rules = DISAGREEMENTS.filter((d) => d.chip === chip && d.field === field && d.applies(ctx));
  let want = jsValue, source = "esptool-js";
  if (rules.length) {
    for (const d of rules) met.set(d, met.get(d) + 1);
    want = rules[rules.length - 1].expect(ctx);
    source = "esptool (disagreement)";
  }
  compared++;
  if (want !== cValue) fail(`${chip} ${field}: espgang ${JSON.stringify(cValue)}, ${source} ${JSON.stringify(want)} [${label}]`);
}

function checkStatic(chip, rom, list) {
  const eq = (what, ours, theirs) => {
    compared++;
    if (ours !== theirs) fail(`${chip} ${what}: espgang ${JSON.stringify(ours)}, esptool-js ${JSON.stringify(theirs)}`);
  };
  if (rom.IMAGE_CHIP_ID !== undefined) eq("IMAGE_CHIP_ID", list.chip_id, rom.IMAGE_CHIP_ID);
  eq("BOOTLOADER_FLASH_OFFSET", list.bootloader_offset, rom.BOOTLOADER_FLASH_OFFSET);
  const b = rom.SPI_REG_BASE;
  const spi = [b, b + rom.SPI_USR_OFFS, b + rom.SPI_USR1_OFFS, b + rom.SPI_USR2_OFFS,
    rom.SPI_MOSI_DLEN_OFFS ? b + rom.SPI_MOSI_DLEN_OFFS : 0, rom.SPI_MISO_DLEN_OFFS ? b + rom.SPI_MISO_DLEN_OFFS : 0,
    b + rom.SPI_W0_OFFS].map(hex).join(" ");
  eq("SPI registers", list.spi, spi);
  if (rom.MAC_EFUSE_REG !== undefined) eq("MAC_EFUSE_REG", list.mac_reg, rom.MAC_EFUSE_REG);
  const codes = (o) => Object.entries(o).map(([k, v]) => `${k}=${v}`).join(" ");
  eq("FLASH_SIZES", list.sizes, codes(rom.FLASH_SIZES));
  if (FREQ_DISAGREEMENTS[chip]) {
    compared++;
    if (list.freqs === codes(rom.FLASH_FREQUENCY)) fail(`${chip} FLASH_FREQUENCY: listed as a disagreement but equal`);
  } else {
    eq("FLASH_FREQUENCY", list.freqs, codes(rom.FLASH_FREQUENCY));
  }
  eq("XTAL_CLK_DIVIDER", list.xtal_clk_divider, rom.XTAL_CLK_DIVIDER);
  if (rom.FLASH_ENCRYPTED_WRITE_ALIGN !== undefined) eq("FLASH_ENCRYPTED_WRITE_ALIGN", list.enc_write_align, rom.FLASH_ENCRYPTED_WRITE_ALIGN);
  eq("USES_MAGIC_VALUE", list.magic_primary, rom.USES_MAGIC_VALUE);
  // Every magic value esptool-js lists is ours, except P4's 0 (any failed
  // read; the protocol doc §4.1: "none reliable").
  const ours = new Set(list.magic.split(" "));
  for (const m of rom.CHIP_DETECT_MAGIC_VALUE || []) {
    if (chip === "esp32p4" && m === 0) continue;
    compared++;
    if (!ours.has(hex(m))) fail(`${chip} magic ${hex(m)} (esptool-js) is not in the table (${list.magic})`);
  }
  eq("USB_RAM_BLOCK", list.usb_otg_block, rom.USB_RAM_BLOCK && ["esp32s2", "esp32s3", "esp32p4"].includes(chip) ? rom.USB_RAM_BLOCK : 0);
  if (rom.UARTDEV_BUF_NO !== undefined) eq("UARTDEV_BUF_NO", list.uartdev, rom.UARTDEV_BUF_NO);
  if (rom.UARTDEV_BUF_NO_USB_OTG !== undefined) eq("UARTDEV_BUF_NO_USB_OTG", list.uartdev_otg, rom.UARTDEV_BUF_NO_USB_OTG);
  const jtag = rom.UARTDEV_BUF_NO_USB ?? rom.UARTDEV_BUF_NO_USB_JTAG_SERIAL;
  if (jtag !== undefined) eq("UARTDEV_BUF_NO (USB-Serial/JTAG)", list.uartdev_jtag, jtag);
}

async function main() {
  const lists = runDecoder(CHIPS.map((c) => `list ${c.arg}`));
  const work = [];
  const seedOf = (s) => [...s].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 7);
  for (let i = 0; i < CHIPS.length; i++) {
    const chip = CHIPS[i], list = lists[i];
    const Rom = await load(chip.file, chip.cls);
    const rom = new Rom();
    checkStatic(chip.arg, rom, list);
    const policies = Object.fromEntries(METHODS.map((m) => [m, policy(chip.arg, Rom, m)]));
    const ourRegs = new Set(list.regs.split(" ").map((a) => parseInt(a, 16)));
    for (const set of [...chosenSets(chip.arg), ...registerSets(chip, list, prng(seedOf(chip.arg)))])
      work.push({ chip, list, rom, ourRegs, set, policies });
  }
  const lines = work.map(({ chip, set }) => [chip.arg, set.baud, ...[...set.regs].map(([a, v]) => `${hex(a)}=${hex(v)}`)].join(" "));
  const results = runDecoder(lines);

  for (let k = 0; k < work.length; k++) {
    const { chip, list, rom, ourRegs, set, policies } = work[k], c = results[k], arg = chip.arg;
    const label = `${arg} set ${k} @${set.baud}: ${show(set.regs)}`;
    if (c.unlisted) fail(`${arg}: chosen registers ${c.unlisted} are not read by the device [${label}]`);
    const r = (a) => set.regs.get(a) ?? 0;
    const js = {};
    const readsOk = (what, res) => {
      for (const a of res.reads)
        if (!ourRegs.has(a)) fail(`${arg} ${what}: esptool-js read ${hex(a)}, which the device does not read`);
    };
    const res = {};
    for (const m of METHODS) if (policies[m] === "compare") res[m] = await call(rom, m, set.regs, set.baud);
    for (const [m, v] of Object.entries(res)) readsOk(m, v);
    const est = list.clkdiv ? estimate(set.baud, r(parseInt(list.clkdiv, 16)), list.xtal_clk_divider) : 0;
    const ctx = { r, js, c, est };

    if (res.getChipDescription) {
      const parts = splitDesc(res.getChipDescription.value, chip.rev);
      const cParts = splitDesc(c.desc, c.has_rev ? "v" : "none");
      js.name = parts.name;
      check(arg, "name", js.name, cParts.name, ctx, label);
      if (chip.rev === "v") {
        check(arg, "major", parts.rev.major, c.major, ctx, label + " (description)");
        check(arg, "minor", parts.rev.minor, c.minor, ctx, label + " (description)");
      } else if (chip.rev === "n") {
        check(arg, "major", parts.rev.n, c.major, ctx, label + " (description)");
      }
    }
    if (res.getMajorChipVersion) check(arg, "major", res.getMajorChipVersion.value, c.major, ctx, label);
    if (res.getMinorChipVersion) check(arg, "minor", res.getMinorChipVersion.value, c.minor, ctx, label);
    // getChipRevision: the major on ESP32 and C2; major * 100 + minor on P4.
    if (res.getChipRevision) {
      if (arg === "esp32p4") check(arg, "rev", res.getChipRevision.value, c.major * 100 + c.minor, ctx, label);
      else check(arg, "major", res.getChipRevision.value, c.major, ctx, label + " (getChipRevision)");
    }
    if (res.readMac) check(arg, "mac", res.readMac.value, c.mac, ctx, label);
    if (res.getCrystalFreq) check(arg, "crystal", res.getCrystalFreq.value, c.crystal, ctx, label);
    if (res.getCrystalFreqRomExpect) check(arg, "rom_xtal_expect", res.getCrystalFreqRomExpect.value, c.rom_xtal_expect, ctx, label);
    if (arg === "esp32p4") {
      const stub = await call(rom, "getStubJsonPath", set.regs, set.baud);
      check(arg, "stub", path.basename(stub.value, ".json"), c.stub, ctx, label);
      const ua = await call(rom, "getUartdevBufNo", set.regs, set.baud);
      check(arg, "uartdev", hex(ua.value), c.uartdev, ctx, label);
    }
  }

  for (const [d, n] of met)
    if (!n) fail(`disagreement never met by a register set (stale?): ${d.chip} ${d.field}: ${d.why}`);
  console.log(`esptool-js ${version}: ${work.length} register sets over ${CHIPS.length} chips, ${compared} comparisons`);
  console.log(`disagreements (espgang follows esptool v5.3.1):`);
  for (const [d, n] of met) console.log(`  ${d.chip} ${d.field} (${n} sets): ${d.why}`);
  for (const [chip, src] of Object.entries(FREQ_DISAGREEMENTS))
    console.log(`  ${chip} FLASH_FREQUENCY: esptool-js keeps the ESP32's codes (lib/targets/rom.js:17-22); esptool ${src}`);
  console.log(`inherited in esptool-js and in esptool:`);
  for (const o of INHERITED_OK) console.log(`  ${o.chip} ${o.method}: ${o.why}`);
  console.log(`not compared:`);
  for (const n of NOT_COMPARED) console.log(`  ${n.chip} ${n.what.join("/")}: ${n.why}`);
  if (failures) {
    console.error(`FAIL: ${failures} mismatches`);
    process.exit(1);
  }
  console.log("PASS");
}

main().catch((err) => {
  console.error(`FAIL: ${err.stack || err}`);
  process.exit(1);
});
