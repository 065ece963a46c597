/** The stored-message layout (message-codec.ts): round trips, MQTT 5 properties, old bodies. */
import t from 'tap';
import { decodeStoredMessage, encodeStoredMessage, type StoredMessage } from '../src/index.js';

function message(fields: Partial<StoredMessage>): StoredMessage {
  return {
    id: 2 ** 40 + 7,
    topic: 'a/b',
    payload: Buffer.from('payload'),
    qos: 1,
    retain: false,
    origin: 'publisher',
    time: 1_700_000_000_123,
    properties: null,
    ...fields,
  };
}

/** MQTT 5 property bytes: content type "text/plain", then a user property ("k", "v"). */
const PROPERTIES = Buffer.from([
  0x03,
  0x00,
  0x0a,
  ...Buffer.from('text/plain'),
  0x26,
  0x00,
  0x01,
  ...Buffer.from('k'),
  0x00,
  0x01,
  ...Buffer.from('v'),
]);

const cases: [name: string, fields: Partial<StoredMessage>][] = [
  ['no properties (null)', { properties: null }],
  ['properties', { properties: PROPERTIES }],
  ['an empty property list stays empty, not null', { properties: new Uint8Array(0) }],
  ['properties and an empty payload', { properties: PROPERTIES, payload: new Uint8Array(0) }],
  ['QoS 2, retained, properties', { qos: 2, retain: true, properties: PROPERTIES }],
  ['UTF-8 topic and origin with properties', { topic: 'ü/€/𝄞', origin: 'клиент', properties: PROPERTIES }],
  ['a payload of 70,000 bytes after properties', { payload: Buffer.alloc(70_000, 9), properties: PROPERTIES }],
];

for (const [name, fields] of cases) {
  t.test(`round trip: ${name}`, async (t) => {
    const m = message(fields);
    const back = decodeStoredMessage(m.id, encodeStoredMessage(m));
    t.same(
      { ...back, payload: Buffer.from(back.payload), properties: back.properties && Buffer.from(back.properties) },
      { ...m, payload: Buffer.from(m.payload), properties: m.properties && Buffer.from(m.properties) },
    );
    t.equal(back.properties === null, m.properties === null, 'null and empty are told apart');
  });
}

t.test('absent properties are written as none and read back as null', async (t) => {
  const { properties: _, ...m } = message({});
  const back = decodeStoredMessage(m.id, encodeStoredMessage(m));
  t.equal(back.properties, null);
  t.equal(Buffer.from(back.payload).toString(), 'payload');
});

t.test('a body written before properties existed reads with properties null', async (t) => {
  // QoS 1 retained, topic "a/ü", origin "c", payload "hi": the layout without bit 3.
  const old = Buffer.from('0500008056febc78420400612fc3bc0100636869', 'hex');
  const back = decodeStoredMessage(5, old);
  t.same(
    { ...back, payload: Buffer.from(back.payload).toString() },
    {
      id: 5,
      topic: 'a/ü',
      origin: 'c',
      payload: 'hi',
      qos: 1,
      retain: true,
      time: 1_700_000_000_000,
      properties: null,
    },
  );
  t.same(
    encodeStoredMessage({ ...back, payload: Buffer.from('hi') }),
    old,
    'a message without properties is still written in the old bytes',
  );
});

t.test('the properties flag is bit 3, and their length sits before the payload', async (t) => {
  const b = encodeStoredMessage(
    message({ topic: 't', origin: 'o', payload: Buffer.from('p'), properties: PROPERTIES }),
  );
  t.equal((b[0] as number) & 8, 8);
  const lengthAt = 1 + 8 + 2 + 1 + 2 + 1;
  t.equal(b.readUInt32LE(lengthAt), PROPERTIES.length);
  t.same(b.subarray(lengthAt + 4, lengthAt + 4 + PROPERTIES.length), PROPERTIES);
  t.equal(b.subarray(lengthAt + 4 + PROPERTIES.length).toString(), 'p');
});

t.test('properties and payload are views of the body, not copies', async (t) => {
  const body = encodeStoredMessage(message({ properties: PROPERTIES }));
  const back = decodeStoredMessage(1, body);
  t.equal((back.properties as Buffer).buffer, body.buffer);
  t.equal((back.payload as Buffer).buffer, body.buffer);
});

t.test('a body cut inside its properties is refused with a StoreError', async (t) => {
  const body = encodeStoredMessage(message({ properties: PROPERTIES, payload: new Uint8Array(0) }));
  const originEnd = 1 + 8 + 2 + 3 + 2 + 'publisher'.length;
  for (const end of [originEnd + 2, originEnd + 4 + PROPERTIES.length - 1]) {
    t.throws(() => decodeStoredMessage(1, body.subarray(0, end)), { code: 'TERN_STORE_FAILED' }, `cut at ${end}`);
  }
});
