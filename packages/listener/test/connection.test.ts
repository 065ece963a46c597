import { once } from 'node:events';
import net from 'node:net';
import type { Packet, ProtocolError } from '@tern/protocol';
import t, { type Test } from 'tap';
import { Connection, type ConnectionHandler } from '../src/index.js';

/** A Connection on the server side of a loopback socket pair, and the raw client side. */
async function pair(t: Test): Promise<{ conn: Connection; peer: net.Socket; events: Recorder }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const peer = net.connect(port, '127.0.0.1');
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  server.close();
  const conn = new Connection(socket);
  const events = new Recorder();
  conn.handler = events;
  t.teardown(() => {
    peer.destroy();
    conn.destroy();
  });
  return { conn, peer, events };
}

class Recorder implements ConnectionHandler {
  packets: Packet[] = [];
  protocolErrors: ProtocolError[] = [];
  closed: Promise<Error | undefined>;
  private resolveClosed!: (error: Error | undefined) => void;
  constructor() {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }
  onPacket(packet: Packet): void {
    this.packets.push(packet);
  }
  onProtocolError(error: ProtocolError): void {
    this.protocolErrors.push(error);
  }
  onInternalError(): void {}
  onClose(error: Error | undefined): void {
    this.resolveClosed(error);
  }
}

/** Reads from `socket` until `length` bytes have arrived. */
async function readBytes(socket: net.Socket, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < length) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    chunks.push(chunk);
    total += chunk.length;
  }
  return Buffer.concat(chunks);
}

t.test('writes of one turn arrive in order; writableLength counts them before the flush', async (t) => {
  const { conn, peer } = await pair(t);
  conn.write(Buffer.from([1, 2]));
  conn.write(Buffer.from([3]));
  t.equal(conn.writableLength, 3, 'pending bytes count as not yet taken by the kernel');
  t.equal(conn.bytesSent, 3);
  t.same([...(await readBytes(peer, 3))], [1, 2, 3]);
});

t.test('writeWithId patches a copy and never the shared template', async (t) => {
  const { conn, peer } = await pair(t);
  const template = Buffer.from([0x32, 0x06, 0x00, 0x01, 0x61, 0x00, 0x00, 0x7a]);
  conn.writeWithId(template, 5, 0x1234);
  conn.writeWithId(template, 5, 0xabcd, 0x08);
  conn.write(Buffer.from([0xd0, 0x00]));
  const bytes = await readBytes(peer, 18);
  t.same([...bytes.subarray(0, 8)], [0x32, 0x06, 0x00, 0x01, 0x61, 0x12, 0x34, 0x7a], 'id patched');
  t.same([...bytes.subarray(8, 16)], [0x3a, 0x06, 0x00, 0x01, 0x61, 0xab, 0xcd, 0x7a], 'id and DUP bit patched');
  t.same([...bytes.subarray(16)], [0xd0, 0x00], 'plain bytes after the patched ones');
  t.same([...template], [0x32, 0x06, 0x00, 0x01, 0x61, 0x00, 0x00, 0x7a], 'template untouched');
});

t.test('a single patched write is copied too (the template stays shared)', async (t) => {
  const { conn, peer } = await pair(t);
  const template = Buffer.from([0x40, 0x02, 0x00, 0x00]);
  conn.writeWithId(template, 2, 7);
  t.same([...(await readBytes(peer, 4))], [0x40, 0x02, 0x00, 0x07]);
  t.same([...template], [0x40, 0x02, 0x00, 0x00]);
});

t.test('flushNow sends early and later writes of the turn still leave, in order', async (t) => {
  const { conn, peer } = await pair(t);
  conn.write(Buffer.from([1]));
  conn.flushNow();
  t.equal(conn.writableLength, conn.socket.writableLength, 'nothing pending after flushNow');
  conn.write(Buffer.from([2]));
  conn.writeWithId(Buffer.from([0, 0, 3]), 0, 0x0405);
  t.same([...(await readBytes(peer, 5))], [1, 2, 4, 5, 3]);
});

t.test('packets split across chunks are framed; garbage closes with a protocol error', async (t) => {
  const { peer, events } = await pair(t);
  // PINGREQ, then a PUBACK cut in two writes.
  peer.write(Buffer.from([0xc0, 0x00, 0x40]));
  await new Promise<void>((resolve) => peer.write(Buffer.from([0x02]), () => resolve()));
  peer.write(Buffer.from([0x00, 0x09]));
  // Reserved packet type 0 is malformed [MQTT-2.2.1].
  peer.write(Buffer.from([0x00, 0x00]));
  await events.closed;
  t.same(
    events.packets.map((p) => p.cmd),
    ['pingreq', 'puback'],
  );
  t.equal(events.protocolErrors.length, 1);
  t.match(events.protocolErrors[0]?.code, /^TERN_PROTO_/);
});

t.test('writes after close are ignored', async (t) => {
  const { conn, events } = await pair(t);
  conn.destroy();
  await events.closed;
  conn.write(Buffer.from([1]));
  conn.writeWithId(Buffer.from([0, 0]), 0, 1);
  t.equal(conn.isClosed, true);
  t.equal(conn.writableLength, 0);
});

t.test('writeWithPayload sends a patched head and its payload by reference, in order with the rest', async (t) => {
  const { conn, peer } = await pair(t);
  const payload = Buffer.alloc(64 * 1024, 0x70);
  const head = Buffer.from([0x32, 0x00, 0x00, 0x01, 0x61, 0x00, 0x00]);
  conn.write(Buffer.from([0xd0, 0x00]));
  conn.writeWithPayload(head, 5, 0x0102, 0x08, payload);
  conn.write(Buffer.from([0xe0, 0x00]));
  t.equal(conn.writableLength, 2 + head.length + payload.length + 2, 'the payload counts as pending');
  const total = 2 + head.length + payload.length + 2;
  const bytes = await readBytes(peer, total);
  t.same([...bytes.subarray(0, 2)], [0xd0, 0x00]);
  t.same([...bytes.subarray(2, 9)], [0x3a, 0x00, 0x00, 0x01, 0x61, 0x01, 0x02], 'head patched (id, DUP)');
  t.equal(bytes.subarray(9, 9 + payload.length).equals(payload), true, 'payload intact');
  t.same([...bytes.subarray(total - 2)], [0xe0, 0x00], 'what followed comes after the payload');
  t.same([...head], [0x32, 0x00, 0x00, 0x01, 0x61, 0x00, 0x00], 'head template untouched');
  t.equal(conn.bytesSent, total);
});
