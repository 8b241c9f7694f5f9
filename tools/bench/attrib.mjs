// attrib.mjs - where a unit's time goes: espgang's --timing-log (one line per
// request and reply, CLOCK_MONOTONIC) set beside espsim's --event-log (when
// each command's frame had arrived whole, when the chip began it, when its
// reply was queued), split per stage into
//   wire     the request's and the reply's bytes at the line rate (10 bits
//            a byte, SLIP framing; escapes estimated for binary payloads),
//   chip     the chip's own work: from the frame's arrival to its reply
//            (the CPU still busy with the previous block, inflate, erase,
//            program, MD5),
//   adapter  the USB adapter latency espsim models (rx + tx, 0.5 ms each),
//   waiting  the rest of each exchange: neither wire nor chip (host loop
//            latency, the simulator's pacing tick and its loop, scheduling);
//            split into its request leg (host's send to the chip's receipt:
//            toChip) and its reply leg (reply queued to the host's receipt:
//            toHost), which needs the log's clock origin,
//   gaps     between one reply and the next request (host work, timers:
//            the 50 ms baud settle, the SYNC reply collection, OHAI).
// Everything is per unit (slot) and summed per stage; the caller averages.
//
// Exports: parseTiming(text), parseEventLog(text), attribute(recs, events,
// opts) -> {stages: {name: {wire, chip, adapter, waiting, gaps, toChip,
// toHost, n}}, total}.
// All times in microseconds.

export const STAGES = ["open", "reset", "sync", "detect", "baud", "stub", "attach", "erase", "write", "verify", "read", "after"];
export const PARTS = ["wire", "chip", "adapter", "waiting", "gaps"];
export const LEGS = ["toChip", "toHost"]; /* waiting = toChip + toHost where the origin is known */

// espsim's default USB adapter latency (timing model rx_latency_us + tx_latency_us).
const ADAPTER_US = 1000;
const DATA_OPS = new Set(["FLASH_DEFL_DATA", "FLASH_DATA", "MEM_DATA"]);

export function parseTiming(text) {
  const bySlot = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith("{\"slot\"")) continue;
    const r = JSON.parse(line);
    if (!bySlot.has(r.slot)) bySlot.set(r.slot, []);
    bySlot.get(r.slot).push(r);
  }
  return bySlot;
}

// "12.345678 slot01 cmd FLASH_DEFL_DATA (0x11) size=16400 waited=291234us"
// -> {origin, cmds: [{op, t, waited, replyT}]}, times absolute (origin + rel).
export function parseEventLog(text) {
  let origin = null;
  const cmds = [];
  let open = null;
  for (const line of text.split("\n")) {
    const m = /^(\d+)\.(\d{6}) \S+ (.*)$/.exec(line);
    if (!m) continue;
    const rel = Number(m[1]) * 1e6 + Number(m[2]);
    const msg = m[3];
    let k;
    if ((k = /^clock origin (\d+) us/.exec(msg))) {
      origin = Number(k[1]) - rel;
    } else if ((k = /^cmd (\S+) \(0x[0-9a-f]+\) size=\d+ waited=(\d+)us/.exec(msg))) {
      open = { op: k[1], t: rel, waited: Number(k[2]), replyT: null };
      cmds.push(open);
    } else if (open && open.replyT === null && (k = /^reply (\S+)/.exec(msg)) && k[1] === open.op) {
      open.replyT = rel;
    }
  }
  if (origin !== null) for (const c of cmds) (c.t += origin), c.replyT !== null && (c.replyT += origin);
  return { origin, cmds };
}

function slipBytes(op, n) {
  return n + 2 + (DATA_OPS.has(op) ? Math.round(n / 128) : 0);
}

function empty() {
  return { wire: 0, chip: 0, adapter: 0, waiting: 0, gaps: 0, toChip: 0, toHost: 0, n: 0 };
}

// recs: one slot's timing records (in order); ev: its parsed event log (or
// null: then chip time is unknown and stays inside waiting).
export function attribute(recs, ev) {
  const stages = {};
  const cmds = ev ? ev.cmds : [];
  let ci = 0;
  let prev = null;
  for (const r of recs) {
    const st = (stages[r.stage] ||= empty());
    // The chip's record of the same command: the next one with this opcode.
    let c = null;
    for (let j = ci; j < cmds.length && j < ci + 4; j++) {
      if (cmds[j].op === r.op) {
        c = cmds[j];
        ci = j + 1;
        break;
      }
    }
    if (prev && prev.t_reply_us) {
      const pst = (stages[prev.stage] ||= empty());
      pst.gaps += Math.max(0, r.t_sent_us - prev.t_reply_us);
    }
    prev = r;
    if (!r.t_reply_us) continue;
    const dur = r.t_reply_us - r.t_sent_us;
    const baud = r.baud || 115200;
    const wireOut = (slipBytes(r.op, r.bytes_out) * 10e6) / baud;
    const wireIn = (slipBytes("", r.bytes_in) * 10e6) / baud;
    const wire = wireOut + wireIn;
    // The reply's time stamp is the end of the chip's work; the frame had
    // been in the chip `waited` before the command began.
    const chip = c && c.replyT !== null ? c.waited + (c.replyT - c.t) : 0;
    const adapter = ADAPTER_US;
    st.wire += wire;
    st.chip += chip;
    st.adapter += adapter;
    st.waiting += dur - wire - chip - adapter;
    if (c && c.replyT !== null && ev.origin !== null) {
      st.toChip += c.t - c.waited - r.t_sent_us - wireOut - adapter / 2;
      st.toHost += r.t_reply_us - c.replyT - wireIn - adapter / 2;
    }
    st.n++;
  }
  const total = empty();
  for (const s of Object.values(stages)) for (const p of [...PARTS, ...LEGS, "n"]) total[p] += s[p];
  return { stages, total, first: recs.length ? recs[0].t_sent_us : 0, last: recs.length ? recs[recs.length - 1].t_reply_us || recs[recs.length - 1].t_sent_us : 0 };
}
