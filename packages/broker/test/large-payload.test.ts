/**
 * Payloads of LARGE_PAYLOAD bytes and more leave as a head plus the payload by reference
 * (one writev, no copy per subscriber). Every shape must still arrive byte for byte: QoS 0
 * and 1 to several subscribers, retained on subscribe, queued for an offline session.
 */
import { LARGE_PAYLOAD } from '@tern/session';
import { startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';
import { connectMqttjs, Inbox } from './support/mqttjs.js';

const big = (seed: number, size = LARGE_PAYLOAD * 4 + 3): Buffer => {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

t.test('large payloads arrive intact in every delivery shape', async (t) => {
  const tb = await startBroker({ maxPacketSize: 1024 * 1024 });
  t.teardown(() => tb.stop());
  const port = tb.port;

  const subs = [await connectMqttjs(t, port, 'big-a'), await connectMqttjs(t, port, 'big-b')];
  const inboxes = subs.map((c) => new Inbox(c));
  const raw = subs.map(() => [] as Buffer[]);
  subs.forEach((c, i) => {
    c.on('message', (_topic, payload) => {
      raw[i]?.push(payload);
    });
  });
  for (const c of subs) await c.subscribeAsync('big/#', { qos: 1 });

  const away = await mqtt.connectAsync({
    port,
    host: '127.0.0.1',
    clientId: 'big-away',
    clean: false,
    reconnectPeriod: 0,
  });
  await away.subscribeAsync('big/#', { qos: 1 });
  await away.endAsync();

  const pub = await connectMqttjs(t, port, 'big-pub');
  const payloads = [big(1), big(2), big(3)];
  await pub.publishAsync('big/q0', payloads[0] as Buffer, { qos: 0 });
  await pub.publishAsync('big/q1', payloads[1] as Buffer, { qos: 1 });
  await pub.publishAsync('big/retained', payloads[2] as Buffer, { qos: 1, retain: true });
  for (let i = 0; i < subs.length; i++) {
    const inbox = inboxes[i] as Inbox;
    t.same((await inbox.next()).topic, 'big/q0');
    t.same((await inbox.next()).topic, 'big/q1');
    t.same((await inbox.next()).topic, 'big/retained');
    const got = raw[i] as Buffer[];
    got.forEach((b, j) => {
      t.equal(b.equals(payloads[j] as Buffer), true, `subscriber ${i}, payload ${j} byte for byte`);
    });
  }

  const late = await connectMqttjs(t, port, 'big-late');
  const lateBytes: Buffer[] = [];
  late.on('message', (_topic, payload, packet) => {
    if (packet.retain) lateBytes.push(payload);
  });
  const lateInbox = new Inbox(late);
  await late.subscribeAsync('big/retained', { qos: 1 });
  t.equal((await lateInbox.next()).retain, true, 'the retained copy on subscribe');
  t.equal(lateBytes[0]?.equals(payloads[2] as Buffer), true, 'retained payload byte for byte');

  const back = mqtt.connect({ port, host: '127.0.0.1', clientId: 'big-away', clean: false, reconnectPeriod: 0 });
  t.teardown(() => back.endAsync());
  const queued: Buffer[] = [];
  const backInbox = new Inbox(back);
  back.on('message', (_topic, payload) => queued.push(payload));
  for (let j = 1; j < 3; j++) await backInbox.next();
  t.equal(queued[0]?.equals(payloads[1] as Buffer), true, 'queued QoS 1 payload byte for byte');
  t.equal(queued[1]?.equals(payloads[2] as Buffer), true, 'queued retained-published payload byte for byte');
});
