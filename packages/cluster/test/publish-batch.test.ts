import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import t from 'tap';
import { BatchError, type Forwarded, PublishBatchWriter, readPublishBatch } from '../src/index.js';

type QoS = Forwarded['qos'];

/** mulberry32: the same records on every run. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = seededRandom(0x7e4e);
const int = (n: number): number => Math.floor(rnd() * n);

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(256);
  return out;
}

/**
 * Text of 1-, 2-, 3- and 4-byte UTF-8 characters (the last as surrogate pairs). Lone
 * surrogates are left out: they are not well-formed UTF-8 and never reach the codec.
 */
const ALPHABETS = ['abcdefghijklmnopqrstuvwxyz0123456789/+#$-_ ', 'éüßñøçÅΩλжя', '日本語温度センサー€✓', '😀🚀🌡️𝄞𠜎'];
function randomText(maxChars: number): string {
  const n = int(maxChars + 1);
  let s = '';
  const alphabet = ALPHABETS[int(ALPHABETS.length)] as string;
  const chars = Array.from(alphabet);
  for (let i = 0; i < n; i++) {
    // Mostly one alphabet per string, sometimes a mix.
    const pool = rnd() < 0.8 ? chars : Array.from(ALPHABETS[int(ALPHABETS.length)] as string);
    s += pool[int(pool.length)];
  }
  return s;
}

const EDGE_IDS = [0, 1, 2 ** 32 - 1, 2 ** 32, 7 * 2 ** 32 + 12_345, Number.MAX_SAFE_INTEGER];
const EDGE_TIMES = [0, Date.now(), Number.MAX_SAFE_INTEGER];

function randomRecord(i: number): Forwarded {
  const targeted = rnd() < 0.3;
  const sizeRoll = rnd();
  const payloadLength = sizeRoll < 0.2 ? 0 : sizeRoll < 0.9 ? int(64) : int(4096);
  const propsRoll = rnd();
  return {
    id: i < EDGE_IDS.length ? (EDGE_IDS[i] as number) : int(2 ** 21) * 2 ** 32 + int(2 ** 32),
    time: i < EDGE_TIMES.length ? (EDGE_TIMES[i] as number) : Date.now() - int(1e9),
    topic: randomText(40),
    payload: randomBytes(payloadLength),
    qos: int(3) as QoS,
    retain: rnd() < 0.5,
    origin: rnd() < 0.2 ? '' : randomText(23),
    properties: propsRoll < 0.5 ? null : propsRoll < 0.6 ? new Uint8Array(0) : randomBytes(1 + int(40)),
    target: targeted ? randomText(23) || 'x' : '',
    targetQos: targeted ? (int(3) as QoS) : 0,
  };
}

/** Every combination of qos, retain, target and targetQos, with and without properties. */
function comboRecords(): Forwarded[] {
  const out: Forwarded[] = [];
  for (const qos of [0, 1, 2] as const) {
    for (const retain of [false, true]) {
      for (const target of ['', 'client-7', 'klïent-€']) {
        for (const targetQos of [0, 1, 2] as const) {
          for (const properties of [null, new Uint8Array([0x01, 0x01, 0x23, 0x00, 0x05])]) {
            out.push({
              id: out.length,
              time: 1_700_000_000_000 + out.length,
              topic: `combo/${qos}/${retain}/${target}/${targetQos}`,
              payload: Buffer.from(`payload ${out.length}`),
              qos,
              retain,
              origin: 'publisher',
              properties,
              target,
              targetQos,
            });
          }
        }
      }
    }
  }
  return out;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Describes the first difference between two lists of records, or returns null. */
function firstDifference(got: Forwarded[], want: Forwarded[]): string | null {
  if (got.length !== want.length) return `${got.length} records, expected ${want.length}`;
  const scalars = ['id', 'time', 'topic', 'qos', 'retain', 'origin', 'target', 'targetQos'] as const;
  for (let i = 0; i < want.length; i++) {
    const g = got[i] as Forwarded;
    const w = want[i] as Forwarded;
    for (const key of scalars) {
      if (g[key] !== w[key]) return `record ${i}: ${key} ${JSON.stringify(g[key])}, expected ${JSON.stringify(w[key])}`;
    }
    if (!bytesEqual(g.payload, w.payload)) return `record ${i}: payload differs`;
    if ((g.properties === null) !== (w.properties === null)) return `record ${i}: properties null-ness differs`;
    if (g.properties !== null && !bytesEqual(g.properties, w.properties as Uint8Array)) {
      return `record ${i}: properties differ`;
    }
  }
  return null;
}

function encode(records: Forwarded[], writer = new PublishBatchWriter()): Uint8Array<ArrayBuffer> {
  for (const r of records) writer.append(r);
  return writer.take();
}

function decode(bytes: Uint8Array): Forwarded[] {
  const out: Forwarded[] = [];
  readPublishBatch(bytes, (f) => out.push(f));
  return out;
}

function ownsBuffer(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
}

t.test('round trip', async (t) => {
  t.test('many random records, unicode topics, empty and non-empty payloads and properties', async (t) => {
    const records = Array.from({ length: 5000 }, (_, i) => randomRecord(i));
    const writer = new PublishBatchWriter();
    const bytes = encode(records, writer);
    t.equal(firstDifference(decode(bytes), records), null);
  });

  t.test('every qos, retain, target and targetQos combination', async (t) => {
    const records = comboRecords();
    t.equal(records.length, 108);
    t.equal(firstDifference(decode(encode(records)), records), null);
  });

  t.test('1 MiB payloads, from a writer that starts small and grows', async (t) => {
    const big = randomBytes(1024 * 1024);
    const records = [randomRecord(100), { ...randomRecord(101), payload: big }, randomRecord(102)];
    records.push({ ...randomRecord(103), payload: big, properties: randomBytes(70_000) });
    const writer = new PublishBatchWriter(16);
    const bytes = encode(records, writer);
    t.ok(bytes.byteLength > 2 * 1024 * 1024);
    t.equal(firstDifference(decode(bytes), records), null);
    // The writer is reusable after growing (and after giving back its burst memory).
    const small = [randomRecord(104)];
    t.equal(firstDifference(decode(encode(small, writer)), small), null);
  });

  t.test('empty and non-empty properties stay apart from null', async (t) => {
    const base = randomRecord(200);
    const records = [
      { ...base, properties: null },
      { ...base, properties: new Uint8Array(0) },
      { ...base, properties: new Uint8Array([0x26, 0, 1, 0x6b, 0, 1, 0x76]) },
    ];
    const got = decode(encode(records));
    t.equal(got[0]?.properties, null);
    t.equal(got[1]?.properties?.byteLength, 0);
    t.equal(firstDifference(got, records), null);
  });

  t.test("a topic or origin equal to the previous record's is sent once", async (t) => {
    const base = { ...randomRecord(250), properties: null, target: '', payload: Buffer.from('p') };
    const records: Forwarded[] = [
      { ...base, topic: 'a/b', origin: 'x' },
      { ...base, topic: 'a/b', origin: 'x' },
      { ...base, topic: 'a/b', origin: 'y' },
      { ...base, topic: 'ü/ß', origin: 'y' },
      { ...base, topic: 'ü/ß', origin: '' },
      { ...base, topic: 'ü/ß', origin: '' },
      { ...base, topic: '', origin: 'y' },
      { ...base, topic: '', origin: 'y' },
      { ...base, topic: 'a/b', origin: 'x' },
    ];
    const writer = new PublishBatchWriter();
    const bytes = encode(records, writer);
    t.equal(firstDifference(decode(bytes), records), null);
    // Strings written: 'a/b' 'x' 'y' 'ü/ß' (5 bytes) 'y' 'a/b' 'x'.
    t.equal(bytes.byteLength, 5 + records.length * (32 + 1) + 3 + 1 + 1 + 5 + 1 + 3 + 1);
    // A new batch starts afresh: its first record carries its strings.
    const again = encode([records[8] as Forwarded, records[8] as Forwarded], writer);
    t.equal(firstDifference(decode(again), [records[8] as Forwarded, records[8] as Forwarded]), null);
    t.equal(again.byteLength, 5 + 2 * (32 + 1) + 3 + 1);
  });

  t.test('a refused record does not count as the previous one', async (t) => {
    const base = { ...randomRecord(260), topic: 'a', origin: 'x' };
    const writer = new PublishBatchWriter();
    writer.append(base);
    t.throws(() => writer.append({ ...base, topic: 'b', origin: 'o'.repeat(70_000) }), RangeError);
    t.throws(() => writer.append({ ...base, topic: 'b', origin: 'y', qos: 3 as QoS }), RangeError);
    const next = { ...base, topic: 'b', origin: 'y' };
    writer.append(next);
    t.equal(firstDifference(decode(writer.take()), [base, next]), null);
  });

  t.test('reads a batch that is a view into a larger buffer', async (t) => {
    const records = Array.from({ length: 20 }, (_, i) => randomRecord(300 + i));
    const bytes = encode(records);
    const host = new Uint8Array(bytes.byteLength + 13);
    host.set(bytes, 7);
    t.equal(firstDifference(decode(host.subarray(7, 7 + bytes.byteLength)), records), null);
  });

  t.test('payload and properties are views into the batch, not copies', async (t) => {
    const bytes = encode([{ ...randomRecord(400), payload: Buffer.from('abc'), properties: Buffer.from('de') }]);
    const [f] = decode(bytes);
    t.equal(f?.payload.buffer, bytes.buffer);
    t.equal(f?.properties?.buffer, bytes.buffer);
  });
});

t.test('writer', async (t) => {
  t.test('count and byteLength follow appends; take() resets them', async (t) => {
    const writer = new PublishBatchWriter();
    t.equal(writer.count, 0);
    t.equal(writer.byteLength, 5);
    const a = randomRecord(500);
    writer.append(a);
    writer.append(a);
    t.equal(writer.count, 2);
    const firstLength = writer.byteLength;
    t.ok(firstLength > 5 + 2 * 32);
    const first = writer.take();
    t.equal(first.byteLength, firstLength, 'byteLength is what take() returns');
    t.equal(writer.count, 0);
    t.equal(writer.byteLength, 5);
    t.equal(decode(first).length, 2);
    const b = randomRecord(501);
    writer.append(b);
    const expectedLength = writer.byteLength;
    const second = writer.take();
    t.equal(second.byteLength, expectedLength);
    t.equal(firstDifference(decode(second), [b]), null, 'only the records appended since the last take()');
    t.equal(firstDifference(decode(first), [a, a]), null, 'an earlier batch is not touched by later appends');
  });

  t.test('take() returns a buffer that owns its ArrayBuffer and survives a transfer', async (t) => {
    const writer = new PublishBatchWriter();
    const records = Array.from({ length: 10 }, (_, i) => randomRecord(600 + i));
    for (const r of records) writer.append(r);
    const bytes = writer.take();
    t.ok(ownsBuffer(bytes), 'byteOffset 0 and the whole ArrayBuffer');
    const moved = structuredClone(bytes, { transfer: [bytes.buffer] });
    t.equal(bytes.byteLength, 0, 'the original is detached');
    t.ok(ownsBuffer(moved));
    t.equal(firstDifference(decode(moved), records), null);
    // Small batches too: never a slice of a shared pool.
    writer.append(randomRecord(610));
    t.ok(ownsBuffer(writer.take()));
    t.ok(ownsBuffer(writer.take()));
  });

  t.test('an empty batch', async (t) => {
    const bytes = new PublishBatchWriter().take();
    t.equal(bytes.byteLength, 5);
    t.ok(ownsBuffer(bytes));
    t.same(decode(bytes), []);
  });

  t.test('records the layout cannot carry are refused and leave the batch as it was', async (t) => {
    const writer = new PublishBatchWriter();
    const good = randomRecord(700);
    writer.append(good);
    const length = writer.byteLength;
    const bad: [string, Forwarded][] = [
      ['qos 3', { ...good, qos: 3 as QoS }],
      ['targetQos -1', { ...good, targetQos: -1 as QoS }],
      ['qos 1.5', { ...good, qos: 1.5 as QoS }],
      ['negative id', { ...good, id: -1 }],
      ['id over 2**53 - 1', { ...good, id: 2 ** 53 }],
      ['fractional id', { ...good, id: 1.5 }],
      ['NaN time', { ...good, time: Number.NaN }],
      ['topic over 65535 bytes of UTF-8', { ...good, topic: 'é'.repeat(40_000) }],
      ['origin over 65535 bytes', { ...good, origin: 'x'.repeat(65_536) }],
      ['target over 65535 bytes', { ...good, target: '€'.repeat(30_000) }],
    ];
    for (const [name, record] of bad) {
      t.throws(() => writer.append(record), RangeError, name);
      t.equal(writer.count, 1, `${name}: count unchanged`);
      t.equal(writer.byteLength, length, `${name}: length unchanged`);
    }
    const limit = { ...good, topic: 'x'.repeat(65_535) };
    writer.append(limit);
    t.equal(firstDifference(decode(writer.take()), [good, limit]), null, 'a 65535-byte topic still fits');
  });
});

t.test('reader refuses bad batches with BatchError', async (t) => {
  const records = [...comboRecords().slice(0, 6), randomRecord(800), randomRecord(801)];
  const bytes = Buffer.from(encode(records));
  const isBatchError = { name: 'BatchError', code: 'TERN_CLUSTER_BATCH_INVALID' };

  t.test('truncated at every cut point', async (t) => {
    let failures = 0;
    for (let cut = 0; cut < bytes.length; cut++) {
      try {
        readPublishBatch(bytes.subarray(0, cut), () => {});
        failures++;
      } catch (err) {
        if (!(err instanceof BatchError) || err.code !== 'TERN_CLUSTER_BATCH_INVALID') failures++;
      }
    }
    t.equal(failures, 0, `all ${bytes.length} cuts throw BatchError`);
  });

  t.test('bytes after the last record', async (t) => {
    t.throws(() => decode(Buffer.concat([bytes, Buffer.from([0])])), isBatchError);
  });

  t.test('corrupted fields', async (t) => {
    const corrupt = (name: string, edit: (b: Buffer) => void) => {
      const copy = Buffer.from(bytes);
      edit(copy);
      t.throws(() => decode(copy), isBatchError, name);
    };
    const first = 5; // the first record starts after the header
    corrupt('unknown version', (b) => {
      b[0] = 2;
    });
    corrupt('count larger than the records', (b) => b.writeUInt32LE(records.length + 1, 1));
    corrupt('count smaller than the records', (b) => b.writeUInt32LE(records.length - 1, 1));
    corrupt('reserved flag bits', (b) => {
      b[first + 1] = (b[first + 1] as number) | 0x80;
    });
    corrupt('qos 3', (b) => {
      b[first] = (b[first] as number) | 3;
    });
    corrupt('targetQos 3', (b) => {
      b[first] = (b[first] as number) | 0x18;
    });
    corrupt('properties bytes without the properties flag', (b) => {
      b[first] = (b[first] as number) & ~0x20;
      b.writeUInt32LE(1, first + 12);
    });
    corrupt('payload length past the end', (b) => b.writeUInt32LE(0xffffffff, first + 8));
    corrupt('the first record repeats a topic', (b) => {
      b[first + 1] = (b[first + 1] as number) | 0x02;
    });
    corrupt('the first record repeats an origin', (b) => {
      b[first + 1] = (b[first + 1] as number) | 0x04;
    });
    corrupt('a repeated origin with bytes of its own', (b) => {
      const second = first + 32 + b.readUInt16LE(first + 2) + b.readUInt16LE(first + 4) + b.readUInt32LE(first + 8);
      t.equal((b.readUInt16LE(second) >> 10) & 1, 1, 'the second record repeats the origin');
      b.writeUInt16LE(1, second + 4);
    });
    corrupt('NaN id', (b) => b.writeDoubleLE(Number.NaN, first + 16));
    corrupt('negative time', (b) => b.writeDoubleLE(-1, first + 24));
    corrupt('id over 2**53 - 1', (b) => b.writeDoubleLE(2 ** 53, first + 16));
  });

  t.test('random garbage and random mutations throw nothing but BatchError', async (t) => {
    const fuzz = seededRandom(0xf022);
    const fuzzInt = (n: number): number => Math.floor(fuzz() * n);
    let read = 0;
    let refused = 0;
    const others: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      let input: Buffer;
      if (i % 2 === 0) {
        // Garbage, half of it behind a plausible header so the record checks are reached.
        input = Buffer.alloc(fuzzInt(200));
        for (let j = 0; j < input.length; j++) input[j] = fuzzInt(256);
        if (i % 4 === 0 && input.length >= 5) {
          input[0] = 1;
          input.writeUInt32LE(fuzzInt(4), 1);
        }
      } else {
        // A valid batch with 1 to 4 bytes overwritten.
        input = Buffer.from(bytes);
        for (let n = 1 + fuzzInt(4); n > 0; n--) input[fuzzInt(input.length)] = fuzzInt(256);
      }
      try {
        readPublishBatch(input, () => {});
        read++;
      } catch (err) {
        if (err instanceof BatchError && err.code === 'TERN_CLUSTER_BATCH_INVALID') refused++;
        else if (others.length < 5) others.push(String(err));
      }
    }
    t.same(others, [], 'no other error');
    t.equal(read + refused, 20_000);
    t.ok(refused > 10_000, `${refused} refused, ${read} read`);
  });
});

t.test('a batch crosses a MessageChannel in the transfer list', async (t) => {
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  const records = Array.from({ length: 100 }, (_, i) => randomRecord(900 + i));
  records.push({ ...randomRecord(1000), payload: randomBytes(256 * 1024) });
  const bytes = encode(records);
  const length = bytes.byteLength;
  const arrived = once(port2, 'message');
  port1.postMessage(bytes, [bytes.buffer]);
  t.equal(bytes.byteLength, 0, 'detached on the sending side: moved, not copied');
  const [received] = (await arrived) as [Uint8Array];
  t.equal(received.byteLength, length);
  t.ok(ownsBuffer(received));
  t.equal(firstDifference(decode(received), records), null);
});
