/**
 * PacketDecoder across chunk boundaries: what it holds between pushes, where it checks the
 * size limit, and that every way of cutting a stream gives the same packets.
 */
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import {
  type DecoderOptions,
  encode,
  type Packet,
  PacketDecoder,
  ProtocolError,
  type ProtocolVersion,
} from '../src/index.js';
import { fromHex } from './fixtures/hex.js';
import { type ValidRow, validPackets } from './fixtures/valid-packets.js';

function fixture(version: ProtocolVersion, name: string): ValidRow {
  const row = validPackets.find((r) => r.version === version && r.name === name);
  if (row === undefined) throw new Error(`no fixture v${version} ${name}`);
  return row;
}

/** Decodes `bytes` cut at the given offsets (ascending, inside the buffer). */
function decodeCut(bytes: Buffer, cuts: readonly number[], options: DecoderOptions): Packet[] {
  const out: Packet[] = [];
  const decoder = new PacketDecoder((p) => out.push(p), options);
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    decoder.push(bytes.subarray(from, cut));
    from = cut;
  }
  return out;
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

t.test('bufferedBytes never holds more than the packet in progress', async (t) => {
  const rows = [
    fixture(4, 'connect with will qos1 retain, username and password, not clean'),
    fixture(4, 'publish qos1 with a 20000-byte payload (3-byte remaining length)'),
    fixture(4, 'pingreq'),
    fixture(4, 'publish a 200-byte payload (2-byte remaining length)'),
    fixture(4, 'subscribe three filters at qos 0, 1, 2'),
    fixture(4, 'publish with remaining length 16384 (smallest 3-byte length)'),
  ];
  const parts = rows.map((row) => fromHex(row.hex));
  const bytes = Buffer.concat(parts);
  // Start offset of every packet, and the end of the stream.
  const starts = [0];
  for (const part of parts) starts.push((starts.at(-1) as number) + part.length);

  for (const chunkSize of [1, 2, 3, 5, 7, 64, 1000, 4096, 16385, bytes.length]) {
    t.test(`chunks of ${chunkSize} bytes`, async (t) => {
      t.plan(2);
      const out: Packet[] = [];
      const decoder = new PacketDecoder((p) => out.push(p), { protocolVersion: 4 });
      const breaches: string[] = [];
      for (let at = 0; at < bytes.length; at += chunkSize) {
        decoder.push(bytes.subarray(at, at + chunkSize));
        const seen = Math.min(at + chunkSize, bytes.length);
        // The packet in progress is the last one starting at or before `seen`.
        const start = starts.filter((s) => s <= seen).at(-1) as number;
        const held = decoder.bufferedBytes;
        if (held > seen - start) breaches.push(`after ${seen} bytes: holds ${held}, packet began at ${start}`);
      }
      t.strictSame(breaches, [], 'never more than the bytes seen of the current packet; 0 between packets');
      t.strictSame(
        out,
        rows.map((row) => row.packet),
      );
    });
  }
});

t.test('[MQTT-3.1.2-24] the size limit is checked from the fixed header, before the body arrives', async (t) => {
  // Fixed headers of PUBLISH packets whose remaining length needs 1 to 4 bytes; the limit is
  // set one byte below the packet's full size (header + remaining length).
  const cases = [
    { header: [0x30, 0x7f], total: 2 + 127 },
    { header: [0x30, 0xff, 0x7f], total: 3 + 16_383 },
    { header: [0x30, 0xff, 0xff, 0x7f], total: 4 + 2_097_151 },
    { header: [0x30, 0xff, 0xff, 0xff, 0x7f], total: 5 + 268_435_455 },
  ];
  for (const { header, total } of cases) {
    t.test(`${header.length}-byte fixed header, packet of ${total} bytes`, async (t) => {
      t.plan(6);
      const options = { maxPacketSize: total - 1 };

      const whole = new PacketDecoder(() => t.fail('no packet'), options);
      const err = errorOf(() => whole.push(Buffer.from(header)));
      t.type(err, ProtocolError, 'the header alone is enough to throw');
      t.match(err, { code: 'TERN_PROTO_PACKET_TOO_LARGE' });

      // Header cut into single bytes: nothing thrown or held beyond the header until its last byte.
      const split = new PacketDecoder(() => t.fail('no packet'), options);
      const early = errorOf(() => {
        for (const byte of header.slice(0, -1)) split.push(Buffer.from([byte]));
      });
      t.equal(early, undefined, 'no error before the header is complete');
      t.ok(split.bufferedBytes <= header.length, 'holds no more than the header');
      const late = errorOf(() => split.push(Buffer.from(header.slice(-1))));
      t.type(late, ProtocolError);
      t.match(late, { code: 'TERN_PROTO_PACKET_TOO_LARGE' });
    });
  }

  t.test('a packet of exactly maxPacketSize is accepted, one byte more is not', async (t) => {
    t.plan(3);
    const row = fixture(4, 'publish a 200-byte payload (2-byte remaining length)');
    const bytes = fromHex(row.hex);
    t.strictSame(PacketDecoder.decodeAll(bytes, { maxPacketSize: bytes.length }), [row.packet]);
    const err = errorOf(() => PacketDecoder.decodeAll(bytes, { maxPacketSize: bytes.length - 1 }));
    t.match(err, { code: 'TERN_PROTO_PACKET_TOO_LARGE' });
    t.match(
      errorOf(() => PacketDecoder.decodeAll(bytes.subarray(0, 3), { maxPacketSize: bytes.length - 1 })),
      { code: 'TERN_PROTO_PACKET_TOO_LARGE' },
      'three header bytes are enough',
    );
  });

  t.test('a limit lowered after construction applies to the next packet', async (t) => {
    t.plan(2);
    const small = fromHex(fixture(4, 'puback').hex);
    const big = fromHex(fixture(4, 'publish qos2').hex);
    const out: Packet[] = [];
    const decoder = new PacketDecoder((p) => out.push(p));
    decoder.push(big);
    decoder.maxPacketSize = small.length;
    decoder.push(small);
    t.equal(out.length, 2);
    t.match(
      errorOf(() => decoder.push(big)),
      { code: 'TERN_PROTO_PACKET_TOO_LARGE' },
    );
  });
});

t.test('a fixed header split across chunks', async (t) => {
  const threeByteLength = fixture(4, 'publish qos1 with a 20000-byte payload (3-byte remaining length)');
  // Remaining length 2,097,152 takes all 4 length bytes: 80 80 80 01.
  const fourByteLength = {
    packet: {
      cmd: 'publish',
      topic: 'big',
      payload: Buffer.alloc(2_097_147, 0x63),
      qos: 0,
      retain: false,
      dup: false,
    } satisfies Packet,
    bytes: Buffer.concat([fromHex('30 80808001 0003 626967'), Buffer.alloc(2_097_147, 0x63)]),
    headerLength: 5,
  };
  const cases = [
    { name: '4-byte header', packet: threeByteLength.packet, bytes: fromHex(threeByteLength.hex), headerLength: 4 },
    { name: '5-byte header', ...fourByteLength },
  ];
  for (const { name, packet, bytes, headerLength } of cases) {
    t.test(name, async (t) => {
      for (let cut = 1; cut < headerLength; cut++) {
        t.strictSame(decodeCut(bytes, [cut], {}), [packet], `cut after header byte ${cut}, then the rest`);
        t.strictSame(
          decodeCut(bytes, [cut, headerLength], {}),
          [packet],
          `cut after header byte ${cut} and after the header`,
        );
        t.strictSame(
          decodeCut(bytes, [cut, headerLength + 1], {}),
          [packet],
          `cut after header byte ${cut} and one body byte in`,
        );
      }
      const eachHeaderByte = Array.from({ length: headerLength }, (_, i) => i + 1);
      t.strictSame(decodeCut(bytes, eachHeaderByte, {}), [packet], 'every header byte alone');
    });
  }

  t.test('a header cut right after the first byte of a zero-length packet', async (t) => {
    t.plan(1);
    t.strictSame(decodeCut(fromHex('c0 00 d0 00'), [1, 3], {}), [{ cmd: 'pingreq' }, { cmd: 'pingresp' }]);
  });
});

t.test('packet boundaries at every offset of a 3-packet stream', async (t) => {
  const rows = [
    fixture(5, 'pubrel short form'),
    fixture(5, 'publish a 300-byte payload with a user property (2-byte remaining length)'),
    fixture(5, 'subscribe with a subscription id and options noLocal, retainAsPublished, retainHandling'),
  ];
  const bytes = Buffer.concat(rows.map((row) => fromHex(row.hex)));
  const want = rows.map((row) => row.packet);
  const options = { protocolVersion: 5 } as const;

  t.test('two chunks, cut at every offset', async (t) => {
    t.plan(bytes.length + 1);
    for (let cut = 0; cut <= bytes.length; cut++) t.strictSame(decodeCut(bytes, [cut], options), want, `cut at ${cut}`);
  });

  t.test('three chunks, cut at every pair of offsets', async (t) => {
    // A shorter stream (the 300-byte payload would make this ~70,000 decodes).
    const short = [
      fixture(5, 'pubrel short form'),
      fixture(5, 'publish qos1 retain with every PUBLISH property, three subscription ids, repeated user keys'),
      fixture(5, 'disconnect use another server, with properties'),
    ];
    const shortBytes = Buffer.concat(short.map((row) => fromHex(row.hex)));
    const shortWant = short.map((row) => row.packet);
    t.plan(1);
    const wrong: string[] = [];
    for (let a = 0; a <= shortBytes.length; a++) {
      for (let b = a; b <= shortBytes.length; b++) {
        if (!isDeepStrictEqual(decodeCut(shortBytes, [a, b], options), shortWant)) wrong.push(`${a},${b}`);
      }
    }
    t.strictSame(wrong, []);
  });

  t.test('empty chunks anywhere change nothing', async (t) => {
    t.plan(1);
    const out: Packet[] = [];
    const decoder = new PacketDecoder((p) => out.push(p), options);
    const none = Buffer.alloc(0);
    for (let i = 0; i < bytes.length; i += 3) {
      decoder.push(none);
      decoder.push(bytes.subarray(i, i + 3));
    }
    decoder.push(none);
    t.strictSame(out, want);
  });
});

t.test('a payload whole inside a chunk is a view of it, not a copy', async (t) => {
  t.plan(3);
  const row = fixture(4, 'publish a 200-byte payload (2-byte remaining length)');
  const chunk = Buffer.concat([fromHex('c0 00'), fromHex(row.hex)]);
  const out: Packet[] = [];
  new PacketDecoder((p) => out.push(p)).push(chunk);
  const publish = out[1];
  t.equal(publish?.cmd, 'publish');
  const payload = publish?.cmd === 'publish' ? publish.payload : Buffer.alloc(0);
  t.equal(payload.buffer, chunk.buffer, 'same memory');
  t.equal(payload.byteOffset, chunk.byteOffset + chunk.length - 200, 'at the payload offset');
});

t.test('a cut body is allocated whole up to eagerBodyMax, and never beyond the bytes that came', async (t) => {
  const max = PacketDecoder.eagerBodyMax;
  /** PUBLISH 'big' QoS 0 with a body of `bodyLength` bytes: fixed header and the first `have` body bytes. */
  const start = (bodyLength: number, have: number): Buffer => {
    const header = [0x30];
    for (let v = bodyLength; ; ) {
      const digit = v % 128;
      v = Math.floor(v / 128);
      header.push(v > 0 ? digit | 0x80 : digit);
      if (v === 0) break;
    }
    return Buffer.concat([Buffer.from(header), fromHex('0003 626967'), Buffer.alloc(have - 5, 0x61)]);
  };

  t.test('a body up to the limit is one buffer of its full length from the first chunk', async (t) => {
    t.plan(5);
    const out: Packet[] = [];
    const decoder = new PacketDecoder((p) => out.push(p));
    const first = start(max, 100);
    decoder.push(first);
    t.equal(decoder.bufferedBytes, 100);
    t.equal(decoder.bodyCapacity, max, 'allocated whole: each later byte is copied once');
    decoder.push(Buffer.alloc(max - 100 - 1, 0x61));
    t.equal(decoder.bodyCapacity, max, 'never regrown');
    decoder.push(Buffer.alloc(1, 0x61));
    t.equal(out.length, 1);
    t.equal(decoder.bodyCapacity, 0, 'released once the packet is out');
  });

  t.test('an announced 256 MiB packet holds at most eagerBodyMax while few bytes have come', async (t) => {
    t.plan(3);
    const decoder = new PacketDecoder(() => t.fail('no packet'));
    decoder.push(start(268_435_455, 10));
    t.equal(decoder.bufferedBytes, 10);
    t.ok(decoder.bodyCapacity <= max, `capacity ${decoder.bodyCapacity} <= ${max}`);
    t.ok(max <= 1024 * 1024, 'the eager limit itself is small');
  });

  t.test('beyond the limit the buffer grows with the bytes received, at most to twice them', async (t) => {
    const bodyLength = 4 * max + 12_345;
    const out: Packet[] = [];
    const decoder = new PacketDecoder((p) => out.push(p));
    decoder.push(start(bodyLength, 5));
    let received = 5;
    const breaches: string[] = [];
    const chunk = Buffer.alloc(1460, 0x61);
    while (received + chunk.length < bodyLength) {
      decoder.push(chunk);
      received += chunk.length;
      const capacity = decoder.bodyCapacity;
      if (capacity > Math.max(max, 2 * received)) breaches.push(`${capacity} bytes held after ${received} received`);
    }
    decoder.push(chunk.subarray(0, bodyLength - received));
    t.strictSame(breaches, [], 'capacity <= max(eagerBodyMax, 2 x received) after every chunk');
    t.equal(out.length, 1);
    const packet = out[0];
    t.equal(packet?.cmd === 'publish' ? packet.payload.length : -1, bodyLength - 5, 'the whole payload came out');
    t.end();
  });
});

t.test('packetLength is the wire length of the packet being handed over', async (t) => {
  for (const size of [0, 100, 200, 20_000, 3_000_000]) {
    const bytes = encode(
      { cmd: 'publish', topic: 'a', payload: Buffer.alloc(size), qos: 0, retain: false, dup: false },
      4,
    );
    const seen: number[] = [];
    const decoder: PacketDecoder = new PacketDecoder(() => seen.push(decoder.packetLength), {
      maxPacketSize: 4_000_000,
    });
    decoder.push(bytes.subarray(0, 3));
    decoder.push(bytes.subarray(3));
    t.same(seen, [bytes.length], `payload ${size}`);
  }
});
