import type { ViolationCode } from '@tern/protocol';
import { type LogLine, RawClient, startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';
import { Inbox } from './support/mqttjs.js';
import { randomBytes } from './support/random.js';

/** A PUBLISH (QoS 0) whose topic is given as raw bytes, bypassing the encoder's checks. */
function rawPublish(topic: Buffer, flags = 0): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from('x')]);
  return Buffer.concat([Buffer.from([0x30 | flags, body.length]), body]);
}

interface BadInput {
  name: string;
  bytes: Buffer;
  code: ViolationCode;
  /** Sent in place of CONNECT instead of after it. */
  beforeConnect?: boolean;
}

const BAD_INPUTS: BadInput[] = [
  { name: 'reserved packet type 0 [MQTT-2.2.1]', bytes: Buffer.from([0x00, 0x00]), code: 'TERN_PROTO_PACKET_TYPE' },
  {
    name: 'reserved packet type 0 before CONNECT',
    bytes: Buffer.from([0x00, 0x00]),
    code: 'TERN_PROTO_PACKET_TYPE',
    beforeConnect: true,
  },
  {
    name: 'SUBSCRIBE with flags 0000 [MQTT-3.8.1-1]',
    bytes: Buffer.from([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00]),
    code: 'TERN_PROTO_RESERVED_FLAGS',
  },
  {
    name: 'PUBACK with flags 0010 [MQTT-2.2.2-2]',
    bytes: Buffer.from([0x42, 0x02, 0x00, 0x01]),
    code: 'TERN_PROTO_RESERVED_FLAGS',
  },
  {
    name: 'PINGREQ with flags 1111 [MQTT-2.2.2-2]',
    bytes: Buffer.from([0xcf, 0x00]),
    code: 'TERN_PROTO_RESERVED_FLAGS',
  },
  {
    name: 'remaining length of 5 bytes [MQTT-2.2.3]',
    bytes: Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    code: 'TERN_PROTO_REMAINING_LENGTH',
  },
  {
    name: 'invalid UTF-8 in a topic [MQTT-1.5.3-1]',
    bytes: rawPublish(Buffer.from([0x61, 0x2f, 0xc3, 0x28])),
    code: 'TERN_PROTO_UTF8_INVALID',
  },
  {
    name: 'U+0000 in a topic [MQTT-1.5.3-2]',
    bytes: rawPublish(Buffer.from([0x61, 0x00])),
    code: 'TERN_PROTO_UTF8_NULL',
  },
  {
    name: "'+' in a PUBLISH topic [MQTT-3.3.2-2]",
    bytes: rawPublish(Buffer.from('a/+/b')),
    code: 'TERN_PROTO_TOPIC_WILDCARD',
  },
  {
    name: "'#' in a PUBLISH topic [MQTT-3.3.2-2]",
    bytes: rawPublish(Buffer.from('a/#')),
    code: 'TERN_PROTO_TOPIC_WILDCARD',
  },
  { name: 'empty PUBLISH topic [MQTT-4.7.3-1]', bytes: rawPublish(Buffer.alloc(0)), code: 'TERN_PROTO_TOPIC_EMPTY' },
  {
    name: 'PUBLISH with QoS 3 [MQTT-3.3.1-4]',
    bytes: rawPublish(Buffer.from('a'), 0x06),
    code: 'TERN_PROTO_QOS_INVALID',
  },
  { name: 'DUP=1 on QoS 0 [MQTT-3.3.1-2]', bytes: rawPublish(Buffer.from('a'), 0x08), code: 'TERN_PROTO_DUP_QOS0' },
  {
    name: 'PUBLISH QoS 1 with packet id 0 [MQTT-2.3.1-1]',
    bytes: Buffer.from([0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00]),
    code: 'TERN_PROTO_PACKET_ID_ZERO',
  },
  {
    name: 'SUBSCRIBE with no filters [MQTT-3.8.3-3]',
    bytes: Buffer.from([0x82, 0x02, 0x00, 0x01]),
    code: 'TERN_PROTO_SUBSCRIBE_EMPTY',
  },
  {
    name: 'SUBSCRIBE with requested QoS 3 [MQTT-3-8.3-4]',
    bytes: Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x03]),
    code: 'TERN_PROTO_SUBSCRIBE_OPTIONS',
  },
  {
    name: "SUBSCRIBE filter 'a/#/b' [MQTT-4.7.1-2]",
    bytes: Buffer.from([0x82, 0x0a, 0x00, 0x01, 0x00, 0x05, 0x61, 0x2f, 0x23, 0x2f, 0x62, 0x00]),
    code: 'TERN_PROTO_FILTER_HASH',
  },
  {
    name: 'UNSUBSCRIBE with no filters [MQTT-3.10.3-2]',
    bytes: Buffer.from([0xa2, 0x02, 0x00, 0x01]),
    code: 'TERN_PROTO_UNSUBSCRIBE_EMPTY',
  },
  {
    name: 'topic length beyond the packet [MQTT-1.5.4]',
    bytes: Buffer.from([0x30, 0x04, 0x00, 0x10, 0x61, 0x62]),
    code: 'TERN_PROTO_TRUNCATED',
  },
  {
    name: 'DISCONNECT with a body [MQTT-2.2.3]',
    bytes: Buffer.from([0xe0, 0x01, 0x00]),
    code: 'TERN_PROTO_TRAILING_BYTES',
  },
  {
    name: 'CONNACK from a client [MQTT-2.2.1]',
    bytes: Buffer.from([0x20, 0x02, 0x00, 0x00]),
    code: 'TERN_PROTO_PACKET_TYPE',
  },
  { name: 'AUTH from a 3.1.1 client [MQTT-3.15]', bytes: Buffer.from([0xf0, 0x00]), code: 'TERN_PROTO_AUTH_VERSION' },
  {
    name: 'a second CONNECT [MQTT-3.1.0-2]',
    bytes: Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 0x78]),
    code: 'TERN_PROTO_SECOND_CONNECT',
  },
];

t.test('malformed input closes only its own connection (DESIGN guarantee 6)', async (t) => {
  const { port, logs, stop } = await startBroker({ maxPacketSize: 1024 });
  t.teardown(stop);

  // The well-behaved client publishes to itself, one QoS 1 message after another, all along.
  const good = await mqtt.connectAsync({
    host: '127.0.0.1',
    port,
    clientId: 'good',
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  t.teardown(() => good.end(true));
  const inbox = new Inbox(good);
  await good.subscribeAsync('good/#', { qos: 1 });
  let published = 0;
  let stopped = false;
  const traffic = (async () => {
    while (!stopped) await good.publishAsync('good/seq', String(published++), { qos: 1 });
  })();
  let reconnects = 0;
  good.on('close', () => reconnects++);

  let counter = 0;
  /**
   * Opens a connection, sends `bytes`, waits for the close and its warn line; returns the
   * line and how many warn lines that connection got.
   */
  const expectClosed = async (bytes: Buffer, beforeConnect = false) => {
    const client = beforeConnect
      ? await RawClient.open(port)
      : (await RawClient.connected(port, { clientId: `bad-${++counter}` })).client;
    const remote = `127.0.0.1:${client.socket.localPort}`;
    client.sendBytes(bytes);
    await client.waitClosed();
    const isWarn = (l: LogLine) => l.remote === remote && l.level === 40;
    const line = await logs.waitFor((l) => isWarn(l) && typeof l.code === 'string');
    return { code: line.code, msg: line.msg, warnings: logs.lines.filter(isWarn).length };
  };

  await t.test('each bad input: close, and one warn line with the ProtocolError code', async (t) => {
    for (const input of BAD_INPUTS) {
      const got = await expectClosed(input.bytes, input.beforeConnect);
      t.same({ code: got.code, warnings: got.warnings }, { code: input.code, warnings: 1 }, input.name);
    }
  });

  await t.test('a header announcing 1 MB over maxPacketSize 1024 closes before the body [MQTT-3.1.2-24]', async (t) => {
    // PUBLISH, remaining length 1 048 576 (0x80 0x80 0x40), and none of the body.
    const line = await expectClosed(Buffer.from([0x30, 0x80, 0x80, 0x40]));
    t.equal(line.code, 'TERN_PROTO_PACKET_TOO_LARGE');
    t.match(line.msg, /1048580 > 1024/);
    // Just over the limit, body sent in full: refused as well; just under: accepted.
    t.equal((await expectClosed(rawPublishOfSize(1025))).code, 'TERN_PROTO_PACKET_TOO_LARGE', '1025 bytes');
    const { client } = await RawClient.connected(port, { clientId: 'at-limit' });
    t.teardown(() => client.destroy());
    client.sendBytes(rawPublishOfSize(1024));
    client.send({ cmd: 'pingreq' });
    await client.expect('pingresp');
    t.pass('1024 bytes accepted');
  });

  await t.test('random bytes (seeded), before and after CONNECT', async (t) => {
    for (let seed = 1; seed <= 20; seed++) {
      const got = await expectClosed(randomBytes(seed, 2048), seed % 2 === 0);
      t.match(got, { code: /^TERN_PROTO_/, warnings: 1 }, `seed ${seed}: ${got.code}`);
    }
  });

  await t.test('the good client kept publishing and receiving throughout', async (t) => {
    stopped = true;
    await traffic;
    await good.publishAsync('good/marker', 'end', { qos: 1 });
    const got = await inbox.until('good/marker');
    const seq = got.filter((m) => m.topic === 'good/seq').map((m) => Number(m.payload));
    t.same(
      seq,
      Array.from({ length: published }, (_, i) => i),
      `all ${published} messages, in order`,
    );
    t.ok(published > 0, 'traffic ran while the bad inputs were sent');
    t.equal(reconnects, 0, 'its connection never dropped');
    t.equal(good.connected, true);
  });
});

/** A QoS 0 PUBLISH of exactly `size` bytes on the wire (size 130..16385: 2-byte length). */
function rawPublishOfSize(size: number): Buffer {
  const remaining = size - 3;
  const payload = Buffer.alloc(remaining - 3, 0x78);
  return Buffer.concat([Buffer.from([0x30, (remaining & 0x7f) | 0x80, remaining >> 7, 0x00, 0x01, 0x61]), payload]);
}
