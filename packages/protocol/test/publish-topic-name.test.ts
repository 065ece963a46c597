/**
 * The PUBLISH topic name on both paths. Decoding reads it in one pass that checks U+0000,
 * '+'/'#' and non-ASCII together; the order of the checks (and so the error code when a
 * packet breaks several rules) must stay what it was. Encoding keeps the last topic's bytes;
 * a repeated, changed, non-ASCII or long topic must encode exactly as a fresh one would.
 */
import mqtt from 'mqtt-packet';
import t from 'tap';
import {
  EncodeError,
  encode,
  encodeInto,
  encodePublishHeader,
  encodePublishShared,
  type Packet,
  PacketDecoder,
  type ProtocolVersion,
  type PublishPacket,
} from '../src/index.js';
import { fromHex } from './fixtures/hex.js';

function codeOf(hex: string, version: ProtocolVersion): string | undefined {
  try {
    PacketDecoder.decodeAll(fromHex(hex), { protocolVersion: version });
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

t.test('decoding: one pass finds each fault, in the order the checks had before', async (t) => {
  const rows: Array<{ name: string; version: ProtocolVersion; hex: string; code: string | undefined }> = [
    // 'é+' : c3a9 2b
    {
      name: "'+' after a non-ASCII character",
      version: 4,
      hex: '30 05 0003 c3a92b',
      code: 'TERN_PROTO_TOPIC_WILDCARD',
    },
    { name: "'#' at the start", version: 4, hex: '30 05 0003 232f61', code: 'TERN_PROTO_TOPIC_WILDCARD' },
    { name: "U+0000 before '+': the null wins", version: 4, hex: '30 05 0003 002b61', code: 'TERN_PROTO_UTF8_NULL' },
    { name: "'+' before U+0000: the null wins", version: 4, hex: '30 05 0003 2b0061', code: 'TERN_PROTO_UTF8_NULL' },
    { name: "ill-formed UTF-8 and '+'", version: 4, hex: '30 05 0003 c0af2b', code: 'TERN_PROTO_UTF8_INVALID' },
    {
      name: "'+' and packet id 0: the id wins",
      version: 4,
      hex: '32 07 0003 612f2b 0000',
      code: 'TERN_PROTO_PACKET_ID_ZERO',
    },
    {
      name: "'+' with a topic alias",
      version: 5,
      hex: '30 09 0003 612f2b 03 230001',
      code: 'TERN_PROTO_TOPIC_WILDCARD',
    },
    { name: 'empty name with a topic alias is allowed', version: 5, hex: '30 06 0000 03 230001', code: undefined },
    { name: 'non-ASCII name is allowed', version: 4, hex: '30 06 0004 c3a92f62', code: undefined },
  ];
  t.plan(rows.length);
  for (const row of rows) t.equal(codeOf(row.hex, row.version), row.code, row.name);
});

t.test('decoding: a non-ASCII topic comes out whole', async (t) => {
  t.plan(1);
  const [packet] = PacketDecoder.decodeAll(fromHex('30 08 0006 c3a92fe282ac'));
  t.equal(packet?.cmd === 'publish' ? packet.topic : undefined, 'é/€');
});

const publish = (topic: string, qos: 0 | 1): PublishPacket => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from('payload'),
  qos,
  ...(qos > 0 ? { messageId: 7 } : {}),
  retain: false,
  dup: false,
});

/** mqtt-packet as the oracle: it measures and writes every string afresh. */
const oracle = (p: PublishPacket): string => mqtt.generate(p as unknown as mqtt.Packet).toString('hex');

t.test('encoding: repeated and changing topics give the bytes of a fresh encoding', async (t) => {
  const long256 = `${'x'.repeat(255)}/`; // the longest topic whose bytes are kept
  const long257 = `${'y'.repeat(256)}/`; // one unit more: never kept
  const sequence = [
    'a/b',
    'a/b',
    ['a', 'b'].join('/'), // same text, another string object
    'c',
    'a/b',
    'température/€',
    'température/€',
    '😀/x', // a surrogate pair: 4 bytes
    '😀/x',
    '\ud800/lone', // a lone surrogate is written as U+FFFD, 3 bytes, by every path
    '\ud800/lone',
    long256,
    long256,
    long257,
    long257,
    'a/b',
    '',
    '',
    'a/b',
  ];
  // Other packets with strings in between, to show they do not disturb the kept topic.
  const others: Packet[] = [
    { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'other/+', qos: 1 }] },
    { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 10, clientId: 'zz' },
  ];
  let i = 0;
  for (const topic of sequence) {
    const qos = (i++ % 2) as 0 | 1;
    const p = publish(topic, qos);
    const want = oracle(p);
    t.equal(encode(p, 4).toString('hex'), want, `encode ${JSON.stringify(topic.slice(0, 12))} #${i}`);
    t.equal(encodePublishShared(p, 4).bytes.toString('hex'), want, 'encodePublishShared');
    t.equal(Buffer.concat([encodePublishHeader(p, 4), p.payload]).toString('hex'), want, 'encodePublishHeader');
    const target = Buffer.alloc(want.length / 2 + 3, 0xee);
    const n = encodeInto(p, 4, target, 3);
    t.equal(target.subarray(3, 3 + n).toString('hex'), want, 'encodeInto');
    for (const other of others) encode(other, 4);
  }
  t.end();
});

t.test('encoding: MQTT 5 properties with strings between two encodings of one topic', async (t) => {
  t.plan(2);
  const p: PublishPacket = {
    ...publish('t/1', 1),
    properties: { contentType: 'text/plain', responseTopic: 'reply/here', userProperties: [['k', 'v']] },
  };
  const first = encode(p, 5).toString('hex');
  t.strictSame(PacketDecoder.decodeAll(Buffer.from(first, 'hex'), { protocolVersion: 5 }), [p]);
  t.equal(encode(p, 5).toString('hex'), first, 'the second (kept) encoding is the same');
});

t.test('encoding: a topic over 65535 bytes is refused on every path', async (t) => {
  t.plan(3);
  const p = publish('é'.repeat(40_000), 0); // 80,000 bytes
  t.throws(() => encode(p, 4), EncodeError);
  t.throws(() => encodePublishShared(p, 4), EncodeError);
  t.throws(() => encodePublishHeader(p, 4), EncodeError);
});
