// tcp-serial-port.mjs - a Web Serial `SerialPort` look-alike over a TCP
// socket, so that esptool-js (written for browsers) can talk to espsim's
// per-device TCP listener from Node.js.
//
// Contract (what esptool-js 0.7.0's Transport, lib/webserial.js, uses):
//   open({baudRate, ...})  connects; rejects if already open or no baudRate
//   readable / writable    WHATWG streams of Uint8Array while open, else null
//                          (a cancelled readable / closed writable also
//                          reads null afterwards, as in Web Serial)
//   close()                rejects while a stream is locked (Transport waits
//                          for both locks to go before it calls close())
//   setSignals({...})      accepted and recorded, nothing else: a TCP link
//                          has no DTR/RTS. Callers must use esptool-js's
//                          "no_reset" mode; the record lets a test see that
//                          no reset was attempted.
//   setBaudRate(baud)      the optional in-place capability esptool-js
//                          prefers to a close/reopen: TCP has no line speed
//                          (espsim paces bytes at the device's own UART
//                          rate), and a reopen would be a new TCP client.
//   getInfo()              {} - no USB vendor/product id behind a socket.
// Errors: a socket error fails the readable stream (esptool-js's read loop
// then stops) and rejects pending writes. Nothing here is shared between
// instances; each port owns its socket.

import net from "node:net";

function invalidState(message) {
  return new DOMException(message, "InvalidStateError");
}

export class TcpSerialPort {
  #host;
  #port;
  #socket = null;
  #readable = null;
  #writable = null;

  /** @param {string} host @param {number} port */
  constructor(host, port) {
    this.#host = host;
    this.#port = port;
    /** setSignals calls, oldest first (for the test to inspect). */
    this.signals = [];
    /** Last speed asked for by open() or setBaudRate(); informative only. */
    this.baudRate = 0;
    this.bytesIn = 0;
    this.bytesOut = 0;
  }

  get readable() {
    return this.#readable;
  }

  get writable() {
    return this.#writable;
  }

  getInfo() {
    return {};
  }

  async open(options) {
    if (this.#socket) throw invalidState("The port is already open.");
    if (!options || !Number.isInteger(options.baudRate) || options.baudRate <= 0) {
      throw new TypeError("open(): baudRate must be a positive integer");
    }
    const socket = net.createConnection({ host: this.#host, port: this.#port });
    await new Promise((resolve, reject) => {
      const onError = (err) => reject(new Error(`cannot connect to ${this.#host}:${this.#port}: ${err.message}`));
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        resolve();
      });
    });
    // Small request frames must leave at once: the device answers each
    // command before the next one is sent.
    socket.setNoDelay(true);
    this.#socket = socket;
    this.baudRate = options.baudRate;
    this.#readable = this.#makeReadable(socket);
    this.#writable = this.#makeWritable(socket);
  }

  #makeReadable(socket) {
    let finished = false;
    const stream = new ReadableStream(
      {
        start: (controller) => {
          socket.on("data", (chunk) => {
            if (finished) return;
            this.bytesIn += chunk.length;
            controller.enqueue(new Uint8Array(chunk)); // a copy: Node may reuse the buffer
            if (controller.desiredSize !== null && controller.desiredSize <= 0) socket.pause();
          });
          socket.on("end", () => {
            if (finished) return;
            finished = true;
            controller.close();
          });
          socket.on("error", (err) => {
            if (finished) return;
            finished = true;
            controller.error(err);
          });
        },
        pull: () => {
          socket.resume();
        },
        cancel: () => {
          // Transport.disconnect() cancels its reader; Web Serial then
          // reports no readable until the port is reopened.
          finished = true;
          if (this.#readable === stream) this.#readable = null;
        },
      },
      { highWaterMark: 64 },
    );
    return stream;
  }

  #makeWritable(socket) {
    const stream = new WritableStream({
      write: (chunk) => {
        const view = ArrayBuffer.isView(chunk)
          ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          : Buffer.from(chunk);
        this.bytesOut += view.length;
        return new Promise((resolve, reject) => {
          socket.write(view, (err) => (err ? reject(err) : resolve()));
        });
      },
      close: () => {
        if (this.#writable === stream) this.#writable = null;
      },
      abort: () => {
        if (this.#writable === stream) this.#writable = null;
      },
    });
    return stream;
  }

  async setSignals(signals) {
    if (!this.#socket) throw invalidState("The port is not open.");
    this.signals.push({ ...signals });
  }

  async setBaudRate(baudRate) {
    if (!this.#socket) throw invalidState("The port is not open.");
    if (!Number.isInteger(baudRate) || baudRate <= 0) throw new TypeError("setBaudRate(): bad speed");
    this.baudRate = baudRate;
  }

  async close() {
    const socket = this.#socket;
    if (!socket) throw invalidState("The port is not open.");
    if ((this.#readable && this.#readable.locked) || (this.#writable && this.#writable.locked)) {
      throw invalidState("Cannot close a port while its streams are locked.");
    }
    const readable = this.#readable;
    const writable = this.#writable;
    this.#readable = null;
    this.#writable = null;
    this.#socket = null;
    if (readable) await readable.cancel().catch(() => {});
    if (writable) await writable.abort().catch(() => {});
    if (!socket.destroyed) {
      await new Promise((resolve) => {
        socket.once("close", resolve);
        socket.end();
        // A peer that never answers our FIN must not hold close() forever.
        setTimeout(() => socket.destroy(), 1000).unref();
      });
    }
  }
}
