#!/usr/bin/env node
// peer_esptool_js.mjs - the peer: one esptool-js 0.7.0 process flashing one
// simulated board, the way a browser flasher or a script around it does:
// ESPLoader.main("no_reset") (sync, detect, its esp-flasher-stub, the baud
// change), then writeFlash of the images compressed with its MD5 check.
// The benchmark starts N of these at once against one espsim rack.
//
// usage: node peer_esptool_js.mjs socket://127.0.0.1:PORT BAUD OFFSET=FILE...
// Prints one JSON line {ok, ms, bytes} and exits 0, or {ok:false, error} and 1.
// The TCP Web Serial shim is the conformance test's (tests/esptool-js).

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");

const { TcpSerialPort } = await import(path.join(REPO, "tests", "esptool-js", "tcp-serial-port.mjs"));
const ejs = await import(path.join(REPO, "node_modules", "esptool-js", "lib", "index.js"));

const [url, baudArg, ...files] = process.argv.slice(2);
const m = /^socket:\/\/([^:/]+):(\d+)$/.exec(url || "");
if (!m || !files.length) {
  console.error("usage: peer_esptool_js.mjs socket://HOST:PORT BAUD OFFSET=FILE...");
  process.exit(2);
}
const fileArray = files.map((f) => {
  const [off, file] = f.split("=");
  return { address: Number(off), data: new Uint8Array(fs.readFileSync(file)) };
});
const quiet = { clean() {}, writeLine() {}, write() {} };
const t0 = performance.now();
const serial = new TcpSerialPort(m[1], Number(m[2]));
const transport = new ejs.Transport(serial, false);
const loader = new ejs.ESPLoader({ transport, baudrate: Number(baudArg), romBaudrate: 115200, terminal: quiet });
try {
  await loader.main("no_reset");
  await loader.writeFlash({
    fileArray,
    flashMode: "keep",
    flashFreq: "keep",
    flashSize: "keep",
    eraseAll: false,
    compress: true,
    calculateMD5Hash: (d) => crypto.createHash("md5").update(d).digest("hex"),
  });
  const ms = performance.now() - t0;
  if (serial.readable !== null) await transport.disconnect();
  console.log(JSON.stringify({ ok: true, ms, bytes: fileArray.reduce((a, f) => a + f.data.length, 0) }));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message ? e.message : e) }));
  process.exit(1);
}
