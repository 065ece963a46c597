/**
 * A null broker for measuring the load tool itself: it routes nothing. It answers CONNECT and
 * SUBSCRIBE, acknowledges QoS 1 PUBLISHes and drops every PUBLISH; after a SUBACK it streams
 * pre-encoded PUBLISHes (topic bench/0, publisher 0, QoS of the subscription) to that
 * subscriber as fast as the socket takes them, up to --stream messages or until it disconnects.
 *
 *   node benchmarks/macro/null-broker.mjs --port 1884 [--payload 64] [--stream 50000000]
 *
 * Prints {"port": n} on stdout once listening (--port 0 takes a free port).
 *
 * With `load.mjs --scenario pub-only` it gives the tool's publishing ceiling, with
 * `--scenario sub-only` its receiving ceiling (compare.mjs runs both before the brokers).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  CONNECT,
  connackBytes,
  DISCONNECT,
  FrameScanner,
  PINGREQ,
  PUBLISH,
  PublishTemplate,
  publishPacketId,
  SUBSCRIBE,
  subackBytes,
} from './wire.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '1883' },
    host: { type: 'string', default: '127.0.0.1' },
    payload: { type: 'string', default: '64' },
    stream: { type: 'string', default: '50000000' },
  },
});
const port = Number(values.port);
const payload = Number(values.payload);
const streamLimit = Number(values.stream);
const PINGRESP = Buffer.from([0xd0, 0]);
const CHUNK_MESSAGES = 1024;

function serve(socket) {
  socket.setNoDelay(true);
  let streaming = false;
  const scanner = new FrameScanner((first, buf, start) => {
    const type = first >> 4;
    if (type === PUBLISH) {
      if ((first & 0x06) !== 0) {
        const id = publishPacketId(buf, start);
        acks.push(0x40, 2, id >> 8, id & 0xff);
      }
    } else if (type === CONNECT) {
      socket.write(connackBytes(false, 0));
    } else if (type === SUBSCRIBE) {
      const id = (buf[start] << 8) | buf[start + 1];
      const qos = buf[start + 4 + ((buf[start + 2] << 8) | buf[start + 3])] & 0x03;
      socket.write(subackBytes(id, [qos]));
      if (!streaming) {
        streaming = true;
        stream(socket, qos);
      }
    } else if (type === PINGREQ) {
      socket.write(PINGRESP);
    } else if (type === DISCONNECT) {
      socket.end();
    }
  });
  let acks = [];
  socket.on('data', (chunk) => {
    try {
      scanner.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    if (acks.length > 0) {
      socket.write(Buffer.from(acks));
      acks = [];
    }
  });
  socket.on('error', () => {});
}

/** Streams PUBLISHes in 1024-message writes; each write is a fresh buffer with its own seqs. */
function stream(socket, qos) {
  const t = new PublishTemplate('bench/0', qos, payload, 0);
  let seq = 0;
  let id = 0;
  const pump = () => {
    while (!socket.destroyed && socket.writable && seq < streamLimit) {
      const n = Math.min(CHUNK_MESSAGES, streamLimit - seq);
      const buf = Buffer.allocUnsafe(n * t.length);
      const now = performance.now();
      let off = 0;
      for (let k = 0; k < n; k++) {
        id = id === 65535 ? 1 : id + 1;
        off = t.fill(buf, off, seq++, now, id);
      }
      if (!socket.write(buf)) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  setImmediate(pump);
}

const server = net.createServer(serve);
server.listen(port, values.host, () => {
  // The port on stdout for scripts (--port 0 picks a free one), the rest on stderr.
  console.log(JSON.stringify({ port: server.address().port }));
  console.error(`null-broker: listening on ${values.host}:${server.address().port}`);
});
server.on('error', (err) => {
  console.error(`null-broker: ${err.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
