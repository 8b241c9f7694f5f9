#!/usr/bin/env node
// attrib.test.mjs - the benchmark's arithmetic (attrib.mjs) on a made-up
// unit whose every figure is known: espgang's timing lines and espsim's
// event-log lines in the formats both programs write (timing.c,
// esim_log_cmd), two stages, a gap between them. Not a timing test: no
// clock is read. Exit 0 if every figure matches, else 1 with both sides.

import assert from "node:assert/strict";

import { attribute, parseEventLog, parseTiming } from "./attrib.mjs";

const ORIGIN = 5_000_000; // CLOCK_MONOTONIC us of the log's first line
const rec = (o) =>
  JSON.stringify({ slot: "slot01", attempt: 0, seq: 0, bytes_in: 10, baud: 921600, ...o });

// Exchange 1 (detect): READ_REG, 12 bytes out, 12 in, at 115200.
//   sent 5.100000; arrives whole at 5.102500; the chip starts at once and
//   replies at 5.102650; espgang has the reply at 5.105000.
// Exchange 2 (write): FLASH_DEFL_DATA of 1280 bytes at 921600, sent 5.200000
//   (100 ms after the first reply: a gap), arrives whole at 5.215000, waits
//   20 ms for the CPU, runs 30 us, reply queued 5.235030, received 5.237000.
const timing = [
  rec({ op: "READ_REG", stage: "detect", bytes_out: 12, bytes_in: 12, baud: 115200, t_sent_us: 5_100_000, t_reply_us: 5_105_000 }),
  rec({ op: "FLASH_DEFL_DATA", stage: "write", seq: 3, bytes_out: 1280, t_sent_us: 5_200_000, t_reply_us: 5_237_000 }),
  '{"dropped":0}',
].join("\n");
const events = [
  "0.000000 slot01 clock origin 5000000 us",
  "0.102500 slot01 cmd READ_REG (0x0a) size=4 waited=0us",
  "0.102650 slot01 reply READ_REG value=0x00f01d83 status=00 00",
  "0.235000 slot01 cmd FLASH_DEFL_DATA (0x11) size=1272 waited=20000us",
  "0.235000 slot01 stub: something in between",
  "0.235030 slot01 reply FLASH_DEFL_DATA value=0x00000000 status=00 00",
].join("\n");

const close = (got, want, what) => {
  if (Math.abs(got - want) > 1e-6) throw new assert.AssertionError({ message: `${what}: got ${got}, want ${want}`, actual: got, expected: want });
};

const recs = parseTiming(timing).get("slot01");
assert.equal(recs.length, 2, "timing records");
const ev = parseEventLog(events);
assert.equal(ev.origin, ORIGIN, "clock origin");
assert.deepEqual(
  ev.cmds.map((c) => [c.op, c.t, c.waited, c.replyT]),
  [
    ["READ_REG", 5_102_500, 0, 5_102_650],
    ["FLASH_DEFL_DATA", 5_235_000, 20_000, 5_235_030],
  ],
  "commands on the host clock",
);

const a = attribute(recs, ev);
// detect: 12 bytes each way, each with its two 0xC0s, at 115200
const d = a.stages.detect;
close(d.wire, (28 * 10e6) / 115200, "detect wire");
close(d.chip, 150, "detect chip");
close(d.adapter, 1000, "detect adapter");
close(d.waiting, 5000 - d.wire - 150 - 1000, "detect waiting");
close(d.toChip, 2500 - (14 * 10e6) / 115200 - 500, "detect request leg");
close(d.toHost, 2350 - (14 * 10e6) / 115200 - 500, "detect reply leg");
close(d.toChip + d.toHost, d.waiting, "detect legs sum to waiting");
close(d.gaps, 100_000 - 5000, "the gap after detect's reply belongs to detect");
// write: 1280 data bytes + 2 ends + 10 estimated escapes out, 12 in
const w = a.stages.write;
close(w.wire, ((1292 + 12) * 10e6) / 921600, "write wire");
close(w.chip, 20_030, "write chip (waited + run)");
close(w.waiting, 37_000 - w.wire - 20_030 - 1000, "write waiting");
close(w.toChip + w.toHost, w.waiting, "write legs sum to waiting");
close(w.gaps, 0, "no gap after the last reply");
close(a.total.wire + a.total.chip + a.total.adapter + a.total.waiting, 5000 + 37_000, "parts sum to the exchanges");
assert.equal(a.first, 5_100_000, "first request");
assert.equal(a.last, 5_237_000, "last reply");

// Without the log's origin the chip time still counts; the legs stay 0.
const noOrigin = attribute(recs, parseEventLog(events.split("\n").slice(1).join("\n")));
close(noOrigin.stages.write.chip, 20_030, "chip time without the origin");
close(noOrigin.stages.write.toChip + noOrigin.stages.write.toHost, 0, "no legs without the origin");
// Without an event log everything the chip did is waiting.
const noLog = attribute(recs, null);
close(noLog.stages.write.chip, 0, "no chip time without a log");
close(noLog.stages.write.waiting, 37_000 - w.wire - 1000, "waiting without a log");

console.log("1 passed, 0 failed");
